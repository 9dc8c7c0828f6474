"""One step's training batch: trainable rows, GRPO advantages, SOD weights, batch metrics.

A :class:`Row` is one student turn with explicit ``episode_id`` / ``turn_index``; only its
response tokens carry loss. :func:`build_batch` turns a step's scored episodes into rows,
sets the per-episode GRPO advantage and the per-turn SOD weight on each row, and collects
the batch metrics (success, sampled KL, weight mass) that the trainer logs.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agentdistill.agents.trajectory import Episode, summarize
from agentdistill.distill import rl
from agentdistill.distill.config import LossConfig, TrainConfig
from agentdistill.distill.evaluation import kl_stats
from agentdistill.distill.teacher import expert_hint


@dataclass
class Row:
    """One trainable student turn, with the episode it came from."""

    episode: int  # index into the step's episode list
    episode_id: str
    turn_index: int
    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    teacher_logprobs: list[float] | None
    advantage: float = 0.0  # GRPO advantage of the episode
    weight: float = 1.0  # per-turn weight on the OPD term (SOD)
    source: str = "student"  # who produced the response: student, expert or teacher
    teacher_topk_ids: list[list[int]] | None = None  # [R][K] (teacher.top_k > 0)
    teacher_topk_logprobs: list[list[float]] | None = None  # [R][K]
    teacher_prompt_ids: list[int] | None = None  # set when the step recomputes teacher logits
    ref_logprobs: list[float] | None = None  # log pi_initial(y_t), with loss.kl_ref_coef > 0


@dataclass
class Batch:
    """The rows of one training step and the metrics measured on them before the update."""

    step: int
    rows: list[Row]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return sum(len(r.response_ids) for r in self.rows)


def step_seeds(cfg: TrainConfig, step: int) -> list[int]:
    """Training task seeds of ``step``, drawn from ``env.train_seeds`` with
    ``numpy.random.default_rng([cfg.seed, step])``: the data order is a function of the step."""
    sr = cfg.env.train_seeds
    rng = np.random.default_rng([cfg.seed, step])
    n = cfg.rollout.tasks_per_step
    picks = rng.choice(sr.count, size=n, replace=n > sr.count)
    return [int(sr.start + p) for p in picks]


def build_rows(episodes: Sequence[Episode]) -> list[Row]:
    """Trainable turns (non-replayed, non-empty) of ``episodes``, in order; each row keeps its
    episode's source (``expert_data.episode_source``) and the teacher's stored top-k."""
    from agentdistill.agents.expert_data import episode_source

    rows = []
    for i, ep in enumerate(episodes):
        source = episode_source(ep)
        for turn in ep.turns:
            if not turn.trainable:
                continue
            rows.append(Row(
                episode=i, episode_id=ep.episode_id, turn_index=turn.turn_index,
                prompt_ids=list(turn.prompt_ids), response_ids=list(turn.response_ids),
                old_logprobs=list(turn.response_logprobs),
                teacher_logprobs=None if turn.teacher_logprobs is None else list(turn.teacher_logprobs),
                source=source, teacher_topk_ids=turn.teacher_topk_ids,
                teacher_topk_logprobs=turn.teacher_topk_logprobs,
            ))
    return rows


def unhinted_rows(rows: Sequence[Row], episodes: Sequence[Episode], context: str) -> list[Row]:
    """The student's rows whose turn has no expert hint (``info["expert_action"]`` or
    ``["expert_plan"]`` None) under an ``expert_*`` teacher context, else none."""
    if not context.startswith("expert"):
        return []
    key = "expert_action" if context == "expert_action" else "expert_plan"
    return [r for r in rows if r.source == "student"
            and key in (info := episodes[r.episode].turns[r.turn_index].info)
            and expert_hint(info[key]) is None]


def attach_teacher_prompts(rows: Sequence[Row], episodes: Sequence[Episode], teacher: Any) -> None:
    """Set each row's teacher prompt ids (the teacher's context for that turn), for the
    teacher logits recomputed in the update (``loss.estimator`` / ``baseline`` ``full``)."""
    for r in rows:
        ep = episodes[r.episode]
        r.teacher_prompt_ids = teacher.teacher_prompt_ids(ep.turns[r.turn_index], ep)


def pad_values(values: Sequence[Sequence[float]], width: int, device: Any = None) -> torch.Tensor:
    """Right-pad float lists to ``[B, width]`` (padding 0, masked out downstream)."""
    out = torch.zeros((len(values), width), dtype=torch.float32)
    for i, v in enumerate(values):
        if len(v):
            out[i, : len(v)] = torch.tensor(list(v), dtype=torch.float32)
    return out if device is None else out.to(device)


def token_mask(rows: Sequence[Row], width: int) -> torch.Tensor:
    """``[B, width]`` bool, True on each row's response tokens (never on prompt/env tokens)."""
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        mask[i, : len(r.response_ids)] = True
    return mask


