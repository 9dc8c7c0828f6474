"""Update-side knobs (issue 12 §3): PPO epochs / mini-batches, micro-batch gradient
accumulation, KL to the initial policy, entropy bonus, LR schedule, gradient
checkpointing, GRPO reward scaling."""

from __future__ import annotations

import math

import pytest
import torch
from distill_support import LORA, random_episode, tiny_cfg

from agentdistill.agents.models import tiny_random_model
from agentdistill.agents.trajectory import Episode
from agentdistill.distill.batch import assign_advantages, build_rows
from agentdistill.distill.config import OptimConfig
from agentdistill.distill.objectives import token_entropy
from agentdistill.distill.optimization import lr_factor, minibatches
from agentdistill.distill.teacher import Teacher, response_logprobs
from agentdistill.distill.trainer import Trainer


@pytest.fixture(scope="module")
def tok():
    return tiny_random_model(seed=0)[1]


def fixed_batch(trainer, tok, n_turns=4):
    """Rows of one random episode scored by a separate tiny teacher, pi_old = current policy."""
    trainer.teacher = Teacher(tok, model=tiny_random_model(seed=1)[0], student_tokenizer=tok)
    ep = random_episode(tok, n_turns=n_turns)
    trainer.teacher.score_episodes([ep])
    rows = build_rows([ep])
    trainer.recompute_old_logprobs(rows)
    return rows


def grads(trainer):
    return {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()
            if p.requires_grad and p.grad is not None}


def test_second_ppo_epoch_reuses_pi_old_so_the_clip_acts(tmp_path, tok):
    over = {"optim.lr": 1e-2, "optim.grad_clip": None}
    one = Trainer(tiny_cfg(tmp_path / "a", **over))
    m1 = one.optimize(fixed_batch(one, tok))
    assert m1["clip_frac"] == 0.0 and "updates" not in m1
    two = Trainer(tiny_cfg(tmp_path / "b", **over, **{"optim.ppo_epochs": 2}))
    rows = fixed_batch(two, tok)
    old = [list(r.old_logprobs) for r in rows]
    m2 = two.optimize(rows)
    assert m2["updates"] == 2
    assert m2["clip_frac_last"] > 0 and m2["clip_frac"] > 0
    assert [r.old_logprobs for r in rows] == old  # the trajectory's pi_old is the sampler's


def test_mini_batches_split_each_epoch_into_shuffled_parts():
    oc = OptimConfig(ppo_epochs=2, mini_batches=3)
    parts = list(minibatches(list(range(7)), oc, seed=0, step=5))
    assert len(parts) == 6 and [len(p) for p in parts] == [3, 2, 2] * 2
    assert sorted(x for p in parts[:3] for x in p) == list(range(7))
    assert parts[:3] != parts[3:]  # reshuffled per epoch
    assert parts == list(minibatches(list(range(7)), oc, seed=0, step=5))  # deterministic
    assert list(minibatches([1, 2], OptimConfig(mini_batches=5), 0, 0)) == [[1], [2]]
    assert list(minibatches([3, 1, 2], OptimConfig(), 0, 0)) == [[3, 1, 2]]


@pytest.mark.parametrize("lora", [False, True])
def test_micro_batched_gradient_equals_full_batch_gradient(tmp_path, tok, lora):
    over = {"loss.kl_ref_coef": 0.5, "loss.entropy_coef": 0.1}
    if lora:
        over["model.lora"] = LORA
    full = Trainer(tiny_cfg(tmp_path / "f", **over, **{"optim.micro_batch_size": 8}))
    micro = Trainer(tiny_cfg(tmp_path / "m", **over, **{"optim.micro_batch_size": 1}))
    rows_f = fixed_batch(full, tok, n_turns=5)
    rows_m = fixed_batch(micro, tok, n_turns=5)
    rows_f[0].response_ids = rows_f[0].response_ids[:2]  # unequal lengths: token shares differ
    rows_m[0].response_ids = rows_m[0].response_ids[:2]
    for t, rows in ((full, rows_f), (micro, rows_m)):
        for r in rows:
            r.old_logprobs = r.old_logprobs[: len(r.response_ids)]
            r.teacher_logprobs = r.teacher_logprobs[: len(r.response_ids)]
            r.advantage = 0.3
        t.reference.score(rows, t.pad_id, 2)
        for r in rows:  # a reference away from the policy: the KL term has a gradient
            r.ref_logprobs = [x - 0.5 for x in r.ref_logprobs]
    m_f, m_m = full.accumulate(rows_f), micro.accumulate(rows_m)
    g_f, g_m = grads(full), grads(micro)
    assert g_f.keys() == g_m.keys() and g_f
    for k in g_f:
        torch.testing.assert_close(g_m[k], g_f[k], rtol=1e-4, atol=1e-6)
    assert m_m["loss"] == pytest.approx(m_f["loss"], rel=1e-5)
    assert m_f["kl_ref"] > 0 and m_f["entropy"] > 0


def test_kl_ref_reference_is_the_initial_policy(tmp_path, tok):
    for over in ({}, {"model.lora": LORA}):
        t = Trainer(tiny_cfg(tmp_path / str(len(over)), **over,
                             **{"loss.kl_ref_coef": 0.1, "optim.lr": 1e-2}))
        rows = fixed_batch(t, tok)
        t.reference.score(rows, t.pad_id, 4)
        before = [list(r.ref_logprobs) for r in rows]
        for r in rows:
            assert r.ref_logprobs == pytest.approx(r.old_logprobs, abs=1e-5)
        m = t.optimize(rows)
        assert m["kl_ref"] == pytest.approx(0.0, abs=1e-6)  # first update: pi_theta = pi_ref
        for r, b in zip(rows, before, strict=True):  # the reference did not move with the policy
            assert r.ref_logprobs == pytest.approx(b, abs=1e-6)
        m = t.optimize(rows)
        assert m["kl_ref"] > 0  # the policy moved away from its frozen start
        assert t.reference.adapters_off == ("model.lora" in over)


