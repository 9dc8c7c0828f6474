"""Run under torchrun by tests/test_distill_distributed.py (or in-process for the 1-process
reference): one optimizer step per case on a fixed global batch, each rank training on its
block of the batch's episodes; rank 0 saves the metrics and the full trainable weights.

    torchrun --standalone --nproc_per_node 2 tests/distributed_worker.py CASES.json OUT.pt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distill_support import random_episode  # noqa: E402

from agentdistill.agents.models import tiny_random_model  # noqa: E402
from agentdistill.distill.batch import Row, build_rows  # noqa: E402
from agentdistill.distill.config import parse_config  # noqa: E402
from agentdistill.distill.distributed import Dist, shutdown  # noqa: E402
from agentdistill.distill.teacher import Teacher, response_logprobs  # noqa: E402
from agentdistill.distill.trainer import Trainer  # noqa: E402


def fixed_rows(tok: Any) -> list[Row]:
    """Two episodes of 3 and 1 turns (response lengths 6 and 3) scored by a fixed tiny
    teacher, pi_old = the initial student (seed 0), a different advantage per row: ranks
    hold different numbers of rows and tokens."""
    teacher = Teacher(tok, model=tiny_random_model(seed=1, tokenizer=tok)[0], student_tokenizer=tok)
    eps = [random_episode(tok, n_turns=3, length=6, seed=0, episode_id="a"),
           random_episode(tok, n_turns=1, length=3, seed=1, episode_id="b")]
    teacher.score_episodes(eps)
    for i, e in enumerate(eps):
        e.group_id = 0 if i < 1 else 1
    rows = build_rows(eps)
    student = tiny_random_model(seed=0, tokenizer=tok)[0]
    with torch.no_grad():
        out = response_logprobs(student, [r.prompt_ids for r in rows],
                                [r.response_ids for r in rows], pad_id=tok.pad_token_id)
    for i, r in enumerate(rows):
        r.old_logprobs = out.logprobs[i, : len(r.response_ids)].tolist()
        r.advantage = 0.5 - 0.3 * i
    return rows


def trainable_weights(t: Trainer) -> dict[str, torch.Tensor] | None:
    """The full trainable weights on rank 0 (FSDP gathers them: every rank calls this)."""
    names = set(t.engine.trainable_names())
    full = t.engine.model_state_dict()
    if full is None:
        full = {n: p.detach() for n, p in t.model.named_parameters()}
    if not t.dist.is_main:
        return None
    return {n: v.detach().cpu().clone() for n, v in full.items() if n in names}


def run_case(config: dict[str, Any]) -> dict[str, Any] | None:
    t = Trainer(parse_config(config))
    rows = fixed_rows(t.tokenizer)
    mine = t.dist.shard(2)  # this rank's episodes
    metrics = t.optimize([r for r in rows if mine.start <= r.episode < mine.stop])
    weights = trainable_weights(t)
    return None if weights is None else {"metrics": metrics, "weights": weights,
                                         "world_size": t.dist.world_size}


def main(cases_file: str, out_file: str) -> None:
    cases = json.loads(Path(cases_file).read_text())
    results = {name: run_case(cfg) for name, cfg in cases.items()}
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        torch.save(results, out_file)
    if torch.distributed.is_initialized():  # the trainer's own teardown (its Trainers are gone)
        shutdown(Dist(owns_group=True))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