def chunks(seq: Sequence[Any], n: int) -> list[Sequence[Any]]:
    """``seq`` cut into consecutive pieces of at most ``n``."""
    return [seq[i: i + n] for i in range(0, len(seq), n)]


def episode_rewards(episodes: Sequence[Episode], kind: str) -> torch.Tensor:
    """``[N]`` float32 per-episode reward: ``won`` (0/1), ``score`` or ``return``."""
    if kind == "won":
        vals = [float(e.won) for e in episodes]
    elif kind == "score":
        vals = [float(e.score) for e in episodes]
    else:
        vals = [float(e.episode_return) for e in episodes]
    return torch.tensor(vals, dtype=torch.float32)


Gather = Callable[[Any], list[Any]]  # an object of every rank, in rank order (Dist.gather)


def assign_advantages(rows: Sequence[Row], episodes: Sequence[Episode], loss: LossConfig,
                      gather: Gather | None = None) -> dict[str, float]:
    """Set each row's GRPO advantage (its episode's); returns metrics.

    ``A = r - mean(group)``, divided by ``std + 1e-6`` of the group (``scale_rewards:
    group``, GRPO) or of all the batch's rewards (``batch``, as TRL: less noise from small
    groups; with ``gather``, every rank's rewards), or not divided (``none``, Dr. GRPO);
    stds are Bessel-corrected. Groups never straddle ranks (tasks are split whole).
    """
    rewards = episode_rewards(episodes, loss.reward)  # [N]
    gids = torch.tensor([e.group_id if e.group_id is not None else i
                         for i, e in enumerate(episodes)], dtype=torch.long)  # [N]
    adv = rl.grpo_advantages(rewards, gids, normalize_std=loss.scale_rewards == "group")  # [N]
    if loss.scale_rewards == "batch":
        batch = rewards if gather is None else torch.tensor(
            [x for part in gather(rewards.tolist()) for x in part], dtype=torch.float32)
        std = batch.std() if batch.numel() > 1 else torch.zeros(())
        adv = adv / (std + 1e-6)
    for r in rows:
        r.advantage = float(adv[r.episode])
    return {"reward_mean": float(rewards.mean())}


def assign_sod_weights(rows: Sequence[Row], loss: LossConfig) -> dict[str, float]:
    """Set per-row SOD weights on the OPD term from each turn's mean |old - teacher|."""
    from agentdistill.distill.weighting import sod_weights

    by_ep: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        by_ep[r.episode].append(r)
    for ep_rows in by_ep.values():
        ep_rows.sort(key=lambda r: r.turn_index)
        d = torch.tensor([  # [K] per-turn divergence d_k
            float(np.mean(np.abs(np.asarray(r.old_logprobs) - np.asarray(r.teacher_logprobs))))
            for r in ep_rows
        ])
        w = sod_weights(d, eps=loss.sod_eps, delta=loss.sod_delta)
        for r, wk in zip(ep_rows, w.tolist(), strict=True):
            r.weight = float(wk)
    return sod_metrics(rows)


