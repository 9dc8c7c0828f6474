"""benchmarks/eval_episodes_digest.py: verbs, verbatim repeats, invalid actions, totals and bad input."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def digest(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("eval_episodes_digest")


def _turn(action, valid=True, prompt_len=3):
    return {"action": action, "action_valid": valid, "prompt_ids": list(range(prompt_len))}


EPISODE = {
    "task_id": "webshop-7", "seed": 7, "won": False, "score": 0.0, "metadata": {"task_type": "food"},
    "turns": [_turn("search[tea]"), _turn("search[tea]", prompt_len=9), _turn("click[Next >]"),
              _turn("search[<query>] Step 3", valid=False), _turn(None, valid=False)],
}


def test_action_verb(digest):
    assert digest.action_verb("search[red shoes]") == "search"
    assert digest.action_verb("Click [Buy Now]") == "click"
    assert digest.action_verb("go to cabinet 1") == "go"
    assert digest.action_verb("  ") == "(none)"
    assert digest.action_verb(None) == "(none)"


def test_digest_episode_counts_verbs_repeats_and_invalid(digest):
    d = digest.digest_episode(EPISODE)
    assert d["task_type"] == "food" and d["turns"] == 5 and d["prompt_tokens_max"] == 9
    assert d["verbs"] == {"search": 3, "click": 1, "(none)": 1}
    assert d["repeats_of_previous_action"] == 1  # the second search[tea]; None after None does not count
    assert d["invalid_by_verb"] == {"search": 1, "(none)": 1}


def test_main_writes_digest_and_totals(digest, tmp_path):
    src = tmp_path / "eps.jsonl"
    src.write_text(json.dumps(EPISODE) + "\n" + json.dumps({**EPISODE, "won": True}) + "\n", encoding="utf-8")
    assert digest.main([str(src), "--out", str(tmp_path / "out" / "d")]) == 0
    rows = (tmp_path / "out" / "d.jsonl").read_text(encoding="utf-8").splitlines()
    totals = json.loads((tmp_path / "out" / "d.json").read_text(encoding="utf-8"))
    assert len(rows) == 2
    assert totals["episodes"] == 2 and totals["won"] == 1 and totals["actions"] == 10
    assert totals["invalid"] == 4 and totals["repeats_of_previous_action"] == 2
    assert totals["top_arguments"] == {"click": {"next >": 2}}
    assert totals["top_invalid_actions"] == {"search[<query>] Step 3": 2, "": 2}


def test_bad_input_is_an_error_not_a_traceback(digest, tmp_path, capsys):
    assert digest.main([str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "d")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": []}\nnot json\n', encoding="utf-8")
    assert digest.main([str(bad), "--out", str(tmp_path / "d")]) == 2
    assert "bad.jsonl:2: not JSON" in capsys.readouterr().err
    assert not (tmp_path / "d.json").exists()
