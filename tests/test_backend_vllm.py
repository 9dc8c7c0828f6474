"""VLLMBackend. The engine tests need vLLM and a CUDA GPU and skip (with the reason) without
them; on CPU we check the install hint and the conversion of vLLM's output objects."""

from __future__ import annotations

import importlib.util
import math
import sys
from types import SimpleNamespace

import pytest

from agentdistill.agents.backends.base import SamplingParams
from agentdistill.agents.backends.vllm import VLLMBackend


def test_missing_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'agentdistill\[vllm\]'"):
        VLLMBackend("any-model")


class _FakeTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(i) for i in ids)


def _fake_backend(generate):
    """A VLLMBackend around a stand-in engine returning vLLM-shaped output objects
    (RequestOutput.outputs[0].token_ids/.logprobs/.finish_reason, .prompt_logprobs)."""
    backend = object.__new__(VLLMBackend)
    backend.tokenizer = _FakeTokenizer()
    backend._vllm = SimpleNamespace(SamplingParams=lambda **kw: kw)
    backend.llm = SimpleNamespace(generate=generate)
    return backend


def _lp(x, rank=1):
    return SimpleNamespace(logprob=x, rank=rank, decoded_token="t")


def test_generation_conversion_and_request():
    seen = {}

    def generate(inputs, sampling, use_tqdm):
        seen["inputs"], seen["sampling"] = inputs, sampling
        return [
            SimpleNamespace(
                outputs=[
                    SimpleNamespace(
                        token_ids=[5, 6],
                        logprobs=[{5: _lp(-0.5)}, {6: _lp(-1.5), 9: _lp(-0.1)}],
                        finish_reason="stop",
                    )
                ]
            ),
            SimpleNamespace(
                outputs=[
                    SimpleNamespace(
                        token_ids=[7], logprobs=[{7: _lp(-2.0)}], finish_reason="length"
                    )
                ]
            ),
        ]

    backend = _fake_backend(generate)
    gens = backend.generate([[1, 2], [3]], SamplingParams(max_new_tokens=4, seed=10))
    assert [g.token_ids for g in gens] == [[5, 6], [7]]
    assert [g.logprobs for g in gens] == [[-0.5, -1.5], [-2.0]]
    assert [g.finish_reason for g in gens] == ["stop", "length"]
    assert gens[0].text == "5 6"
    assert seen["inputs"] == [{"prompt_token_ids": [1, 2]}, {"prompt_token_ids": [3]}]
    assert [s["seed"] for s in seen["sampling"]] == [10, 11]
    assert seen["sampling"][0]["include_stop_str_in_output"] is True
    assert seen["sampling"][0]["logprobs"] == 0 and seen["sampling"][0]["top_k"] == -1


def test_score_conversion_with_topk():
    def generate(inputs, sampling, use_tqdm):
        assert sampling["prompt_logprobs"] == 2
        (inp,) = inputs
        assert inp["prompt_token_ids"] == [1, 2, 8, 9]
        return [
            SimpleNamespace(
                prompt_logprobs=[
                    None,
                    {2: _lp(-0.2)},
                    {8: _lp(-1.0, 2), 4: _lp(-0.5, 1)},
                    {9: _lp(-0.3, 1), 4: _lp(-2.0, 2)},
                ]
            )
        ]

    backend = _fake_backend(generate)
    sc, empty = backend.score([[1, 2], [1]], [[8, 9], []], top_k=2)
    assert sc.logprobs == [-1.0, -0.3]
    assert sc.topk_ids == [[4, 8], [9, 4]]
    assert sc.topk_logprobs == [[-0.5, -1.0], [-0.3, -2.0]]
    assert empty.logprobs == [] and empty.topk_ids == []


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM not installed (pip install 'agentdistill[vllm]')"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine"
    return None


@pytest.fixture(scope="module")
def engine():
    reason = _gpu_reason()
    if reason:
        pytest.skip(reason)
    from agentdistill.agents.models import load_tokenizer, smollm2_model_dir

    path = smollm2_model_dir()
    backend = VLLMBackend(
        str(path),
        tokenizer=load_tokenizer("smollm2"),
        dtype="float32",
        gpu_memory_utilization=0.3,
        max_model_len=2048,
    )
    yield backend
    backend.close()


@pytest.mark.gpu
@pytest.mark.slow
def test_vllm_generation_matches_hf_scores(engine):
    import torch

    from agentdistill.agents.backends.hf import HFBackend
    from agentdistill.agents.models import load_model

    tok = engine.tokenizer
    prompt = list(
        tok.apply_chat_template(
            [{"role": "user", "content": "What is the capital of France?"}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=False,
        )
    )
    (gen,) = engine.generate([prompt], SamplingParams(max_new_tokens=16, temperature=0.0, stop=()))
    assert gen.token_ids and len(gen.logprobs) == len(gen.token_ids)
    assert all(math.isfinite(x) and x <= 0 for x in gen.logprobs)
    (own,) = engine.score([prompt], [gen.token_ids], top_k=3)
    assert own.logprobs == pytest.approx(gen.logprobs, abs=1e-3)
    model, _ = load_model("smollm2", device="cuda")
    (hf,) = HFBackend(model, tok).score([prompt], [gen.token_ids])
    assert hf.logprobs == pytest.approx(own.logprobs, abs=1e-2)
    # weight sync: zeroing the LM head makes every next token uniform
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["lm_head.weight"] = torch.zeros_like(sd["lm_head.weight"])
    sd["model.embed_tokens.weight"] = torch.zeros_like(sd["model.embed_tokens.weight"])
    assert engine.sync_weights(sd) > 0
    (after,) = engine.score([prompt], [gen.token_ids])
    assert after.logprobs == pytest.approx([-math.log(len(tok))] * len(gen.token_ids), abs=1e-3)
    engine.sync_weights(model)
    (back,) = engine.score([prompt], [gen.token_ids])
    assert back.logprobs == pytest.approx(own.logprobs, abs=1e-3)
