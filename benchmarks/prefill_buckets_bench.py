"""Greedy evaluation with and without length-bucketed prefill, on real WebShop batches.

Run by hand (not a test), with nothing else on the CPU:

    python benchmarks/prefill_buckets_bench.py                  # goals 0-7 and 8-15, 15 turns
    python benchmarks/prefill_buckets_bench.py --quick          # 3 turns, a smoke check

SmolLM2 plays the same WebShop-v0 test goals (batch 8, greedy, the eval's settings) twice
in one process: ``padded`` (one left-padded batch per turn, ``length_buckets=False``) and
``bucketed`` (the default). Goals 8-15 are the batch where one row reaches a 1,200-token
product page while the others read 250-430-token pages; goals 0-7 have no such row. The
script checks that both modes take the same actions, reports turns/s per mode and their
ratio, and measures a decode step against a prefill token (what ``DECODE_STEP_TOKENS``
estimates). Results: benchmarks/results/prefill_buckets.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from agentdistill import evaluation_protocol as protocol
from agentdistill.agents.backends import hf
from agentdistill.agents.backends.base import SamplingParams
from agentdistill.api import make_policy

ENV = "agentdistill/WebShop-v0"
RESULTS = Path(__file__).parent / "results"
GOAL_BATCHES = ((0, 8), (8, 16))


def _play(policy, tasks, max_turns: int) -> tuple[list, float]:
    start = time.perf_counter()
    episodes = protocol.play(policy, ENV, tasks, max_turns=max_turns, batch_size=len(tasks))
    return episodes, time.perf_counter() - start


def _decode_step_in_prefill_tokens(backend, prompt: list[int], repeats: int = 3) -> dict:
    """Wall time of a one-token generation (prefill) and of 16 more decode steps, batch 1."""

    def best(max_new: int) -> float:
        params = SamplingParams(max_new_tokens=max_new, temperature=0.0, stop=())
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            gen = backend.generate([prompt], params)[0]
            times.append(time.perf_counter() - start)
        assert max_new == 1 or len(gen.token_ids) == max_new or gen.finish_reason == "stop"
        return min(times)

    backend.eos_ids = frozenset()  # decode all 17 tokens
    prefill, longer = best(1), best(17)
    per_token = prefill / len(prompt)
    per_step = (longer - prefill) / 16
    return {"prompt_tokens": len(prompt), "prefill_s": round(prefill, 3),
            "decode_step_s": round(per_step, 4),
            "decode_step_in_prefill_tokens": round(per_step / per_token, 1),
            "DECODE_STEP_TOKENS": hf.DECODE_STEP_TOKENS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 turns per goal")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    max_turns = 3 if args.quick else 15
    load_start = os.getloadavg()
    policy = make_policy("smollm2", temperature=0.0, dtype="auto", batch_size=8)
    backend = policy.backend
    tasks = protocol.all_tasks(ENV, "test")
    splits = {"calls": 0, "split_calls": 0}
    plan = backend._buckets

    def counting(prompts, params):
        groups = plan(prompts, params)
        splits["calls"] += 1
        splits["split_calls"] += len(groups) > 1
        return groups

    backend._buckets = counting
    batches = []
    for lo, hi in GOAL_BATCHES:
        row: dict = {"goals": f"{lo}-{hi - 1}"}
        actions = {}
        for mode in ("padded", "bucketed"):
            backend.length_buckets = mode == "bucketed"
            splits.update(calls=0, split_calls=0)
            episodes, wall = _play(policy, tasks[lo:hi], max_turns)
            turns = sum(len(e.turns) for e in episodes)
            longest = max(len(t.prompt_ids) for e in episodes for t in e.turns)
            actions[mode] = [[t.action for t in e.turns] for e in episodes]
            row[mode] = {"wall_s": round(wall, 1), "turns": turns,
                         "turns_per_s": round(turns / wall, 3), "longest_prompt": longest,
                         "generate_calls": splits["calls"], "calls_split": splits["split_calls"],
                         "won": sum(bool(e.won) for e in episodes)}
            print(row["goals"], mode, row[mode], flush=True)
        row["same_actions"] = actions["padded"] == actions["bucketed"]
        row["speedup"] = round(row["bucketed"]["turns_per_s"] / row["padded"]["turns_per_s"], 2)
        batches.append(row)
    backend.length_buckets = True
    long_prompt = max((t.prompt_ids for e in episodes for t in e.turns), key=len)
    calibration = _decode_step_in_prefill_tokens(backend, list(long_prompt))
    result = {"env": ENV, "policy": "smollm2", "dtype": "auto", "threads": args.threads,
              "max_turns": max_turns, "batch_size": 8, "batches": batches,
              "calibration": calibration, "machine": protocol.machine(load_start),
              "git": protocol.git_commit()}
    RESULTS.mkdir(exist_ok=True)
    name = "prefill_buckets_quick" if args.quick else "prefill_buckets"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Length-bucketed prefill, SmolLM2 greedy on {ENV} (batch 8, {max_turns} turns)",
             "", f"Machine: {result['machine']['cpu']}, {args.threads} threads, load average "
             f"{result['machine']['load_average_start']} -> {result['machine']['load_average_end']}.",
             "", "| goals | padded turns/s | bucketed turns/s | speed-up | longest prompt "
             "| calls split | same actions |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in batches:
        b = row["bucketed"]
        lines.append(f"| {row['goals']} | {row['padded']['turns_per_s']} | {b['turns_per_s']} | "
                     f"{row['speedup']}x | {b['longest_prompt']} | "
                     f"{b['calls_split']}/{b['generate_calls']} | {row['same_actions']} |")
    lines += ["", f"A decode step (batch 1) costs {calibration['decode_step_in_prefill_tokens']} "
              f"prefill tokens here ({calibration['decode_step_s']} s against "
              f"{calibration['prefill_s']} s for a {calibration['prompt_tokens']}-token prefill); "
              f"the planner assumes {hf.DECODE_STEP_TOKENS}.", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
