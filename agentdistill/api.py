"""The small top-level API: ``from agentdistill import rollout, evaluate, LLMPolicy``.

* :func:`make_policy` builds a policy from a name: ``"expert"``, ``"random"``, a model
  (``"smollm2"``, a shipped trained student such as ``"smollm2-sokoban"``, an HF id, a
  model directory, a ``.gguf`` file) or an OpenAI-compatible
  server (``"openai:http://host:port/v1"`` with ``model=`` the served name).
* :func:`evaluate` rolls a policy out on seeded tasks and returns the episodes and the
  summary (success rate, mean score, mean turns, invalid-action rate).
* :class:`AnswerFormatPolicy` renders the actions of a policy that builds no prompt
  (expert, random) through a student's prompts and answer format, so their episodes carry
  prompt and response tokens like an LLM's (SFT data; one schema per episode file).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentdistill.agents.policies import ActRequest, ActResult, LLMPolicy, Policy
from agentdistill.agents.trajectory import Episode

#: Forced answer start for SmolLM2-135M: zero-shot it answered in the think/action format
#: once in 192 Sokoban turns; with "<action>" prefilled most answers parse.
SMALL_MODEL_PREFIX = "<action>"
OPENAI_PREFIX = "openai:"


class _TokenizerOnly:
    """A backend stand-in that only carries a tokenizer (prompt rendering, no generation)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def generate(self, prompts: list[list[int]], params: Any) -> list[Any]:
        raise RuntimeError("this policy renders prompts only; it cannot generate")


@functools.lru_cache(maxsize=4)
def _cached_tokenizer(name: str) -> Any:
    from agentdistill.agents.models import load_tokenizer

    return load_tokenizer(name)


def prompt_renderer(tokenizer: Any, history_k: int = 2, response_prefix: str = "") -> LLMPolicy:
    """An :class:`LLMPolicy` that renders prompts with ``tokenizer`` but never generates."""
    if isinstance(tokenizer, str):
        tokenizer = _cached_tokenizer(tokenizer)
    return LLMPolicy(_TokenizerOnly(tokenizer), history_k=history_k,  # type: ignore[arg-type]
                     response_prefix=response_prefix)


class AnswerFormatPolicy:
    """``inner`` picks the action; the turn is recorded as the ``student`` would have seen
    and answered it: its prompt (messages and ids, response prefix) and the action in the
    answer format as response tokens, log-probs 0 (not sampled from a model).

    Results that already carry response tokens are passed through unchanged.
    """

    def __init__(self, inner: Policy, student: LLMPolicy):
        self.inner = inner
        self.student = student
        self.name = str(getattr(inner, "name", type(inner).__name__))

    def act(self, requests: list[ActRequest]) -> list[ActResult]:
        from agentdistill.agents.expert_data import expert_answer, student_prompt

        tok, prefix = self.student.tokenizer, self.student.response_prefix
        out = []
        for req, res in zip(requests, self.inner.act(requests), strict=True):
            if res.response_ids:
                out.append(res)
                continue
            messages, ids = student_prompt(self.student, req)
            text, response = "", []
            if res.action is not None:
                text = expert_answer(str(res.action), prefix)
                response = list(tok(text, add_special_tokens=False)["input_ids"])
            out.append(ActResult(
                action=res.action, format_valid=res.action is not None, response_text=text,
                prompt_messages=messages, prompt_ids=ids, response_ids=response,
                response_logprobs=[0.0] * len(response), finish_reason="stop",
                response_prefix=prefix,
            ))
        return out


def policy_settings(
    policy: str, *, history_k: int | None = None, dtype: str | None = None,
    response_prefix: str | None = None, max_new_tokens: int | None = None,
) -> tuple[int, str, str | None, int | None]:
    """``(history_k, dtype, response_prefix, max_new_tokens)`` with those left None filled
    in: by a shipped trained student's ``policy.json`` (the settings its number was measured
    with), else history 2 and float32; prefix and token budget may stay None
    (:func:`make_policy` then picks them per model)."""
    from agentdistill.agents.models import named_adapter

    shipped = named_adapter(policy)
    defaults = shipped[1].get("defaults", {}) if shipped else {}
    return (
        defaults.get("history_k", 2) if history_k is None else history_k,
        defaults.get("dtype", "float32") if dtype is None else dtype,
        defaults.get("response_prefix") if response_prefix is None else response_prefix,
        defaults.get("max_new_tokens") if max_new_tokens is None else max_new_tokens,
    )


