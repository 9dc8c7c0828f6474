"""HFBackend: batched generation (shapes, stops, seeds, padding) and scoring consistency."""

from __future__ import annotations

import math

import pytest
import torch
from agents_support import get_tiny_lm

from agentdistill.agents.backends.base import SamplingParams
from agentdistill.agents.backends.hf import HFBackend, filter_logits

TEXTS = ["hello world, how are you today", "hi", "a b c d e f g h i j k"]


@pytest.fixture(scope="module")
def tiny_lm():
    return get_tiny_lm()


@pytest.fixture(scope="module")
def backend(tiny_lm):
    model, tok = tiny_lm
    return HFBackend(model, tok)


@pytest.fixture(scope="module")
def prompts(tiny_lm):
    _, tok = tiny_lm
    return [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]


def test_shapes_and_finish(backend, prompts):
    gens = backend.generate(
        prompts, SamplingParams(max_new_tokens=12, temperature=1.0, seed=1, stop=())
    )
    assert len(gens) == len(prompts)
    for g in gens:
        assert 1 <= len(g.token_ids) <= 12
        assert len(g.logprobs) == len(g.token_ids)
        assert all(lp <= 0.0 and math.isfinite(lp) for lp in g.logprobs)
        assert g.text == backend.tokenizer.decode(g.token_ids, skip_special_tokens=True)
        assert g.finish_reason in ("stop", "length")
        if g.finish_reason == "length":
            assert len(g.token_ids) == 12


