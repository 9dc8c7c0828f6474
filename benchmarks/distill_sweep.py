"""A restartable sweep of training runs: one (method, seed) at a time, results as they land.

    python benchmarks/distill_sweep.py configs/demo/sokoban_sweep.yaml            # run / resume
    python benchmarks/distill_sweep.py configs/demo/sokoban_sweep.yaml --only opd_full --seeds 0
    python benchmarks/distill_sweep.py configs/demo/sokoban_sweep.yaml --report   # tables + plot

The sweep file names a base train config, the training seeds and the runs, each a set of
``--set`` overrides on the base::

    name: sokoban
    base: configs/demo/sokoban_base.yaml
    seeds: [0, 1, 2]
    random_baseline: true          # uniform-random policy on the same held-out tasks
    reference: untrained           # the run every other is compared with (default untrained)
    common: {env.eval_options.split: test}   # overrides for every run and the random policy
    runs:
      untrained: {steps: 0}        # steps: 0 runs are seed-independent: played once
      sft_expert: {loss.method: sft_expert}
      opd_full: {loss.method: opd, loss.estimator: full}
    compare: [[opd_full, sft_expert]]   # optional: extra paired differences in the report

Each run trains in ``runs/sweep/<name>/<run>/seed<k>`` (``agentdistill train``, resumed from
its last checkpoint when one exists) and, when it finishes, writes
``benchmarks/results/sweep/<name>/<run>_seed<k>.json``: the final held-out success, the
per-task outcomes (for paired confidence intervals), the learning curve, token counts, wall
time, the load average before and after and the git commit. A run whose results file exists
is skipped, so a stopped sweep continues where it was. ``--report`` writes ``summary.md``,
``summary.json`` and ``curves.png`` from whatever results exist: per method the mean over
training seeds with a 95% CI, each seed's value, and the difference to the reference run
(the untrained student, or a warm start every run begins from) and to the random policy with a 95% bootstrap CI (tasks and seeds resampled);
``compare`` adds the same paired difference for each listed pair of runs (say, a
distillation method against the imitation control trained for as many steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from machine import cpu_model, git_commit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sweep"


def _bad_input(message: str) -> None:
    """One line on stderr and exit code 2, like the CLI."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_sweep(path: Path) -> dict[str, Any]:
    """Read and check a sweep file; exits with one line on a bad one."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        _bad_input(f"cannot read sweep file {path}: {exc}")
    if not isinstance(spec, dict) or not {"name", "base", "runs"} <= set(spec):
        _bad_input(f"{path} must be a mapping with name, base and runs (see this script's docstring)")
    bad = [k for k, v in (spec["runs"] or {}).items() if not isinstance(v, dict)] \
        if isinstance(spec["runs"], dict) else ["runs"]
    if bad or not spec["runs"]:
        _bad_input(f"{path}: runs must map each run name to a mapping of --set overrides "
                 f"(bad: {', '.join(map(str, bad)) or 'empty'})")
    if not (ROOT / spec["base"]).is_file() and not Path(spec["base"]).is_file():
        _bad_input(f"{path}: base config {spec['base']} not found")
    spec.setdefault("seeds", [0])
    spec.setdefault("random_baseline", False)
    spec.setdefault("common", {})
    spec.setdefault("reference", "untrained")
    if spec["reference"] not in spec["runs"] and spec["reference"] != "untrained":
        _bad_input(f"{path}: reference {spec['reference']!r} is not one of the runs")
    spec["compare"] = spec.get("compare") or []  # absent or empty: no extra comparisons
    known = {*spec["runs"], "random", spec["reference"]}
    pairs = spec["compare"] if isinstance(spec["compare"], list) else [spec["compare"]]
    def is_pair(p: Any) -> bool:
        return isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x in known for x in p)

    if not all(is_pair(p) for p in pairs):
        _bad_input(f"{path}: compare must list pairs [run_a, run_b] of run names "
                   f"({', '.join(sorted(map(str, known)))}); got {spec['compare']!r}")
    if not isinstance(spec["common"], dict):
        _bad_input(f"{path}: common must be a mapping of --set overrides")
    spec["base"] = str((ROOT / spec["base"]).resolve()) if not Path(spec["base"]).is_absolute() else spec["base"]
    # A typo in an override ends here, in one line, not hours later in a run or the baseline.
    from agentdistill.distill.config import ConfigError, load_config

    for run in spec["runs"]:
        try:
            load_config(spec["base"], overrides=run_overrides(spec, run))
        except ConfigError as exc:
            _bad_input(f"{path}: run {run}: {str(exc).splitlines()[0]}")
    return spec


def run_overrides(spec: dict[str, Any], run: str) -> dict[str, Any]:
    """The --set overrides of one run: the sweep's common ones, then the run's own."""
    return {**{str(k): v for k, v in spec["common"].items()},
            **{str(k): v for k, v in spec["runs"][run].items()}}


def _run_seeds(spec: dict[str, Any], run: str) -> list[int]:
    steps = run_overrides(spec, run).get("steps")
    return [spec["seeds"][0]] if steps == 0 else list(spec["seeds"])


def result_path(spec: dict[str, Any], run: str, seed: int) -> Path:
    return RESULTS / spec["name"] / f"{run}_seed{seed}.json"


def run_dir(spec: dict[str, Any], run: str, seed: int) -> Path:
    return ROOT / "runs" / "sweep" / spec["name"] / run / f"seed{seed}"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def collect_result(spec: dict[str, Any], run: str, seed: int, wall_s: float,
                   load_before: tuple[float, ...]) -> dict[str, Any]:
    """The results record of a finished run, read from its run dir."""
    out = run_dir(spec, run, seed)
    history = _read_jsonl(out / "metrics.jsonl")
    evals = [h for h in history if h.get("kind") == "eval"]
    if not evals:
        raise RuntimeError(f"{out}: no eval records in metrics.jsonl")
    final = evals[-1]
    episodes = _read_jsonl(out / "eval" / f"{final['tag']}.jsonl")
    wins = {str(e["seed"]): bool(e["won"]) for e in episodes}
    # What the final policy did, so a result can be read without the (uncommitted) run dir.
    actions = Counter(str(t.get("action")) for e in episodes for t in e["turns"])
    behaviour = {**{k: final[k] for k in ("invalid_action_rate", "format_valid_rate", "mean_turns",
                                          "expert_match_rate") if k in final},
                 "top_actions": dict(actions.most_common(8))}
    train = [h for h in history if h.get("kind") == "train"]
    # Learning curve: held-out success against optimizer steps and cumulative teacher tokens.
    cum_tokens, curve = 0, []
    tokens_at = {}
    for h in train:
        cum_tokens += int(h.get("train_tokens", 0) or 0)
        tokens_at[int(h["step"]) + 1] = cum_tokens
    for e in evals:
        curve.append({"step": int(e["step"]), "tag": e["tag"], "success_rate": e["success_rate"],
                      "teacher_tokens": tokens_at.get(int(e["step"]), 0),
                      "kl_exact": e.get("kl_exact")})
    return {
        "sweep": spec["name"], "run": run, "seed": seed, "overrides": run_overrides(spec, run),
        "final_success": final["success_rate"], "final_tag": final["tag"],
        "final_kl_exact": final.get("kl_exact"), "task_wins": wins, "final_behaviour": behaviour,
        "teacher_success_rate": next((h["teacher_success_rate"] for h in evals
                                      if "teacher_success_rate" in h), None),
        "weight_dtype": _read_json(out / "summary.json").get("weight_dtype"),
        "steps": len(train), "gen_tokens": sum(int(h.get("gen_tokens", 0) or 0) for h in train),
        "train_tokens": cum_tokens, "curve": curve,
        "wall_s": wall_s, "load_before": list(load_before), "load_after": list(os.getloadavg()),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def train_one(spec: dict[str, Any], run: str, seed: int) -> None:
    """Train (or resume) one run and write its results file."""
    out = run_dir(spec, run, seed)
    sets = {**run_overrides(spec, run), "seed": seed, "output_dir": str(out)}
    cmd = [sys.executable, "-m", "agentdistill.cli", "train", spec["base"]]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
    if (out / "checkpoints" / "latest").is_file():
        cmd += ["--resume", str(out)]
    elif out.exists():
        cmd += ["--overwrite"]  # a run stopped before its first checkpoint starts over
    out.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    print(f"[sweep] {run} seed {seed}: {' '.join(cmd[3:])}", flush=True)
    t0 = time.perf_counter()
    with open(out.parent / f"seed{seed}.log", "a", encoding="utf-8") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"error: {run} seed {seed} failed (exit {proc.returncode}); log: {out.parent / f'seed{seed}.log'}")
    res = collect_result(spec, run, seed, time.perf_counter() - t0, load_before)
    path = result_path(spec, run, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1), encoding="utf-8")
    tmp.replace(path)
    print(f"[sweep] {run} seed {seed}: success {res['final_success']:.3f} in {res['wall_s'] / 60:.1f} min",
          flush=True)


def random_baseline(spec: dict[str, Any]) -> None:
    """Uniform-random policy on the held-out tasks of the base config plus the sweep's
    common overrides (the tasks every run is evaluated on), one run per seed."""
    from agentdistill.agents.policies import RandomPolicy
    from agentdistill.agents.rollout import registered_max_turns, rollout
    from agentdistill.distill.config import load_config

    cfg = load_config(spec["base"], overrides=dict(spec["common"]))
    max_turns = cfg.env.max_turns or registered_max_turns(cfg.env.id)
    for seed in spec["seeds"]:
        path = result_path(spec, "random", seed)
        if path.is_file():
            continue
        t0, load_before = time.perf_counter(), os.getloadavg()
        eps = rollout(RandomPolicy(seed=seed), cfg.env.id, cfg.eval.seed_list(),
                      options=dict(cfg.env.eval_options), max_turns=max_turns,
                      env_kwargs=dict(cfg.env.kwargs), progress=False)
        wins = {str(e.seed): bool(e.won) for e in eps}
        res = {"sweep": spec["name"], "run": "random", "seed": seed,
               "final_success": float(np.mean(list(wins.values()))), "task_wins": wins,
               "steps": 0, "curve": [], "wall_s": time.perf_counter() - t0,
               "load_before": list(load_before), "load_after": list(os.getloadavg()),
               "commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval over training seeds (NaN half-width for one seed)."""
    a = np.asarray(values, dtype=np.float64)
    m = float(a.mean())
    if len(a) < 2:
        return m, math.nan, math.nan
    half = T95.get(len(a) - 1, 1.96) * float(a.std(ddof=1)) / math.sqrt(len(a))
    return m, m - half, m + half


