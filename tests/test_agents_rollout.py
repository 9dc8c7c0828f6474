"""rollout(): lockstep batching, groups, TCOD options, expert hints, JSONL, Ctrl-C."""

from __future__ import annotations

import pytest
from agents_support import TOY_ID, get_tiny_lm

from agentdistill.agents.backends.base import SamplingParams
from agentdistill.agents.backends.hf import HFBackend
from agentdistill.agents.policies import ActResult, ExpertPolicy, LLMPolicy, RandomPolicy
from agentdistill.agents.rollout import rollout
from agentdistill.agents.trajectory import load_jsonl, save_jsonl, summarize

SOKOBAN = "agentdistill/Sokoban-v0"


class CountingPolicy:
    """Wraps a policy; records the batch size of every call."""

    def __init__(self, inner, interrupt_on_call=None):
        self.inner = inner
        self.batches = []
        self.interrupt_on_call = interrupt_on_call

    def act(self, requests):
        if self.interrupt_on_call is not None and len(self.batches) == self.interrupt_on_call:
            raise KeyboardInterrupt
        self.batches.append(len(requests))
        return self.inner.act(requests)


def test_expert_wins_everything_in_lockstep():
    pol = CountingPolicy(ExpertPolicy())
    eps = rollout(pol, TOY_ID, [0, 1, 2, 3], progress=False)
    assert [e.seed for e in eps] == [0, 1, 2, 3]
    assert all(e.won and e.score == 1.0 and not e.truncated for e in eps)
    # one call per turn over all still-active envs: the first call sees all 4
    assert pol.batches[0] == 4
    assert sum(pol.batches) == sum(e.num_turns for e in eps)
    assert sorted(pol.batches, reverse=True) == pol.batches
    for e in eps:
        assert e.turns[-1].done and not any(t.done for t in e.turns[:-1])
        assert [t.turn_index for t in e.turns] == list(range(e.num_turns))
        assert e.episode_return == pytest.approx(sum(t.reward for t in e.turns))
        assert all(t.response_ids == [] and not t.trainable for t in e.turns)
        assert e.metadata["task_type"] in ("up", "down")


def test_sokoban_expert_and_random():
    eps = rollout(ExpertPolicy(), SOKOBAN, list(range(6)), progress=False)
    assert summarize(eps)["success_rate"] == 1.0
    a = rollout(RandomPolicy(seed=1), SOKOBAN, list(range(6)), progress=False)
    b = rollout(RandomPolicy(seed=1), SOKOBAN, list(range(6)), progress=False, batch_size=2)
    assert [e.to_dict() for e in a] == [e.to_dict() for e in b]  # batch layout independent
    assert all(t.action in ("up", "down", "left", "right") for e in a for t in e.turns)
    assert all(e.num_turns <= 15 for e in a)


def test_groups_ids_and_batch_refill():
    pol = CountingPolicy(RandomPolicy(seed=0))
    eps = rollout(pol, TOY_ID, [5, 9, 5], group_size=3, batch_size=4, progress=False)
    assert len(eps) == 9
    ids = [e.episode_id for e in eps]
    assert len(set(ids)) == 9
    assert ids[:3] == ["Toy-v0-s5-g0", "Toy-v0-s5-g1", "Toy-v0-s5-g2"]
    assert ids[6] == "Toy-v0-s5-g0-r1"
    assert [e.group_id for e in eps] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len({e.task_id for e in eps[:3]}) == 1
    assert max(pol.batches) == 4
    again = rollout(RandomPolicy(seed=0), TOY_ID, [5, 9, 5], group_size=3, progress=False)
    assert [e.episode_id for e in again] == ids


def test_max_turns_and_max_student_turns():
    # "stop"-free random walk: horizons cut episodes
    class Dec:
        def act(self, requests):
            return [ActResult(action="dec") for _ in requests]

    eps = rollout(Dec(), TOY_ID, [0], max_turns=2, progress=False)  # seed 0 target > 0
    assert eps[0].num_turns == 2 and eps[0].truncated and not eps[0].won
    eps = rollout(Dec(), TOY_ID, [0], max_student_turns=1, progress=False)
    assert eps[0].num_turns == 1 and eps[0].truncated and eps[0].turns[0].done


def test_replay_expert_turns_b2f():
    full = rollout(ExpertPolicy(), SOKOBAN, [3], progress=False, record_expert=True)[0]
    assert full.num_turns >= 2
    eps = rollout(
        RandomPolicy(seed=0),
        SOKOBAN,
        [3, 4],
        replay_expert_turns=lambda s: 1 if s == 3 else 0,
        max_student_turns=1,
        progress=False,
    )
    first, second = eps
    assert [t.is_replay for t in first.turns] == [True, False]
    assert first.turns[0].action == full.turns[0].action
    assert first.turns[0].response_ids == [] and not first.turns[0].trainable
    assert len(first.student_turns) == 1 and first.truncated
    assert [t.is_replay for t in second.turns] == [False]
    # replaying the whole plan solves the level without a student turn
    solved = rollout(RandomPolicy(), SOKOBAN, [3], replay_expert_turns=99, progress=False)[0]
    assert solved.won and all(t.is_replay for t in solved.turns)
    assert solved.num_turns == full.num_turns


