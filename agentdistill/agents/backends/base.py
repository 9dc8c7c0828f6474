"""The interface every generation backend implements (transformers, vLLM, OpenAI-compatible).

Prompts travel as token ids: the policy applies the chat template once with the student's
tokenizer, so every backend samples from, and scores, exactly the same tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SamplingParams:
    """Sampling settings shared by all backends."""

    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ("</action>",)
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0 (0 means greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


@dataclass
class Generation:
    """One sampled response: its token ids, their sampling log-probs and decoded text."""

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str = "stop"  # "stop" (eos or stop string) or "length"


@dataclass
class TokenScores:
    """Log-probs a model assigns to given response tokens (teacher scoring)."""

    logprobs: list[float]
    topk_ids: list[list[int]] | None = None
    topk_logprobs: list[list[float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def empty_scores(top_k: int = 0) -> TokenScores:
    """Scores of an empty response (with empty top-k lists when ``top_k`` is asked)."""
    return TokenScores(
        logprobs=[], topk_ids=[] if top_k else None, topk_logprobs=[] if top_k else None
    )


def check_prompts(prompts: list[list[int]], responses: list[list[int]] | None = None) -> list[int]:
    """Validate a batch; return the rows that need work (non-empty response, or all rows).

    Every prompt that is used must hold at least one token; ``responses`` (scoring) must
    match ``prompts`` in length.
    """
    if responses is None:
        rows = list(range(len(prompts)))
    else:
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        rows = [i for i, r in enumerate(responses) if r]
    if any(len(prompts[i]) == 0 for i in rows):
        raise ValueError("empty prompt: every prompt needs at least one token")
    return rows


class Backend(ABC):
    """Generates from and scores token-id prompts.

    ``tokenizer`` is a Hugging Face tokenizer matching the served model.
    """

    tokenizer: Any

    @abstractmethod
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Generation]:
        """Sample one response per prompt (a batch)."""

    @abstractmethod
    def score(
        self, prompts: list[list[int]], responses: list[list[int]], top_k: int = 0
    ) -> list[TokenScores]:
        """Log-probs of ``responses[i]`` given ``prompts[i]``, one per response token."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engines, servers or threads held by the backend."""
