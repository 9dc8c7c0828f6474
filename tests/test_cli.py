"""CLI smoke tests: eval with expert/random/tiny-model policies, inspect, bad arguments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agents_support import get_tiny_lm
from typer.testing import CliRunner

from agentdistill.agents.trajectory import load_jsonl
from agentdistill.cli import app

runner = CliRunner()


def _eval(*args):
    return runner.invoke(app, ["eval", "--no-progress", *args])


def test_eval_expert_all_solved(tmp_path):
    out = tmp_path / "exp.jsonl"
    res = _eval("--policy", "expert", "--episodes", "5", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "success rate" in res.output and "1.000" in res.output
    eps = load_jsonl(out)
    assert len(eps) == 5 and all(e.won for e in eps)
    assert [e.seed for e in eps] == [0, 1, 2, 3, 4]
    summary = json.loads((tmp_path / "exp.summary.json").read_text())
    assert summary["results"]["all"]["success_rate"] == 1.0
    assert summary["results"]["all"]["episodes"] == 5 and not summary["interrupted"]


def test_eval_random_default_out_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _eval("--policy", "random", "--episodes", "3", "--seed", "10", "--batch-size", "2")
    assert res.exit_code == 0, res.output
    out = tmp_path / "runs" / "eval" / "Sokoban-v0-random.jsonl"
    eps = load_jsonl(out)
    assert [e.seed for e in eps] == [10, 11, 12]
    assert all(e.options == {"split": "test"} for e in eps)


def test_eval_tiny_model_dir(tmp_path):
    model, tok = get_tiny_lm()
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "tiny.jsonl"
    res = _eval(
        "--policy",
        str(tmp_path / "tiny"),
        "--episodes",
        "2",
        "--max-turns",
        "2",
        "--max-new-tokens",
        "6",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    eps = load_jsonl(out)
    assert len(eps) == 2 and all(e.num_turns == 2 for e in eps)
    assert all(1 <= len(t.response_ids) <= 6 for e in eps for t in e.turns)


def test_inspect(tmp_path):
    out = tmp_path / "e.jsonl"
    assert _eval("--policy", "expert", "--episodes", "2", "--out", str(out)).exit_code == 0
    res = runner.invoke(app, ["inspect", str(out)])
    assert res.exit_code == 0, res.output
    assert "Sokoban-v0-s0-g0" in res.output and "Sokoban-v0-s1-g0" in res.output
    assert "turn 0 [expert]" in res.output  # who acted, not "student"
    one = runner.invoke(app, ["inspect", str(out), "--episode", "Sokoban-v0-s1-g0"])
    assert one.exit_code == 0 and "Sokoban-v0-s0-g0" not in one.output
    summary = runner.invoke(app, ["inspect", str(out), "--summary"])
    assert summary.exit_code == 0 and "turn 0" not in summary.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "--env", "agentdistill/Nope-v0"], "agentdistill/Sokoban-v0"),
        (["eval", "--policy", "/no/such/model"], "no model directory"),
        (["eval", "--policy", "expert", "--split", "bogus"], "unknown split"),
        (["eval", "--policy", "expert", "--episodes", "0"], "episodes"),
        (["inspect", "/no/such/file.jsonl"], "no episode file"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, needle, tmp_path):
    res = runner.invoke(
        app, [*args] if args[0] == "inspect" else [*args, "--out", str(tmp_path / "x.jsonl")]
    )
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.replace("│", " ").split())  # undo rich's box wrapping
    assert needle in flat
    assert "Traceback" not in res.output


def test_inspect_bad_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    res = runner.invoke(app, ["inspect", str(bad)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_ctrl_c_keeps_finished_episodes(tmp_path, monkeypatch):
    from agentdistill.agents import policies

    real_act = policies.ExpertPolicy.act
    calls = []

    def act(self, requests):
        calls.append(len(requests))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_act(self, requests)

    monkeypatch.setattr(policies.ExpertPolicy, "act", act)
    out = tmp_path / "cut.jsonl"
    res = _eval("--policy", "expert", "--episodes", "8", "--out", str(out))
    assert res.exit_code == 130, res.output
    assert "interrupted" in res.output
    eps = load_jsonl(out)
    assert 0 < len(eps) < 8 and all(e.won for e in eps)
    assert not (tmp_path / "cut.jsonl.partial").exists()
    summary = json.loads((tmp_path / "cut.summary.json").read_text())
    assert summary["interrupted"] and summary["results"]["all"]["episodes"] == len(eps)


def test_llm_policy_defaults_prefix_and_answer_length(monkeypatch):
    """smollm2 gets the forced "<action>" start and short answers; other models do not."""
    from agentdistill import cli

    monkeypatch.setattr("agentdistill.agents.models.load_model", lambda *a, **k: get_tiny_lm())
    common = dict(seed=0, batch_size=2, temperature=0.0, top_p=1.0, history_k=2,
                  device="cpu", dtype="float32")
    small = cli.make_policy("smollm2", max_new_tokens=None, **common)
    assert small.response_prefix == "<action>" and small.sampling.max_new_tokens == 16
    other = cli.make_policy("org/model", max_new_tokens=None, **common)
    assert other.response_prefix == "" and other.sampling.max_new_tokens == 64
    off = cli.make_policy("smollm2", max_new_tokens=32, response_prefix="", **common)
    assert off.response_prefix == "" and off.sampling.max_new_tokens == 32


# --- runs never lose data (issue 11 section 5) -------------------------------------------
def _one_error_line(res) -> str:
    """The single ``Error: ...`` line a bad input must print on stderr (exit code 2)."""
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert "Traceback" not in res.output
    return lines[0]


def test_eval_refuses_existing_out_unless_overwrite(tmp_path):
    out = tmp_path / "e.jsonl"
    assert _eval("--policy", "expert", "--episodes", "2", "--out", str(out)).exit_code == 0
    before = out.read_bytes()
    line = _one_error_line(_eval("--policy", "random", "--episodes", "1", "--out", str(out)))
    assert "already exists" in line and "--overwrite" in line
    assert out.read_bytes() == before
    res = _eval("--policy", "random", "--episodes", "1", "--out", str(out), "--overwrite")
    assert res.exit_code == 0, res.output
    assert len(load_jsonl(out)) == 1
    assert json.loads((tmp_path / "e.summary.json").read_text())["episodes_requested"] == 1


def test_eval_default_out_twice_writes_a_numbered_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(3):
        assert _eval("--policy", "random", "--episodes", "1").exit_code == 0
    run_dir = tmp_path / "runs" / "eval"
    names = sorted(p.name for p in run_dir.glob("*.jsonl"))
    assert names == ["Sokoban-v0-random-2.jsonl", "Sokoban-v0-random-3.jsonl",
                     "Sokoban-v0-random.jsonl"]
    summary = json.loads((run_dir / "Sokoban-v0-random-3.summary.json").read_text())
    assert summary["episodes_file"].endswith("Sokoban-v0-random-3.jsonl")


def test_eval_crash_keeps_earlier_file_and_finished_episodes(tmp_path, monkeypatch):
    """--overwrite replaces the old file only at the end; a crash leaves it and a .partial."""
    from agentdistill.agents import policies

    out = tmp_path / "e.jsonl"
    assert _eval("--policy", "expert", "--episodes", "2", "--out", str(out)).exit_code == 0
    before = out.read_bytes()
    real_act, calls = policies.ExpertPolicy.act, []

    def act(self, requests):
        calls.append(1)
        if len(calls) == 8:
            raise RuntimeError("boom")
        return real_act(self, requests)

    monkeypatch.setattr(policies.ExpertPolicy, "act", act)
    res = _eval("--policy", "expert", "--episodes", "8", "--batch-size", "1", "--out", str(out),
                "--overwrite")
    assert isinstance(res.exception, RuntimeError)
    assert out.read_bytes() == before
    assert len(load_jsonl(tmp_path / "e.jsonl.partial")) >= 1


def test_eval_ctrl_c_before_any_episode_keeps_earlier_file(tmp_path, monkeypatch):
    from agentdistill.agents import policies

    out = tmp_path / "e.jsonl"
    assert _eval("--policy", "expert", "--episodes", "2", "--out", str(out)).exit_code == 0
    before = out.read_bytes()

    def act(self, requests):
        raise KeyboardInterrupt

    monkeypatch.setattr(policies.ExpertPolicy, "act", act)
    res = _eval("--policy", "expert", "--episodes", "4", "--out", str(out), "--overwrite")
    assert res.exit_code == 130 and "nothing written" in res.output
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.jsonl", "e.summary.json"]


def test_eval_killed_run_keeps_earlier_file(tmp_path):
    """A second run SIGKILLed mid-way leaves the first run's file byte for byte."""
    out = tmp_path / "e.jsonl"
    assert _eval("--policy", "expert", "--episodes", "2", "--out", str(out)).exit_code == 0
    before = out.read_bytes()
    partial = tmp_path / "e.jsonl.partial"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentdistill.cli", "eval", "--no-progress", "--policy", "random",
         "--episodes", "100000", "--batch-size", "1", "--out", str(out), "--overwrite"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (partial.exists() and partial.stat().st_size) and time.monotonic() < deadline:
            assert proc.poll() is None, "eval exited before writing an episode"
            time.sleep(0.2)
        assert partial.exists() and partial.stat().st_size
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert out.read_bytes() == before
    assert len(load_jsonl(partial)) >= 1


