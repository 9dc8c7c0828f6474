"""benchmarks/distill_sweep.py: sweep files, shared overrides, the random baseline's tasks,
the paired confidence intervals and a report that is valid JSON."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def sweep(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    module = importlib.import_module("distill_sweep")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    return module


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_common_overrides_come_first_and_runs_win(sweep, tmp_path):
    spec = sweep.load_sweep(_write(tmp_path, (
        "name: s\nbase: configs/demo/sokoban_base.yaml\n"
        "common: {eval.seeds.count: 3, model.dtype: bfloat16}\n"
        "runs:\n  a: {steps: 0}\n  b: {steps: 2, model.dtype: float32}\n")))
    assert sweep.run_overrides(spec, "a") == {"eval.seeds.count": 3, "model.dtype": "bfloat16", "steps": 0}
    assert sweep.run_overrides(spec, "b")["model.dtype"] == "float32"
    assert sweep._run_seeds(spec, "a") == [0]  # steps 0: seed-independent, played once


def test_bad_common_is_one_line_and_exit_2(sweep, tmp_path, capsys):
    path = _write(tmp_path, "name: s\nbase: configs/demo/sokoban_base.yaml\ncommon: [1]\nruns: {a: {}}\n")
    with pytest.raises(SystemExit) as exc:
        sweep.load_sweep(path)
    assert exc.value.code == 2
    assert "common must be a mapping" in capsys.readouterr().err


def test_bad_override_is_caught_before_any_run(sweep, tmp_path, capsys):
    path = _write(tmp_path, ("name: s\nbase: configs/demo/sokoban_base.yaml\n"
                             "common: {optim.lrr: 1.0}\nruns: {a: {steps: 0}}\n"))
    with pytest.raises(SystemExit) as exc:
        sweep.load_sweep(path)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "run a" in err and "lrr" in err and "Traceback" not in err


def test_random_baseline_plays_the_runs_held_out_tasks(sweep, tmp_path):
    """The random policy is evaluated on the split and seeds the common overrides give every
    run, not on the base config's validation tasks."""
    from agentdistill.agents.policies import RandomPolicy
    from agentdistill.agents.rollout import rollout

    spec = sweep.load_sweep(_write(tmp_path, (
        "name: s\nbase: configs/demo/sokoban_base.yaml\nseeds: [0]\nrandom_baseline: true\n"
        "common: {env.eval_options.split: test, eval.seeds: {start: 0, count: 6}}\nruns: {a: {steps: 0}}\n")))
    sweep.random_baseline(spec)
    res = json.loads(sweep.result_path(spec, "random", 0).read_text())
    expected = {str(e.seed): bool(e.won) for e in rollout(
        RandomPolicy(seed=0), "agentdistill/Sokoban-v0", list(range(6)), options={"split": "test"},
        max_turns=15, progress=False)}
    assert res["task_wins"] == expected
    assert res["final_success"] == pytest.approx(sum(expected.values()) / 6)


def test_paired_diff_ci_excludes_zero_only_for_a_real_gap(sweep):
    tasks = [str(i) for i in range(128)]
    better = [{t: int(t) % 2 == 0 for t in tasks}] * 3            # 50 %
    worse = [{t: int(t) % 10 == 0 for t in tasks}]                 # 10 %, a subset of the wins
    point, lo, hi = sweep.paired_diff_ci(better, worse)
    assert point == pytest.approx((64 - 13) / 128) and lo > 0.25 and hi < 0.55
    point, lo, hi = sweep.paired_diff_ci(better, better)
    assert point == 0.0 and lo == 0.0 and hi == 0.0


def test_report_with_one_seed_is_valid_json(sweep, tmp_path):
    spec = sweep.load_sweep(_write(tmp_path, "name: s\nbase: configs/demo/sokoban_base.yaml\nruns: {a: {steps: 1}}\n"))
    folder = sweep.RESULTS / "s"
    folder.mkdir(parents=True)
    for run, wins in (("a", [True, False, True, True]), ("untrained", [False, False, True, False])):
        (folder / f"{run}_seed0.json").write_text(json.dumps({
            "run": run, "seed": 0, "final_success": sum(wins) / 4, "steps": 1,
            "task_wins": {str(i): w for i, w in enumerate(wins)}, "curve": [], "wall_s": 60.0,
            "load_before": [0.1, 0, 0], "load_after": [1.9, 0, 0]}))
    sweep.report(spec)
    text = (folder / "summary.json").read_text()
    assert "NaN" not in text
    summary = json.loads(text)
    assert summary["a"]["ci95"] is None and summary["a"]["mean"] == 0.75
    assert summary["a"]["vs_untrained"][0] == pytest.approx(0.5)
    assert "| a | 0.750 (1 seed)" in (folder / "summary.md").read_text()



