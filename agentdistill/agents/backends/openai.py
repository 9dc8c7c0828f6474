"""Backend for OpenAI-compatible completion servers (vLLM, SGLang, llama.cpp's Python server).

Uses ``POST {base_url}/completions`` (the legacy completions endpoint: it takes raw
prompts, so the chat template stays ours) with one request per prompt, ``max_concurrency``
in flight at a time, retries with exponential backoff on 429/5xx/connection errors and
timeouts, and the API key read from ``$api_key_env`` (sent as a bearer token, never
logged or shown in ``repr``).

Numbers follow the HF backend's conventions: ``token_ids`` end with the token that
completed a stop string or with EOS (both inclusive); ``logprobs`` are the raw model
log-probs (temperature 1) of those tokens; ``text`` is their decode.

Two server dialects (``server=``; ``"auto"`` asks ``GET /models``):

``"vllm"`` (also any server that follows OpenAI's token-id prompts)
    Prompts go as token ids; the response token ids come from ``return_tokens_as_token_ids``
    / ``return_token_ids``; stop strings are kept (``include_stop_str_in_output``), and
    vLLM keeps the EOS token in the output. ``score()`` sends prompt + response as ids
    with ``prompt_logprobs=top_k`` and reads the response positions: exact, top-k works.

``"llama.cpp"`` (``llama-cpp-python[server]``, checked against 0.3.x)
    * Prompts must be text (its request schema rejects token ids), so the prompt ids are
      decoded with special tokens kept and the server re-tokenizes them. ``score()``
      checks that the server's token count and token pieces match the ids it was given
      and raises ``ValueError`` when they do not.
    * Log-prob entries carry token *text*, not ids; ids are recovered through a
      piece->id table of the tokenizer, falling back to re-tokenizing the text (then
      the log-probs are recomputed with ``score()`` if the count changed).
    * It drops the EOS token from the completion (no id, no log-prob): when a row ends on
      EOS, we append ``tokenizer.eos_token_id`` and score it with one extra request.
    * ``score()`` uses ``echo=True`` + ``logprobs``; llama-cpp-python aligns echoed
      log-probs correctly only when the prompt starts with the BOS token (it strips a
      leading BOS and otherwise reads every prompt log-prob one position off), so a
      prompt that does not start with ``tokenizer.bos_token_id`` raises ``ValueError``.
      Echoed entries skip every BOS-id token; responses containing one are refused.
    * ``top_k > 0`` is refused: its top log-probs are keyed by token text (ambiguous).
    * The server runs one request at a time; concurrency only overlaps network time.
    * Cost: llama-cpp-python computes every log-prob entry in Python (a full-vocabulary
      sort per token), so generation with log-probs and echo scoring cost ~0.1-0.3 s per
      token on a shared 2-core CPU, far more than the model itself. Run its server with
      ``--n_threads 1`` on an oversubscribed CPU: llama.cpp's worker threads spin-wait.
    * Numerics: its quantized kernels give batch-dependent log-probs (prompt-cache reuse
      changes batch shapes): the same tokens scored twice, or sampled then scored, differ by
      up to ~0.1 nat here (the tests allow for it).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentdistill.agents.backends.base import (
    Backend,
    Generation,
    SamplingParams,
    TokenScores,
    check_prompts,
    empty_scores,
)

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_DIALECTS = ("vllm", "llama.cpp")


class ServerUnavailableError(ConnectionError):
    """The server could not be reached (after retries)."""


class ServerTimeoutError(TimeoutError):
    """The server accepted the connection but did not answer within the timeout."""


class ServerResponseError(RuntimeError):
    """The server answered with an error status or a response we cannot read."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - httpx ships with the base deps here
        raise ImportError("OpenAIBackend needs httpx: pip install 'agentdistill[openai]'") from exc
    return httpx