def sod_metrics(rows: Sequence[Row]) -> dict[str, float]:
    """Token-weighted mass, min and max of the rows' SOD weights."""
    n_tok = sum(len(r.response_ids) for r in rows)
    mass = sum(r.weight * len(r.response_ids) for r in rows) / max(1, n_tok)
    return {"sod_weight_mass": mass, "sod_weight_min": min(r.weight for r in rows),
            "sod_weight_max": max(r.weight for r in rows)}


def light(episodes: Sequence[Episode], rows: Sequence[Row]) -> tuple[list[Episode], list[Row]]:
    """Copies without what the batch metrics never read (prompts, top-k, infos): what ranks
    exchange for the global batch metrics."""
    eps = [dataclasses.replace(e, turns=[dataclasses.replace(
        t, prompt_messages=[], prompt_ids=[], teacher_topk_ids=None, teacher_topk_logprobs=None,
        info={}) for t in e.turns]) for e in episodes]
    out = [dataclasses.replace(r, prompt_ids=[], teacher_topk_ids=None, teacher_topk_logprobs=None,
                               teacher_prompt_ids=None) for r in rows]
    return eps, out


def build_batch(episodes: Sequence[Episode], cfg: TrainConfig, step: int,
                recompute_old: Callable[[list[Row]], None] | None = None,
                gather: Gather | None = None) -> Batch:
    """Rows of ``episodes`` with advantages and weights set, plus the pre-update metrics.

    ``recompute_old`` (``optim.old_logprobs: recompute``) overwrites the rows' sampler
    log-probs with a no-grad pass of the current policy, before SOD weights and KL stats.
    ``gather`` (several ranks, each with its share of the step's episodes): the rows stay
    this rank's, the metrics and GRPO's batch std are those of every rank's batch.
    """
    rows = build_rows(episodes)
    unhinted = unhinted_rows(rows, episodes, cfg.teacher.context)
    if cfg.teacher.unhinted == "skip" and unhinted:  # the teacher there is the base model
        dropped = {id(r) for r in unhinted}
        rows = [r for r in rows if id(r) not in dropped]
    if cfg.uses_grpo and episodes:
        assign_advantages(rows, episodes, cfg.loss, gather)
    if recompute_old is not None and rows:
        recompute_old(rows)
    if cfg.loss.method == "sod" and rows:
        assign_sod_weights(rows, cfg.loss)
    everyone, all_rows = list(episodes), rows
    if gather is not None:
        parts = gather(light(episodes, rows))
        everyone = [e for eps, _ in parts for e in eps]
        all_rows = [r for _, rs in parts for r in rs]
    metrics = batch_metrics(everyone, all_rows, cfg, step)
    if cfg.teacher.context.startswith("expert"):  # this rank's turns where the teacher had no hint
        metrics["unhinted_rows"] = len(unhinted)
    return Batch(step=step, rows=rows, metrics=metrics)


def batch_metrics(episodes: Sequence[Episode], rows: Sequence[Row], cfg: TrainConfig,
                  step: int) -> dict[str, Any]:
    """The logged pre-update metrics of a step's (global) episodes and rows."""
    summ = summarize(list(episodes))
    metrics: dict[str, Any] = {
        "step": step, "kind": "train", "seeds": step_seeds(cfg, step),
        "success_rate": summ["success_rate"], "invalid_action_rate": summ["invalid_action_rate"],
        "mean_turns": summ["mean_turns"], "episodes": len(episodes), "rows": len(rows),
    }
    if cfg.uses_grpo and episodes:
        metrics["reward_mean"] = float(episode_rewards(episodes, cfg.loss.reward).mean())
    if cfg.loss.method == "sod" and rows:
        metrics.update(sod_metrics(rows))
    metrics.update(kl_stats([r for r in rows if r.source == "student"]))  # KL on student samples
    metrics["gen_tokens"] = sum(len(r.response_ids) for r in rows if r.source == "student")
    metrics["train_tokens"] = sum(len(r.response_ids) for r in rows)
    offpolicy = [r for r in rows if r.source != "student"]
    if offpolicy or cfg.offpolicy_source is not None:
        metrics["offpolicy_rows"] = len(offpolicy)
        metrics["offpolicy_tokens"] = sum(len(r.response_ids) for r in offpolicy)
    return metrics
