"""Evaluation protocol: task lists played once each, samples and pass@k, Wilson
intervals, the settings recorded in summary.json (issue 14)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from agentdistill import evaluation_protocol as protocol
from agentdistill.agents.trajectory import load_jsonl
from agentdistill.cli import app

runner = CliRunner()


def test_wilson_interval_known_values():
    assert protocol.wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert protocol.wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert protocol.wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    lo, hi = protocol.wilson_interval(1, 64)
    assert lo > 0 and hi == pytest.approx(0.08334, abs=1e-4)


def test_pass_at_k():
    assert protocol.pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert protocol.pass_at_k(5, 1, 5) == 1.0 and protocol.pass_at_k(5, 0, 3) == 0.0
    assert protocol.pass_at_k(10, 3, 2) == pytest.approx(1 - 21 / 45)
    with pytest.raises(ValueError):
        protocol.pass_at_k(2, 1, 3)


@pytest.mark.parametrize(("env_id", "count"), [
    ("agentdistill/Sokoban-v0", 500),
    ("agentdistill/WebShop-v0", 500),
    ("agentdistill/ScienceWorld-v0", 1819),
])
def test_all_tasks_lists_each_task_once(env_id, count):
    pytest.importorskip("bm25s")
    tasks = protocol.all_tasks(env_id, "test")
    assert len(tasks) == count
    assert len({(t.seed, json.dumps(t.options, sort_keys=True)) for t in tasks}) == count
    assert len({t.task_id for t in tasks}) == count


def test_all_tasks_alfworld_games():
    pytest.importorskip("textworld")
    from agentdistill.envs.alfworld.env import ALFWorldEnv

    tasks = protocol.all_tasks("agentdistill/ALFWorld-v0", "test")
    games = ALFWorldEnv().games("valid_unseen")
    assert [t.options["task_id"] for t in tasks] == [g.game_id for g in games]
    assert {t.task_type for t in tasks} == {g.task_type for g in games}


def test_shipped_scienceworld_stratified_list_is_reproducible():
    shipped = protocol.load_tasks(
        protocol.TASKLIST_DIR / "scienceworld-test-stratified.jsonl")
    made = protocol.stratify(protocol.all_tasks("agentdistill/ScienceWorld-v0", "test"), 5)
    assert [t.to_dict() for t in shipped] == [t.to_dict() for t in made]
    per_type = {}
    for t in shipped:
        per_type[t.task_type] = per_type.get(t.task_type, 0) + 1
    assert len(per_type) == 30 and max(per_type.values()) == 5 and len(shipped) == 149


def test_task_files_round_trip_and_bad_files(tmp_path):
    tasks = protocol.all_tasks("agentdistill/Sokoban-v0", "test")[:3]
    path = protocol.save_tasks(tasks, tmp_path / "t.jsonl")
    assert protocol.load_tasks(path) == tasks
    (tmp_path / "list.json").write_text(json.dumps([t.to_dict() for t in tasks]))
    assert protocol.load_tasks(tmp_path / "list.json") == tasks
    (tmp_path / "bad.jsonl").write_text('{"seed": -1, "options": {}}\n')
    with pytest.raises(ValueError, match="seed"):
        protocol.load_tasks(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no tasks"):
        protocol.load_tasks(tmp_path / "empty.jsonl")


def test_rollout_task_options_play_different_tasks_in_one_batch():
    pytest.importorskip("bm25s")
    from agentdistill.agents.policies import ExpertPolicy

    tasks = protocol.all_tasks("agentdistill/WebShop-v0", "test")[:6]
    eps = protocol.play(ExpertPolicy(), "agentdistill/WebShop-v0", tasks, batch_size=4)
    assert [e.task_id for e in eps] == [t.task_id for t in tasks]
    assert all(e.won for e in eps)


def _eval(*args):
    return runner.invoke(app, ["eval", "--no-progress", *args])


def test_cli_all_tasks_plays_every_test_goal_once(tmp_path):
    # before: --episodes N drew N seeds, i.e. goals with replacement
    pytest.importorskip("bm25s")
    out = tmp_path / "ws.jsonl"
    res = _eval("--env", "agentdistill/WebShop-v0", "--policy", "expert", "--all-tasks",
                "--batch-size", "32", "--out", str(out))
    assert res.exit_code == 0, res.output
    eps = load_jsonl(out)
    assert sorted(e.task_id for e in eps) == sorted(f"webshop-{i}" for i in range(500))
    summary = json.loads((tmp_path / "ws.summary.json").read_text())
    rows = summary["results"]
    assert rows["all"]["tasks"] == 500 and len(rows) == 6  # all + five categories
    lo, hi = rows["all"]["ci95"]
    assert lo <= rows["all"]["success_rate"] <= hi
    p = summary["protocol"]
    assert p["tasks"] == "all" and p["split"] == "test" and p["max_turns"] == 15
    assert p["data_source"].startswith("synthetic") and p["sampling"]["temperature"] == 0.0
    assert {"agentdistill_version", "git", "dtype", "device", "env_kwargs",
            "policy"} <= set(p)


def test_cli_samples_and_task_file(tmp_path):
    tasks = protocol.all_tasks("agentdistill/Sokoban-v0", "test")[:4]
    path = protocol.save_tasks(tasks, tmp_path / "four.jsonl")
    out = tmp_path / "r.jsonl"
    res = _eval("--policy", "random", "--tasks", str(path), "--samples", "3",
                "--env-kwargs", '{"render_style": "ragen"}', "--out", str(out))
    assert res.exit_code == 0, res.output
    eps = load_jsonl(out)
    assert len(eps) == 12 and sorted({e.group_id for e in eps}) == [0, 1, 2, 3]
    assert all("# _" not in e.turns[0].observation for e in eps)  # RAGEN's bare cells
    summary = json.loads((tmp_path / "r.summary.json").read_text())
    row = summary["results"]["all"]
    assert row["tasks"] == 4 and row["episodes"] == 12 and "pass@3" in row
    assert summary["protocol"]["samples"] == 3
    assert summary["protocol"]["env_kwargs"]["render_style"] == "ragen"
    assert "pass@3" in res.output
    # where it ran: wall times in a results file mean nothing without the machine and load
    host = summary["machine"]
    assert host["cpu"] and host["cpu_count"] >= 1 and summary["wall_s"] >= 0
    if hasattr(os, "getloadavg"):
        assert len(host["load_average_start"]) == 3 and len(host["load_average_end"]) == 3


def test_machine_without_load_average(monkeypatch):
    def unavailable():
        raise OSError("no load average here")

    monkeypatch.setattr(protocol.os, "getloadavg", unavailable)
    host = protocol.machine(None)
    assert host["load_average_start"] is None and host["load_average_end"] is None
    assert protocol.machine([1.234, 2.0, 3.0])["load_average_start"] == [1.23, 2.0, 3.0]


def test_cli_rejects_both_task_sources_and_bad_kwargs(tmp_path):
    res = _eval("--all-tasks", "--tasks", str(tmp_path / "x"), "--policy", "random")
    assert res.exit_code == 2 and "not both" in res.output
    res = _eval("--env-kwargs", "[1]", "--policy", "random")
    assert res.exit_code == 2 and "JSON object" in res.output


def test_api_evaluate_all_tasks_greedy_by_default():
    from agentdistill import evaluate

    res = evaluate("expert", "agentdistill/Sokoban-v0", tasks=protocol.all_tasks(
        "agentdistill/Sokoban-v0", "test")[:5], samples=2)
    assert res["tasks"] == 5 and res["episodes"] == 10 and res["pass@2"] == 1.0


def test_resume_split_and_play_replay_incomplete_groups():
    """A task with some of its samples finished is played again in full; ids and group ids
    of a resumed play are those of one uninterrupted play."""
    from agentdistill.agents.policies import ExpertPolicy

    env_id = "agentdistill/Sokoban-v0"
    tasks = [protocol.Task(f"seed-{s}", s) for s in (3, 4, 3, 5)]  # a repeated seed
    whole = protocol.play(ExpertPolicy(), env_id, tasks, samples=2)
    assert [e.episode_id for e in whole][:4] == [
        "Sokoban-v0-s3-g0", "Sokoban-v0-s3-g1", "Sokoban-v0-s4-g0", "Sokoban-v0-s4-g1"]
    finished = [whole[0], whole[1], whole[2], whole[5]]  # task 0 whole, task 1 and 2 halves
    kept, todo = protocol.resume_split(env_id, tasks, 2, finished)
    assert kept == whole[:2] and todo == [1, 2, 3]
    seen = []
    resumed = protocol.play(ExpertPolicy(), env_id, tasks, samples=2, finished=finished,
                            on_episode=seen.append)
    assert len(seen) == 6 and resumed[:2] == whole[:2]
    assert [(e.episode_id, e.group_id, e.seed) for e in resumed] == [
        (e.episode_id, e.group_id, e.seed) for e in whole]
    assert [e.to_dict() for e in resumed] == [e.to_dict() for e in whole]
    with pytest.raises(ValueError, match="not one of this run's tasks"):
        protocol.resume_split(env_id, tasks[:1], 2, finished)