# --- one clear line for every bad input (issue 11 section 6) -----------------------------
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seed", "-1"], ["--seed", "greater than or equal to 0"]),
        (["--env", "CartPole-v1"], ["not a text environment", "agentdistill/Sokoban-v0"]),
        (["--env", "Sokoban-v0"], ["did you mean agentdistill/Sokoban-v0"]),
        (["--top-p", "5"], ["--top-p", "(0, 1]"]),
        (["--top-p", "0"], ["--top-p", "(0, 1]"]),
        (["--temperature", "-1"], ["--temperature"]),
        (["--episodes", "0"], ["--episodes"]),
        (["--episodes", "-3"], ["--episodes"]),
        (["--threads", "-1"], ["--threads"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--dtype", "float8"], ["--dtype", "float32"]),
        (["--split", "bogus"], ["unknown split", "valid_unseen"]),
    ],
)
def test_eval_bad_value_one_line_no_file(args, needles, tmp_path):
    out = tmp_path / "x.jsonl"
    line = _one_error_line(_eval("--policy", "random", "--episodes", "1", *args, "--out", str(out)))
    for needle in needles:
        assert needle in line
    assert list(tmp_path.iterdir()) == []  # no empty JSONL, no partial file


def test_eval_out_under_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    line = _one_error_line(_eval("--policy", "random", "--out", str(tmp_path / "f" / "x.jsonl")))
    assert "is a file, not a directory" in line


