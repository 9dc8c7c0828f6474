"""The text-env contract (DESIGN.md), checked on every registered id in ``CASES``.

To cover a new environment add one line to ``CASES``: its id and the importable modules
its optional engine needs (the case is skipped, with the reason, when one is missing).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import agentdistill.envs  # noqa: F401  (registers the ids even without the .pth hook)
from agentdistill.envs.core import RESET_INFO_KEYS, STEP_INFO_KEYS, AnyText

# (env id, modules its optional engine needs)
CASES: list[tuple[str, tuple[str, ...]]] = [
    ("agentdistill/Sokoban-v0", ()),
    ("agentdistill/Sokoban-Hard-v0", ()),
    ("agentdistill/WebShop-v0", ("bm25s",)),
]

BAD_ACTIONS: list[Any] = [
    "",
    "   \n\t ",
    "xyzzy plugh",
    "x" * 1_000_000,
    "\x00\x01\x02",
    b"\xff\xfe\xfd",
    None,
    12345,
    3.5,
    ["up"],
    {"action": "up"},
    np.array([1, 2]),
]


def _make(env_id: str, requires: tuple[str, ...]) -> gym.Env:
    missing = [m for m in requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{env_id} needs optional module(s) {missing} (install the env's extra)")
    return gym.make(env_id)


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def env(request):
    env = _make(*request.param)
    yield env
    env.close()


def _check_info(info: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        assert key in info, f"info lacks {key!r}"
    assert isinstance(info["task"], str) and info["task"]
    assert isinstance(info["task_id"], str) and info["task_id"]
    assert isinstance(info["admissible_actions"], list)
    assert all(isinstance(a, str) for a in info["admissible_actions"])
    assert isinstance(info["anchor"], str)


def _some_action(env: gym.Env, info: dict) -> str:
    expert = env.unwrapped.expert_action()
    if expert is not None:
        return expert
    return info["admissible_actions"][0] if info["admissible_actions"] else "look"


def test_spaces_are_text(env):
    assert isinstance(env.observation_space, gym.spaces.Text)
    assert isinstance(env.action_space, gym.spaces.Text)
    assert isinstance(env.unwrapped.observation_space, AnyText)


def test_reset_contract(env):
    obs, info = env.reset(seed=0)
    assert isinstance(obs, str) and obs
    assert env.observation_space.contains(obs)
    _check_info(info, RESET_INFO_KEYS)
    assert info["anchor"] == obs


def test_step_contract(env):
    obs, info = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(_some_action(env, info))
    assert isinstance(obs, str) and env.observation_space.contains(obs)
    assert isinstance(reward, float)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    _check_info(info, STEP_INFO_KEYS)
    assert isinstance(info["won"], bool)
    assert isinstance(info["action_valid"], bool) and info["action_valid"]
    assert isinstance(info["score"], float) and 0.0 <= info["score"] <= 1.0
    assert not info["won"] or info["score"] == 1.0


@pytest.mark.parametrize("bad", BAD_ACTIONS, ids=lambda b: type(b).__name__ + str(len(repr(b))))
def test_bad_action_is_an_invalid_step(env, bad):
    _, info = env.reset(seed=2)
    obs, reward, terminated, truncated, info = env.step(bad)
    assert info["action_valid"] is False
    assert isinstance(obs, str) and obs
    assert isinstance(reward, float)
    assert not info["won"]
    # the env is still usable afterwards
    _, _, _, _, info = env.step(_some_action(env, info))
    assert info["action_valid"] is True


def test_determinism_same_seed_same_episode(env):
    def episode() -> list[str]:
        e = gym.make(env.spec.id)
        obs, info = e.reset(seed=7)
        text = [obs, repr(sorted(info.items()))]
        actions = ["garbage", *(info["admissible_actions"] * 3)[:8]]
        for a in actions:
            obs, r, term, trunc, info = e.step(a)
            text += [obs, repr(r), repr(sorted(info.items()))]
            if term or trunc:
                break
        e.close()
        return text

    assert episode() == episode()


def test_reset_reproducible_after_other_episodes(env):
    first, _ = env.reset(seed=11)
    env.reset(seed=12)
    env.reset()
    again, _ = env.reset(seed=11)
    assert first == again


def test_check_env(env):
    check_env(env.unwrapped, skip_render_check=False)


def test_expert_wins_within_step_limit(env):
    obs, info = env.reset(seed=3)
    limit = env.spec.max_episode_steps
    for _ in range(limit):
        action = env.unwrapped.expert_action()
        assert isinstance(action, str)
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert info["won"] and info["score"] == 1.0 and terminated


def test_expert_plan_is_none_or_actions(env):
    env.reset(seed=4)
    plan = env.unwrapped.expert_plan()
    assert plan is None or (isinstance(plan, list) and all(isinstance(a, str) for a in plan))


def test_unknown_split_rejected(env):
    with pytest.raises(ValueError):
        env.reset(seed=0, options={"split": "nope"})


def test_ansi_render(env):
    e = gym.make(env.spec.id, render_mode="ansi")
    obs, _ = e.reset(seed=0)
    assert e.render() == obs
