"""RL pieces shared by every objective: masked means, GRPO group advantages, PPO-clip.

Pure functions over ``[B, T]`` token tensors with an explicit mask; no hidden state. The
device follows the inputs. Loss aggregation is the token mean over all unmasked tokens of
the batch (sum over tokens / number of tokens), the convention used throughout
``agentdistill.distill``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["clip_bounds", "grpo_advantages", "masked_mean", "masked_std", "ppo_clip_loss"]


def masked_mean(x: Tensor, mask: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    """Mean of ``x`` over the positions where ``mask`` is non-zero.

    ``mask`` (bool or float, broadcastable to ``x``) is used as weights; masked-out values
    never leak in, even when they are NaN/inf. An empty mask gives 0 (not NaN).
    ``dim=None`` reduces everything to a scalar; otherwise the given dim(s).
    """
    m = mask.to(x.dtype)
    keep = mask != 0
    num = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device)) * m
    if dim is None:
        den = m.expand_as(num).sum()
        num = num.sum()
    else:
        den = m.expand_as(num).sum(dim=dim)
        num = num.sum(dim=dim)
    return num / torch.where(den > 0, den, torch.ones_like(den))


def masked_std(x: Tensor, mask: Tensor) -> Tensor:
    """Population standard deviation of ``x`` over the mask (scalar; 0 for <= 1 element)."""
    mean = masked_mean(x, mask)
    keep = mask != 0
    centred = torch.where(keep, x - mean, torch.zeros((), dtype=x.dtype, device=x.device))
    return masked_mean(centred.pow(2), mask).sqrt()


def grpo_advantages(
    rewards: Tensor, group_ids: Tensor, normalize_std: bool = True, eps: float = 1e-6
) -> Tensor:
    """GRPO advantages: reward minus its group mean, optionally over the group's std.

    rewards: ``[N]`` float, one scalar per trajectory. group_ids: ``[N]`` int, trajectories
    with the same id are rollouts of the same prompt/task (ids need not be contiguous).
    Returns ``[N]`` float32 (float64 if rewards are), zero-mean within each group. The std is
    the unbiased (Bessel) sample std as in DeepSeekMath/TRL; a group of one has std 0 and
    advantage 0; ``A = (r - mean) / (std + eps)``.
    """
    if rewards.ndim != 1 or group_ids.ndim != 1:
        raise ValueError(
            f"grpo_advantages expects 1-D rewards and group_ids, got shapes "
            f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}"
        )
    if rewards.shape[0] != group_ids.shape[0]:
        raise ValueError(
            f"rewards and group_ids differ in length: {rewards.shape[0]} vs {group_ids.shape[0]}"
        )
    if group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must be an integer tensor, got {group_ids.dtype}")
    dtype = rewards.dtype if rewards.dtype == torch.float64 else torch.float32
    r = rewards.to(dtype)
    if r.numel() == 0:
        return r
    _, inv = torch.unique(group_ids, return_inverse=True)
    inv = inv.to(r.device)
    n_groups = int(inv.max().item()) + 1
    count = torch.zeros(n_groups, dtype=dtype, device=r.device).index_add_(
        0, inv, torch.ones_like(r)
    )
    total = torch.zeros(n_groups, dtype=dtype, device=r.device).index_add_(0, inv, r)
    mean = total / count
    centred = r - mean[inv]
    if not normalize_std:
        return centred
    sq = torch.zeros(n_groups, dtype=dtype, device=r.device).index_add_(0, inv, centred.pow(2))
    var = sq / (count - 1).clamp_min(1)
    std = var.sqrt()[inv]
    return centred / (std + eps)


def clip_bounds(clip_ratio: float | tuple[float, float]) -> tuple[float, float]:
    """``eps`` or ``(eps_low, eps_high)`` -> ratio bounds ``(1 - eps_low, 1 + eps_high)``."""
    if isinstance(clip_ratio, (tuple, list)):
        if len(clip_ratio) != 2:
            raise ValueError(f"clip_ratio tuple must be (low, high), got {clip_ratio!r}")
        low, high = float(clip_ratio[0]), float(clip_ratio[1])
    else:
        low = high = float(clip_ratio)
    if not (0.0 <= low < 1.0) or high < 0.0:
        raise ValueError(
            f"clip_ratio must give 0 <= eps_low < 1 and eps_high >= 0, got {clip_ratio!r}"
        )
    return 1.0 - low, 1.0 + high


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"shape mismatch: {shapes}")


def ppo_clip_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_ratio: float | tuple[float, float] = 0.2,
) -> tuple[Tensor, dict[str, float]]:
    """PPO clipped surrogate, token-mean over the mask.

    logprobs: ``[B, T]`` log pi_theta(y_t) (requires grad). old_logprobs: ``[B, T]`` log
    pi_old(y_t) of the sampling policy. advantages: ``[B, T]`` per token or ``[B]`` per
    sequence (broadcast over T); detached here. mask: ``[B, T]`` bool/float, 1 on tokens
    that carry loss. ``rho = exp(logprobs - old_logprobs)``;
    ``loss = -min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)``.

    Returns ``(loss, metrics)``; metrics are Python floats: ``loss``, ``clip_frac`` (share of
    tokens where the clipped branch is active), ``ratio_mean``, ``approx_kl`` (k3 estimate of
    KL(pi_old || pi_theta)), ``adv_mean``, ``adv_std``, ``num_tokens``.
    """
    _check_same_shape(logprobs=logprobs, old_logprobs=old_logprobs, mask=mask)
    if logprobs.ndim != 2:
        raise ValueError(f"logprobs must be [B, T], got shape {tuple(logprobs.shape)}")
    adv = advantages.detach()
    if adv.ndim == 1:
        if adv.shape[0] != logprobs.shape[0]:
            raise ValueError(
                f"per-sequence advantages must be [B]={logprobs.shape[0]}, got {tuple(adv.shape)}"
            )
        adv = adv[:, None].expand_as(logprobs)
    elif adv.shape != logprobs.shape:
        raise ValueError(
            f"advantages must be [B, T] {tuple(logprobs.shape)} or [B], got {tuple(adv.shape)}"
        )
    lo, hi = clip_bounds(clip_ratio)
    keep = mask != 0
    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    # Masked-out positions may hold garbage (padding); keep them out of exp() and products.
    log_ratio = torch.where(keep, logprobs - old_logprobs.detach(), zero)
    adv = torch.where(keep, adv.to(logprobs.dtype), zero)
    ratio = torch.exp(log_ratio)
    surr = ratio * adv
    surr_clipped = ratio.clamp(lo, hi) * adv
    per_token = -torch.minimum(surr, surr_clipped)
    loss = masked_mean(per_token, mask)
    with torch.no_grad():
        lr = log_ratio.detach()
        metrics = {
            "loss": float(loss.detach()),
            "clip_frac": float(masked_mean((surr_clipped < surr).to(lr.dtype), mask)),
            "ratio_mean": float(masked_mean(ratio.detach(), mask)),
            "approx_kl": float(masked_mean(torch.expm1(lr) - lr, mask)),
            "adv_mean": float(masked_mean(adv, mask)),
            "adv_std": float(masked_std(adv, mask)),
            "num_tokens": float((mask != 0).sum()),
        }
    return loss, metrics