def test_a_warm_start_reference_replaces_untrained(sweep, tmp_path, capsys):
    """``reference: start``: every run is compared with the warm start it began from, whose
    success is also the first point of each learning curve."""
    text = "name: w\nbase: configs/demo/sokoban_base.yaml\nreference: start\n" \
           "runs: {start: {steps: 0}, a: {steps: 1}}\n"
    spec = sweep.load_sweep(_write(tmp_path, text))
    folder = sweep.RESULTS / "w"
    folder.mkdir(parents=True)
    curve = [{"step": 1, "teacher_tokens": 9, "success_rate": 0.75}]
    for run, wins in (("a", [True, True, True, False]), ("start", [False, True, False, False])):
        (folder / f"{run}_seed0.json").write_text(json.dumps({
            "run": run, "seed": 0, "final_success": sum(wins) / 4, "steps": 1,
            "task_wins": {str(i): w for i, w in enumerate(wins)},
            "curve": curve if run == "a" else [], "wall_s": 60.0,
            "load_before": [0.1, 0, 0], "load_after": [1.9, 0, 0]}))
    sweep.report(spec)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["a"]["vs_start"][0] == pytest.approx(0.5) and "vs_untrained" not in summary["a"]
    assert "vs start (95% CI)" in (folder / "summary.md").read_text()
    starts = sweep._with_start(curve, [{"final_success": 0.25}])
    assert [(c["step"], c["success_rate"]) for c in starts] == [(0, 0.25), (1, 0.75)]
    with pytest.raises(SystemExit) as exc:
        sweep.load_sweep(_write(tmp_path, text.replace("reference: start", "reference: strat")))
    assert exc.value.code == 2 and "strat" in capsys.readouterr().err


def test_compare_pairs_get_a_paired_difference(sweep, tmp_path, capsys):
    text = "name: c\nbase: configs/demo/sokoban_base.yaml\nruns: {a: {steps: 1}, b: {steps: 1}}\n"
    spec = sweep.load_sweep(_write(tmp_path, text + "compare: [[a, b]]\n"))
    folder = sweep.RESULTS / "c"
    folder.mkdir(parents=True)
    for run, seed, wins in (("a", 0, [1, 1, 1, 0]), ("a", 1, [1, 1, 0, 0]), ("b", 0, [0, 1, 0, 0])):
        (folder / f"{run}_seed{seed}.json").write_text(json.dumps({
            "run": run, "seed": seed, "final_success": sum(wins) / 4, "steps": 1,
            "task_wins": {str(i): bool(w) for i, w in enumerate(wins)}, "curve": [],
            "wall_s": 60.0, "load_before": [0.1, 0, 0], "load_after": [1.9, 0, 0]}))
    sweep.report(spec)
    diff = json.loads((folder / "summary.json").read_text())["comparisons"]["a - b"]
    assert diff[0] == pytest.approx(0.625 - 0.25) and diff[1] <= diff[0] <= diff[2]
    assert "| a - b | +0.375 [" in (folder / "summary.md").read_text()
    with pytest.raises(SystemExit) as exc:
        sweep.load_sweep(_write(tmp_path, text + "compare: [[a, c]]\n"))
    assert exc.value.code == 2 and "compare must list pairs" in capsys.readouterr().err
    assert sweep.load_sweep(_write(tmp_path, text + "compare:\n"))["compare"] == []  # empty: none
    with pytest.raises(SystemExit):  # malformed, not a traceback
        sweep.load_sweep(_write(tmp_path, text + "compare: [[[a], b]]\n"))


SWEEPS = sorted(p for p in (ROOT / "configs" / "demo").glob("*.yaml") if not p.name.endswith("_base.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_shipped_sweeps_give_valid_configs_on_the_test_split(sweep, path):
    """Every run of every shipped sweep is a valid train config, evaluated on test tasks."""
    from agentdistill.distill.config import load_config

    spec = sweep.load_sweep(path)
    for run in spec["runs"]:
        cfg = load_config(spec["base"], overrides=sweep.run_overrides(spec, run))
        assert cfg.env.eval_options["split"] == "test", (path.name, run)
        assert len(cfg.eval.seed_list()) >= 64, (path.name, run)
