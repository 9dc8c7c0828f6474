"""Prompt templates: families, bounded history, truncated action lists, teacher hints."""

from __future__ import annotations

import pytest
from agents_support import get_tiny_lm

from agentdistill.agents.prompts import (
    MAX_LISTED_ACTIONS,
    MAX_OBSERVATION_CHARS,
    TEMPLATES,
    build_messages,
    env_family,
    format_actions,
    prompt_token_ids,
)


@pytest.fixture(scope="module")
def tiny_lm():
    return get_tiny_lm()


def test_env_family():
    assert env_family("agentdistill/Sokoban-v0") == "sokoban"
    assert env_family("agentdistill/Sokoban-Hard-v0") == "sokoban"
    assert env_family("agentdistill/ALFWorld-v0") == "alfworld"
    assert env_family("agentdistill/ScienceWorld-v0") == "scienceworld"
    assert env_family("agentdistill/WebShop-v0") == "webshop"
    assert env_family("someone/Other-v3") == "default"
    assert set(TEMPLATES) >= {"sokoban", "alfworld", "scienceworld", "webshop", "default"}


def _history(n):
    return [(f"act{i}", f"obs-after-{i}") for i in range(1, n + 1)]


def test_structure_and_content():
    msgs = build_messages("agentdistill/Sokoban-v0", "push it", "ROOM", [], ["up", "down"])
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "<think>" in msgs[0]["content"] and "<action>" in msgs[0]["content"]
    user = msgs[1]["content"]
    assert "push it" in user and "ROOM" in user and "up, down" in user
    assert "history" not in user.lower()


def test_history_bounded_to_k():
    hist = _history(5)
    user = build_messages("x/Toy-v0", "t", "now", hist, [], history_k=2)[1]["content"]
    assert "act4" in user and "act5" in user
    for old in ("act1", "act2", "act3", "obs-after-1", "obs-after-3"):
        assert old not in user
    assert "3 earlier steps not shown" in user
    assert "obs-after-4" in user
    # the latest step's result is the current observation: not repeated
    assert "obs-after-5" not in user
    assert "step 6" in user


def test_history_k_zero_and_dict_entries():
    user0 = build_messages("x/Toy-v0", "t", "now", _history(3), [], history_k=0)[1]["content"]
    assert "act3" not in user0
    hist = [
        {"action": "open door", "observation": "door open"},
        {"action": None, "observation": "?"},
    ]
    user = build_messages("x/Toy-v0", "t", "now", hist, [], history_k=5)[1]["content"]
    assert "open door" in user and "door open" in user and "(invalid)" in user


def test_long_lists_and_observations_truncated():
    actions = [f"a{i}" for i in range(MAX_LISTED_ACTIONS + 7)]
    assert format_actions(actions).endswith("... and 7 more")
    assert f"a{MAX_LISTED_ACTIONS}" not in format_actions(actions)
    user = build_messages("x/Toy-v0", "t", "z" * (MAX_OBSERVATION_CHARS + 100), [], actions)[1][
        "content"
    ]
    assert "100 characters cut" in user
    assert len(user) < MAX_OBSERVATION_CHARS + 2_000


def test_hint_goes_to_system_only():
    args = ("agentdistill/Sokoban-v0", "task", "obs", _history(2), ["up"])
    student = build_messages(*args)
    teacher = build_messages(*args, hint="expert says: left")
    assert student[1] == teacher[1]
    assert "expert says: left" in teacher[0]["content"]
    assert "expert says" not in student[0]["content"]


def test_chat_template_same_generation_prefix(tiny_lm):
    _, tok = tiny_lm
    args = ("agentdistill/Sokoban-v0", "task", "obs", _history(3), ["up"])
    s_ids = prompt_token_ids(tok, build_messages(*args))
    t_ids = prompt_token_ids(tok, build_messages(*args, hint="privileged"))
    assert len(t_ids) > len(s_ids)
    # identical user turn and assistant prefix at the end of both prompts
    user_and_prefix = len(
        tok(build_messages(*args)[1]["content"], add_special_tokens=False)["input_ids"]
    )
    tail = user_and_prefix + 5
    assert s_ids[-tail:] == t_ids[-tail:]
    assert tok.decode(s_ids).endswith("<|im_start|>assistant\n")
    assert s_ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 3
