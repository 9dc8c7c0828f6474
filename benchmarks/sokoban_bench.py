"""Sokoban environment performance: steps/s, room generation time, expert solve time.

Run by hand from the repository root::

    python benchmarks/sokoban_bench.py            # writes benchmarks/results/sokoban_env.{json,md}
    python benchmarks/sokoban_bench.py --quick    # smaller counts, prints only

Measured in one run, on one core (single env, no pool):

* env steps/s through ``gym.make`` (TimeLimit/OrderEnforcing wrappers) and on the bare
  env, uniformly random actions, resets excluded from the timed region, best of 3
  alternating runs;
* reset (= room generation + verification) time per room, mean / median / p95 / max;
* expert: cold ``solve()`` from the initial room, and ``expert_action()`` from a random
  mid-episode state (cache cleared), plus the same solve by a plain reference BFS without
  dead-square pruning (the baseline; ratio reported);
* the distribution of optimal solution lengths of generated rooms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter, deque
from pathlib import Path

import gymnasium as gym
import numpy as np

import agentdistill.envs  # noqa: F401  (registers the ids)
from agentdistill.envs.sokoban import ACTIONS, Level, solve

RESULTS = Path(__file__).parent / "results"
IDS = ("agentdistill/Sokoban-v0", "agentdistill/Sokoban-Hard-v0")


def reference_bfs(level: Level) -> int | None:
    """Baseline solver: plain BFS over Level.move, no pruning."""
    seen = {level.state}
    queue = deque([(level, 0)])
    while queue:
        cur, d = queue.popleft()
        if cur.solved:
            return d
        for a in ACTIONS:
            nxt, _ = cur.move(a)
            if nxt.state not in seen:
                seen.add(nxt.state)
                queue.append((nxt, d + 1))
    return None


def summary_ms(samples: list[float]) -> dict[str, float]:
    ms = sorted(x * 1e3 for x in samples)
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 4),
        "median_ms": round(statistics.median(ms), 4),
        "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 4),
        "max_ms": round(ms[-1], 4),
    }


def bench_steps(env_id: str, n_steps: int, unwrapped: bool) -> dict[str, float]:
    env = gym.make(env_id)
    target = env.unwrapped if unwrapped else env
    rng = np.random.default_rng(0)
    actions = [ACTIONS[i] for i in rng.integers(4, size=n_steps)]
    target.reset(seed=0)
    elapsed, steps, resets = 0.0, 0, 0
    for a in actions:
        t0 = time.perf_counter()
        _, _, terminated, truncated, _ = target.step(a)
        elapsed += time.perf_counter() - t0
        steps += 1
        # the bare env has no TimeLimit: reset it every 15 steps
        if terminated or truncated or (unwrapped and steps % 15 == 0):
            target.reset()
            resets += 1
    return {"steps": steps, "resets": resets, "steps_per_s": round(steps / elapsed, 1)}


def best_of_alternating_step_runs(env_id: str, n_steps: int, repeats: int) -> dict[str, dict]:
    """Wrapped and bare runs alternate; the best of each is kept (the CPU is shared)."""
    runs: dict[str, list[dict]] = {"steps_wrapped": [], "steps_bare": []}
    for _ in range(repeats):
        runs["steps_wrapped"].append(bench_steps(env_id, n_steps, unwrapped=False))
        runs["steps_bare"].append(bench_steps(env_id, n_steps, unwrapped=True))
    return {
        k: {**max(v, key=lambda r: r["steps_per_s"]), "repeats": repeats} for k, v in runs.items()
    }


def bench_resets(env_id: str, n: int) -> tuple[dict[str, float], Counter]:
    env = gym.make(env_id)
    times, lengths = [], Counter()
    for seed in range(n):
        t0 = time.perf_counter()
        _, info = env.reset(seed=seed)
        times.append(time.perf_counter() - t0)
        lengths[info["optimal_solution_length"]] += 1
    return summary_ms(times), lengths


def bench_expert(env_id: str, n: int, with_reference: bool) -> dict[str, object]:
    env = gym.make(env_id)
    rng = np.random.default_rng(1)
    solve_t, ref_t, mid_t, lengths_agree = [], [], [], True
    for seed in range(n):
        env.reset(seed=seed)
        level = env.unwrapped.level
        t0 = time.perf_counter()
        plan = solve(level)
        solve_t.append(time.perf_counter() - t0)
        if with_reference:
            t0 = time.perf_counter()
            ref = reference_bfs(level)
            ref_t.append(time.perf_counter() - t0)
            lengths_agree &= ref == len(plan)
        for a in rng.integers(4, size=int(rng.integers(1, 6))):  # wander, maybe deadlock
            env.step(ACTIONS[a])
        env.unwrapped._plans.clear()  # cold cache: measure a real search
        t0 = time.perf_counter()
        env.unwrapped.expert_action()
        mid_t.append(time.perf_counter() - t0)
    out: dict[str, object] = {
        "solve_initial": summary_ms(solve_t),
        "expert_action_mid_episode_cold": summary_ms(mid_t),
    }
    if with_reference:
        out["reference_bfs_initial"] = summary_ms(ref_t)
        out["speedup_vs_reference_mean"] = round(
            statistics.fmean(ref_t) / statistics.fmean(solve_t), 2
        )
        out["speedup_vs_reference_median"] = round(
            statistics.median(ref_t) / statistics.median(solve_t), 2
        )
        out["reference_agrees_on_optimal_length"] = bool(lengths_agree)
    return out


def machine() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "note": "2-core x86 CPU, no GPU; other jobs shared the CPU during the run",
        "loadavg_1m_at_start": f"{os.getloadavg()[0]:.1f}",
    }


def to_markdown(res: dict) -> str:
    lines = [
        "# Sokoban environment benchmark",
        "",
        f"Command: `{res['command']}`  ",
        f"Machine: {res['machine']['processor']}, {res['machine']['cpu_count']} cores, "
        f"Python {res['machine']['python']}; {res['machine']['note']} (1-minute load "
        f"average {res['machine']['loadavg_1m_at_start']} at start).",
        "",
        "| env | steps/s (gym.make) | steps/s (bare env) | reset median / mean / p95 / max ms | "
        "solve median / mean / p95 ms | reference BFS median / mean ms | speedup (median, mean) "
        "| mid-episode expert median / p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env_id, r in res["envs"].items():
        ex = r["expert"]
        ref = ex.get("reference_bfs_initial", {})
        lines.append(
            f"| {env_id} | {r['steps_wrapped']['steps_per_s']:,} | "
            f"{r['steps_bare']['steps_per_s']:,} | "
            f"{r['reset']['median_ms']} / {r['reset']['mean_ms']} / {r['reset']['p95_ms']} / "
            f"{r['reset']['max_ms']} | {ex['solve_initial']['median_ms']} / "
            f"{ex['solve_initial']['mean_ms']} / {ex['solve_initial']['p95_ms']} | "
            f"{ref.get('median_ms', 'n/a')} / {ref.get('mean_ms', 'n/a')} | "
            f"{ex.get('speedup_vs_reference_median', 'n/a')}x, "
            f"{ex.get('speedup_vs_reference_mean', 'n/a')}x | "
            f"{ex['expert_action_mid_episode_cold']['median_ms']} / "
            f"{ex['expert_action_mid_episode_cold']['p95_ms']} |"
        )
    lines += ["", "Optimal solution length of generated rooms (moves: count):", ""]
    for env_id, r in res["envs"].items():
        dist = ", ".join(
            f"{k}: {v}"
            for k, v in sorted(r["optimal_length_hist"].items(), key=lambda kv: int(kv[0]))
        )
        lines.append(
            f"- {env_id} ({r['reset']['n']} seeds, mean {r['optimal_length_mean']}): {dist}"
        )
    lines += [
        "",
        "Speedup = reference plain BFS (no dead-square pruning) / our solver, same rooms, "
        "same run. Steps/s exclude resets, best of 3 alternating runs; the bare env is reset every 15 steps. Means above "
        "the p95 come from a few samples slowed by other jobs on the shared CPU; medians are "
        "the robust figures.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, do not write results")
    args = parser.parse_args()
    n_steps, n_reset = (5_000, 100) if args.quick else (50_000, 1_000)
    n_expert = {IDS[0]: 200, IDS[1]: 50} if not args.quick else {IDS[0]: 30, IDS[1]: 10}
    res: dict = {
        "command": "python benchmarks/sokoban_bench.py" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "envs": {},
    }
    for env_id in IDS:
        reset_stats, lengths = bench_resets(env_id, n_reset if env_id == IDS[0] else n_reset // 5)
        res["envs"][env_id] = {
            **best_of_alternating_step_runs(env_id, n_steps, repeats=3),
            "reset": reset_stats,
            "optimal_length_hist": {str(k): v for k, v in sorted(lengths.items())},
            "optimal_length_mean": round(
                sum(k * v for k, v in lengths.items()) / sum(lengths.values()), 2
            ),
            "expert": bench_expert(env_id, n_expert[env_id], with_reference=True),
        }
        print(env_id, json.dumps(res["envs"][env_id], indent=1))
    md = to_markdown(res)
    print(md)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "sokoban_env.json").write_text(json.dumps(res, indent=2) + "\n")
        (RESULTS / "sokoban_env.md").write_text(md)


if __name__ == "__main__":
    main()
