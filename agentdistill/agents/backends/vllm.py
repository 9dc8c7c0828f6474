"""In-process vLLM engine backend (``vllm.LLM``) for rollout and teacher scoring.

UNVERIFIED: written against vLLM's documented Python API (``LLM.generate`` with
``TokensPrompt`` and ``SamplingParams(logprobs=0, prompt_logprobs=k)``, V1 engine) but not
yet run on a GPU here; tests skip without vLLM and CUDA. Treat figures and behaviour as
unconfirmed until ``tests/test_backend_vllm.py`` has passed on a GPU machine.

Conventions match the HF backend: ``token_ids`` keep the token that completed a stop
string (``include_stop_str_in_output=True``) and the EOS token (vLLM keeps it in the
output ids); ``logprobs`` are raw model log-probs (vLLM V1's default ``logprobs_mode`` is
``raw_logprobs``: before temperature/top-k/top-p); prefix caching is on, so the shared
system prompt and history of a multi-turn episode are computed once.

Weight sync (:meth:`VLLMBackend.sync_weights`): the trainer's ``state_dict`` (HF names)
goes through the engine model's own ``load_weights`` (which maps HF names to vLLM's fused
layers), then the prefix cache is reset (cached KV was computed with the old weights).
The model is reached in-process when the engine runs in this process; we set
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` before building the engine for that (pass
``in_process=False`` to keep vLLM's engine process, then weights travel through
``LLM.collective_rpc``, a copy per sync).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from agentdistill.agents.backends.base import (
    Backend,
    Generation,
    SamplingParams,
    TokenScores,
    check_prompts,
    empty_scores,
)

INSTALL_HINT = "pip install 'agentdistill[vllm]' (needs a CUDA GPU)"


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(f"VLLMBackend needs vLLM: {INSTALL_HINT}") from exc
    return vllm


def _load_weights_on_worker(worker: Any, weights: list[tuple[str, Any]]) -> int:
    """Runs inside each vLLM worker (``collective_rpc``): load HF-named tensors."""
    model = worker.model_runner.model
    loaded = model.load_weights(weights=weights)
    return len(loaded) if loaded is not None else len(weights)


def _logprob_value(entry: Any) -> float:
    """vLLM's ``Logprob`` objects carry ``.logprob``; plain floats pass through."""
    return float(getattr(entry, "logprob", entry))


