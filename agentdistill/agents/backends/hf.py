"""Transformers backend: batched generation with our own KV-cache loop, and scoring.

Why our own loop: we need, per sampled token, the model's log-prob, per-sequence stop
strings, and finished rows dropped from the batch; ``model.generate`` makes all three
awkward. The loop runs one prefill over the left-padded batch (or each length bucket of
it, below), then one forward per new token over the still-running rows (their KV cache
rows are selected in place).

Conventions (shared with the trainer, which recomputes these numbers):

* ``Generation.token_ids``: the sampled response tokens, ending with the token that
  completed a stop string (inclusive: ``</action>`` may end mid-token) or with the EOS
  token (inclusive: the model must learn to end its turn). Nothing after is kept.
* ``Generation.text``: ``tokenizer.decode(token_ids, skip_special_tokens=True)``.
* ``Generation.logprobs[t]``: ``log_softmax(logits_t)[y_t]`` of the RAW model
  (temperature 1, no top-k/top-p), computed in float32. This is log pi_old(y_t) as the
  trainer recomputes it with a plain forward pass; the sampling distribution (after
  temperature/top-k/top-p) only decides which token is drawn. Greedy (temperature 0)
  rows report the same raw log-probs.
* Seeds: ``SamplingParams.seed`` seeds a ``torch.Generator`` per ``generate`` call, so the
  same prompts and seed give the same tokens (on the same device and batch layout).

Shared-prefix KV (``share_prefix=True``, the default): the system prompt and env rules are
most of every prompt and identical across a batch, and group copies of a task share the
whole prompt. :func:`plan_prefix` splits a batch into the longest common token prefix plus
the distinct remainders; :func:`encode_shared_prompts` encodes the prefix once (batch 1),
the distinct remainders once each, and copies the KV rows out to the batch. Attention
sees exactly the same tokens at the same positions, so log-probs equal the plain padded
pass up to float rounding (~1e-6 in fp32; tests check 1e-4). It is used only when it
skips at least ``MIN_SAVED_TOKENS`` prompt tokens; ``share_prefix=False`` is the old
single padded pass. :func:`shared_prefix_response_logits` does the same for scoring.

Generation writes KV into preallocated buffers (:func:`generation_cache`) instead of
concatenating the whole cache with every token; the numbers are unchanged.

Length buckets (``length_buckets=True``, the default; greedy only): a left-padded prefill
costs rows x longest prompt, so one long prompt (a WebShop product page of 1,200 tokens
among 300-token search pages) makes every row pay its length. :func:`plan_length_buckets`
splits such a batch into groups of similar length when the padding saved outweighs an
extra prefix encoding and decode loop. Greedy tokens do not depend on the grouping (up to
float rounding); sampled batches are never split, because their rows draw from one
generator stream in batch order and a seed must give the same samples.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from agentdistill.agents.backends.base import (
    Backend,
    Generation,
    SamplingParams,
    TokenScores,
    check_prompts,
    empty_scores,
)


def _cache_kwarg(model: Any) -> str:
    """Name of the KV-cache argument (``cache`` in transformers >= 5.x, else ``past_key_values``)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Mask (to -inf) tokens outside the top-k and outside the top-p nucleus, per row."""
    if top_k and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # drop a token when the mass BEFORE it already reaches top_p (keeps >= 1 token)
        drop = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


# --- shared-prefix KV -------------------------------------------------------------------
#: a shared encoding is used only when it skips at least this many prompt tokens
MIN_SAVED_TOKENS = 32
#: cost of one decode step, in prefill tokens, for length-bucket planning (measured: ~20)
DECODE_STEP_TOKENS = 32


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix that every sequence in ``seqs`` starts with."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        m = 0
        while m < n and s[m] == first[m]:
            m += 1
        n = m
    return n


@dataclass
class PrefixPlan:
    """A batch of prompts as one shared prefix plus distinct remainders.

    ``prompts[i] == shared + unique[rows[i]]``; every remainder holds >= 1 token (the
    prompt's last token, whose logits start the response).
    """

    shared: list[int]
    unique: list[list[int]]
    rows: list[int]

    @property
    def encoded_tokens(self) -> int:
        """Prompt tokens the shared encoding runs through the model."""
        return len(self.shared) + sum(len(u) for u in self.unique)


def plan_prefix(prompts: Sequence[Sequence[int]]) -> PrefixPlan:
    """Split non-empty ``prompts`` into their common prefix and distinct remainders."""
    p = min(common_prefix_len(prompts), min(len(x) for x in prompts) - 1)
    index: dict[tuple[int, ...], int] = {}
    unique: list[list[int]] = []
    rows: list[int] = []
    for x in prompts:
        key = tuple(int(t) for t in x[p:])
        if key not in index:
            index[key] = len(unique)
            unique.append(list(key))
        rows.append(index[key])
    return PrefixPlan([int(t) for t in prompts[0][:p]], unique, rows)


def sharing_pays(plan: PrefixPlan, prompts: Sequence[Sequence[int]]) -> bool:
    """True when the shared encoding skips at least ``MIN_SAVED_TOKENS`` prompt tokens."""
    return sum(len(x) for x in prompts) - plan.encoded_tokens >= MIN_SAVED_TOKENS


def plan_length_buckets(lengths: Sequence[int], overhead: int) -> list[list[int]]:
    """Row groups (each in row order, groups by length) minimising padded prefill cost.

    A group's cost is ``len(group) * max(lengths in group) + overhead``; the groups are
    contiguous runs of the rows sorted by length, found by dynamic programming (O(n^2)).
    One group (all rows, in order) unless splitting saves more than ``overhead`` per
    extra group.
    """
    n = len(lengths)
    if n < 2:
        return [list(range(n))]
    order = sorted(range(n), key=lambda i: (lengths[i], i))
    best = [0] * (n + 1)  # best[j]: cost of grouping the j shortest rows
    cut = [0] * (n + 1)  # cut[j]: where the last group of the j shortest rows starts
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        best[j], cut[j] = min(
            (best[i] + (j - i) * longest + overhead, i) for i in range(j)
        )
    groups: list[list[int]] = []
    j = n
    while j > 0:
        groups.append(sorted(order[cut[j] : j]))
        j = cut[j]
    return groups[::-1]


def left_pad(
    seqs: Sequence[Sequence[int]], pad_id: int, device: Any, right: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, W]`` ids and 0/1 mask of ``seqs`` padded on the left (or the right)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if s:
            span = slice(0, len(s)) if right else slice(width - len(s), width)
            ids[i, span] = torch.tensor(list(s), dtype=torch.long)
            mask[i, span] = 1
    return ids.to(device), mask.to(device)


def encode_shared_prompts(
    model: Any, plan: PrefixPlan, *, pad_id: int, cache_kw: str | None = None, cache: Any = None
) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode ``plan``'s prompts, the shared prefix and each distinct remainder once.

    Returns ``(cache, mask, last_logits, last_pos)``, one row per prompt: a
    ``DynamicCache`` over columns ``[prefix | left-padded remainder]``, its 0/1 attention
    mask ``[N, C]``, the logits after each prompt's last token ``[N, V]`` and that token's
    position ``[N]``. Runs with grad if the caller enables it (the KV rows are gathered, so
    gradients of every row flow back into the one prefix pass). ``cache``: an empty cache
    to fill (default a new ``DynamicCache``).
    """
    from transformers import DynamicCache

    device = next(model.parameters()).device
    kw = cache_kw or _cache_kwarg(model)
    cache = DynamicCache() if cache is None else cache
    p, u = len(plan.shared), len(plan.unique)
    if p:
        ids = torch.tensor([plan.shared], dtype=torch.long, device=device)
        model(input_ids=ids, attention_mask=torch.ones_like(ids),
              position_ids=torch.arange(p, device=device)[None], use_cache=True,
              logits_to_keep=1, **{kw: cache})
        cache.batch_select_indices(torch.zeros(u, dtype=torch.long, device=device))
    rem_ids, rem_mask = left_pad(plan.unique, pad_id, device)
    mask = torch.cat([rem_mask.new_ones((u, p)), rem_mask], dim=1)
    positions = (p + rem_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=rem_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                logits_to_keep=1, **{kw: cache})
    last_logits, last_pos = out.logits[:, -1, :], positions[:, -1]
    if plan.rows != list(range(u)):
        rows = torch.tensor(plan.rows, dtype=torch.long, device=device)
        cache.batch_select_indices(rows)
        mask, last_logits, last_pos = mask[rows], last_logits[rows], last_pos[rows]
    return cache, mask, last_logits, last_pos


def shared_prefix_response_logits(
    model: Any,
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    *,
    pad_id: int,
    plan: PrefixPlan | None = None,
    cache_kw: str | None = None,
) -> torch.Tensor:
    """Logits ``[N, R, V]`` (model dtype) whose ``[i, j]`` predicts ``responses[i][j]``.

    Rows are right-padded to the longest response R (padding slots hold finite junk: mask
    them). Prompts go through :func:`encode_shared_prompts`, then one pass over the
    right-padded responses reads that cache. Every response needs >= 1 token.
    """
    plan = plan or plan_prefix(prompts)
    cache, mask, last_logits, last_pos = encode_shared_prompts(
        model, plan, pad_id=pad_id, cache_kw=cache_kw
    )
    longest = max(len(r) for r in responses)
    first = last_logits[:, None, :]
    if longest == 1:
        return first
    device = last_logits.device
    resp_ids, resp_mask = left_pad(responses, pad_id, device, right=True)
    positions = last_pos[:, None] + 1 + torch.arange(longest, device=device)[None]
    out = model(input_ids=resp_ids[:, :-1], attention_mask=torch.cat([mask, resp_mask[:, :-1]], 1),
                position_ids=positions[:, :-1], use_cache=True,
                **{cache_kw or _cache_kwarg(model): cache})
    return torch.cat([first, out.logits], dim=1)


# --- KV cache with room to grow ---------------------------------------------------------
@functools.cache
def _buffered_layer_class() -> type | None:
    """A ``DynamicLayer`` that writes new KV into a preallocated buffer (None: old transformers)."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return None

    class BufferedLayer(DynamicLayer):
        """KV in ``[B, H, capacity, D]`` buffers; ``keys``/``values`` are views of the filled part.

        ``DynamicLayer`` concatenates the whole cache with each new token (O(length) copy per
        token, ~30% of a decode step here). This one grows to ``needed + extra`` columns only
        when full. In-place writes: for no-grad generation only.
        """

        def __init__(self, extra: int = 0) -> None:
            super().__init__()
            self.extra, self.filled = int(extra), 0
            self.kbuf: torch.Tensor | None = None
            self.vbuf: torch.Tensor | None = None

        def _views(self) -> None:
            assert self.kbuf is not None and self.vbuf is not None
            self.keys, self.values = self.kbuf[:, :, : self.filled], self.vbuf[:, :, : self.filled]

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, q = self.filled, key_states.shape[-2]
            if self.kbuf is None or n + q > self.kbuf.shape[-2]:
                shape = (*key_states.shape[:2], n + q + self.extra, key_states.shape[-1])
                kbuf, vbuf = key_states.new_empty(shape), value_states.new_empty(shape)
                if self.kbuf is not None and self.vbuf is not None and n:
                    kbuf[:, :, :n], vbuf[:, :, :n] = self.kbuf[:, :, :n], self.vbuf[:, :, :n]
                self.kbuf, self.vbuf = kbuf, vbuf
            self.kbuf[:, :, n : n + q] = key_states
            self.vbuf[:, :, n : n + q] = value_states
            self.filled = n + q
            self._views()
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.kbuf is not None and self.vbuf is not None:
                self.kbuf, self.vbuf = self.kbuf[indices], self.vbuf[indices]
                self._views()

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.kbuf is not None and self.vbuf is not None:
                self.kbuf = self.kbuf.repeat_interleave(repeats, dim=0)
                self.vbuf = self.vbuf.repeat_interleave(repeats, dim=0)
                self._views()

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                raise ValueError("crop takes a negative number of tokens to remove")
            if tokens_to_remove and self.kbuf is not None:
                self.filled = max(0, self.filled - abs(tokens_to_remove))
                self._views()

        def reset(self) -> None:
            self.kbuf = self.vbuf = None
            self.filled = 0
            super().reset()

    return BufferedLayer


def generation_cache(extra: int = 0) -> Any:
    """A ``DynamicCache`` for no-grad generation whose layers keep room for ``extra`` more
    tokens (no per-token concatenation); a plain ``DynamicCache`` on transformers without
    cache layers."""
    from transformers import DynamicCache

    cache = DynamicCache()
    layer = _buffered_layer_class()
    if layer is not None and getattr(cache, "layer_class_to_replicate", None) is not None \
            and not cache.layers:
        cache.layer_class_to_replicate = functools.partial(layer, extra)
    return cache


class HFBackend(Backend):
    """Generation and scoring with a transformers causal LM (see module docstring).

    Args:
        model: a ``PreTrainedModel`` (put it on its device first).
        tokenizer: the matching tokenizer (its pad token is used for padding).
        max_batch_size: prompts per forward pass; larger lists are split into chunks.
        share_prefix: encode the batch's common prompt prefix and duplicate prompts once
            (see module docstring); False is the plain padded pass.
        length_buckets: generate greedy batches of very unequal prompt lengths in groups
            of similar length (see module docstring); False is one padded batch.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        max_batch_size: int = 64,
        share_prefix: bool = True,
        length_buckets: bool = True,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max(1, int(max_batch_size))
        self.share_prefix = bool(share_prefix)
        self.length_buckets = bool(length_buckets)
        self._cache_kw = _cache_kwarg(model)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else tokenizer.eos_token_id)
        eos = (
            getattr(model.generation_config, "eos_token_id", None)
            if hasattr(model, "generation_config")
            else None
        )
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            ids.add(int(tokenizer.eos_token_id))
        self.eos_ids = frozenset(int(i) for i in ids)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- generation -------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Generation]:
        if not prompts:
            return []
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(int(params.seed))
        out: list[Generation] = []
        for start in range(0, len(prompts), self.max_batch_size):
            chunk = prompts[start : start + self.max_batch_size]
            done: dict[int, Generation] = {}
            for rows in self._buckets(chunk, params):
                gens = self._generate_batch([chunk[i] for i in rows], params, generator)
                done.update(zip(rows, gens, strict=True))
            out.extend(done[i] for i in range(len(chunk)))
        return out

    def _buckets(self, prompts: list[list[int]], params: SamplingParams) -> list[list[int]]:
        """Row groups of one chunk to generate separately: length buckets for greedy, else
        all rows (in order)."""
        if not self.length_buckets or params.temperature != 0 or len(prompts) < 2:
            return [list(range(len(prompts)))]
        shared = common_prefix_len(prompts) if self.share_prefix else 0
        overhead = shared + DECODE_STEP_TOKENS * params.max_new_tokens
        return plan_length_buckets([len(p) - shared for p in prompts], overhead)

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        return left_pad(seqs, self.pad_id, self.device)

    def _stop_hit(self, tokens: list[int], stops: tuple[str, ...], window: int) -> bool:
        tail = self.tokenizer.decode(tokens[-window:], skip_special_tokens=False)
        return any(s in tail for s in stops)

    def _plan(self, prompts: list[list[int]]) -> PrefixPlan | None:
        """The shared-prefix plan of a batch, or None when sharing is off or saves little."""
        if not self.share_prefix or len(prompts) < 2:
            return None
        plan = plan_prefix(prompts)
        return plan if sharing_pays(plan, prompts) else None

    def _prefill(
        self, prompts: list[list[int]], cache: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """Encode the prompts: (mask, logits after the last prompt token, its position, cache)."""
        plan = self._plan(prompts)
        if plan is not None:
            cache, mask, logits, last_pos = encode_shared_prompts(
                self.model, plan, pad_id=self.pad_id, cache_kw=self._cache_kw, cache=cache
            )
            return mask, logits, last_pos, cache
        ids, mask = self._left_pad(prompts)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kw: cache},
        )
        return mask, out.logits[:, -1, :], positions[:, -1], cache

    def _generate_batch(
        self, prompts: list[list[int]], params: SamplingParams, generator: torch.Generator | None
    ) -> list[Generation]:
        check_prompts(prompts)
        n = len(prompts)
        stops = tuple(s for s in params.stop if s)
        window = max((len(s) for s in stops), default=0) + 2

        tokens: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        finish = ["length"] * n
        alive = list(range(n))  # original row index of each row in the running batch

        mask, next_logits, last_pos, cache = self._prefill(
            prompts, generation_cache(params.max_new_tokens)
        )
        for _ in range(params.max_new_tokens):
            logits = next_logits.float()
            raw = torch.log_softmax(logits, dim=-1)
            if params.temperature == 0:
                nxt = torch.argmax(logits, dim=-1)
            else:
                scaled = filter_logits(logits / params.temperature, params.top_k, params.top_p)
                probs = torch.softmax(scaled, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            nxt_lp = raw.gather(-1, nxt[:, None]).squeeze(-1)
            keep: list[int] = []
            for row, (tok, lp) in enumerate(zip(nxt.tolist(), nxt_lp.tolist(), strict=True)):
                orig = alive[row]
                tokens[orig].append(tok)
                logps[orig].append(lp)
                if tok in self.eos_ids or (stops and self._stop_hit(tokens[orig], stops, window)):
                    finish[orig] = "stop"
                else:
                    keep.append(row)
            if not keep or len(tokens[alive[keep[0]]]) >= params.max_new_tokens:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, last_pos, nxt = mask[index], last_pos[index], nxt[index]
                alive = [alive[r] for r in keep]
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=-1)
            last_pos = last_pos + 1
            out = self.model(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=last_pos[:, None],
                use_cache=True,
                **{self._cache_kw: cache},
            )
            next_logits = out.logits[:, -1, :]

        return [
            Generation(
                token_ids=tokens[i],
                logprobs=logps[i],
                text=self.tokenizer.decode(tokens[i], skip_special_tokens=True),
                finish_reason=finish[i],
            )
            for i in range(n)
        ]

    # --- scoring ----------------------------------------------------------------------
    @torch.inference_mode()
    def score(
        self, prompts: list[list[int]], responses: list[list[int]], top_k: int = 0
    ) -> list[TokenScores]:
        """Per-token log-probs (float32 log-softmax) of each response given its prompt.

        One forward pass per chunk of ``max_batch_size`` rows: prompt+response sequences
        are left-padded so every response ends at the last position, and only the last
        ``max response length + 1`` logits are materialized. ``top_k > 0`` also returns
        the k most likely token ids and log-probs at each response position.
        """
        check_prompts(prompts, responses)
        result: list[TokenScores] = []
        for start in range(0, len(prompts), self.max_batch_size):
            result.extend(
                self._score_batch(
                    prompts[start : start + self.max_batch_size],
                    responses[start : start + self.max_batch_size],
                    top_k,
                )
            )
        return result

    def _score_batch(
        self, prompts: list[list[int]], responses: list[list[int]], top_k: int
    ) -> list[TokenScores]:
        rows = check_prompts(prompts, responses)
        result = [empty_scores(top_k) for _ in responses]
        if not rows:
            return result
        plan = self._plan([prompts[i] for i in rows])
        if plan is not None:
            logits = shared_prefix_response_logits(
                self.model, [prompts[i] for i in rows], [responses[i] for i in rows],
                pad_id=self.pad_id, plan=plan, cache_kw=self._cache_kw,
            )
            logp = torch.log_softmax(logits.float(), dim=-1)
            targets, _ = left_pad([responses[i] for i in rows], self.pad_id, self.device, right=True)
            token_lp = logp.gather(-1, targets[..., None]).squeeze(-1)
            if top_k:
                top_vals, top_ids = torch.topk(logp, int(top_k), dim=-1)
            for b, i in enumerate(rows):
                m = len(responses[i])
                result[i].logprobs = token_lp[b, :m].tolist()
                if top_k:
                    result[i].topk_ids = top_ids[b, :m].tolist()
                    result[i].topk_logprobs = top_vals[b, :m].tolist()
            return result
        seqs = [list(prompts[i]) + list(responses[i]) for i in rows]
        ids, mask = self._left_pad(seqs)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        longest = max(len(responses[i]) for i in rows)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=False,
            logits_to_keep=longest + 1,
        )
        # logits[:, j] predicts token at position (width - longest - 1 + j + 1)
        logp = torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)
        targets = ids[:, -longest:]
        token_lp = logp.gather(-1, targets[..., None]).squeeze(-1)
        if top_k:
            top_vals, top_ids = torch.topk(logp, int(top_k), dim=-1)
        for b, i in enumerate(rows):
            m = len(responses[i])
            result[i].logprobs = token_lp[b, longest - m :].tolist()
            if top_k:
                result[i].topk_ids = top_ids[b, longest - m :].tolist()
                result[i].topk_logprobs = top_vals[b, longest - m :].tolist()
        return result
