"""Generation backends (transformers here; vLLM and OpenAI-compatible servers elsewhere)."""

from agentdistill.agents.backends.base import Backend, Generation, SamplingParams, TokenScores

__all__ = ["Backend", "Generation", "HFBackend", "SamplingParams", "TokenScores"]


def __getattr__(name: str):
    # HFBackend imports torch; load it only when asked for.
    if name == "HFBackend":
        from agentdistill.agents.backends.hf import HFBackend

        return HFBackend
    raise AttributeError(name)
