"""Rule policies on WebShop-v0: what copying the instruction into the search bar is worth.

Two fixed policies that read only what the agent sees (the instruction and the page's
clickables), on every goal of a split:

* ``paper_rule``: the WebShop paper's rule baseline (Yao et al., 2022): search the
  instruction, click the first result, buy.
* ``rule_options``: the same, but on the item page first click every option whose text
  appears in the instruction (e.g. ``click[41mm]`` for "with size: 41mm").

The price clause ("and price lower than ...") is cut from the query, as the env's expert
does. A learned student that searches with the instruction, opens the first result, picks
the named options and buys plays ``rule_options``; the gap to it says how much of a
trained student's shortfall is reading the page rather than the pattern.

Run by hand from the repository root (no model; about a second per 100 goals)::

    python benchmarks/webshop_rule_baseline.py               # the 500 test goals
    python benchmarks/webshop_rule_baseline.py --split valid_seen
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path

import gymnasium as gym
from machine import cpu_model, git_commit

import agentdistill  # noqa: F401  (registers the envs)
from agentdistill.evaluation_protocol import wilson_interval

RESULTS = Path(__file__).parent / "results" / "webshop_rule_baseline.json"
NON_OPTIONS = {"buy now", "< prev", "back to search", "description", "features", "reviews",
               "attributes", "next >"}
PRICE_CLAUSE = re.compile(r",? and price lower than .*$")
ITEM = re.compile(r"click\[b[0-9a-z]{9}\]")


def play(env: gym.Env, goal: int, split: str, click_options: bool) -> tuple[float, bool]:
    """One episode of the rule policy; returns (reward, won)."""
    _, info = env.reset(options={"split": split, "task": goal})
    shop = env.unwrapped
    instruction = shop.goal["instruction_text"]
    env.step(f"search[{PRICE_CLAUSE.sub('', instruction)}]")
    items = [a for a in shop.admissible_actions() if ITEM.fullmatch(a)]
    if not items:
        return 0.0, False
    env.step(items[0])
    if click_options:
        for action in shop.admissible_actions():
            option = action.removeprefix("click[").removesuffix("]")
            if (action.startswith("click[") and option not in NON_OPTIONS
                    and option.lower() in instruction.lower()):
                env.step(action)
    _, reward, _, _, info = env.step("click[buy now]")
    return float(reward), bool(info.get("won"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", help="goal split (default: test)")
    args = parser.parse_args()
    env = gym.make("agentdistill/WebShop-v0")
    n_goals = len(env.unwrapped.catalog.split_goals(args.split))
    rows = {}
    for name, click_options in (("paper_rule", False), ("rule_options", True)):
        results = [play(env, g, args.split, click_options) for g in range(n_goals)]
        wins = sum(won for _, won in results)
        rows[name] = {"goals": n_goals, "won": wins, "success_rate": wins / n_goals,
                      "success_ci95": list(wilson_interval(wins, n_goals)),
                      "mean_score": sum(r for r, _ in results) / n_goals,
                      "won_goal_indices": [g for g, (_, w) in enumerate(results) if w]}
        print(f"{name}: {wins}/{n_goals} won, mean score {rows[name]['mean_score']:.3f}")
    out = {"split": args.split, "data": "shipped synthetic catalog", "policies": rows,
           "paper_rule_published": {"score": 45.6, "success_rate": 0.096,
                                    "source": "Yao et al. 2022, WebShop, Table 2 (real catalog)"},
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                       "python": platform.python_version()},
           "load_average": os.getloadavg(), "git_commit": git_commit()}
    path = RESULTS if args.split == "test" else RESULTS.with_name(f"webshop_rule_baseline_{args.split}.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