class VLLMBackend(Backend):
    """Generation and scoring with an in-process ``vllm.LLM`` (see module docstring).

    Args:
        model: HF id or local path served by vLLM.
        tokenizer: matching HF tokenizer (defaults to the engine's own).
        dtype: engine dtype (``"bfloat16"`` on GPU).
        gpu_memory_utilization: fraction of GPU memory vLLM may take (leave room for the
            trainer when both share a GPU).
        in_process: run the engine core in this process so ``sync_weights`` can reach the
            model directly.
        **llm_kwargs: passed to ``vllm.LLM`` (``tensor_parallel_size``, ``max_model_len``...).
    """

    def __init__(
        self,
        model: str,
        tokenizer: Any = None,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.5,
        enable_prefix_caching: bool = True,
        in_process: bool = True,
        seed: int = 0,
        **llm_kwargs: Any,
    ):
        if in_process:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vllm = _import_vllm()
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=enable_prefix_caching,
            seed=seed,
            **llm_kwargs,
        )
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()

    # --- generation ---------------------------------------------------------------------
    def _sampling(self, params: SamplingParams, seed: int | None) -> Any:
        return self._vllm.SamplingParams(
            n=1,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,
            stop=[s for s in params.stop if s] or None,
            include_stop_str_in_output=True,
            logprobs=0,
            seed=seed,
        )

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Generation]:
        if not prompts:
            return []
        check_prompts(prompts)
        sampling = [
            self._sampling(params, None if params.seed is None else int(params.seed) + i)
            for i in range(len(prompts))
        ]
        inputs = [{"prompt_token_ids": list(p)} for p in prompts]
        outputs = self.llm.generate(inputs, sampling, use_tqdm=False)
        return [self._to_generation(out.outputs[0]) for out in outputs]

    def _to_generation(self, completion: Any) -> Generation:
        ids = [int(t) for t in completion.token_ids]
        entries = completion.logprobs or []
        if len(entries) != len(ids):
            raise RuntimeError(f"vLLM returned {len(entries)} log-probs for {len(ids)} tokens")
        lps = [_logprob_value(entry[tok]) for tok, entry in zip(ids, entries, strict=True)]
        finish = "length" if completion.finish_reason == "length" else "stop"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Generation(token_ids=ids, logprobs=lps, text=text, finish_reason=finish)

    # --- scoring ------------------------------------------------------------------------
    def score(
        self, prompts: list[list[int]], responses: list[list[int]], top_k: int = 0
    ) -> list[TokenScores]:
        rows = check_prompts(prompts, responses)
        result = [empty_scores(top_k) for _ in responses]
        if not rows:
            return result
        sampling = self._vllm.SamplingParams(
            max_tokens=1, temperature=0.0, prompt_logprobs=int(top_k)
        )
        inputs = [{"prompt_token_ids": list(prompts[i]) + list(responses[i])} for i in rows]
        outputs = self.llm.generate(inputs, sampling, use_tqdm=False)
        for i, out in zip(rows, outputs, strict=True):
            self._fill_scores(result[i], out.prompt_logprobs, len(prompts[i]), responses[i], top_k)
        return result

    @staticmethod
    def _fill_scores(
        dest: TokenScores, entries: Any, prompt_len: int, response: list[int], top_k: int
    ) -> None:
        if entries is None or len(entries) != prompt_len + len(response):
            raise RuntimeError("vLLM returned no prompt log-probs for a scoring request")
        for tok, entry in zip(response, list(entries)[prompt_len:], strict=True):
            dest.logprobs.append(_logprob_value(entry[tok]))
            if top_k:
                ranked = sorted(entry.items(), key=lambda kv: -_logprob_value(kv[1]))[:top_k]
                dest.topk_ids.append([int(k) for k, _ in ranked])
                dest.topk_logprobs.append([_logprob_value(v) for _, v in ranked])

    # --- weight sync --------------------------------------------------------------------
    def _local_model(self) -> Any:
        engine = self.llm.llm_engine
        paths = (
            ("model_executor", "driver_worker", "worker", "model_runner", "model"),
            (
                "engine_core",
                "engine_core",
                "model_executor",
                "driver_worker",
                "worker",
                "model_runner",
                "model",
            ),
            ("model_executor", "driver_worker", "model_runner", "model"),
        )
        for path in paths:
            obj = engine
            try:
                for name in path:
                    obj = getattr(obj, name)
            except AttributeError:
                continue
            if hasattr(obj, "load_weights"):
                return obj
        return None

    def sync_weights(self, weights: Any) -> int:
        """Load a trainer model's weights (an ``nn.Module``, a state dict or (name, tensor)
        pairs, HF parameter names) into the engine; returns the number of tensors loaded."""
        if hasattr(weights, "state_dict"):
            weights = weights.state_dict()
        items: Iterable[tuple[str, Any]] = (
            weights.items() if isinstance(weights, Mapping) else weights
        )
        model = self._local_model()
        if model is not None:
            pairs = [(name, t.detach()) for name, t in items]
            loaded = model.load_weights(weights=pairs)
            count = len(loaded) if loaded is not None else len(pairs)
        else:
            pairs = [(name, t.detach().cpu()) for name, t in items]
            counts = self.llm.collective_rpc(_load_weights_on_worker, args=(pairs,))
            count = int(counts[0]) if counts else 0
        self.llm.reset_prefix_cache()
        return count

    def close(self) -> None:
        self.llm = None
