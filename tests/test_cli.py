"""CLI smoke tests: eval with expert/random/tiny-model policies, inspect, bad arguments."""

from __future__ import annotations

import json

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
    assert "turn 0 [student]" in res.output
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
