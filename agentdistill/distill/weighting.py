"""Per-turn / per-token weights for the OPD advantage: SOD step-wise reweighting.

SOD (DESIGN.md): for student turn k of one trajectory, ``d_k`` is the mean over its tokens
of ``|log pi_old - log pi_T|``; ``w_1 = 1`` and ``w_k = min((d_1 + eps) / (d_k + eps),
1 + delta)``. Turns where the student drifted further from the teacher than at its first
turn are down-weighted (their teacher signal is less reliable), turns closer to it are
up-weighted but by at most ``1 + delta``. The weights enter
:func:`agentdistill.distill.losses.opd_policy_loss` via ``weights=``.

Turn 1 is the trajectory's first *student* turn with loss-carrying tokens (TCOD b2f replays
expert turns first; those have no loss and are skipped). Pure functions, device follows
the inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "broadcast_turn_weights",
    "effective_weight_mass",
    "sod_token_weights",
    "sod_weights",
    "turn_mean_abs_divergence",
]


def sod_weights(turn_divergences: Tensor, eps: float = 1e-6, delta: float = 0.2) -> Tensor:
    """SOD weights of one trajectory's turns.

    turn_divergences: ``[K]`` (or ``[..., K]``, one trajectory per leading index), d_k >= 0
    in turn order. Returns the same shape: ``w[..., 0] = 1`` and
    ``w_k = min((d_1 + eps) / (d_k + eps), 1 + delta)``. ``K = 0`` gives an empty tensor.
    """
    if not isinstance(turn_divergences, Tensor) or turn_divergences.ndim < 1:
        raise ValueError("turn_divergences must be a tensor of shape [K] or [..., K]")
    if eps <= 0 or delta < 0:
        raise ValueError(f"need eps > 0 and delta >= 0, got eps={eps}, delta={delta}")
    d = turn_divergences.float() if not turn_divergences.is_floating_point() else turn_divergences
    if d.shape[-1] == 0:
        return d.clone()
    w = ((d[..., :1] + eps) / (d + eps)).clamp_max(1.0 + delta)
    w[..., 0] = 1.0
    return w


def turn_mean_abs_divergence(
    old_logprobs: Tensor, teacher_logprobs: Tensor, mask: Tensor, turn_ids: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-turn ``d_k = mean |log pi_old - log pi_T|`` over each turn's loss tokens.

    old_logprobs, teacher_logprobs, mask: ``[B, T]`` (mask 1 on student tokens).
    turn_ids: ``[B, T]`` int, the turn index of each token (values >= 0 where mask is set;
    anything, e.g. -1, elsewhere). Returns ``(d, present)``, both ``[B, K]`` with
    ``K = max turn id + 1``: ``d`` float32 (0 for turns without tokens) and ``present`` bool
    (turn has at least one loss token in that row).
    """
    shapes = {tuple(x.shape) for x in (old_logprobs, teacher_logprobs, mask, turn_ids)}
    if len(shapes) != 1 or old_logprobs.ndim != 2:
        raise ValueError(
            "old_logprobs, teacher_logprobs, mask, turn_ids must all be [B, T]; got "
            f"{[tuple(x.shape) for x in (old_logprobs, teacher_logprobs, mask, turn_ids)]}"
        )
    if turn_ids.dtype.is_floating_point or turn_ids.dtype == torch.bool:
        raise ValueError(f"turn_ids must be an integer tensor, got {turn_ids.dtype}")
    keep = mask != 0
    n_batch = old_logprobs.shape[0]
    ids = torch.where(keep, turn_ids.long(), torch.zeros_like(turn_ids, dtype=torch.long))
    if keep.any() and int(ids[keep].min()) < 0:
        raise ValueError("turn_ids must be >= 0 on masked-in tokens")
    n_turns = int(ids.max()) + 1 if keep.any() else 0
    dev = old_logprobs.device
    if n_turns == 0:
        return (
            torch.zeros(n_batch, 0, device=dev),
            torch.zeros(n_batch, 0, dtype=torch.bool, device=dev),
        )
    diff = (old_logprobs.detach().float() - teacher_logprobs.detach().float()).abs()
    diff = torch.where(keep, diff, torch.zeros((), device=dev))
    w = keep.float()
    total = torch.zeros(n_batch, n_turns, device=dev).scatter_add_(1, ids, diff)
    count = torch.zeros(n_batch, n_turns, device=dev).scatter_add_(1, ids, w)
    present = count > 0
    d = total / torch.where(present, count, torch.ones_like(count))
    return d, present