def test_logprobs_match_forward_pass(backend, prompts, tiny_lm):
    model, _ = tiny_lm
    gens = backend.generate(
        prompts, SamplingParams(max_new_tokens=10, temperature=0.8, top_k=50, seed=3, stop=())
    )
    for prompt, g in zip(prompts, gens, strict=True):
        ids = torch.tensor([prompt + g.token_ids])
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        lp = torch.log_softmax(logits, -1)
        expected = [lp[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(g.token_ids)]
        assert g.logprobs == pytest.approx(expected, abs=1e-4)
    scores = backend.score(prompts, [g.token_ids for g in gens])
    for s, g in zip(scores, gens, strict=True):
        assert s.logprobs == pytest.approx(g.logprobs, abs=1e-4)


def test_greedy_matches_hf_generate_and_batching(backend, prompts, tiny_lm):
    model, tok = tiny_lm
    params = SamplingParams(max_new_tokens=8, temperature=0.0, stop=())
    batched = backend.generate(prompts, params)
    for prompt, g in zip(prompts, batched, strict=True):
        alone = backend.generate([prompt], params)[0]
        assert g.token_ids == alone.token_ids  # left padding does not change results
        assert g.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
        ref = model.generate(
            torch.tensor([prompt]), max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id
        )[0, len(prompt) :].tolist()
        assert g.token_ids == ref[: len(g.token_ids)]


def test_seeded_sampling_reproducible(backend, prompts):
    params = SamplingParams(max_new_tokens=10, temperature=1.0, seed=7, stop=())
    a = backend.generate(prompts, params)
    b = backend.generate(prompts, params)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    c = backend.generate(
        prompts, SamplingParams(max_new_tokens=10, temperature=1.0, seed=8, stop=())
    )
    assert [g.token_ids for g in a] != [g.token_ids for g in c]


def test_top_k_one_is_greedy(backend, prompts):
    greedy = backend.generate(prompts, SamplingParams(max_new_tokens=6, temperature=0.0, stop=()))
    top1 = backend.generate(
        prompts, SamplingParams(max_new_tokens=6, temperature=1.5, top_k=1, seed=0, stop=())
    )
    assert [g.token_ids for g in greedy] == [g.token_ids for g in top1]


def test_stop_string_trims_inclusive(backend, prompts):
    free = backend.generate(
        prompts[:1], SamplingParams(max_new_tokens=12, temperature=1.0, seed=5, stop=())
    )[0]
    assert len(free.token_ids) >= 6
    # use the decoded text of tokens 3..4 as the stop string: generation must end there
    tok = backend.tokenizer
    stop = tok.decode(free.token_ids[3:5])
    assert stop.strip()
    stopped = backend.generate(
        prompts[:1], SamplingParams(max_new_tokens=12, temperature=1.0, seed=5, stop=(stop,))
    )[0]
    assert stopped.finish_reason == "stop"
    assert stop in stopped.text
    assert stopped.token_ids == free.token_ids[: len(stopped.token_ids)]
    assert len(stopped.token_ids) <= 5
    assert stop not in tok.decode(stopped.token_ids[:-1])  # the last token completed it


def test_eos_stops_inclusive(backend, prompts):
    free = backend.generate(prompts[:2], SamplingParams(max_new_tokens=6, temperature=0.0, stop=()))
    fake_eos = free[0].token_ids[2]
    saved = backend.eos_ids
    backend.eos_ids = frozenset({fake_eos})
    try:
        out = backend.generate(
            prompts[:2], SamplingParams(max_new_tokens=6, temperature=0.0, stop=())
        )
    finally:
        backend.eos_ids = saved
    first = free[0].token_ids.index(fake_eos)
    assert out[0].token_ids == free[0].token_ids[: first + 1]
    assert out[0].finish_reason == "stop"
    # the other row keeps running after row 0 is dropped from the batch
    other = free[1].token_ids
    expected = other[: other.index(fake_eos) + 1] if fake_eos in other else other
    assert out[1].token_ids == expected


def test_filter_logits():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    k2 = filter_logits(logits, top_k=2)
    assert torch.isinf(k2[0, [0, 3]]).all() and torch.isfinite(k2[0, [1, 2]]).all()
    probs = torch.softmax(logits, -1)[0]  # ~[0.09, 0.67, 0.24, 0.03]
    p = filter_logits(logits, top_p=0.7)
    assert torch.isfinite(p[0, [1, 2]]).all() and torch.isinf(p[0, [0, 3]]).all()
    assert probs[1] < 0.7
    assert torch.isfinite(filter_logits(logits, top_p=0.1)[0, 1])  # always keeps the best


def test_score_topk_and_empty(backend, prompts):
    responses = [[11, 12, 13], [], [99]]
    scores = backend.score(prompts, responses, top_k=4)
    assert [len(s.logprobs) for s in scores] == [3, 0, 1]
    for s, r in zip(scores, responses, strict=True):
        assert len(s.topk_ids) == len(r) and len(s.topk_logprobs) == len(r)
        for lp, ids, lps in zip(s.logprobs, s.topk_ids, s.topk_logprobs, strict=True):
            assert len(ids) == 4 and lps == sorted(lps, reverse=True)
            assert lp <= lps[0] + 1e-6
    # batched scoring equals one-at-a-time
    single = backend.score(prompts[:1], responses[:1])[0]
    assert single.logprobs == pytest.approx(scores[0].logprobs, abs=1e-4)


def test_chunking_by_max_batch_size(tiny_lm, prompts):
    model, tok = tiny_lm
    small = HFBackend(model, tok, max_batch_size=1)
    params = SamplingParams(max_new_tokens=5, temperature=0.0, stop=())
    assert [g.token_ids for g in small.generate(prompts, params)] == [
        g.token_ids for g in HFBackend(model, tok).generate(prompts, params)
    ]
    assert small.generate([], params) == []


def test_peft_wrapped_model(tiny_lm, prompts):
    peft = pytest.importorskip("peft")
    model, tok = tiny_lm
    params = SamplingParams(max_new_tokens=5, temperature=0.0, stop=())
    ref = HFBackend(model, tok).generate(prompts, params)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    try:
        backend = HFBackend(wrapped, tok)
        out = backend.generate(prompts, params)  # LoRA B starts at zero: same model
        assert [g.token_ids for g in out] == [g.token_ids for g in ref]
        scores = backend.score(prompts, [g.token_ids for g in out])
        assert scores[0].logprobs == pytest.approx(out[0].logprobs, abs=1e-4)
    finally:
        wrapped.unload()  # give the shared fixture model back unchanged


# --- shared-prefix KV and the buffered generation cache ------------------------------------------------
def _sokoban_prompts(tok) -> list[list[int]]:
    """Chat-rendered prompts sharing a long system prompt; rows 0 and 2 are identical."""
    from agentdistill.agents.prompts import build_messages, prompt_token_ids

    observations = ["# # #\n# @ #\n# $ . #", "# # # #\n# _ @ #\n# # # #", "# # #\n# @ #\n# $ . #", "@"]
    return [
        prompt_token_ids(
            tok, build_messages("agentdistill/Sokoban-v0", "push", o, [], ["up", "down"])
        )
        for o in observations
    ]


def test_plan_prefix_splits_shared_and_distinct():
    from agentdistill.agents.backends.hf import common_prefix_len, plan_prefix

    prompts = [[1, 2, 3, 4], [1, 2, 3, 5, 6], [1, 2, 3, 4], [1, 2, 3]]
    assert common_prefix_len(prompts) == 3
    plan = plan_prefix(prompts)
    assert plan.shared == [1, 2]  # keeps >= 1 token per remainder (the shortest prompt)
    assert plan.unique == [[3, 4], [3, 5, 6], [3]]
    assert plan.rows == [0, 1, 0, 2]
    assert all(plan.shared + plan.unique[r] == p for p, r in zip(prompts, plan.rows, strict=True))
    assert plan.encoded_tokens == 2 + 6


def test_shared_prefix_generation_equals_plain(tiny_lm):
    model, tok = tiny_lm
    prompts = _sokoban_prompts(tok)
    shared, plain = HFBackend(model, tok), HFBackend(model, tok, share_prefix=False)
    assert shared._plan(prompts) is not None and plain._plan(prompts) is None
    for params in (
        SamplingParams(max_new_tokens=10, temperature=0.0, stop=()),
        SamplingParams(max_new_tokens=10, temperature=1.0, seed=4, stop=()),
    ):
        a, b = shared.generate(prompts, params), plain.generate(prompts, params)
        assert [g.token_ids for g in a] == [g.token_ids for g in b]
        for ga, gb in zip(a, b, strict=True):
            assert ga.logprobs == pytest.approx(gb.logprobs, abs=1e-4)
            assert ga.finish_reason == gb.finish_reason


def test_shared_prefix_scoring_equals_plain_forward(tiny_lm):
    model, tok = tiny_lm
    prompts = _sokoban_prompts(tok)
    responses = [[11, 12, 13], [5], [], [7, 8, 9, 10, 11, 12]]
    shared = HFBackend(model, tok).score(prompts, responses, top_k=3)
    plain = HFBackend(model, tok, share_prefix=False).score(prompts, responses, top_k=3)
    for s, p, prompt, r in zip(shared, plain, prompts, responses, strict=True):
        assert len(s.logprobs) == len(r)
        assert s.logprobs == pytest.approx(p.logprobs, abs=1e-4)
        assert s.topk_ids == p.topk_ids
        if r:  # and both equal one unpadded forward
            with torch.no_grad():
                lp = torch.log_softmax(model(torch.tensor([prompt + r])).logits[0], -1)
            expected = [lp[len(prompt) - 1 + t, y].item() for t, y in enumerate(r)]
            assert s.logprobs == pytest.approx(expected, abs=1e-4)


def test_buffered_generation_cache_equals_dynamic_cache(tiny_lm, monkeypatch):
    """Preallocated KV buffers (with rows dropped as they stop) change no number."""
    from transformers import DynamicCache

    from agentdistill.agents.backends import hf

    model, tok = tiny_lm
    prompts = _sokoban_prompts(tok)[:2] + [[5, 6, 7]]
    params = SamplingParams(max_new_tokens=9, temperature=1.0, seed=2, stop=())
    backend = HFBackend(model, tok)
    free = backend.generate(prompts, params)
    backend.eos_ids = frozenset({free[0].token_ids[3]})  # row 0 stops early: rows are dropped
    buffered = backend.generate(prompts, params)
    assert len(buffered[0].token_ids) == 4
    cache = hf.generation_cache(4)
    assert cache.layer_class_to_replicate is not DynamicCache().layer_class_to_replicate
    monkeypatch.setattr(hf, "generation_cache", lambda extra=0: DynamicCache())
    plain = backend.generate(prompts, params)
    assert [g.token_ids for g in buffered] == [g.token_ids for g in plain]
    assert [g.logprobs for g in buffered] == [g.logprobs for g in plain]


# --- length buckets -------------------------------------------------------------------------------------
def test_plan_length_buckets_groups_by_length():
    from agentdistill.agents.backends.hf import plan_length_buckets

    # one long prompt among short ones: it gets its own group once the padding saved
    # (7 x 900 tokens) outweighs one more group's overhead
    lengths = [300, 280, 310, 1200, 290, 305, 300, 295]
    assert plan_length_buckets(lengths, overhead=600) == [[0, 1, 2, 4, 5, 6, 7], [3]]
    assert plan_length_buckets(lengths, overhead=10_000) == [list(range(8))]
    assert plan_length_buckets([300] * 5, overhead=0) == [list(range(5))]
    assert plan_length_buckets([7], overhead=0) == [[0]]
    assert plan_length_buckets([], overhead=0) == [[]]
    # three length classes and a small overhead: three groups, every row once, shortest first
    groups = plan_length_buckets([10, 500, 11, 1000, 502, 9], overhead=5)
    assert groups == [[0, 2, 5], [1, 4], [3]]


def test_length_buckets_greedy_equals_one_padded_batch(tiny_lm):
    model, tok = tiny_lm
    short = _sokoban_prompts(tok)
    long_prompt = short[1] + tok("word " * 400, add_special_tokens=False)["input_ids"]
    prompts = [short[0], long_prompt, short[2], short[3]]
    bucketed, padded = HFBackend(model, tok), HFBackend(model, tok, length_buckets=False)
    greedy = SamplingParams(max_new_tokens=8, temperature=0.0, stop=())
    assert len(bucketed._buckets(prompts, greedy)) == 2  # the long prompt is split off
    a, b = bucketed.generate(prompts, greedy), padded.generate(prompts, greedy)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    for ga, gb in zip(a, b, strict=True):
        assert ga.logprobs == pytest.approx(gb.logprobs, abs=1e-4)
    # sampled batches stay one batch, so a seed gives the same samples as before
    sampled = SamplingParams(max_new_tokens=8, temperature=1.0, seed=3, stop=())
    assert bucketed._buckets(prompts, sampled) == [[0, 1, 2, 3]]
    assert [g.token_ids for g in bucketed.generate(prompts, sampled)] == [
        g.token_ids for g in padded.generate(prompts, sampled)
    ]
