"""Env pool throughput: in-process serial stepping vs process pools with 1 and 2 workers.

Run by hand from the repository root::

    python benchmarks/pool_bench.py            # writes benchmarks/results/pool.{json,md}
    python benchmarks/pool_bench.py --quick    # smaller counts, prints only

For each env, ``num_envs`` envs are stepped in lockstep batches (one ``pool.step`` per
turn, like ``rollout(env_pool=...)``) with the same seeded actions in every mode; finished
episodes are reset in the timed loop (as in a rollout). Pool start-up (worker spawn, env
construction) is timed separately. Every mode must produce the same observations (checked).
Modes: ``serial`` (SerialEnvPool, in-process: the baseline), ``process-1w``, ``process-2w``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import agentdistill.envs  # noqa: F401  (registers the ids)
from agentdistill.envs.pool import EnvPool, ProcessEnvPool, SerialEnvPool

RESULTS = Path(__file__).parent / "results"
MOVES = ["up", "down", "left", "right"]


def _action(env_index: int, turn: int, info: dict) -> str:
    rng = random.Random(f"{env_index}|{turn}")
    choices = list(info.get("admissible_actions") or []) or MOVES
    return rng.choice(sorted(choices))


def drive(pool: EnvPool, num_envs: int, turns: int) -> tuple[float, float, int, str]:
    """Step every env ``turns`` times (resetting finished ones).

    Returns (total seconds, seconds inside ``pool.step``, this process's CPU seconds inside
    ``pool.step``, steps, observation digest).
    """
    digest = hashlib.sha256()
    start = time.perf_counter()
    stepping = cpu = 0.0
    first = pool.reset(seeds=list(range(num_envs)))
    infos = {i: info for i, (_, info) in enumerate(first)}
    episode = [0] * num_envs
    steps = 0
    for turn in range(turns):
        actions = {i: _action(i, turn, infos[i]) for i in range(num_envs)}
        t0, c0 = time.perf_counter(), time.process_time()
        out = pool.step(actions)
        stepping += time.perf_counter() - t0
        cpu += time.process_time() - c0
        done = []
        for i in range(num_envs):
            obs, _, term, trunc, info = out[i]
            digest.update(obs.encode())
            infos[i] = info
            steps += 1
            if term or trunc:
                done.append(i)
        if done:
            for i in done:
                episode[i] += 1
            again = pool.reset(seeds=[1000 * episode[i] + i for i in done], indices=done)
            for i, (_, info) in zip(done, again, strict=True):
                infos[i] = info
    return time.perf_counter() - start, stepping, cpu, steps, digest.hexdigest()[:16]


def bench_env(env_id: str, num_envs: int, turns: int, repeats: int) -> dict:
    rows = {}
    for mode in ("serial", "process-1w", "process-2w"):
        best = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            if mode == "serial":
                pool: EnvPool = SerialEnvPool(env_id, num_envs)
            else:
                pool = ProcessEnvPool(env_id, num_envs, num_workers=int(mode[-2]), step_timeout=600)
            startup = time.perf_counter() - t0
            try:
                seconds, stepping, cpu, steps, digest = drive(pool, num_envs, turns)
            finally:
                pool.close()
            if best is None or seconds < best["seconds"]:
                best = {
                    "seconds": round(seconds, 4),
                    "steps": steps,
                    "steps_per_s": round(steps / seconds, 2),
                    "step_only_steps_per_s": round(steps / stepping, 2),
                    "main_process_cpu_us_per_step": round(1e6 * cpu / steps, 1),
                    "startup_s": round(startup, 3),
                    "digest": digest,
                }
        rows[mode] = best
        print(env_id, mode, best, flush=True)
    digests = {r["digest"] for r in rows.values()}
    if len(digests) != 1:
        raise SystemExit(f"{env_id}: modes disagree on observations: {rows}")
    base = rows["serial"]["steps_per_s"]
    base_step = rows["serial"]["step_only_steps_per_s"]
    for r in rows.values():
        r["vs_serial"] = round(r["steps_per_s"] / base, 3)
        r["step_only_vs_serial"] = round(r["step_only_steps_per_s"] / base_step, 3)
    return {
        "env_id": env_id,
        "num_envs": num_envs,
        "turns": turns,
        "repeats": repeats,
        "modes": rows,
        "two_vs_one_worker": round(
            rows["process-2w"]["steps_per_s"] / rows["process-1w"]["steps_per_s"], 3
        ),
        "two_vs_one_worker_step_only": round(
            rows["process-2w"]["step_only_steps_per_s"]
            / rows["process-1w"]["step_only_steps_per_s"],
            3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-scienceworld", action="store_true")
    parser.add_argument("--render", action="store_true", help="rewrite pool.md from pool.json")
    args = parser.parse_args()
    if args.render:
        report = json.loads((RESULTS / "pool.json").read_text())
        write_markdown(report)
        return
    plan = [("agentdistill/Sokoban-v0", 8, 100 if args.quick else 500, 1 if args.quick else 3)]
    if not args.no_scienceworld:
        plan.append(("agentdistill/ScienceWorld-v0", 2, 5 if args.quick else 15, 1))
    results = []
    for env_id, num_envs, turns, repeats in plan:
        try:
            results.append(bench_env(env_id, num_envs, turns, repeats))
        except Exception as exc:  # an optional engine missing: say so in the results
            print(f"{env_id}: skipped ({type(exc).__name__}: {exc})", flush=True)
            results.append({"env_id": env_id, "skipped": f"{type(exc).__name__}: {exc}"})
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "2-core x86 CPU, no GPU; other engineers' jobs shared the CPU during the run"
    )
    report = {"command": "python benchmarks/pool_bench.py", "machine": machine, "results": results}
    if args.quick:
        print(json.dumps(report, indent=2))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pool.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report)


def write_markdown(report: dict) -> None:
    machine, results = report["machine"], report["results"]
    lines = [
        "# Env pool throughput",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {machine}.",
        "",
        "| env | envs | turns | mode | steps/s (with resets) | vs serial | steps/s (step calls only) | vs serial | main-process CPU us/step | start-up s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        if "skipped" in res:
            lines.append(f"| {res['env_id']} | - | - | skipped: {res['skipped']} | | | | | | |")
            continue
        for mode, r in res["modes"].items():
            lines.append(
                f"| {res['env_id']} | {res['num_envs']} | {res['turns']} | {mode} | "
                f"{r['steps_per_s']:,} | {r['vs_serial']}x | {r['step_only_steps_per_s']:,} | "
                f"{r['step_only_vs_serial']}x | {r['main_process_cpu_us_per_step']} | "
                f"{r['startup_s']} |"
            )
    lines += [
        "",
        "2 workers vs 1 worker: "
        + ", ".join(
            f"{r['env_id']} {r['two_vs_one_worker']}x with resets, "
            f"{r['two_vs_one_worker_step_only']}x step calls only"
            for r in results
            if "skipped" not in r
        )
        + ".",
        "",
        "Lockstep batches (one `pool.step` per turn for all envs), same seeded actions in every "
        "mode, resets of finished episodes inside the timed loop; every mode produced the same "
        "observations (digest checked). Serial = all envs in this process (the baseline). "
        "Read the wall-clock ratios with the load in mind: the machine ran ~6x oversubscribed "
        "(load average 11-14 on 2 cores), so each extra process got its own scheduler share; "
        "that, not less work, is why a 1-worker pool can out-run serial stepping on Sokoban. "
        "The main-process CPU column is load-independent: a Sokoban step costs the main "
        "process about as much CPU through the pool's pipes (send, pickle, receive) as "
        "stepping the env in-process, so on an idle machine a pool does not speed Sokoban up. "
        "ScienceWorld steps wait on a JVM (tens to hundreds of ms), the regime where workers "
        "overlap steps, but with only 2 envs x 15 turns on a machine this loaded its ratios "
        "swing from run to run (2 workers vs 1, step calls only: 1.63x in one run, 0.65x in "
        "the next); its resets (JVM game loads) dominate the with-resets figures. The pool's "
        "other purpose, crash/hang isolation (timeouts, restarts), is covered by "
        "tests/test_pool.py.",
    ]
    (RESULTS / "pool.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