def make_policy(
    policy: str | Policy,
    *,
    seed: int = 0,
    model: str | None = None,
    tokenizer: Any = None,
    batch_size: int = 8,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int | None = None,
    history_k: int | None = None,
    device: str = "auto",
    dtype: str | None = None,
    response_prefix: str | None = None,
) -> Policy:
    """A policy from its name (see module docstring); a Policy object is returned as is.

    ``tokenizer`` (a name or a tokenizer object): for ``expert`` / ``random``, render their
    turns through that tokenizer's prompts (:class:`AnswerFormatPolicy`); for
    ``openai:URL``, the served model's tokenizer (default: ``model``). ``response_prefix``
    None picks ``"<action>"`` for SmolLM2, none otherwise; ``max_new_tokens`` None: 16 after
    a prefix, else 64; ``history_k`` None: 2; ``dtype`` None: float32. A shipped trained
    student (``"smollm2-sokoban"``) fills the settings left None with the ones it was
    measured with (its ``policy.json``). Raises ValueError (bad settings) or
    ModelLoadError (no such model).
    """
    from agentdistill.agents.backends.base import SamplingParams
    from agentdistill.agents.policies import ExpertPolicy, RandomPolicy

    if not isinstance(policy, str):
        return policy
    name = policy
    history_k, dtype, response_prefix, max_new_tokens = policy_settings(
        name, history_k=history_k, dtype=dtype, response_prefix=response_prefix,
        max_new_tokens=max_new_tokens)
    if name in ("expert", "random"):
        inner: Policy = ExpertPolicy() if name == "expert" else RandomPolicy(seed=seed)
        if tokenizer is None:
            return inner
        tok_name = tokenizer if isinstance(tokenizer, str) else ""
        prefix = response_prefix
        if prefix is None:
            prefix = SMALL_MODEL_PREFIX if tok_name.lower().startswith("smollm2") else ""
        return AnswerFormatPolicy(inner, prompt_renderer(tokenizer, history_k, prefix))
    served = name.startswith(OPENAI_PREFIX)
    label = (model or "") if served else name
    if response_prefix is None:
        response_prefix = SMALL_MODEL_PREFIX if label.lower().startswith("smollm2") else ""
    if max_new_tokens is None:  # an answer after a forced "<action>" is a few tokens long
        max_new_tokens = 16 if response_prefix else 64
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature,
                              top_p=top_p, seed=seed)
    if served:
        from agentdistill.agents.backends.openai import OpenAIBackend

        url = name[len(OPENAI_PREFIX):]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{name!r}: give the server as openai:http://host:port/v1")
        if not model:
            raise ValueError(f"{name!r} needs the served model's name (model=..., --model)")
        tok = tokenizer if tokenizer is not None else model
        if isinstance(tok, str):
            tok = _cached_tokenizer(tok)
        backend: Any = OpenAIBackend(url, model, tok, max_concurrency=batch_size)
    else:
        from agentdistill.agents.backends.hf import HFBackend
        from agentdistill.agents.models import load_model

        hf_model, tok = load_model(name, dtype=dtype, device=device)
        backend = HFBackend(hf_model, tok, max_batch_size=batch_size)
    return LLMPolicy(backend, sampling, history_k=history_k, response_prefix=response_prefix)


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the summary numbers and the episodes (seed order).

    ``result["success_rate"]`` reads the summary; ``by_task_type`` has one summary per
    ``metadata["task_type"]`` when the env reports several. Summaries carry ``tasks``,
    ``ci95`` (95% Wilson interval of the success rate) and, with ``samples > 1``,
    ``pass@k`` (see :mod:`agentdistill.evaluation_protocol`).
    """

    summary: dict[str, float]
    episodes: list[Episode]
    by_task_type: dict[str, dict[str, float]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.summary[key]


def evaluate(
    policy: str | Policy,
    env_id: str,
    episodes: int = 16,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    split: str = "test",
    options: Mapping[str, Any] | None = None,
    max_turns: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
    tasks: str | Sequence[Any] | None = None,
    samples: int = 1,
    env_kwargs: Mapping[str, Any] | None = None,
    **policy_kwargs: Any,
) -> Evaluation:
    """Play ``policy`` (a Policy or a name for :func:`make_policy`) on ``episodes`` seeded
    tasks (``seed, seed+1, ...``, or exactly ``seeds``) of ``split``; full horizon unless
    ``max_turns``. ``tasks="all"`` plays every task of the split once instead, a path or a
    list of :class:`~agentdistill.evaluation_protocol.Task` (or their dicts) exactly
    those; each task ``samples`` times. Greedy unless ``temperature`` is given;
    ``policy_kwargs`` go to :func:`make_policy`."""
    from agentdistill import evaluation_protocol as protocol

    policy_kwargs.setdefault("temperature", 0.0)
    agent = make_policy(policy, seed=seed, batch_size=batch_size, **policy_kwargs)
    opts = {"split": split, **dict(options or {})}
    if tasks == "all":
        task_list = protocol.all_tasks(env_id, split, env_kwargs)
    elif isinstance(tasks, str) or hasattr(tasks, "__fspath__"):
        task_list = protocol.load_tasks(tasks)  # type: ignore[arg-type]
    elif tasks is not None:
        task_list = [t if isinstance(t, protocol.Task) else protocol.Task.from_dict(t, i)
                     for i, t in enumerate(tasks)]
    else:
        seed_list = list(seeds) if seeds is not None else list(range(seed, seed + int(episodes)))
        task_list = [protocol.Task(f"seed-{s}", s, opts) for s in seed_list]
    done = protocol.play(agent, env_id, task_list, samples=samples, max_turns=max_turns,
                         env_kwargs=env_kwargs, batch_size=batch_size, progress=progress)
    rows = protocol.protocol_summary(done, samples)
    overall = rows.pop("all")
    return Evaluation(overall, done, rows)
