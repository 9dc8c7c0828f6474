"""Digest of an `agentdistill eval` episodes file: what the policy did, small enough to commit.

A full-split episodes file holds every prompt and token (tens of MB), so it stays on the
machine that ran it; this writes the per-episode facts a results note quotes (outcome,
turns, longest prompt, action verbs, verbatim repeats, invalid actions) and their totals.

    python benchmarks/eval_episodes_digest.py runs/eval_protocol/WebShop-v0-smollm2.jsonl \
        --out benchmarks/results/eval_protocol/WebShop-v0-smollm2.digest

writes `<out>.jsonl` (one line per episode) and `<out>.json` (totals), and prints the totals.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

_BRACKET_VERB = re.compile(r"\s*([A-Za-z_][A-Za-z_ ]*?)\s*\[")


def action_verb(action: str | None) -> str:
    """`search` for `search[red shoes]`, `go` for `go to cabinet 1`, `(none)` for no action."""
    if not action or not action.strip():
        return "(none)"
    match = _BRACKET_VERB.match(action)
    return match.group(1).lower() if match else action.split()[0].lower()


def digest_episode(episode: dict[str, Any]) -> dict[str, Any]:
    """One episode's outcome and action statistics."""
    turns = episode.get("turns", [])
    actions = [t.get("action") for t in turns]
    verbs = Counter(action_verb(a) for a in actions)
    repeats = sum(1 for prev, cur in pairwise(actions) if cur is not None and cur == prev)
    invalid = Counter(action_verb(t.get("action")) for t in turns if not t.get("action_valid", True))
    return {
        "task_id": episode.get("task_id"),
        "task_type": (episode.get("metadata") or {}).get("task_type"),
        "seed": episode.get("seed"),
        "won": bool(episode.get("won")),
        "score": episode.get("score"),
        "turns": len(turns),
        "prompt_tokens_max": max((len(t.get("prompt_ids") or []) for t in turns), default=0),
        "verbs": dict(verbs.most_common()),
        "repeats_of_previous_action": repeats,
        "invalid_by_verb": dict(invalid.most_common()),
    }


def totals(episodes: list[dict[str, Any]], digests: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the file, the most frequent arguments of each non-search verb and invalid actions (first 40 characters)."""
    verbs: Counter[str] = Counter()
    invalid: Counter[str] = Counter()
    for d in digests:
        verbs.update(d["verbs"])
        invalid.update(d["invalid_by_verb"])
    n_actions = sum(verbs.values())
    arguments: dict[str, Counter[str]] = {}
    invalid_actions: Counter[str] = Counter()
    for episode in episodes:
        for turn in episode.get("turns", []):
            action = turn.get("action") or ""
            if not turn.get("action_valid", True):
                invalid_actions[action[:40]] += 1
            match = re.match(r"\s*([A-Za-z_ ]+?)\s*\[(.*)\]\s*$", action)
            if match and match.group(1).lower() != "search":
                arguments.setdefault(match.group(1).lower(), Counter())[match.group(2).lower()[:60]] += 1
    return {
        "episodes": len(digests),
        "won": sum(d["won"] for d in digests),
        "actions": n_actions,
        "verbs": dict(verbs.most_common()),
        "repeats_of_previous_action": sum(d["repeats_of_previous_action"] for d in digests),
        "invalid": sum(invalid.values()),
        "invalid_by_verb": dict(invalid.most_common()),
        "top_arguments": {verb: dict(c.most_common(10)) for verb, c in arguments.items()},
        "top_invalid_actions": dict(invalid_actions.most_common(10)),
        "prompt_tokens_max": max((d["prompt_tokens_max"] for d in digests), default=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("episodes", type=Path, help="episodes .jsonl written by `agentdistill eval`")
    parser.add_argument("--out", type=Path, required=True, help="output stem: writes <out>.jsonl and <out>.json")
    args = parser.parse_args(argv)
    if not args.episodes.is_file():
        print(f"error: {args.episodes}: no such file", file=sys.stderr)
        return 2
    episodes = []
    for n, line in enumerate(args.episodes.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                episodes.append(json.loads(line))
            except json.JSONDecodeError as err:
                print(f"error: {args.episodes}:{n}: not JSON ({err})", file=sys.stderr)
                return 2
    digests = [digest_episode(e) for e in episodes]
    summary = {"source": str(args.episodes), **totals(episodes, digests)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in digests), encoding="utf-8")
    Path(f"{args.out}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
