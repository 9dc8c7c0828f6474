"""ScienceWorld-v0 vs the bare ``scienceworld.ScienceWorldEnv``: step/reset speed, JVM cost.

Run by hand from the repository root (a few minutes)::

    python benchmarks/scienceworld_bench.py            # writes benchmarks/results/scienceworld.{json,md}
    python benchmarks/scienceworld_bench.py --quick    # fewer repeats, prints only

Workload: the gold paths of ``CASES`` (fixed task/variation pairs from the train split),
recorded once, then replayed action for action by every mode, ``--repeats`` times. Each
episode is ``reset`` (timed) then its steps (timed), and is run by every mode back to back
(mode order rotated) so that background load hits the modes alike; ratios are medians of
the per-episode ratios (paired), absolute times are means.

Modes (each in the same process, its own JVM started before timing):

- ``bare``: ``ScienceWorldEnv.load(task, variation, "easy", generateGoldPath=True)`` +
  ``reset()``, then ``step(action)``. Its ``step`` also returns look/inventory/task text and
  the full valid-action list (fetched element by element over py4j) in ``infos``.
- ``raw_same_calls``: the simulator calls ``ours`` makes, issued directly on the py4j
  object with no worker thread, timeout, info dict or expert bookkeeping: the floor, so
  ``ours / raw_same_calls`` is the wrapper's own overhead.
- ``ours``: ``agentdistill/ScienceWorld-v0`` defaults (gold path, admissible actions bounded
  to 200).
- ``ours_all_actions``: ``max_admissible_actions=None`` (the full list, like bare).
- ``ours_no_actions``: ``max_admissible_actions=0`` (no valid-action query).

Headline ratios: ours / bare and ours / raw_same_calls, time per step and per reset
(< 1 means ours is faster), both as a ratio of total times and as the median of
per-episode ratios.
Also measured: JVM start time (ours and bare constructor), RSS of the java process per env
instance after the workload (``/proc/<pid>/status``; ours runs with ``-Xmx2g
-XX:+UseSerialGC``, bare with JVM defaults), and steps/s of 1 vs 2 envs in parallel
processes (``ours`` defaults, each process replays the workload for ``--parallel-seconds``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [
    ("find-animal", 127),
    ("lifespan-longest-lived", 52),
    ("identify-life-stages-2", 3),
    ("chemistry-mix-paint-secondary-color", 15),
    ("power-component", 8),
    ("use-thermometer", 229),
    ("test-conductivity-of-unknown-substances", 255),
    ("melt", 11),
]


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def record_workload() -> list[tuple[str, int, list[str]]]:
    """Play each case's gold path on our env (until won) and keep the actions."""
    from agentdistill.envs.scienceworld.env import ScienceWorldEnv

    env = ScienceWorldEnv(max_admissible_actions=0)
    out = []
    for task, variation in CASES:
        env.reset(options={"task": task, "variation": variation})
        actions = []
        while (action := env.expert_action()) is not None:
            actions.append(action)
            *_, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        assert info["won"], (task, variation)
        out.append((task, variation, actions))
    env.close()
    return out


class Bare:
    name = "bare"

    def __init__(self) -> None:
        from scienceworld import ScienceWorldEnv

        t0 = time.perf_counter()
        self.env = ScienceWorldEnv("", envStepLimit=10_000)
        self.start_s = time.perf_counter() - t0
        self.pid = self.env._gateway.java_process.pid

    def reset(self, task: str, variation: int) -> None:
        self.env.load(task, variation, "easy", generateGoldPath=True)
        self.env.reset()

    def step(self, action: str) -> float:
        _, _, _, info = self.env.step(action)
        return info["score"] / 100

    def close(self) -> None:
        self.env.close()


class Raw:
    """The exact simulator calls ``ours`` makes, issued directly (no thread, no info)."""

    name = "raw_same_calls"

    def __init__(self) -> None:
        from agentdistill.envs.scienceworld.env import bound_actions
        from agentdistill.envs.scienceworld.jvm import SimulatorProcess

        self.bound = bound_actions
        self.sim = SimulatorProcess()
        t0 = time.perf_counter()
        self.sim.start()
        self.start_s = time.perf_counter() - t0
        self.pid = self.sim.pid
        self.server = self.sim._server

    def _valid(self) -> list[str]:
        joined = self.sim.join_lines(self.server.getValidActionObjectCombinations())
        return self.bound(joined.split("\n"), 200)

    def reset(self, task: str, variation: int) -> None:
        s = self.server
        s.load(task, variation, "easy", True)
        s.step("look around")
        s.getTaskDescription()
        s.getScore()
        list(s.getGoldActionSequence())
        self._valid()

    def step(self, action: str) -> float:
        s = self.server
        s.step(action)
        score = s.getScore()
        s.getCompleted()
        self._valid()
        return min(1.0, max(0.0, score))

    def close(self) -> None:
        self.sim.close()