def paired_diff_ci(a: list[dict[str, bool]], b: list[dict[str, bool]], n_boot: int = 10_000,
                   seed: int = 0) -> tuple[float, float, float]:
    """Mean success difference a - b on shared tasks, with a 95% bootstrap CI that
    resamples the training seeds of each side and the tasks (paired across sides)."""
    tasks = sorted(set.intersection(*(set(x) for x in a + b)))
    if not tasks:
        return math.nan, math.nan, math.nan
    A = np.array([[x[t] for t in tasks] for x in a], dtype=np.float64)  # [seeds_a, tasks]
    B = np.array([[x[t] for t in tasks] for x in b], dtype=np.float64)  # [seeds_b, tasks]
    point = float(A.mean() - B.mean())
    rng = np.random.default_rng(seed)
    n = len(tasks)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        ti = rng.integers(0, n, n)
        ai = rng.integers(0, len(A), len(A))
        bi = rng.integers(0, len(B), len(B))
        diffs[i] = A[np.ix_(ai, ti)].mean() - B[np.ix_(bi, ti)].mean()
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return point, float(lo), float(hi)


def report(spec: dict[str, Any]) -> Path:
    """summary.md / summary.json / curves.png from the results present."""
    folder = RESULTS / spec["name"]
    by_run: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*_seed*.json")):
        res = json.loads(path.read_text(encoding="utf-8"))
        by_run.setdefault(res["run"], []).append(res)
    if not by_run:
        _bad_input(f"no results in {folder} yet; run the sweep first (without --report)")
    reference = spec.get("reference", "untrained")
    order = [r for r in [reference, "random", *spec["runs"]] if r in by_run]
    order = list(dict.fromkeys(order))
    rows, summary = [], {}
    refs = {k: [r["task_wins"] for r in by_run[k]] for k in (reference, "random") if k in by_run}
    for run in order:
        results = sorted(by_run[run], key=lambda r: r["seed"])
        m, lo, hi = mean_ci([r["final_success"] for r in results])
        ci95 = None if math.isnan(lo) else [lo, hi]  # JSON has no NaN: one seed has no interval
        entry: dict[str, Any] = {"mean": m, "ci95": ci95, "n_seeds": len(results),
                                 "per_seed": {r["seed"]: r["final_success"] for r in results},
                                 "tasks": len(results[0]["task_wins"]),
                                 "steps": results[0].get("steps"),
                                 "gen_tokens": [r.get("gen_tokens") for r in results],
                                 "wall_min": [round(r["wall_s"] / 60, 1) for r in results]}
        for ref, ref_wins in refs.items():
            if ref != run:
                entry[f"vs_{ref}"] = paired_diff_ci([r["task_wins"] for r in results], ref_wins)
        summary[run] = entry
        ci = f"[{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else "(1 seed)"
        vs = " | ".join(
            (lambda d: f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]")(entry[f"vs_{ref}"]) if f"vs_{ref}" in entry
            else "—" for ref in (reference, "random"))
        entry["weights"] = [_weight_dtype(r) for r in results]
        seeds = ", ".join(f"{v:.3f}" for v in entry["per_seed"].values())
        weights = ", ".join(_DTYPE_SHORT.get(str(w), str(w)) for w in entry["weights"])
        rows.append(f"| {run} | {m:.3f} {ci} | {seeds} | {weights} | {vs} | {entry['steps']} | "
                    f"{', '.join(str(w) for w in entry['wall_min'])} |")
    cpus = Counter(f"{r['machine']['cpu']}, {r['machine']['cores']} cores"
                   for rs in by_run.values() for r in rs if r.get("machine"))
    machines = "; ".join(f"{cpu} ({n})" for cpu, n in cpus.most_common()) or "not recorded"
    loads = [r["load_before"][0] for rs in by_run.values() for r in rs] + \
            [r["load_after"][0] for rs in by_run.values() for r in rs]
    md = [f"# Sweep `{spec['name']}`", "",
          f"Base config `{Path(spec['base']).relative_to(ROOT) if str(spec['base']).startswith(str(ROOT)) else spec['base']}`; "
          f"regenerate with `python benchmarks/distill_sweep.py <sweep file>` then `--report`. "
          f"Machines (results files): {machines}; 1-minute load average during the runs "
          f"{min(loads):.1f}-{max(loads):.1f}." if loads else "", "",
          f"| run | held-out success, mean [95% CI over seeds] | per seed | weights per seed | "
          f"vs {reference} (95% CI) | vs random (95% CI) | steps | wall min |",
          "| --- | --- | --- | --- | --- | --- | ---: | --- |", *rows, ""]
    pairs = [(a, b) for a, b in spec["compare"] if a in by_run and b in by_run]
    if pairs:
        md += ["| comparison | difference in held-out success (95% CI, tasks and seeds resampled) "
               "| seeds |", "| --- | --- | --- |"]
        summary["comparisons"] = {}
        for a, b in pairs:
            d = paired_diff_ci([r["task_wins"] for r in by_run[a]], [r["task_wins"] for r in by_run[b]])
            summary["comparisons"][f"{a} - {b}"] = list(d)
            md.append(f"| {a} - {b} | {d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}] | "
                      f"{len(by_run[a])} vs {len(by_run[b])} |")
        md.append("")
    (folder / "summary.md").write_text("\n".join(md), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    _plot(by_run, folder / "curves.png", reference)
    return folder / "summary.md"


_DTYPE_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "n/a": "—"}