class OpenAIBackend(Backend):
    """Generation and teacher scoring through an OpenAI-compatible completions server.

    Args:
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model name (sent as ``model``).
        tokenizer: HF tokenizer of the served model (decodes, and maps llama.cpp pieces).
        api_key_env: environment variable holding the API key (optional for local servers).
        server: ``"auto"``, ``"vllm"`` or ``"llama.cpp"`` (see module docstring).
        max_concurrency: requests in flight at once.
        timeout: seconds to wait for a response (connect timeout: ``min(timeout, 10)``).
        max_retries: extra attempts after a retryable failure (0 = try once).
        backoff: first retry delay in seconds; doubles per retry (with jitter), at most
            ``max_backoff``.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: Any,
        api_key_env: str = "OPENAI_API_KEY",
        server: str = "auto",
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ):
        httpx = _httpx()
        if server not in ("auto",) + _DIALECTS:
            raise ValueError(f"server must be 'auto', 'vllm' or 'llama.cpp', not {server!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.tokenizer = tokenizer
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_concurrency = max(1, int(max_concurrency))
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )
        self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="openai-backend")
        self._server = None if server == "auto" else server
        self._pieces: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return (
            f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, "
            f"server={self._server or 'auto'!r}, max_concurrency={self.max_concurrency})"
        )

    # --- HTTP ---------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict | None = None) -> dict:
        """One JSON request with retries; raises the errors documented on the class."""
        httpx = _httpx()
        url = f"{self.base_url}{path}"
        attempt = 0
        while True:
            retry_after = None
            try:
                resp = self._client.request(method, url, json=payload)
            except httpx.TimeoutException as exc:
                error: Exception = ServerTimeoutError(
                    f"{method} {url}: no response within {self.timeout:g} s "
                    f"({type(exc).__name__}); the server is overloaded or the request is too "
                    "large: raise timeout= or lower max_concurrency/max_new_tokens"
                )
            except httpx.TransportError as exc:
                error = ServerUnavailableError(
                    f"cannot reach {url} ({type(exc).__name__}: {exc}). Is the server "
                    "running and is base_url right (it usually ends in /v1)? e.g. "
                    "`python -m llama_cpp.server --model M.gguf --port 8000` or `vllm serve M`"
                )
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise ServerResponseError(
                            f"{method} {url}: response is not JSON: {resp.text[:200]!r}",
                            resp.status_code,
                        ) from exc
                error = ServerResponseError(
                    f"{method} {url}: HTTP {resp.status_code}: {resp.text[:500]}",
                    resp.status_code,
                )
                if resp.status_code not in _RETRY_STATUS:
                    raise error
                retry_after = resp.headers.get("retry-after")
            if attempt >= self.max_retries:
                raise error
            delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random())
            if retry_after:
                with contextlib.suppress(ValueError):
                    delay = min(self.max_backoff, max(delay, float(retry_after)))
            time.sleep(delay)
            attempt += 1

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    @property
    def server(self) -> str:
        """The dialect in use; ``auto`` is resolved once through ``GET /models``."""
        if self._server is None:
            with self._lock:
                if self._server is None:
                    data = self._request("GET", "/models").get("data") or [{}]
                    owner = str(data[0].get("owned_by", "")).lower()
                    # llama-cpp-python reports owned_by "me"; vLLM "vllm"; others vary
                    self._server = (
                        "llama.cpp" if owner in ("me", "llamacpp", "llama.cpp") else "vllm"
                    )
        return self._server

    # --- generation ---------------------------------------------------------------------
    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[Generation]:
        check_prompts(prompts)
        jobs = [
            (p, None if params.seed is None else int(params.seed) + i)
            for i, p in enumerate(prompts)
        ]
        gens = self._map(lambda job: self._generate_one(job[0], params, job[1]), jobs)
        if self.server == "llama.cpp":
            self._append_eos(prompts, gens, params.stop)
        return gens

    def _sampling_payload(self, params: SamplingParams, seed: int | None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": list(params.stop) or None,
            "logprobs": 1,
            "min_p": 0.0,
        }
        if seed is not None:
            payload["seed"] = seed
        if self.server == "llama.cpp":
            payload.update(top_k=params.top_k, repeat_penalty=1.0)
        else:
            payload.update(
                top_k=params.top_k if params.top_k > 0 else -1,
                include_stop_str_in_output=True,
                return_tokens_as_token_ids=True,
                return_token_ids=True,
                skip_special_tokens=False,
            )
        return payload

    def _generate_one(
        self, prompt: list[int], params: SamplingParams, seed: int | None
    ) -> Generation:
        payload = self._sampling_payload(params, seed)
        payload["prompt"] = self._prompt_field(prompt)
        choice = self._first_choice(self._request("POST", "/completions", payload))
        lp = choice.get("logprobs") or {}
        token_lps = [
            float(x) if x is not None else float("nan") for x in lp.get("token_logprobs") or []
        ]
        pieces = [str(t) for t in lp.get("tokens") or []]
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        if self.server == "llama.cpp":
            ids, token_lps = self._ids_from_pieces(prompt, pieces, token_lps)
        else:
            ids = self._ids_from_vllm(choice, pieces)
            if len(ids) != len(token_lps):
                raise ServerResponseError(
                    f"{len(ids)} token ids but {len(token_lps)} log-probs in the response"
                )
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return Generation(token_ids=ids, logprobs=token_lps, text=text, finish_reason=finish)

    def _prompt_field(self, ids: list[int]) -> Any:
        if self.server == "llama.cpp":
            return self.tokenizer.decode(
                ids, skip_special_tokens=False, clean_up_tokenization_spaces=False
            )
        return list(ids)

    @staticmethod
    def _first_choice(data: dict) -> dict:
        choices = data.get("choices") or []
        if not choices:
            raise ServerResponseError(f"response has no choices: {str(data)[:200]}")
        return choices[0]

    def _ids_from_vllm(self, choice: dict, pieces: list[str]) -> list[int]:
        if pieces and all(p.startswith("token_id:") for p in pieces):
            return [int(p.split(":", 1)[1]) for p in pieces]
        if choice.get("token_ids") is not None:
            return [int(t) for t in choice["token_ids"]]
        ids = [self.piece_table().get(p, -1) for p in pieces]
        if pieces and min(ids) >= 0:
            return ids
        raise ServerResponseError(
            "the server returned neither token ids nor unambiguous token pieces; use a "
            "server that supports return_tokens_as_token_ids (vLLM) or server='llama.cpp'"
        )

    def piece_table(self) -> dict[str, int]:
        """Decoded text of each token -> id, for pieces that only one token decodes to."""
        if self._pieces is None:
            with self._lock:
                if self._pieces is None:
                    table: dict[str, int] = {}
                    clash: set[str] = set()
                    for i in range(len(self.tokenizer)):
                        piece = self.tokenizer.decode(
                            [i], skip_special_tokens=False, clean_up_tokenization_spaces=False
                        )
                        if piece in table:
                            clash.add(piece)
                        table[piece] = i
                    for piece in clash | {""}:
                        table.pop(piece, None)
                    self._pieces = table
        return self._pieces

    def _ids_from_pieces(
        self, prompt: list[int], pieces: list[str], token_lps: list[float]
    ) -> tuple[list[int], list[float]]:
        """llama.cpp: token text -> ids; re-tokenize (and rescore) when pieces are ambiguous."""
        table = self.piece_table()
        ids = [table.get(p, -1) for p in pieces]
        if not ids or min(ids) >= 0:
            return ids, token_lps
        retok = self.tokenizer("".join(pieces), add_special_tokens=False)["input_ids"]
        if len(retok) == len(token_lps):
            return list(retok), token_lps
        return list(retok), self.score([prompt], [list(retok)])[0].logprobs

    def _append_eos(
        self, prompts: list[list[int]], gens: list[Generation], stops: tuple[str, ...]
    ) -> None:
        """llama.cpp leaves out the EOS token; add it (and its log-prob) to rows ended by EOS."""
        eos = self.tokenizer.eos_token_id
        if eos is None:
            return
        rows = [
            i
            for i, g in enumerate(gens)
            if g.finish_reason == "stop"
            and not any(
                s and s in self.tokenizer.decode(g.token_ids, skip_special_tokens=False)
                for s in stops
            )
        ]
        if not rows:
            return
        scores = self.score([prompts[i] for i in rows], [gens[i].token_ids + [eos] for i in rows])
        for i, sc in zip(rows, scores, strict=True):
            gens[i].token_ids.append(int(eos))
            gens[i].logprobs.append(sc.logprobs[-1])

    # --- scoring ------------------------------------------------------------------------
    def score(
        self, prompts: list[list[int]], responses: list[list[int]], top_k: int = 0
    ) -> list[TokenScores]:
        check_prompts(prompts, responses)
        if top_k and self.server == "llama.cpp":
            raise NotImplementedError(
                "llama.cpp's server keys top log-probs by token text (ambiguous); use top_k=0, "
                "a vLLM server, or the HF backend for top-k teacher scores"
            )
        one = self._score_llamacpp if self.server == "llama.cpp" else self._score_vllm
        return self._map(
            lambda pr: one(pr[0], pr[1], top_k) if pr[1] else empty_scores(top_k),
            list(zip(prompts, responses, strict=True)),
        )

    def _score_vllm(self, prompt: list[int], response: list[int], top_k: int) -> TokenScores:
        payload = {
            "model": self.model,
            "prompt": list(prompt) + list(response),
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": int(top_k),
        }
        entries = self._first_choice(self._request("POST", "/completions", payload)).get(
            "prompt_logprobs"
        )
        if not entries or len(entries) != len(prompt) + len(response):
            raise ServerResponseError(
                "the server returned no usable prompt_logprobs (vLLM supports them; for "
                "llama.cpp use server='llama.cpp')"
            )
        out = empty_scores(top_k)
        for tok, entry in zip(response, entries[len(prompt) :], strict=True):
            entry = {int(k): v for k, v in (entry or {}).items()}
            if tok not in entry:
                raise ServerResponseError(f"prompt_logprobs miss token {tok}")
            out.logprobs.append(float(_lp(entry[tok])))
            if top_k:
                ranked = sorted(entry.items(), key=lambda kv: -float(_lp(kv[1])))[:top_k]
                out.topk_ids.append([k for k, _ in ranked])
                out.topk_logprobs.append([float(_lp(v)) for _, v in ranked])
        return out

    def _score_llamacpp(self, prompt: list[int], response: list[int], top_k: int) -> TokenScores:
        bos = self.tokenizer.bos_token_id
        if bos is None or prompt[0] != bos:
            raise ValueError(
                "llama.cpp scoring needs the prompt to start with the BOS token "
                f"(id {bos}): llama-cpp-python misaligns echoed log-probs otherwise"
            )
        if bos in response:
            raise ValueError("llama.cpp scoring cannot score a response containing the BOS token")
        payload = {
            "model": self.model,
            "prompt": self._prompt_field(list(prompt) + list(response)),
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 0,
        }
        data = self._request("POST", "/completions", payload)
        usage = data.get("usage") or {}
        if usage.get("prompt_tokens") != len(prompt) + len(response):
            raise ValueError(
                f"llama.cpp re-tokenized the text into {usage.get('prompt_tokens')} tokens, not "
                f"{len(prompt) + len(response)}: the ids are not the canonical tokenization of "
                "their text, so this row cannot be scored exactly through a text prompt"
            )
        lp = self._first_choice(data).get("logprobs") or {}
        values = lp.get("token_logprobs") or []
        pieces = lp.get("tokens") or []
        extra = int(usage.get("completion_tokens") or 0)
        end = len(values) - extra
        tail = values[end - len(response) : end]
        got = pieces[end - len(response) : end]
        want = [self.tokenizer.decode([t], skip_special_tokens=True) for t in response]
        if len(tail) != len(response) or any(
            g != w for g, w in zip(got, want, strict=True) if "\ufffd" not in w
        ):
            raise ServerResponseError("llama.cpp echoed log-probs do not line up with the response")
        return TokenScores(logprobs=[float(v) for v in tail])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


def _lp(value: Any) -> float:
    """vLLM sends ``{"logprob": x, "rank": r, "decoded_token": s}``; some servers a float."""
    return value["logprob"] if isinstance(value, dict) else value

