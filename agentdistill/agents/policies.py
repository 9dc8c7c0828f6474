"""Policies: what picks the next action for a batch of envs.

A policy maps a batch of :class:`ActRequest` (one per still-active env) to one
:class:`ActResult` each, in order. :class:`LLMPolicy` generates for the whole batch in
one backend call; :class:`ExpertPolicy` asks the env's oracle; :class:`RandomPolicy` is
the baseline. Non-LLM policies return empty ``response_ids`` (their turns carry no loss).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentdistill.agents.backends.base import Backend, SamplingParams
from agentdistill.agents.parsing import parse_action
from agentdistill.agents.prompts import build_messages, prompt_token_ids

Message = dict[str, str]


@dataclass
class ActRequest:
    """One env's decision point: what the policy may look at."""

    env_id: str
    task: str
    observation: str
    history: list[tuple[str | None, str]]
    admissible_actions: list[str]
    episode_id: str = ""
    turn_index: int = 0
    env: Any = None  # the gym env (wrapped); oracles use env.unwrapped
    hint: str | None = None  # privileged context (teachers); students leave it None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActResult:
    """The chosen action plus, for LLM policies, the prompt and the sampled tokens."""

    action: str | None
    format_valid: bool = True
    response_text: str = ""
    prompt_messages: list[Message] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    response_ids: list[int] = field(default_factory=list)
    response_logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None
    response_prefix: str = ""


@runtime_checkable
class Policy(Protocol):
    """Anything with ``act(requests) -> results`` (same length and order)."""

    def act(self, requests: list[ActRequest]) -> list[ActResult]: ...


class ExpertPolicy:
    """The env's own oracle (``env.unwrapped.expert_action()``); None when it has none."""

    name = "expert"

    def act(self, requests: list[ActRequest]) -> list[ActResult]:
        results = []
        for req in requests:
            if req.env is None:
                raise ValueError("ExpertPolicy needs ActRequest.env")
            action = req.env.unwrapped.expert_action()
            results.append(
                ActResult(
                    action=action, format_valid=action is not None, response_text=action or ""
                )
            )
        return results


class RandomPolicy:
    """Uniform over the admissible actions (else over ``vocabulary``), seeded.

    Each choice is seeded by ``(seed, episode_id, turn_index)``, so results do not depend
    on batch size or order. Envs with neither list get ``env.action_space.sample()``
    garbage, seeded the same way.
    """

    name = "random"

    def __init__(self, seed: int = 0, vocabulary: Sequence[str] | None = None):
        self.seed = int(seed)
        self.vocabulary = list(vocabulary or [])

    def _rng(self, req: ActRequest) -> random.Random:
        key = f"{self.seed}|{req.episode_id}|{req.turn_index}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))

    def act(self, requests: list[ActRequest]) -> list[ActResult]:
        results = []
        for req in requests:
            rng = self._rng(req)
            choices = list(req.admissible_actions) or self.vocabulary
            if choices:
                action = rng.choice(choices)
            elif req.env is not None:
                space = req.env.action_space
                space.seed(rng.randrange(2**31))
                action = space.sample()
            else:
                action = None
            results.append(
                ActResult(
                    action=action, format_valid=action is not None, response_text=action or ""
                )
            )
        return results


class LLMPolicy:
    """Prompt -> one batched backend call -> parsed actions.

    Messages come from :func:`~agentdistill.agents.prompts.build_messages` (with
    ``history_k`` steps of history and the request's ``hint``); the chat template is
    applied once per request. When ``sampling.seed`` is set, call ``i`` of this policy
    samples with seed ``sampling.seed + i`` (deterministic, not repeated across turns).

    ``response_prefix`` (e.g. ``"<action>"``) is forced at the start of the assistant turn:
    its tokens are appended to the prompt ids and the response continues it, so parsing
    reads ``prefix + response``. Small models that cannot follow the think/action format
    zero-shot (SmolLM2-135M answered in the format once in 192 turns) then answer with an
    action directly. Empty by default: the full ``<think>...</think><action>...</action>``
    format.
    """

    name = "llm"

    def __init__(
        self,
        backend: Backend,
        sampling: SamplingParams | None = None,
        history_k: int = 2,
        max_prompt_tokens: int | None = None,
        response_prefix: str = "",
    ):
        self.backend = backend
        self.sampling = sampling or SamplingParams()
        self.history_k = int(history_k)
        self.max_prompt_tokens = max_prompt_tokens
        self.response_prefix = response_prefix or ""
        self._prefix_ids = (
            list(self.tokenizer(self.response_prefix, add_special_tokens=False)["input_ids"])
            if self.response_prefix
            else []
        )
        self._calls = 0

    @property
    def tokenizer(self) -> Any:
        return self.backend.tokenizer

    def messages(self, req: ActRequest) -> list[Message]:
        return build_messages(
            req.env_id,
            req.task,
            req.observation,
            req.history,
            req.admissible_actions,
            hint=req.hint,
            history_k=self.history_k,
        )

    def _params(self) -> SamplingParams:
        if self.sampling.seed is None:
            return self.sampling
        params = SamplingParams(**vars(self.sampling))
        params.seed = self.sampling.seed + self._calls
        return params

    def act(self, requests: list[ActRequest]) -> list[ActResult]:
        if not requests:
            return []
        messages = [self.messages(r) for r in requests]
        prompts = [prompt_token_ids(self.tokenizer, m) + self._prefix_ids for m in messages]
        if self.max_prompt_tokens:
            # keep the end (current observation + generation prefix) of over-long prompts
            prompts = [p[-self.max_prompt_tokens :] for p in prompts]
        generations = self.backend.generate(prompts, self._params())
        self._calls += 1
        results = []
        for msgs, ids, gen in zip(messages, prompts, generations, strict=True):
            parsed = parse_action(self.response_prefix + gen.text)
            results.append(
                ActResult(
                    action=parsed.action,
                    format_valid=parsed.format_valid,
                    response_text=gen.text,
                    prompt_messages=msgs,
                    prompt_ids=ids,
                    response_ids=list(gen.token_ids),
                    response_logprobs=list(gen.logprobs),
                    finish_reason=gen.finish_reason,
                    response_prefix=self.response_prefix,
                )
            )
        return results