class Ours:
    def __init__(self, name: str, **kwargs) -> None:
        from agentdistill.envs.scienceworld.env import ScienceWorldEnv

        self.name = name
        self.env = ScienceWorldEnv(**kwargs)
        t0 = time.perf_counter()
        self.env.sim.start()
        self.start_s = time.perf_counter() - t0
        self.pid = self.env.sim.pid
        # Time spent inside simulator calls (on the worker thread), to split a step's wall
        # time into simulator work and the wrapper's own cost (thread handoff, info, bounds).
        self.in_sim_s = 0.0
        call = self.env.sim.call

        def timed_call(fn, timeout):
            def timed(server):
                t = time.perf_counter()
                try:
                    return fn(server)
                finally:
                    self.in_sim_s += time.perf_counter() - t
            return call(timed, timeout)

        self.env.sim.call = timed_call

    def reset(self, task: str, variation: int) -> None:
        self.env.reset(options={"task": task, "variation": variation})

    def step(self, action: str) -> float:
        *_, info = self.env.step(action)
        assert "error" not in info, info["error"]
        return info["score"]

    def close(self) -> None:
        self.env.close()


def make_modes() -> list:
    return [
        Bare(),
        Raw(),
        Ours("ours"),
        Ours("ours_all_actions", max_admissible_actions=None),
        Ours("ours_no_actions", max_admissible_actions=0),
    ]


def run_episode(mode, task: str, variation: int, actions: list[str]) -> tuple[float, float, float]:
    """(reset seconds, step seconds, final score) of one replayed episode."""
    t0 = time.perf_counter()
    mode.reset(task, variation)
    reset_s = time.perf_counter() - t0
    inside0 = getattr(mode, "in_sim_s", 0.0)
    t0 = time.perf_counter()
    for action in actions:
        score = mode.step(action)
    step_s = time.perf_counter() - t0
    if hasattr(mode, "in_sim_s"):
        mode.wrapper_step_s = getattr(mode, "wrapper_step_s", 0.0) + step_s - (
            mode.in_sim_s - inside0)
        mode.wrapper_steps = getattr(mode, "wrapper_steps", 0) + len(actions)
    return reset_s, step_s, score


def _parallel_worker(workload, seconds: float, barrier, queue) -> None:
    mode = Ours("ours")
    mode.reset(*workload[0][:2])  # warm up before the clock starts
    barrier.wait()
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for task, variation, actions in workload:
            mode.reset(task, variation)
            for action in actions:
                mode.step(action)
            steps += len(actions)
            if time.perf_counter() - t0 >= seconds:
                break
    queue.put((steps, time.perf_counter() - t0))
    mode.close()


