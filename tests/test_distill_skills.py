"""Skill-SD skills: parsing, extractive fallback, bank bounds, retrieval, persistence."""

from __future__ import annotations

import json

import pytest

from agentdistill.agents.backends.base import Backend, Generation, SamplingParams, TokenScores
from agentdistill.agents.trajectory import Episode, Turn
from agentdistill.distill.skills import (
    Skill,
    SkillBank,
    SkillSummarizer,
    extractive_skill,
    parse_skill_sections,
)


def _turn(i: int, action: str, valid: bool) -> Turn:
    return Turn(
        turn_index=i, prompt_messages=[], prompt_ids=[], response_ids=[1], response_logprobs=[0.0],
        response_text=f"<action>{action}</action>", action=action, format_valid=True,
        action_valid=valid, reward=0.0, observation=f"obs {i}",
    )


def _episode(won: bool, task: str = "push the box onto the target", eid: str = "e0") -> Episode:
    turns = [_turn(0, "up", True), _turn(1, "jump", False), _turn(2, "left", True)]
    return Episode(episode_id=eid, env_id="agentdistill/Sokoban-v0", task_id="t", task=task,
                   seed=0, turns=turns, won=won, metadata={"task_type": "sokoban"})


def _skill(task: str, won: bool, task_type: str = "sokoban") -> Skill:
    return Skill(task_type=task_type, task=task, what_worked="w", mistakes="m", workflow="1. up",
                 won=won, source="llm")


def test_parse_sections_complete_and_incomplete():
    text = "WHAT WORKED: pushing early\nMISTAKES: walking into walls\nWORKFLOW: 1. up 2. left"
    parsed = parse_skill_sections(text)
    assert parsed == {"what_worked": "pushing early", "mistakes": "walking into walls",
                      "workflow": "1. up 2. left"}
    assert parse_skill_sections("WHAT WORKED: x\nWORKFLOW: y") is None
    assert parse_skill_sections("") is None
    assert parse_skill_sections("WHAT WORKED:\nMISTAKES: a\nWORKFLOW: b") is None


def test_extractive_skill_uses_the_episode():
    won = extractive_skill(_episode(True), "sokoban")
    assert won.source == "extractive" and won.won
    assert "1. up" in won.workflow and "2. left" in won.workflow
    assert "jump" in won.mistakes
    lost = extractive_skill(_episode(False), "sokoban")
    assert "Nothing completed" in lost.what_worked


class _ScriptedBackend(Backend):
    """Returns fixed texts; records the prompts it was given."""

    def __init__(self, texts: list[str], tokenizer):
        self.texts = texts
        self.tokenizer = tokenizer
        self.prompts: list[list[int]] = []

    def generate(self, prompts, params: SamplingParams):
        self.prompts.extend(prompts)
        return [Generation(token_ids=[1], logprobs=[0.0], text=t) for t in self.texts[: len(prompts)]]

    def score(self, prompts, responses, top_k=0):
        return [TokenScores(logprobs=[0.0] * len(r)) for r in responses]


class _CharTokenizer:
    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=True):
        text = "".join(m["content"] for m in messages)
        return [ord(c) % 256 for c in text]


def test_summarizer_llm_and_fallback():
    good = "WHAT WORKED: go up first\nMISTAKES: jumping\nWORKFLOW: 1. up 2. left"
    backend = _ScriptedBackend([good, "garbage without labels"], _CharTokenizer())
    skills = SkillSummarizer(backend).summarize([_episode(True, eid="a"), _episode(False, eid="b")])
    assert [s.source for s in skills] == ["llm", "extractive"]
    assert skills[0].what_worked == "go up first" and skills[0].episode_id == "a"
    assert skills[1].task_type == "sokoban"
    assert len(backend.prompts) == 2 and all(backend.prompts)


def test_bank_is_bounded_and_evicts_failures_first():
    bank = SkillBank(max_per_task_type=2)
    bank.add(_skill("a", won=True))
    bank.add(_skill("b", won=False))
    bank.add(_skill("c", won=True))
    tasks = sorted(s.task for s in bank.skills["sokoban"])
    assert tasks == ["a", "c"]
    bank.add(_skill("d", won=True))
    assert sorted(s.task for s in bank.skills["sokoban"]) == ["c", "d"]
    assert len(bank) == 2


def test_retrieval_relevance_then_recency_and_task_type():
    bank = SkillBank()
    bank.add(_skill("put a clean mug in the cabinet", won=True, task_type="clean"))
    bank.add(_skill("put a hot apple in the fridge", won=True, task_type="heat"))
    bank.add(_skill("put a clean plate on the table", won=True, task_type="clean"))
    bank.add(_skill("put a clean mug on the shelf", won=False, task_type="clean"))
    found = bank.retrieve("clean", "put a clean mug in the drawer", k=2)
    assert [s.task for s in found] == ["put a clean mug in the cabinet", "put a clean mug on the shelf"]
    assert bank.retrieve("cool", "anything") == []
    assert bank.context_for("cool", "anything") == ""
    text = bank.context_for("clean", "put a clean mug in the drawer", k=1)
    assert text.startswith("Skills learned") and "What worked" in text


def test_bank_round_trip_and_bad_file(tmp_path):
    bank = SkillBank(max_per_task_type=3)
    bank.add(_skill("a", won=True))
    bank.add(_skill("b", won=False, task_type="other"))
    path = bank.save(tmp_path / "bank.json")
    loaded = SkillBank.load(path)
    assert loaded == bank
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nope": 1}))
    with pytest.raises(ValueError, match="not a skill bank"):
        SkillBank.load(bad)
    with pytest.raises(FileNotFoundError):
        SkillBank.load(tmp_path / "missing.json")
    with pytest.raises(ValueError):
        SkillBank(max_per_task_type=0)
