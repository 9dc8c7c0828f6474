"""Tests for agentdistill.distill.weighting: SOD step-wise weights."""

from __future__ import annotations

import pytest
import torch

from agentdistill.distill.losses import opd_policy_loss
from agentdistill.distill.weighting import (
    broadcast_turn_weights,
    effective_weight_mass,
    sod_token_weights,
    sod_weights,
    turn_mean_abs_divergence,
)


def test_sod_equal_divergences_give_ones():
    torch.testing.assert_close(sod_weights(torch.full((5,), 0.37)), torch.ones(5))
    torch.testing.assert_close(sod_weights(torch.zeros(3)), torch.ones(3))


def test_sod_growing_divergence_gives_decreasing_weights():
    d = torch.tensor([0.1, 0.2, 0.4, 0.8])
    w = sod_weights(d)
    assert w[0] == 1.0
    assert (w[1:] < w[:-1]).all()
    torch.testing.assert_close(w, (0.1 + 1e-6) / (d + 1e-6))


def test_sod_cap_at_one_plus_delta():
    d = torch.tensor([0.5, 0.25, 0.45, 0.0])
    w = sod_weights(d, delta=0.2)
    torch.testing.assert_close(w, torch.tensor([1.0, 1.2, (0.5 + 1e-6) / (0.45 + 1e-6), 1.2]))
    w0 = sod_weights(d, delta=0.0)
    assert w0.max() == 1.0
    # Batched rows: each row's own first turn is the reference.
    wb = sod_weights(torch.tensor([[0.1, 0.2], [0.4, 0.2]]))
    torch.testing.assert_close(wb, torch.tensor([[1.0, (0.1 + 1e-6) / (0.2 + 1e-6)], [1.0, 1.2]]))
    assert sod_weights(torch.zeros(0)).numel() == 0
    with pytest.raises(ValueError):
        sod_weights(torch.ones(2), eps=0.0)


def _two_rows():
    # Row 0: turns 0,0,1,1,1 (+1 pad). Row 1: replayed turns 0-1 carry no loss, student turns 2,3.
    old = torch.tensor([[-1.0, -2.0, -1.0, -1.0, -1.0, 0.0], [-9.0, -9.0, -1.0, -1.0, -3.0, -1.0]])
    teacher = torch.tensor(
        [[-1.5, -1.5, -2.0, -3.0, -4.0, 0.0], [0.0, 0.0, -1.2, -1.4, -1.0, -1.2]]
    )
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]])
    turn_ids = torch.tensor([[0, 0, 1, 1, 1, -1], [0, 1, 2, 2, 3, 3]])
    return old, teacher, mask, turn_ids


def test_turn_mean_abs_divergence_by_hand():
    old, teacher, mask, turn_ids = _two_rows()
    d, present = turn_mean_abs_divergence(old, teacher, mask, turn_ids)
    assert d.shape == (2, 4)
    torch.testing.assert_close(d[0, :2], torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(d[1, 2:], torch.tensor([0.3, 1.1]))
    assert present.tolist() == [[True, True, False, False], [False, False, True, True]]
    assert (d[~present] == 0).all()


def test_sod_token_weights_use_first_student_turn_as_reference():
    old, teacher, mask, turn_ids = _two_rows()
    w = sod_token_weights(old, teacher, mask, turn_ids)
    r0 = (0.5 + 1e-6) / (2.0 + 1e-6)
    r1 = (0.3 + 1e-6) / (1.1 + 1e-6)
    expected = torch.tensor([[1, 1, r0, r0, r0, 0], [0, 0, 1, 1, r1, r1]])
    torch.testing.assert_close(w, expected.float())
    # Masked-out values do not matter.
    old2 = old.clone()
    old2[mask == 0] = float("nan")
    torch.testing.assert_close(sod_token_weights(old2, teacher, mask, turn_ids), w)
    # Plugs into the OPD loss as weights=.
    lp = old.clone().requires_grad_(True)
    loss, m = opd_policy_loss(lp, old, teacher, mask, weights=w)
    assert m["weight_mean"] == pytest.approx(effective_weight_mass(w, mask))


def test_broadcast_and_effective_mass():
    tw = torch.tensor([[1.0, 0.5, 1.2]])
    ids = torch.tensor([[0, 0, 1, 2, 2, 9]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0]])
    w = broadcast_turn_weights(tw, ids, mask)
    torch.testing.assert_close(w, torch.tensor([[1.0, 1.0, 0.5, 1.2, 1.2, 0.0]]))
    assert effective_weight_mass(w, mask) == pytest.approx((1 + 1 + 0.5 + 1.2 + 1.2) / 5)
    assert effective_weight_mass(w, torch.zeros_like(mask)) == 0.0
    with pytest.raises(ValueError, match="out of range"):
        broadcast_turn_weights(tw, ids, torch.ones_like(mask))
