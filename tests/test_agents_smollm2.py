"""End to end with the real SmolLM2-135M-Instruct (slow: loads and may cache the weights)."""

from __future__ import annotations

import pytest

from agentdistill.agents.backends.base import SamplingParams
from agentdistill.agents.backends.hf import HFBackend
from agentdistill.agents.models import load_model, smollm2_gguf_path
from agentdistill.agents.policies import LLMPolicy
from agentdistill.agents.rollout import rollout


@pytest.mark.slow
def test_smollm2_rolls_out_two_episodes():
    import torch

    torch.set_num_threads(1)
    smollm2_gguf_path()  # clear error if the package is missing
    model, tok = load_model("smollm2")
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    backend = HFBackend(model, tok)
    policy = LLMPolicy(backend, SamplingParams(max_new_tokens=24, temperature=0.7, seed=0))
    eps = rollout(policy, "agentdistill/Sokoban-v0", [0, 1], max_turns=2, progress=False)
    assert len(eps) == 2
    for ep in eps:
        assert ep.num_turns == 2
        for turn in ep.turns:
            assert 1 <= len(turn.response_ids) <= 24
            assert turn.response_text.strip()
            assert len(turn.response_logprobs) == len(turn.response_ids)
    # the sampled log-probs are the model's own: rescoring gives the same numbers
    t = eps[0].turns[0]
    rescored = backend.score([t.prompt_ids], [t.response_ids])[0].logprobs
    assert rescored == pytest.approx(t.response_logprobs, abs=2e-3)