def _weight_dtype(result: dict[str, Any]) -> str:
    """The student's weight dtype in one results file: recorded by the trainer, else (older
    files, written before 'auto' existed) the dtype the run's overrides asked for."""
    if result.get("run") == "random":
        return "n/a"
    return result.get("weight_dtype") or result.get("overrides", {}).get("model.dtype", "float32")


def _with_start(curve: list[dict[str, Any]], reference: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``curve`` with the reference's success as its step-0 point when it has none."""
    if not reference or any(c["step"] == 0 for c in curve):
        return curve
    start = float(np.mean([r["final_success"] for r in reference]))
    return [{"step": 0, "teacher_tokens": 0, "success_rate": start}, *curve]


def _plot(by_run: dict[str, list[dict[str, Any]]], path: Path, reference: str = "untrained") -> None:
    """Success vs step and vs teacher tokens; every trained run starts at step 0 from the
    reference's weights, so the reference's success is each curve's first point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (run, results) in enumerate(sorted(by_run.items())):
        if not any(r.get("curve") for r in results):
            if run in (reference, "random"):
                m = float(np.mean([r["final_success"] for r in results]))
                for ax in axes:
                    ax.axhline(m, ls="--", lw=1, color="grey" if run == "random" else "black", label=run)
            continue
        color = colors[i % len(colors)]
        for ax, key in zip(axes, ("step", "teacher_tokens"), strict=True):
            curves = [_with_start(r["curve"], by_run.get(reference)) for r in results]
            xs = sorted({c[key] for curve in curves for c in curve})
            ys = [[c["success_rate"] for curve in curves for c in curve if c[key] == x] for x in xs]
            mean = [float(np.mean(y)) for y in ys]
            ax.plot(xs, mean, marker="o", color=color, label=run)
            if len(results) > 1:
                ci = [mean_ci(y)[1:] if len(y) > 1 else (m, m) for y, m in zip(ys, mean, strict=True)]
                ax.fill_between(xs, [c[0] for c in ci], [c[1] for c in ci], color=color, alpha=0.15)
    for ax, label in zip(axes, ("optimizer step", "teacher-scored tokens"), strict=True):
        ax.set_xlabel(label)
        ax.set_ylabel("held-out success")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=7)
    fig.suptitle("held-out success: mean over training seeds, 95% CI band")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--only", nargs="*", default=None, help="run names to do (default: all)")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="training seeds (default: the file's)")
    ap.add_argument("--report", action="store_true", help="only write the summary from existing results")
    args = ap.parse_args(argv)
    spec = load_sweep(args.sweep)
    if not args.report:
        unknown = set(args.only or []) - set(spec["runs"]) - {"random"}
        if unknown:
            _bad_input(f"unknown run(s) {sorted(unknown)}; the sweep has {sorted(spec['runs'])}")
        if spec["random_baseline"] and (args.only is None or "random" in args.only):
            random_baseline(spec)
        for run in spec["runs"]:
            if args.only is not None and run not in args.only:
                continue
            for seed in _run_seeds(spec, run):
                if args.seeds is not None and seed not in args.seeds:
                    continue
                if result_path(spec, run, seed).is_file():
                    print(f"[sweep] {run} seed {seed}: done, skipped", flush=True)
                    continue
                train_one(spec, run, seed)
                report(spec)
    print(report(spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