def test_entropy_bonus_is_the_full_vocabulary_entropy(tmp_path, tok):
    t = Trainer(tiny_cfg(tmp_path, **{"loss.entropy_coef": 0.2}))
    rows = fixed_batch(t, tok)
    _, m, mask = t.micro_loss(rows)
    with torch.no_grad():
        out = response_logprobs(t.model, [r.prompt_ids for r in rows], [r.response_ids for r in rows],
                                return_logits=True)
        probs = torch.softmax(out.logits.double(), -1)
        h = -(probs * probs.log()).sum(-1)
    assert m["entropy"] == pytest.approx(float(h[mask].mean()), rel=1e-5)
    assert torch.allclose(token_entropy(out.logits)[mask].double(), h[mask], atol=1e-4)


def test_lr_schedule_warmup_then_cosine(tmp_path, tok):
    oc = OptimConfig(warmup_steps=2, schedule="cosine")
    f = [lr_factor(oc, s, 6) for s in range(6)]
    assert f[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert f[3] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert all(a > b > 0 for a, b in zip(f[2:], f[3:], strict=False))
    assert [lr_factor(OptimConfig(), s, 6) for s in range(6)] == [1.0] * 6
    t = Trainer(tiny_cfg(tmp_path, **{"optim.warmup_steps": 4, "optim.lr": 1e-3}))
    rows = fixed_batch(t, tok)
    t.step = 1
    assert t.optimize(rows)["lr"] == pytest.approx(5e-4)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_gradient_checkpointing_gives_the_same_gradient(tmp_path, tok):
    plain = Trainer(tiny_cfg(tmp_path / "p"))
    ckpt = Trainer(tiny_cfg(tmp_path / "c", **{"model.gradient_checkpointing": True}))
    calls = []
    for layer in ckpt.model.model.layers:
        real = layer._gradient_checkpointing_func

        def spy(*a, _real=real, **k):
            calls.append(1)
            return _real(*a, **k)

        layer._gradient_checkpointing_func = spy
    rp, rc = fixed_batch(plain, tok), fixed_batch(ckpt, tok)
    for r in rp + rc:
        r.advantage = 1.0
    plain.accumulate(rp)
    ckpt.accumulate(rc)
    assert calls, "checkpointing never ran"
    assert not any(m.training for m in ckpt.model.modules())  # back in eval mode afterwards
    gp, gc = grads(plain), grads(ckpt)
    for k in gp:
        # The recompute may sum in another order (CPU kernels differ by machine: on an AMD
        # AVX-512 CPU one element of 3M differed by 1.4e-7); a checkpointing bug is O(grad),
        # so compare relative to the gradient's norm.
        assert gp[k].norm() > 0, k
        assert (gc[k] - gp[k]).norm() / gp[k].norm() < 1e-5, k


def _episodes(rewards_by_group):
    eps = []
    for g, rewards in enumerate(rewards_by_group):
        for r in rewards:
            eps.append(Episode(episode_id=f"{g}-{len(eps)}", env_id="x", task_id="t", task="t",
                               seed=0, score=r, group_id=g))
    return eps


@pytest.mark.parametrize("mode", ["group", "batch", "none"])
def test_scale_rewards(tmp_path, mode):
    cfg = tiny_cfg(tmp_path, **{"loss.method": "grpo", "loss.reward": "score",
                                "loss.scale_rewards": mode})
    eps = _episodes([[1.0, 0.0], [3.0, 1.0, 2.0]])
    from agentdistill.distill.batch import Row

    rows = [Row(i, e.episode_id, 0, [1], [1], [0.0], None) for i, e in enumerate(eps)]
    assign_advantages(rows, eps, cfg.loss)
    adv = torch.tensor([r.advantage for r in rows])
    centred = torch.tensor([0.5, -0.5, 1.0, -1.0, 0.0])
    if mode == "none":
        expected = centred
    elif mode == "batch":
        expected = centred / (torch.tensor([1.0, 0.0, 3.0, 1.0, 2.0]).std() + 1e-6)
    else:
        expected = centred / (torch.tensor([2 ** -0.5] * 2 + [1.0] * 3) + 1e-6)
    assert torch.allclose(adv, expected, atol=1e-5)


@pytest.mark.parametrize("unhinted", ["plain", "skip"])
def test_turns_without_an_expert_hint_are_counted_and_skipped_on_request(tmp_path, unhinted):
    """Where the expert has no move (a deadlocked room) the hinted teacher is the plain base
    model: ``teacher.unhinted: skip`` leaves those turns out of the loss; both log them."""
    from agentdistill.agents.models import load_tokenizer
    from agentdistill.distill.batch import build_batch

    tok = load_tokenizer("smollm2")
    ep = random_episode(tok, n_turns=4, seed=3)
    for t in ep.turns[2:]:
        t.info["expert_action"] = None
    cfg = tiny_cfg(tmp_path, **{"loss.method": "opd", "teacher.unhinted": unhinted})
    batch = build_batch([ep], cfg, step=0)
    assert batch.metrics["unhinted_rows"] == 2
    assert [r.turn_index for r in batch.rows] == ([0, 1] if unhinted == "skip" else [0, 1, 2, 3])
    plain = build_batch([ep], tiny_cfg(tmp_path, **{"teacher.context": "plain"}), step=0)
    assert "unhinted_rows" not in plain.metrics and len(plain.rows) == 4