def parallel(workload, n: int, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_parallel_worker, args=(workload, seconds, barrier, queue))
             for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join()
    total = sum(s for s, _ in results)
    wall = max(w for _, w in results)
    return {"processes": n, "steps": total, "wall_s": wall, "steps_per_s": total / wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parallel-seconds", type=float, default=40.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the .md from the saved .json and exit")
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads((RESULTS / "scienceworld.json").read_text())
        (RESULTS / "scienceworld.md").write_text(render_md(saved))
        return
    if args.quick:
        args.repeats, args.parallel_seconds = 1, 10.0

    import scienceworld.version

    load_start = os.getloadavg()
    workload = record_workload()
    n_steps = sum(len(a) for _, _, a in workload)
    modes = make_modes()
    starts = {m.name: m.start_s for m in modes}
    for m in modes:  # warm-up pass (JIT), not timed
        for task, variation, actions in workload[:2]:
            run_episode(m, task, variation, actions)
    # Paired design: every episode is run by every mode back to back (mode order rotated),
    # so background load hits the modes alike; ratios are medians of per-episode ratios.
    times: dict[str, dict] = {m.name: {"reset": [], "step": [], "final": []} for m in modes}
    for r in range(args.repeats):
        for i, (task, variation, actions) in enumerate(workload):
            k = (r * len(workload) + i) % len(modes)
            for m in modes[k:] + modes[:k]:
                reset_s, step_s, final = run_episode(m, task, variation, actions)
                times[m.name]["reset"].append(reset_s)
                times[m.name]["step"].append(step_s)
                times[m.name]["final"].append(final)
        print(f"repeat {r}: " + ", ".join(
            f"{n} {1000 * sum(t['step']) / (len(t['step']) // len(workload)) / n_steps:.1f} ms/step"
            for n, t in times.items()), flush=True)
    rss = {m.name: _rss_kb(m.pid) / 1024 for m in modes}
    wrapper_ms = {m.name: 1000 * m.wrapper_step_s / m.wrapper_steps
                  for m in modes if hasattr(m, "wrapper_steps")}
    finals = {n: t["final"] for n, t in times.items()}
    assert all(f == finals["bare"] for f in finals.values()), finals  # same episodes
    for m in modes:
        m.close()

    # JVM start time: a few fresh starts of each kind.
    from scienceworld import ScienceWorldEnv as BareEnv

    from agentdistill.envs.scienceworld.jvm import SimulatorProcess

    jvm_ours, jvm_bare = [], []
    for _ in range(2 if args.quick else 3):
        sim = SimulatorProcess()
        t0 = time.perf_counter()
        sim.start()
        jvm_ours.append(time.perf_counter() - t0)
        sim.close()
        t0 = time.perf_counter()
        bare = BareEnv("")
        jvm_bare.append(time.perf_counter() - t0)
        bare.close()

    par = [parallel(workload, n, args.parallel_seconds) for n in (1, 2)]

    def paired(name: str, base: str, key: str) -> float:
        return statistics.median(
            a / b for a, b in zip(times[name][key], times[base][key], strict=True)
        )

    summary = {}
    for name, t in times.items():
        summary[name] = {
            "ms_per_step": 1000 * sum(t["step"]) / (args.repeats * n_steps),
            "s_per_reset": sum(t["reset"]) / len(t["reset"]),
            "java_rss_mb_after_workload": round(rss[name], 1),
            "jvm_start_s_in_run": round(starts[name], 3),
        }
        if name in wrapper_ms:
            summary[name]["wrapper_ms_per_step_outside_simulator"] = round(wrapper_ms[name], 3)
    ratios = {
        name: {"step_time_vs_bare": paired(name, "bare", "step"),
               "reset_time_vs_bare": paired(name, "bare", "reset"),
               "step_time_vs_raw_same_calls": paired(name, "raw_same_calls", "step"),
               "reset_time_vs_raw_same_calls": paired(name, "raw_same_calls", "reset")}
        for name in summary if name != "bare"
    }
    per_case = {}
    for i, (task, variation, actions) in enumerate(workload):
        idx = range(i, args.repeats * len(workload), len(workload))
        per_case[f"{task}:{variation}"] = {
            name: {"ms_per_step": round(1000 * sum(t["step"][j] for j in idx)
                                        / (args.repeats * len(actions)), 2),
                   "s_per_reset": round(sum(t["reset"][j] for j in idx) / args.repeats, 3)}
            for name, t in times.items()
        }
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()}-core CPU, no GPU, Python "
                   f"{platform.python_version()}; other jobs shared the CPU",
        "scienceworld": scienceworld.version.__version__,
        "load_average_1_5_15min": {"start": [round(x, 2) for x in load_start],
                                   "end": [round(x, 2) for x in os.getloadavg()]},
        "command": "python benchmarks/scienceworld_bench.py" + (" --quick" if args.quick else ""),
        "workload": [{"task": t, "variation": v, "steps": len(a)} for t, v, a in workload],
        "repeats": args.repeats,
        "modes": summary,
        "ratios": ratios,
        "jvm_start_s": {"ours": jvm_ours, "bare_constructor": jvm_bare,
                        "ours_median": statistics.median(jvm_ours),
                        "bare_median": statistics.median(jvm_bare)},
        "per_case": per_case,
        "parallel": par,
        "parallel_speedup_2_vs_1": par[1]["steps_per_s"] / par[0]["steps_per_s"],
    }
    print(json.dumps(result, indent=1))
    if args.quick:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scienceworld.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "scienceworld.md").write_text(render_md(result))