def broadcast_turn_weights(turn_weights: Tensor, turn_ids: Tensor, mask: Tensor) -> Tensor:
    """Per-turn weights ``[B, K]`` -> per-token weights ``[B, T]`` via ``turn_ids`` ``[B, T]``.

    Tokens outside ``mask`` get weight 0 (they carry no loss anyway).
    """
    if turn_ids.shape != mask.shape or turn_weights.ndim != 2:
        raise ValueError(
            f"need turn_weights [B, K] and turn_ids/mask [B, T]; got {tuple(turn_weights.shape)}, "
            f"{tuple(turn_ids.shape)}, {tuple(mask.shape)}"
        )
    if turn_weights.shape[0] != turn_ids.shape[0]:
        raise ValueError(
            f"batch size differs: turn_weights {turn_weights.shape[0]} vs turn_ids {turn_ids.shape[0]}"
        )
    keep = mask != 0
    if turn_weights.shape[1] == 0:
        if keep.any():
            raise ValueError("turn_weights has no turns but mask has tokens")
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    ids = torch.where(keep, turn_ids.long(), torch.zeros_like(turn_ids, dtype=torch.long))
    if keep.any() and (int(ids[keep].min()) < 0 or int(ids.max()) >= turn_weights.shape[1]):
        raise ValueError(f"turn_ids out of range [0, {turn_weights.shape[1]}) on masked tokens")
    w = turn_weights.gather(1, ids)
    return torch.where(keep, w, torch.zeros((), dtype=w.dtype, device=w.device))


def sod_token_weights(
    old_logprobs: Tensor,
    teacher_logprobs: Tensor,
    mask: Tensor,
    turn_ids: Tensor,
    eps: float = 1e-6,
    delta: float = 0.2,
) -> Tensor:
    """SOD weights per token ``[B, T]`` straight from token tensors (one trajectory per row).

    Combines :func:`turn_mean_abs_divergence`, :func:`sod_weights` (reference = each row's
    first turn that has loss tokens) and :func:`broadcast_turn_weights`. Detached.
    """
    d, present = turn_mean_abs_divergence(old_logprobs, teacher_logprobs, mask, turn_ids)
    if d.shape[1] == 0:
        return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    if eps <= 0 or delta < 0:
        raise ValueError(f"need eps > 0 and delta >= 0, got eps={eps}, delta={delta}")
    first = present.int().argmax(dim=1, keepdim=True)  # first present turn per row
    ref = d.gather(1, first)
    w = ((ref + eps) / (d + eps)).clamp_max(1.0 + delta)
    w = w.scatter(1, first, 1.0)
    w = torch.where(present, w, torch.zeros_like(w))
    return broadcast_turn_weights(w, turn_ids, mask)


def effective_weight_mass(weights: Tensor, mask: Tensor) -> float:
    """Mean token weight over the mask: 1.0 = no net reweighting, < 1 = signal shrunk.

    This is the share of the unweighted OPD signal that survives the weights (sum of
    weights over loss tokens / number of loss tokens); logged per batch. 0.0 for an empty mask.
    """
    if weights.shape != mask.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and mask {tuple(mask.shape)} differ")
    keep = mask != 0
    n = int(keep.sum())
    if n == 0:
        return 0.0
    return (
        float(torch.where(keep, weights.float(), torch.zeros((), device=weights.device)).sum()) / n
    )
