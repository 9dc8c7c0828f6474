"""Tests for agentdistill.distill.curriculum: TCOD f2b / b2f / adaptive schedules."""

from __future__ import annotations

import json

import pytest

from agentdistill.distill.curriculum import TCODSchedule


def test_f2b_boundaries():
    s = TCODSchedule("f2b", K=6, horizon=30)
    assert [s.depth(x) for x in (0, 5, 6, 11, 12)] == [1, 1, 2, 2, 3]
    assert s.depth(6 * 29 - 1) == 29
    assert s.depth(6 * 29) == 30
    assert s.depth(10**6) == 30
    assert s.replay_length(0, 10) == 0  # no replay outside b2f
    one = TCODSchedule("f2b", K=1, horizon=1)
    assert one.depth(0) == 1 and one.depth(5) == 1


def test_b2f_boundaries():
    s = TCODSchedule("b2f", K=5, horizon=15)
    assert [s.replay_length(x, 10) for x in (0, 4, 5, 9, 10)] == [9, 9, 8, 8, 7]
    assert s.replay_length(5 * 8, 10) == 1
    assert s.replay_length(5 * 9, 10) == 0
    assert s.replay_length(10**6, 10) == 0
    assert s.replay_length(0, 1) == 0 and s.replay_length(0, 0) == 0
    assert s.depth(0) == 15  # the student plays out the rest of the episode


def test_validation():
    with pytest.raises(ValueError, match="mode"):
        TCODSchedule("middle", K=2, horizon=5)
    with pytest.raises(ValueError, match="K"):
        TCODSchedule("f2b", K=0, horizon=5)
    with pytest.raises(ValueError, match="horizon"):
        TCODSchedule("f2b", K=2, horizon=0)
    with pytest.raises(ValueError, match="K"):
        TCODSchedule("f2b", K=2.5, horizon=5)
    s = TCODSchedule("b2f", K=2, horizon=5)
    with pytest.raises(ValueError, match="step"):
        s.depth(-1)
    with pytest.raises(ValueError, match="expert_length"):
        s.replay_length(0, -3)


def test_adaptive_holds_while_kl_rises_then_advances():
    s = TCODSchedule("adaptive", K=100, horizon=4, window=2)
    for step, kl in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]):
        assert s.update(step, kl, kl / 2) == 1  # rising: stay at depth 1
    # Windows of 2: step 6 compares [.6,.6] with [.4,.5], step 7 [.6,.6] with [.5,.6]: rising.
    assert s.update(6, 0.6, 0.3) == 1
    assert s.update(7, 0.6, 0.3) == 1
    # Step 8: [.6,.6] vs [.6,.6] -> stopped rising -> advance.
    assert s.update(8, 0.6, 0.3) == 2
    assert s.depth(9) == 2
    # History was cleared: 2 * window fresh steps are needed at depth 2 before the next move.
    assert s.update(9, 0.5, 0.1) == 2
    assert s.update(10, 0.5, 0.1) == 2
    assert s.update(11, 0.5, 0.1) == 2
    assert s.update(12, 0.4, 0.1) == 3


def test_adaptive_mean_flat_but_std_rising_does_not_advance():
    s = TCODSchedule("adaptive", K=100, horizon=5, window=1)
    s.update(0, 1.0, 0.1)
    assert s.update(1, 1.0, 0.2) == 1  # mean flat, std up -> still rising
    assert s.update(2, 0.9, 0.2) == 2  # both flat or down -> advance


def test_adaptive_tolerance_and_nan():
    s = TCODSchedule("adaptive", K=100, horizon=5, window=1, tol=0.1)
    s.update(0, 1.0, 0.5)
    assert s.update(1, float("nan"), 0.5) == 1  # ignored, no decision
    assert s.update(2, 1.05, 0.52) == 2  # a 5% rise is within tol -> plateau


def test_adaptive_fallback_never_lags_f2b_with_k():
    s = TCODSchedule("adaptive", K=3, horizon=10, window=2)
    for step in range(20):
        s.update(step, 0.1 * step, 0.05 * step)  # always rising: only the fallback advances
        assert s.depth(step + 1) == min(1 + (step + 1) // 3, 10)
    # depth() itself never lags either, even without update() calls.
    assert TCODSchedule("adaptive", K=3, horizon=10).depth(9) == 4


def test_adaptive_caps_at_horizon_and_resumes_from_state():
    s = TCODSchedule("adaptive", K=1000, horizon=2, window=1)
    for step in range(10):
        s.update(step, 1.0, 1.0)
    assert s.depth(10) == 2
    state = json.loads(json.dumps(s.state_dict()))
    t = TCODSchedule("adaptive", K=1000, horizon=2, window=1)
    t.load_state_dict(state)
    assert t.depth(10) == 2 and t.state_dict() == s.state_dict()
    with pytest.raises(ValueError, match="horizon"):
        TCODSchedule("adaptive", K=1000, horizon=3, window=1).load_state_dict(state)
    with pytest.raises(ValueError, match="decrease"):
        t.update(3, 1.0, 1.0)


def test_update_is_a_noop_outside_adaptive():
    s = TCODSchedule("f2b", K=2, horizon=5)
    assert s.update(3, 9.9, 9.9) == s.depth(4) == 3
