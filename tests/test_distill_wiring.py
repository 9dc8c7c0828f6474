"""Wiring defects (issue 12 §4): Skill-SD teacher sync, the skill bank in checkpoints,
tempered sampling refused, skill retrieval order, b2f logging, weights_only checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from distill_support import LORA, tiny_cfg

from agentdistill.distill.checkpoint import STATE_FILE
from agentdistill.distill.config import ConfigError
from agentdistill.distill.skills import Skill, SkillBank
from agentdistill.distill.trainer import Trainer

SKILL_SD = {"loss.method": "skill_sd", "teacher.context": "skills"}


@pytest.mark.parametrize("sync", ["frozen", "live"])
def test_skill_sd_refuses_a_teacher_that_never_learns(tmp_path, sync):
    with pytest.raises(ConfigError, match="teacher.sync 'ema' or 'copy'"):
        tiny_cfg(tmp_path, **SKILL_SD, **{"teacher.sync": sync})
    for ok in ("ema", "copy"):
        assert tiny_cfg(tmp_path, **SKILL_SD, **{"teacher.sync": ok}).teacher.sync == ok


@pytest.mark.parametrize("over", [{"rollout.temperature": 0.7}, {"rollout.top_p": 0.9}])
def test_training_refuses_a_sampler_that_is_not_pi_old(tmp_path, over):
    with pytest.raises(ConfigError, match="rollout.temperature 1 and rollout.top_p 1"):
        tiny_cfg(tmp_path, **over)
    assert tiny_cfg(tmp_path, **{"eval.temperature": 0.7}).eval.temperature == 0.7


def test_retrieval_ties_go_to_the_newest_skill():
    bank = SkillBank()
    for won in (True, False):  # same task text: equal relevance
        bank.add(Skill("t", "push the box", "w", "m", "f", won=won, source="llm"))
    found = bank.retrieve("t", "push the box", k=2)
    assert [s.created for s in found] == [2, 1]  # newest first, although the older one won


def test_b2f_logs_replayed_turns_and_refuses_a_horizon(tmp_path):
    over = {"loss.method": "tcod_b2f", "curriculum.K": 1, "env.max_turns": 6, "steps": 1}
    with pytest.raises(ConfigError, match="curriculum.horizon does not apply"):
        tiny_cfg(tmp_path, **over, **{"curriculum.horizon": 3})
    trainer = Trainer(tiny_cfg(tmp_path, **over))
    seen = []
    collect = trainer.collect
    trainer.collect = lambda step: seen.extend(collect(step)) or seen
    trainer.fit()
    (m,) = [h for h in trainer.history if h["kind"] == "train"]
    assert "depth" not in m
    replayed = [sum(t.is_replay for t in e.turns) for e in seen]
    assert m["replay_turns_mean"] == pytest.approx(np.mean(replayed)) and max(replayed) > 0


def test_checkpoints_load_without_unpickling(tmp_path):
    trainer = Trainer(tiny_cfg(tmp_path, **{"steps": 1}))
    trainer.fit()
    f = tmp_path / "run" / "checkpoints" / "step_000001" / STATE_FILE
    state = torch.load(f, weights_only=True)  # raises on any pickled non-tensor object
    assert state["step"] == 1
    import random

    saved_np, saved_py = np.random.get_state(), random.getstate()  # as at the final save
    np.random.seed(123)
    random.seed(123)
    trainer.load_checkpoint(tmp_path / "run")
    restored = np.random.get_state()
    np.testing.assert_array_equal(restored[1], saved_np[1])
    assert restored[0] == saved_np[0] and restored[2:] == saved_np[2:]
    assert random.getstate() == saved_py


def _weights(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}


def _assert_same_run(a: Trainer, b: Trainer):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    la = [h["loss"] for h in a.history if h["kind"] == "train"]
    lb = [h["loss"] for h in b.history if h["kind"] == "train"]
    assert la == lb and len(la) == a.cfg.steps


@pytest.mark.slow
def test_resume_from_an_earlier_checkpoint_restores_the_skill_bank(tmp_path):
    """Resuming at step 1 of a run that went on to step 2 must see the bank of step 1,
    not the ``skills.json`` the later step left behind."""
    over = {**SKILL_SD, "teacher.sync": "ema", "teacher.ema_rate": 0.5, "model.lora": LORA,
            "steps": 2, "env.max_turns": 3, "rollout.tasks_per_step": 2}
    straight = Trainer(tiny_cfg(tmp_path / "a", **over))
    straight.fit()
    ahead = Trainer(tiny_cfg(tmp_path / "b", **over, **{"checkpoint_every": 1}))
    ahead.fit()  # skills.json now holds the bank after step 2
    resumed = Trainer(tiny_cfg(tmp_path / "b", **over))
    resumed.load_checkpoint(tmp_path / "b" / "run" / "checkpoints" / "step_000001")
    assert len(resumed.skill_bank) < len(ahead.skill_bank)
    saved = json.loads((tmp_path / "b" / "run" / "skills.json").read_text())
    assert saved == resumed.skill_bank.state_dict()  # the file is rewound too
    resumed.fit()
    _assert_same_run(straight, resumed)
    assert resumed.skill_bank == straight.skill_bank


@pytest.mark.slow
def test_resume_tcod_adaptive_equals_uninterrupted(tmp_path):
    over = {"loss.method": "tcod_adaptive", "curriculum.K": 3, "curriculum.window": 1,
            "env.max_turns": 3, "steps": 3}
    straight = Trainer(tiny_cfg(tmp_path / "a", **over))
    straight.fit()
    first = Trainer(tiny_cfg(tmp_path / "b", **{**over, "steps": 2}))
    first.fit()
    resumed = Trainer(tiny_cfg(tmp_path / "b", **over))
    resumed.load_checkpoint(tmp_path / "b" / "run")
    assert resumed.schedule.state_dict() == first.schedule.state_dict()
    resumed.fit()
    _assert_same_run(straight, resumed)
    assert resumed.schedule.state_dict() == straight.schedule.state_dict()
    assert [h["depth"] for h in resumed.history if h["kind"] == "train"] == \
        [h["depth"] for h in straight.history if h["kind"] == "train"]


def test_model_dtype_auto_is_accepted_and_typos_are_refused(tmp_path):
    assert tiny_cfg(tmp_path, **{"model.dtype": "auto"}).model.dtype == "auto"
    with pytest.raises(ConfigError, match="dtype"):
        tiny_cfg(tmp_path, **{"model.dtype": "bf32"})
