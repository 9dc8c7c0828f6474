"""Tests for agentdistill.distill.rl: masked means, GRPO advantages, PPO-clip."""

from __future__ import annotations

import pytest
import torch

from agentdistill.distill.rl import clip_bounds, grpo_advantages, masked_mean, ppo_clip_loss

torch.set_num_threads(1)


def test_masked_mean_ignores_masked_values_even_nan():
    x = torch.tensor([[1.0, 2.0, float("nan")], [4.0, float("inf"), 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])
    assert masked_mean(x, mask).item() == pytest.approx((1 + 2 + 4 + 6) / 4)
    torch.testing.assert_close(masked_mean(x, mask, dim=1), torch.tensor([1.5, 5.0]))
    torch.testing.assert_close(masked_mean(x, mask.bool(), dim=0), torch.tensor([2.5, 2.0, 6.0]))
    assert masked_mean(x, torch.zeros(2, 3)).item() == 0.0  # empty mask -> 0, not NaN
    # Float masks act as weights.
    w = torch.tensor([[0.5, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert masked_mean(x, w).item() == pytest.approx((0.5 + 2 + 12) / 3.5)


def test_grpo_zero_mean_unit_std_per_group():
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(12, generator=g)
    groups = torch.tensor([7, 7, 7, 7, 3, 3, 3, 3, 9, 9, 9, 9])[torch.randperm(12, generator=g)]
    adv = grpo_advantages(rewards, groups)
    for gid in groups.unique():
        a = adv[groups == gid]
        assert abs(a.mean().item()) < 1e-6
        assert a.std().item() == pytest.approx(1.0, abs=1e-4)  # unbiased std, like GRPO
        r = rewards[groups == gid]
        torch.testing.assert_close(a, (r - r.mean()) / (r.std() + 1e-6))
    raw = grpo_advantages(rewards, groups, normalize_std=False)
    for gid in groups.unique():
        r = rewards[groups == gid]
        torch.testing.assert_close(raw[groups == gid], r - r.mean())


def test_grpo_degenerate_groups():
    rewards = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5])
    groups = torch.tensor([0, 1, 1, 1, 2])  # group 0 and 2 have one member
    adv = grpo_advantages(rewards, groups)
    assert adv[0] == 0 and adv[4] == 0
    assert torch.isfinite(adv).all()
    same = grpo_advantages(torch.ones(4), torch.zeros(4, dtype=torch.long))
    assert (same == 0).all()  # all-equal rewards: no signal, no NaN
    assert grpo_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long)).numel() == 0


def test_grpo_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        grpo_advantages(torch.ones(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="1-D"):
        grpo_advantages(torch.ones(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        grpo_advantages(torch.ones(3), torch.zeros(3))


def test_ppo_clip_loss_value_and_sequence_advantages():
    g = torch.Generator().manual_seed(1)
    old = -torch.rand(2, 4, generator=g)
    lp = (old + 0.5 * torch.randn(2, 4, generator=g)).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    adv = torch.tensor([0.7, -1.3])
    loss, m = ppo_clip_loss(lp, old, adv, mask, clip_ratio=0.2)
    ratio = torch.exp(lp.detach() - old)
    a = adv[:, None].expand(2, 4)
    per = -torch.minimum(ratio * a, ratio.clamp(0.8, 1.2) * a)
    torch.testing.assert_close(loss.detach(), (per * mask).sum() / mask.sum())
    loss_tok, _ = ppo_clip_loss(lp, old, a, mask, clip_ratio=0.2)
    torch.testing.assert_close(loss, loss_tok)
    active = (ratio.clamp(0.8, 1.2) * a < ratio * a) & mask.bool()
    assert m["clip_frac"] == pytest.approx(active.sum().item() / 5)
    assert m["num_tokens"] == 5.0
    assert m["approx_kl"] >= 0


def test_ppo_masked_tokens_change_nothing():
    old = torch.zeros(1, 3)
    lp = torch.tensor([[0.1, -0.1, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0]])
    loss, _ = ppo_clip_loss(lp, old, torch.tensor([[1.0, 2.0, 3.0]]), mask)
    old2 = torch.tensor([[0.0, 0.0, float("nan")]])
    loss2, _ = ppo_clip_loss(lp, old2, torch.tensor([[1.0, 2.0, float("inf")]]), mask)
    torch.testing.assert_close(loss, loss2)
    (g,) = torch.autograd.grad(loss2, lp)
    assert torch.isfinite(g).all() and g[0, 2] == 0


def test_clip_bounds():
    assert clip_bounds(0.2) == pytest.approx((0.8, 1.2))
    assert clip_bounds((0.2, 0.28)) == pytest.approx((0.8, 1.28))
    with pytest.raises(ValueError):
        clip_bounds(1.0)
    with pytest.raises(ValueError):
        clip_bounds((0.1, -0.1))