def test_record_expert_before_action():
    eps = rollout(
        RandomPolicy(seed=2), SOKOBAN, [1], record_expert=True, max_turns=4, progress=False
    )
    replay = rollout(ExpertPolicy(), SOKOBAN, [1], progress=False)[0]
    first = eps[0].turns[0]
    assert first.info["expert_action"] == replay.turns[0].action
    assert first.info["expert_plan"] == [t.action for t in replay.turns]
    assert all("expert_action" in t.info for t in eps[0].turns)


class HintCheck:
    def act(self, requests):
        for r in requests:
            assert r.info["expert_action"] == r.env.unwrapped.expert_action()
        return [ActResult(action=r.info["expert_action"]) for r in requests]


def test_expert_hint_reaches_policy():
    eps = rollout(HintCheck(), TOY_ID, [0, 1], record_expert=True, progress=False)
    assert all(e.won for e in eps)


def test_keyboard_interrupt_keeps_finished():
    seen = []
    pol = CountingPolicy(ExpertPolicy(), interrupt_on_call=2)
    # seed with target 1 finishes on the first call; others need more turns
    eps = rollout(pol, TOY_ID, list(range(6)), progress=False, on_episode=seen.append)
    assert 0 < len(eps) < 6
    assert {e.episode_id for e in eps} == {e.episode_id for e in seen}
    assert [e.seed for e in eps] == sorted(e.seed for e in eps)
    assert all(e.won for e in eps)


def test_llm_rollout_tiny_model_end_to_end(tmp_path):
    model, tok = get_tiny_lm()
    policy = LLMPolicy(HFBackend(model, tok), SamplingParams(max_new_tokens=8, seed=0), history_k=2)
    pol = CountingPolicy(policy)
    eps = rollout(pol, SOKOBAN, [0, 1], group_size=2, max_turns=3, progress=False)
    assert len(eps) == 4 and pol.batches[0] == 4
    for e in eps:
        assert e.num_turns == 3 and e.truncated
        for t in e.turns:
            assert t.trainable
            assert 1 <= len(t.response_ids) <= 8
            assert len(t.response_logprobs) == len(t.response_ids)
            assert t.prompt_messages[0]["role"] == "system"
            assert tok.decode(t.prompt_ids).endswith("<|im_start|>assistant\n")
            assert t.response_text == tok.decode(t.response_ids, skip_special_tokens=True)
            if t.action is None:
                assert not t.action_valid
    # later turns show the earlier actions in their prompt history
    second_prompt = eps[0].turns[1].prompt_messages[1]["content"]
    assert "Step 1 action" in second_prompt
    # JSONL round trip is exact
    path = save_jsonl(eps, tmp_path / "eps.jsonl")
    back = load_jsonl(path)
    assert [e.to_dict() for e in back] == [e.to_dict() for e in eps]
    assert back[0].turns[0].response_logprobs == eps[0].turns[0].response_logprobs


def test_bad_arguments():
    with pytest.raises(ValueError):
        rollout(ExpertPolicy(), TOY_ID, [0], group_size=0, progress=False)
    with pytest.raises(ValueError):
        rollout(ExpertPolicy(), TOY_ID, [0], max_student_turns=0, progress=False)
    assert rollout(ExpertPolicy(), TOY_ID, [], progress=False) == []


class _FixedTextBackend:
    """Answers every prompt with the same text; records the prompts."""

    def __init__(self, tokenizer, text):
        self.tokenizer = tokenizer
        self.text = text
        self.prompts = []

    def generate(self, prompts, params):
        from agentdistill.agents.backends.base import Generation

        self.prompts.extend(prompts)
        ids = self.tokenizer(self.text, add_special_tokens=False)["input_ids"]
        return [Generation(token_ids=list(ids), logprobs=[-1.0] * len(ids), text=self.text)
                for _ in prompts]


def test_response_prefix_is_prompted_parsed_and_recorded(tmp_path):
    _, tok = get_tiny_lm()
    backend = _FixedTextBackend(tok, "up</action>")
    prefix_ids = tok("<action>", add_special_tokens=False)["input_ids"]
    policy = LLMPolicy(backend, SamplingParams(max_new_tokens=8), response_prefix="<action>")
    eps = rollout(policy, SOKOBAN, [3], max_turns=2, progress=False)
    turn = eps[0].turns[0]
    assert turn.prompt_ids[-len(prefix_ids):] == prefix_ids
    assert tok.decode(turn.prompt_ids).endswith("<|im_start|>assistant\n<action>")
    assert turn.action == "up" and turn.format_valid and turn.action_valid
    assert turn.response_prefix == "<action>"
    back = load_jsonl(save_jsonl(eps, tmp_path / "p.jsonl"))
    assert back[0].turns[0].response_prefix == "<action>"
    # without the prefix the same text has no opening tag: not a valid answer
    plain = LLMPolicy(backend, SamplingParams(max_new_tokens=8))
    eps = rollout(plain, SOKOBAN, [3], max_turns=1, progress=False)
    assert eps[0].turns[0].action is None and not eps[0].turns[0].action_valid