def test_eval_out_is_a_directory(tmp_path):
    line = _one_error_line(_eval("--policy", "random", "--out", str(tmp_path)))
    assert "is a directory" in line and "episodes.jsonl" in line


def test_eval_out_unwritable_sysfs():
    """/sys refuses new files even to root, so this runs under any user."""
    target = Path("/sys/agentdistill-test.jsonl")
    if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _can_create(target):
        pytest.skip("/sys is missing or writable here")
    line = _one_error_line(_eval("--policy", "random", "--out", str(target)))
    assert "cannot write" in line and "choose another --out" in line


def _can_create(path: Path) -> bool:
    try:
        path.touch()
    except OSError:
        return False
    path.unlink()
    return True


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores directory permissions, so chmod cannot make it unwritable")
def test_eval_out_unwritable_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = _one_error_line(_eval("--policy", "random", "--out", str(locked / "x.jsonl")))
    finally:
        locked.chmod(0o700)
    assert "cannot write" in line and "Permission denied" in line


def test_eval_real_process_prints_one_line(tmp_path):
    """The console entry point (not CliRunner): exit 2, one stderr line, no traceback."""
    res = subprocess.run(
        [sys.executable, "-m", "agentdistill.cli", "eval", "--no-progress", "--policy", "random",
         "--seed", "-1", "--out", str(tmp_path / "x.jsonl")],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("Error: ")
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"[" * 200_000 + b"\n", "nested too deeply"),
        (b"", "holds no episodes"),
        (b"\n\n", "holds no episodes"),
        (b"\xff\xfe\x00\x01binary", "not UTF-8"),
        (b"[1, 2]\n", "not an episode record"),
        (b'{"episode_id": "x"}\n', "not an episode record"),
    ],
)
def test_inspect_bad_file_one_line(content, needle, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    assert needle in _one_error_line(runner.invoke(app, ["inspect", str(bad)]))


def test_inspect_directory(tmp_path):
    assert "is a directory" in _one_error_line(runner.invoke(app, ["inspect", str(tmp_path)]))


@pytest.mark.parametrize(
    ("content", "sets", "needle"),
    [
        (b"steps: 1\nname: caf\xe9\n", [], "not UTF-8"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe", [], "not UTF-8"),
        (b"steps: 1\x00\x01\n", [], "not valid YAML"),
        (b"- a\n- b\n", ["steps=1"], "top level must be a mapping"),
        (b"5\n", ["steps=1"], "top level must be a mapping"),
        (b"just a string\n", [], "top level must be a mapping"),
        (b"steps: 1\n", ["optim.lr=[1,"], "not valid YAML"),
        (b"steps: 1\n", ["steps.x=1"], "steps is not a section"),
        (b"steps: 1\n", ["steps"], "KEY=VALUE"),
        (b"steps: 1\n", ["=1"], "KEY=VALUE"),
        (b"stepz: 1\n", [], "stepz: unknown key"),
        (b"steps: [\n", [], "not valid YAML"),
    ],
)
def test_train_bad_config_one_line(content, sets, needle, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    args = ["train", str(cfg)] + [a for s in sets for a in ("--set", s)]
    line = _one_error_line(runner.invoke(app, args))
    assert needle in line
    assert list(tmp_path.iterdir()) == [cfg]


def test_trainer_main_bad_set_value(tmp_path, capsys):
    from agentdistill.distill.trainer import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("steps: 1\n")
    assert main([str(cfg), "--set", "optim.lr=[1,"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not valid YAML" in err


# --- eval --resume: a long run survives being stopped ------------------------------------
def _stop_expert_at_call(monkeypatch, n: int, error: type[BaseException]) -> None:
    """Make the expert policy raise ``error`` on its ``n``-th batched call."""
    from agentdistill.agents import policies

    real_act, calls = policies.ExpertPolicy.act, []

    def act(self, requests):
        calls.append(1)
        if len(calls) == n:
            raise error("stopped")
        return real_act(self, requests)

    monkeypatch.setattr(policies.ExpertPolicy, "act", act)


def _episode_dicts(path):
    return [e.to_dict() for e in load_jsonl(path)]


def _whole_and_stopped(tmp_path, monkeypatch, name, call, error, batch_size):
    """An uninterrupted 8-episode expert run, and the same run written to ``name`` and
    stopped by ``error`` at the expert's ``call``-th batched call."""
    whole = tmp_path / "whole.jsonl"
    assert _eval("--policy", "expert", "--episodes", "8", "--out", str(whole)).exit_code == 0
    out = tmp_path / name
    with monkeypatch.context() as patch:
        _stop_expert_at_call(patch, call, error)
        res = _eval("--policy", "expert", "--episodes", "8", "--batch-size", str(batch_size),
                    "--out", str(out))
    return whole, out, res


def test_eval_resume_after_ctrl_c_equals_one_run(tmp_path, monkeypatch):
    whole, out, res = _whole_and_stopped(tmp_path, monkeypatch, "cut.jsonl", 6,
                                         KeyboardInterrupt, 2)
    assert res.exit_code == 130, res.output
    first = load_jsonl(out)
    assert 0 < len(first) < 8
    res = _eval("--policy", "expert", "--episodes", "8", "--batch-size", "2", "--out", str(out),
                "--resume")
    assert res.exit_code == 0, res.output
    assert f"{len(first)} episodes kept, {8 - len(first)} of 8 tasks left" in " ".join(
        res.output.split())
    assert _episode_dicts(out) == _episode_dicts(whole)
    summary = json.loads((tmp_path / "cut.summary.json").read_text())
    assert not summary["interrupted"] and summary["results"]["all"]["episodes"] == 8
    assert summary["resumed"]["from"] == str(out)
    assert summary["resumed"]["episodes_kept"] == len(first)
    assert summary["resumed"]["tasks_left"] == 8 - len(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cut.jsonl", "cut.summary.json", "whole.jsonl", "whole.summary.json"]


def test_eval_resume_after_crash_skips_torn_line(tmp_path, monkeypatch):
    whole, out, res = _whole_and_stopped(tmp_path, monkeypatch, "e.jsonl", 8, RuntimeError, 1)
    assert isinstance(res.exception, RuntimeError) and not out.exists()
    partial = tmp_path / "e.jsonl.partial"
    finished = len(load_jsonl(partial))
    assert 0 < finished < 8
    with partial.open("a") as fh:  # what a kill in the middle of a write leaves
        fh.write('{"episode_id": "Sokoban-v0-s7-g0", "tur')
    res = _eval("--policy", "expert", "--episodes", "8", "--out", str(out), "--resume")
    assert res.exit_code == 0, res.output
    assert f"{finished} episodes kept" in " ".join(res.output.split())
    assert _episode_dicts(out) == _episode_dicts(whole)
    assert not partial.exists() and not (tmp_path / "e.jsonl.partial.settings.json").exists()


def test_eval_resume_refuses_other_settings_and_bad_use(tmp_path, monkeypatch):
    out = tmp_path / "e.jsonl"
    with monkeypatch.context() as patch:
        _stop_expert_at_call(patch, 8, RuntimeError)
        _eval("--policy", "expert", "--episodes", "8", "--batch-size", "1", "--out", str(out))
    before = (tmp_path / "e.jsonl.partial").read_bytes()
    line = _one_error_line(_eval("--policy", "expert", "--episodes", "8", "--max-turns", "5",
                                 "--out", str(out), "--resume"))
    assert "--resume" in line and "max_turns" in line and "same options" in line
    line = _one_error_line(_eval("--policy", "random", "--episodes", "8", "--out", str(out),
                                 "--resume"))
    assert "policy" in line
    assert (tmp_path / "e.jsonl.partial").read_bytes() == before  # nothing lost
    lines = before.decode().splitlines(keepends=True)
    (tmp_path / "e.jsonl.partial").write_text("".join([lines[0], "garbage\n", *lines[1:]]))
    line = _one_error_line(_eval("--policy", "expert", "--episodes", "8", "--out", str(out),
                                 "--resume"))
    assert "cannot resume from" in line and "e.jsonl.partial:2" in line
    assert "give the --out" in _one_error_line(_eval("--policy", "expert", "--resume"))
    assert "not both" in _one_error_line(
        _eval("--policy", "expert", "--out", str(out), "--resume", "--overwrite"))
    assert "nothing to resume" in _one_error_line(
        _eval("--policy", "expert", "--out", str(tmp_path / "none.jsonl"), "--resume"))