def render_md(r: dict) -> str:
    lines = [
        "# ScienceWorld-v0 vs bare scienceworld.ScienceWorldEnv",
        "",
        f"Machine: {r['machine']} (load average 1/5/15 min at start "
        f"{r['load_average_1_5_15min']['start']}, at end {r['load_average_1_5_15min']['end']}). "
        f"scienceworld {r['scienceworld']}. Command: `{r['command']}`.",
        f"Workload: gold paths of {len(r['workload'])} train variations "
        f"({sum(w['steps'] for w in r['workload'])} steps), replayed by every mode, "
        f"{r['repeats']} repeats. Times are means; ratios are medians of per-episode ratios "
        "(each episode run by every mode back to back). Same final scores in every mode "
        "(checked).",
        "",
        "| mode | ms / step | s / reset | step time vs bare: total (paired median) "
        "| reset time vs bare: total (paired median) | step time vs raw_same_calls: total "
        "(paired median) | java RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    base, raw = r["modes"]["bare"], r["modes"]["raw_same_calls"]
    for name, s in r["modes"].items():
        ratio = r["ratios"].get(name)
        if ratio is None:
            cells = ["1 (baseline)", "1 (baseline)", "-"]
        else:
            cells = [
                f"{s['ms_per_step'] / base['ms_per_step']:.3f}x "
                f"({ratio['step_time_vs_bare']:.3f}x)",
                f"{s['s_per_reset'] / base['s_per_reset']:.3f}x "
                f"({ratio['reset_time_vs_bare']:.3f}x)",
                f"{s['ms_per_step'] / raw['ms_per_step']:.3f}x "
                f"({ratio['step_time_vs_raw_same_calls']:.3f}x)",
            ]
        lines.append(
            f"| {name} | {s['ms_per_step']:.2f} | {s['s_per_reset']:.3f} | "
            + " | ".join(cells) + f" | {s['java_rss_mb_after_workload']:.0f} |"
        )
    lines += [
        "",
        "Wrapper cost, measured directly (step wall time minus time inside simulator calls "
        "on the worker thread; thread handoff, info dict, admissible-action bounding, expert "
        "bookkeeping): "
        + ", ".join(f"{n} {s['wrapper_ms_per_step_outside_simulator']:.2f} ms/step "
                    f"({s['wrapper_ms_per_step_outside_simulator'] / s['ms_per_step']:.1%})"
                    for n, s in r["modes"].items()
                    if "wrapper_ms_per_step_outside_simulator" in s) + ".",
    ]
    lines += [
        "",
        "total = ratio of summed times over the whole workload (what steps/s compares); "
        "paired median = median over episodes of the per-episode time ratio (robust to a "
        "burst of background load, but weights a 4-step episode like a 30-step one).",
    ]
    if "per_case" in r:
        names = list(r["modes"])
        lines += ["", "Per episode, ms / step (mean over repeats):", "",
                  "| task:variation | steps | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        steps = {f"{w['task']}:{w['variation']}": w["steps"] for w in r["workload"]}
        for case, row in r["per_case"].items():
            lines.append(f"| {case} | {steps[case]} | "
                         + " | ".join(f"{row[n]['ms_per_step']:.1f}" for n in names) + " |")
    j = r["jvm_start_s"]
    lines += [
        "",
        f"JVM start (launch + py4j handshake + PythonInterface): ours median "
        f"{j['ours_median']:.2f} s ({', '.join(f'{x:.2f}' for x in j['ours'])}); bare "
        f"constructor median {j['bare_median']:.2f} s.",
        "",
        "Parallel processes (ours, defaults; each process its own JVM, replaying the workload):",
        "",
        "| processes | steps | wall s | steps/s |",
        "|---|---|---|---|",
    ]
    for p in r["parallel"]:
        lines.append(f"| {p['processes']} | {p['steps']} | {p['wall_s']:.1f} | "
                     f"{p['steps_per_s']:.1f} |")
    lines += [
        "",
        f"2 vs 1 process throughput: {r['parallel_speedup_2_vs_1']:.2f}x "
        "(2 cores shared with other jobs; each process is a Python client plus a JVM).",
        "",
        "Notes: `bare` fetches the full valid-action list element by element over py4j and "
        "also asks for look/inventory/task text on every step; ours joins the list inside the "
        "JVM in one round trip and asks only for the step text, score, completion and the "
        "list. The valid-action query dominates step time: compare `ours_no_actions`. Every "
        "mode runs its own JVM, and per-episode times of the same actions differ by up to "
        "2x between JVM instances (JIT and GC state; bare uses the JVM's default G1 with a "
        "heap limit of 1/4 of RAM, ours `-Xmx2g -XX:+UseSerialGC`), so step-time ratios "
        "within about +-10% of 1 are noise on this loaded machine; the directly measured "
        "wrapper cost above is the precise number. The 1 vs 2 process row measures "
        "contention, not scaling: the 2 cores were already oversubscribed by other jobs.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
