"""Divergences between student and teacher over token tensors, and the OPD / Skill-SD losses.

Notation (DESIGN.md "Distillation math"): tokens y_t are sampled from pi_old, the policy
that generated the rollout; pi_theta is the student being trained; pi_T the teacher;
``r_t = log pi_theta(y_t) - log pi_T(y_t)``.

Everything here is a pure function of ``[B, T]`` (or ``[B, T, V]``) tensors plus an explicit
mask where a reduction happens. The device follows the inputs (CPU or CUDA).

- :func:`token_divergence`: exact per-token reverse KL, forward KL or generalized JSD over
  the full vocabulary, in float32, chunked over tokens with a hand-written backward so that
  no full ``[B, T, V]`` float32 intermediate is ever held (only the gradient itself).
- :func:`sampled_kl`: k1/k2/k3 estimators from the log-probs of the sampled tokens.
- :func:`topk_divergence`: reverse/forward KL on the teacher's top-k support plus a tail
  bucket, for teachers that only return top-k log-probs.
- :func:`opd_policy_loss`: the policy-gradient OPD surrogate (PPO-clipped), additive with
  GRPO advantages; :func:`skill_sd_loss`: Skill-SD's importance-weighted sampled reverse KL.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from agentdistill.distill.rl import masked_mean, masked_std, ppo_clip_loss

__all__ = [
    "DIVERGENCE_KINDS",
    "SAMPLED_ESTIMATORS",
    "opd_policy_loss",
    "sampled_kl",
    "skill_sd_loss",
    "token_divergence",
    "topk_divergence",
]

DIVERGENCE_KINDS = ("reverse_kl", "forward_kl", "jsd")
SAMPLED_ESTIMATORS = ("k1", "k2", "k3")


# ----------------------------------------------------------------------------------------
# Full-vocabulary divergences (chunked, custom backward)
# ----------------------------------------------------------------------------------------


def _resolve_kind(kind: str, beta: float) -> tuple[str, float]:
    """Validate ``kind``/``beta``; JSD endpoints become the KLs they equal by convention."""
    if kind not in DIVERGENCE_KINDS:
        raise ValueError(f"unknown divergence kind {kind!r}; expected one of {DIVERGENCE_KINDS}")
    if kind == "jsd":
        beta = float(beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"jsd beta must be in [0, 1], got {beta}")
        if beta == 0.0:
            return "forward_kl", beta
        if beta == 1.0:
            return "reverse_kl", beta
    return kind, float(beta)


# The chunk kernels below work in place wherever they can: each live [n, V] float32 buffer
# costs n * V * 4 bytes, and the benchmark budget is a small multiple of that per chunk.


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot product of two ``[n, V]`` tensors -> ``[n]`` without an ``[n, V]`` temp."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def _clean_(log_ratio: Tensor) -> Tensor:
    """Zero the entries of ``log a - log b`` where ``a`` is 0 (in place).

    ``log a - log b`` is -inf or NaN only where ``log a = -inf`` (log-probs are <= 0), i.e.
    where the weighting probability ``a`` is 0 and the term ``a * log(a / b)`` is 0 by
    convention. +inf (a > 0 = b, an infinite KL) is kept.
    """
    return torch.nan_to_num_(log_ratio, nan=0.0, neginf=0.0, posinf=math.inf)


def _log_mixture(ls: Tensor, lt: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """log m = log(beta q + (1 - beta) p) and a spare buffer of the same shape."""
    lm = lt + math.log(beta)
    spare = ls + math.log1p(-beta)
    return torch.logaddexp(lm, spare, out=lm), spare


def _chunk_value(s: Tensor, t: Tensor, kind: str, beta: float) -> Tensor:
    """Divergence per row of one chunk: s, t ``[n, V]`` logits (any float dtype) -> ``[n]`` f32."""
    ls = torch.log_softmax(s.float(), dim=-1)
    lt = torch.log_softmax(t.float(), dim=-1)
    if kind == "reverse_kl":  # sum p (log p - log q)
        d = _clean_(lt.neg_().add_(ls))
        return _rowdot(ls.exp_(), d)
    if kind == "forward_kl":  # sum q (log q - log p)
        d = _clean_(ls.neg_().add_(lt))
        return _rowdot(lt.exp_(), d)
    lm, buf = _log_mixture(ls, lt, beta)
    d = _clean_(torch.sub(lt, lm, out=buf))
    kl_t = _rowdot(lt.exp_(), d)
    d = _clean_(torch.sub(ls, lm, out=buf))
    kl_s = _rowdot(ls.exp_(), d)
    return beta * kl_t + (1.0 - beta) * kl_s


def _softmax_backprop_(p: Tensor, g: Tensor, scale: float) -> Tensor:
    """``scale * p * (g - <p, g>)`` in place on ``g``: the logits-gradient of ``scale * KL``.

    With ``g = log p - log x`` (cleaned) and ``x`` held fixed, ``<p, g> = KL(p || x)`` and
    this is d(scale * KL(p || x)) / d logits; the ``+1`` of d(p log p)/dp cancels through
    the softmax Jacobian. Entries with p = 0 come out 0.
    """
    kl = _rowdot(p, g).unsqueeze(-1)
    return g.sub_(kl).mul_(p).mul_(scale)


def _chunk_grads(
    s: Tensor, t: Tensor, kind: str, beta: float, need_s: bool, need_t: bool
) -> tuple[Tensor | None, Tensor | None]:
    """Analytic d(divergence)/d(student logits), d/d(teacher logits) for one ``[n, V]`` chunk.

    reverse KL(p||q): d/ds = p (log p - log q - KL), d/dt = q - p.
    forward KL(q||p): d/ds = p - q, d/dt = q (log q - log p - KL).
    JSD_beta (m = beta q + (1 - beta) p): dJSD/dp = (1 - beta)(log p - log m) and
    dJSD/dq = beta (log q - log m), so d/ds = (1 - beta) p (log p - log m - KL(p||m)) and
    d/dt = beta q (log q - log m - KL(q||m)).
    The student-only path (the usual one) keeps at most 2 (KLs) or 4 (JSD) [n, V] buffers.
    """
    ls = torch.log_softmax(s.float(), dim=-1)
    lt = torch.log_softmax(t.float(), dim=-1)
    gs = gt = None
    if kind == "reverse_kl":
        if need_t:
            gt = lt.exp().sub_(ls.exp())
        if need_s:
            g = _clean_(lt.neg_().add_(ls))
            gs = _softmax_backprop_(ls.exp_(), g, 1.0)
    elif kind == "forward_kl":
        if need_t:
            gt = _softmax_backprop_(lt.exp(), _clean_(lt - ls), 1.0)
        if need_s:
            gs = ls.exp_().sub_(lt.exp_())
    else:
        lm, buf = _log_mixture(ls, lt, beta)
        if need_t:
            gt = _softmax_backprop_(lt.exp(), _clean_(lt - lm), beta)
        if need_s:
            g = _clean_(torch.sub(ls, lm, out=buf))
            del lm
            gs = _softmax_backprop_(ls.exp_(), g, 1.0 - beta)
    return gs, gt


def _flat_view(x: Tensor) -> Tensor | None:
    """``[B, T, V]`` -> ``[B*T, V]`` view without copying, or None when strides forbid it."""
    try:
        return x.view(-1, x.shape[-1])
    except RuntimeError:
        return None


def _chunk_pieces(n_batch: int, n_tok: int, start: int, stop: int) -> list[tuple[int, int, int]]:
    """Split flat token rows [start, stop) into (b, t0, t1) pieces that stay within a row."""
    pieces = []
    i = start
    while i < stop:
        b, t0 = divmod(i, n_tok)
        t1 = min(n_tok, t0 + (stop - i))
        pieces.append((b, t0, t1))
        i += t1 - t0
    return pieces


def _rows(x: Tensor, flat: Tensor | None, start: int, stop: int) -> Tensor:
    """Rows [start, stop) of the flattened ``[B*T, V]`` tensor (a view when possible)."""
    if flat is not None:
        return flat[start:stop]
    pieces = _chunk_pieces(x.shape[0], x.shape[1], start, stop)
    parts = [x[b, t0:t1] for b, t0, t1 in pieces]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)


class _TokenDivergenceFn(torch.autograd.Function):
    """Chunked divergence; saves only the inputs and recomputes each chunk in backward."""

    @staticmethod
    def forward(ctx, student, teacher, kind: str, beta: float, chunk: int):  # type: ignore[override]
        n_batch, n_tok, _ = student.shape
        n = n_batch * n_tok
        out = torch.empty(n, dtype=torch.float32, device=student.device)
        fs, ft = _flat_view(student), _flat_view(teacher)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            out[start:stop] = _chunk_value(
                _rows(student, fs, start, stop), _rows(teacher, ft, start, stop), kind, beta
            )
        ctx.save_for_backward(student, teacher)
        ctx.kind, ctx.beta, ctx.chunk = kind, beta, chunk
        return out.view(n_batch, n_tok)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        student, teacher = ctx.saved_tensors
        need_s, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_s or need_t):
            return None, None, None, None, None
        n_batch, n_tok, vocab = student.shape
        n = n_batch * n_tok
        fs, ft = _flat_view(student), _flat_view(teacher)
        go = grad_out.reshape(n).float()
        gs = torch.empty((n, vocab), dtype=student.dtype, device=student.device) if need_s else None
        gt = torch.empty((n, vocab), dtype=teacher.dtype, device=teacher.device) if need_t else None
        for start in range(0, n, ctx.chunk):
            stop = min(n, start + ctx.chunk)
            cs, ct = _chunk_grads(
                _rows(student, fs, start, stop),
                _rows(teacher, ft, start, stop),
                ctx.kind,
                ctx.beta,
                need_s,
                need_t,
            )
            scale = go[start:stop, None]
            if gs is not None:
                gs[start:stop] = cs.mul_(scale)
            if gt is not None:
                gt[start:stop] = ct.mul_(scale)
        shape = (n_batch, n_tok, vocab)
        return (
            gs.view(shape) if gs is not None else None,
            gt.view(shape) if gt is not None else None,
            None,
            None,
            None,
        )


def token_divergence(
    student_logits: Tensor,
    teacher_logits: Tensor,
    kind: str,
    beta: float = 0.5,
    chunk_size: int | None = None,
) -> Tensor:
    """Exact per-token divergence over the full vocabulary.

    student_logits, teacher_logits: ``[B, T, V]`` (any float dtype, any strides, same device).
    kind: ``"reverse_kl"`` = KL(p_S || p_T) (the OPD objective), ``"forward_kl"`` =
    KL(p_T || p_S), ``"jsd"`` = generalized JSD_beta with m = beta p_T + (1 - beta) p_S,
    JSD_beta = beta KL(p_T || m) + (1 - beta) KL(p_S || m); beta = 0 is forward KL and
    beta = 1 is reverse KL by convention (special-cased, as in DESIGN.md).
    chunk_size: tokens (rows of the flattened ``B*T``) processed at once; None = all at once
    (one chunk: nothing is kept between forward and backward, but each pass transiently
    holds 2-4 float32 buffers of the input's size). Around ``2**21 / V`` rows (32 at
    V = 49,152, ~6 MB per buffer) keeps the overhead small at negligible speed cost; see
    benchmarks/results/divergence.md.

    Returns ``[B, T]`` float32. Math is float32 whatever the input dtype. Differentiable
    w.r.t. both inputs via an analytic backward that recomputes each chunk (only the inputs
    are saved), so the peak extra memory of forward + backward is the input-sized gradient
    plus 2 (KLs) to 4 (JSD) ``[chunk_size, V]`` float32 buffers, and values/gradients do not
    depend on ``chunk_size``. Masking is the caller's job (reduce the result with
    :func:`agentdistill.distill.rl.masked_mean`).
    """
    kind, beta = _resolve_kind(kind, beta)
    if not (isinstance(student_logits, Tensor) and isinstance(teacher_logits, Tensor)):
        raise ValueError("student_logits and teacher_logits must be torch tensors")
    if student_logits.ndim != 3:
        raise ValueError(
            f"student_logits must be [B, T, V], got shape {tuple(student_logits.shape)}"
        )
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student/teacher logits shape mismatch: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)} (a different vocabulary size means the models do "
            f"not share a tokenizer; slice padded vocab rows first)"
        )
    if not (student_logits.dtype.is_floating_point and teacher_logits.dtype.is_floating_point):
        raise ValueError(
            f"logits must be floating point, got {student_logits.dtype} / {teacher_logits.dtype}"
        )
    if student_logits.device != teacher_logits.device:
        raise ValueError(
            f"student/teacher logits on different devices: {student_logits.device} vs "
            f"{teacher_logits.device}"
        )
    n = student_logits.shape[0] * student_logits.shape[1]
    if chunk_size is None:
        chunk = max(n, 1)
    else:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        chunk = chunk_size
    if n == 0 or student_logits.shape[-1] == 0:
        if student_logits.shape[-1] == 0 and n > 0:
            raise ValueError("vocabulary dimension V is empty")
        return student_logits.new_zeros(student_logits.shape[:2], dtype=torch.float32)
    return _TokenDivergenceFn.apply(student_logits, teacher_logits, kind, beta, chunk)


# ----------------------------------------------------------------------------------------
# Sampled-token estimators
# ----------------------------------------------------------------------------------------


def sampled_kl(student_logprobs: Tensor, teacher_logprobs: Tensor, estimator: str) -> Tensor:
    """Per-token reverse-KL estimators from the sampled tokens' log-probs (Schulman's k1-k3).

    student_logprobs, teacher_logprobs: ``[B, T]`` log pi_theta(y_t), log pi_T(y_t).
    With ``r = student - teacher``: ``k1 = r``, ``k2 = r^2 / 2``, ``k3 = exp(-r) + r - 1``.
    Returns ``[B, T]`` (same dtype). Under y ~ pi_theta, k1 and k3 are unbiased for
    KL(pi_theta || pi_T) (k3 >= 0, lower variance); k2 is biased but low-variance.
    As losses differentiated through log pi_theta at fixed samples, E[grad k2] is the exact
    reverse-KL gradient and E[grad k3] the forward-KL gradient (E[grad k1] = 0: use k1 as a
    policy-gradient reward instead, see :func:`opd_policy_loss`).
    """
    if estimator not in SAMPLED_ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; expected one of {SAMPLED_ESTIMATORS}")
    if student_logprobs.shape != teacher_logprobs.shape:
        raise ValueError(
            f"student/teacher logprobs shape mismatch: {tuple(student_logprobs.shape)} vs "
            f"{tuple(teacher_logprobs.shape)}"
        )
    r = student_logprobs - teacher_logprobs
    if estimator == "k1":
        return r
    if estimator == "k2":
        return 0.5 * r * r
    return torch.expm1(-r) + r


# ----------------------------------------------------------------------------------------
# Top-k support + tail bucket
# ----------------------------------------------------------------------------------------


def _log_tail(logprobs: Tensor, tail_eps: float) -> tuple[Tensor, Tensor]:
    """Tail mass ``1 - sum(exp(lp))`` (clamped at 0) and its log (mass clamped at tail_eps)."""
    mass = (1.0 - logprobs.exp().sum(-1)).clamp_min(0.0)
    return mass, mass.clamp_min(tail_eps).log()


def topk_divergence(
    student_logits: Tensor | None,
    teacher_topk_ids: Tensor | None,
    teacher_topk_logprobs: Tensor,
    kind: str = "reverse_kl",
    *,
    student_topk_logprobs: Tensor | None = None,
    tail_eps: float = 1e-8,
) -> Tensor:
    """Reverse or forward KL restricted to the teacher's top-k tokens plus one tail bucket.

    Inputs (give the student either way):

    - ``student_logits`` ``[B, T, V]`` with ``teacher_topk_ids`` ``[B, T, K]`` (int64 token ids):
      the student's log-probs on the support are gathered from ``log_softmax(student_logits)``
      (float32); or
    - ``student_logits=None`` and ``student_topk_logprobs`` ``[B, T, K]``: the student's
      normalized log-probs on the same K tokens (ids then unused and may be None).

    ``teacher_topk_logprobs`` ``[B, T, K]``: the teacher's normalized (full-vocab) log-probs of
    its top-k tokens, as returned by vLLM/OpenAI ``logprobs``. Each distribution gets a tail
    bucket of mass ``1 - sum_k p_k`` (clamped to [tail_eps, 1] inside the log), so both are
    proper distributions over K + 1 outcomes, and with K = V the result equals the full KL.
    kind: ``"reverse_kl"`` = KL(student || teacher) or ``"forward_kl"`` = KL(teacher || student).

    Returns ``[B, T]`` float32, differentiable w.r.t. the student input. Unlike
    :func:`token_divergence` this is not chunked (its ``[B, T, V]`` part is one log-sum-exp).
    """
    if kind not in ("reverse_kl", "forward_kl"):
        raise ValueError(f"topk_divergence kind must be 'reverse_kl' or 'forward_kl', got {kind!r}")
    if teacher_topk_logprobs.ndim != 3:
        raise ValueError(
            f"teacher_topk_logprobs must be [B, T, K], got {tuple(teacher_topk_logprobs.shape)}"
        )
    if (student_logits is None) == (student_topk_logprobs is None):
        raise ValueError("give exactly one of student_logits or student_topk_logprobs")
    lt = teacher_topk_logprobs.float()
    if student_logits is not None:
        if teacher_topk_ids is None:
            raise ValueError("teacher_topk_ids is required with student_logits")
        if student_logits.ndim != 3 or student_logits.shape[:2] != lt.shape[:2]:
            raise ValueError(
                f"student_logits must be [B, T, V] matching teacher [B, T, K]: "
                f"{tuple(student_logits.shape)} vs {tuple(lt.shape)}"
            )
        if teacher_topk_ids.shape != lt.shape:
            raise ValueError(
                f"teacher_topk_ids {tuple(teacher_topk_ids.shape)} and teacher_topk_logprobs "
                f"{tuple(lt.shape)} differ in shape"
            )
        vocab = student_logits.shape[-1]
        if lt.shape[-1] > vocab:
            raise ValueError(f"top-k size {lt.shape[-1]} exceeds the vocabulary {vocab}")
        ids = teacher_topk_ids.long()
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"teacher_topk_ids out of range [0, {vocab})")
        s = student_logits.float()
        ls = s.gather(-1, ids) - torch.logsumexp(s, dim=-1, keepdim=True)
    else:
        assert student_topk_logprobs is not None
        if student_topk_logprobs.shape != lt.shape:
            raise ValueError(
                f"student_topk_logprobs {tuple(student_topk_logprobs.shape)} and "
                f"teacher_topk_logprobs {tuple(lt.shape)} differ in shape"
            )
        ls = student_topk_logprobs.float()
    s_tail, log_s_tail = _log_tail(ls, tail_eps)
    t_tail, log_t_tail = _log_tail(lt, tail_eps)
    if kind == "reverse_kl":
        p, la, lb, a_tail, la_tail, lb_tail = ls.exp(), ls, lt, s_tail, log_s_tail, log_t_tail
    else:
        p, la, lb, a_tail, la_tail, lb_tail = lt.exp(), lt, ls, t_tail, log_t_tail, log_s_tail
    head = torch.where(p > 0, p * (la - lb), torch.zeros_like(p)).sum(-1)
    return head + a_tail * (la_tail - lb_tail)


# ----------------------------------------------------------------------------------------
# Policy-gradient OPD and Skill-SD surrogates
# ----------------------------------------------------------------------------------------


def _broadcast_tokens(x: Tensor | float | None, like: Tensor, name: str) -> Tensor | None:
    """``None`` | scalar | ``[B]`` | ``[B, T]`` -> detached ``[B, T]`` (or None)."""
    if x is None:
        return None
    if not isinstance(x, Tensor):
        return torch.full_like(like, float(x))
    x = x.detach().to(device=like.device, dtype=like.dtype)
    if x.ndim == 0:
        return x.expand_as(like)
    if x.ndim == 1 and x.shape[0] == like.shape[0]:
        return x[:, None].expand_as(like)
    if x.shape == like.shape:
        return x
    raise ValueError(
        f"{name} must be a scalar, [B]={like.shape[0]} or [B, T]={tuple(like.shape)}; "
        f"got {tuple(x.shape)}"
    )


def opd_policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    teacher_logprobs: Tensor,
    mask: Tensor,
    coef: float = 1.0,
    weights: Tensor | None = None,
    clip_ratio: float | tuple[float, float] = 0.2,
    extra_advantages: Tensor | None = None,
    baseline: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Policy-gradient on-policy distillation (OPD), optionally added to GRPO.

    All token tensors are ``[B, T]`` over the response tokens y_t ~ pi_old:
    logprobs = log pi_theta(y_t) (requires grad); old_logprobs = log pi_old(y_t);
    teacher_logprobs = log pi_T(y_t); mask = 1 on student tokens that carry loss.

    Per-token advantage (all detached)::

        A_t = coef * w_t * (teacher - old + baseline_t) + extra_t

    - ``weights`` w_t: ``[B, T]`` or ``[B]`` (e.g. SOD per-turn weights broadcast to tokens);
      default 1.
    - ``baseline``: vOPD baseline, the per-token reverse KL_t of the student from the teacher
      at that state (``token_divergence`` or ``topk_divergence`` under pi_old). It is the
      expectation of ``old - teacher`` over y_t, so adding it centres the OPD reward without
      bias and lowers its variance. Scaled by ``coef * w_t`` like the term it centres.
    - ``extra_advantages``: ``[B]`` or ``[B, T]``, e.g. GRPO advantages broadcast to tokens:
      ``A = A_GRPO + OPD term`` (DESIGN.md).

    Loss: PPO clip (:func:`agentdistill.distill.rl.ppo_clip_loss`) with
    ``rho = exp(logprobs - old_logprobs)``, token-mean over the mask. At rho = 1 its gradient
    in expectation over y_t is ``coef * grad KL(pi_theta || pi_T)``.

    Metrics (floats): ppo_clip_loss's plus ``reverse_kl_k1`` / ``reverse_kl_k3`` (estimates of
    KL(pi_old || pi_T) from the samples), ``reverse_kl_std`` (token std of k1),
    ``opd_adv_mean`` (mean of the OPD term alone), ``weight_mean``.
    """
    if not (logprobs.shape == old_logprobs.shape == teacher_logprobs.shape == mask.shape):
        raise ValueError(
            "shape mismatch: logprobs "
            f"{tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)}, "
            f"teacher_logprobs {tuple(teacher_logprobs.shape)}, mask {tuple(mask.shape)}"
        )
    if logprobs.ndim != 2:
        raise ValueError(f"token tensors must be [B, T], got {tuple(logprobs.shape)}")
    ref = logprobs.detach()
    keep = mask != 0
    zero = torch.zeros((), dtype=ref.dtype, device=ref.device)
    old = torch.where(keep, old_logprobs.detach().to(ref.dtype), zero)
    teacher = torch.where(keep, teacher_logprobs.detach().to(ref.dtype), zero)
    w = _broadcast_tokens(weights, ref, "weights")
    base = _broadcast_tokens(baseline, ref, "baseline")
    extra = _broadcast_tokens(extra_advantages, ref, "extra_advantages")
    term = teacher - old
    if base is not None:
        term = term + base
    opd_adv = coef * term if w is None else coef * w * term
    adv = opd_adv if extra is None else opd_adv + extra
    loss, metrics = ppo_clip_loss(logprobs, old_logprobs, adv, mask, clip_ratio)
    with torch.no_grad():
        k1 = old - teacher
        metrics["reverse_kl_k1"] = float(masked_mean(k1, mask))
        metrics["reverse_kl_k3"] = float(masked_mean(torch.expm1(-k1) + k1, mask))
        metrics["reverse_kl_std"] = float(masked_std(k1, mask))
        metrics["opd_adv_mean"] = float(masked_mean(opd_adv, mask))
        metrics["weight_mean"] = 1.0 if w is None else float(masked_mean(w, mask))
    return loss, metrics


def skill_sd_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    teacher_logprobs: Tensor,
    mask: Tensor,
    clip: float | tuple[float, float] | None = 2.0,
) -> tuple[Tensor, dict[str, float]]:
    """Skill-SD importance-weighted sampled reverse KL (y_t ~ pi_old), token-mean over mask.

    Surrogate per token: ``sg(clip(rho_t) * (log pi_theta - log pi_T)(y_t)) * log pi_theta(y_t)``
    with ``rho_t = pi_theta(y_t) / pi_old(y_t)``. Its gradient is
    ``rho (log pi_theta - log pi_T) grad log pi_theta`` whose expectation under pi_old is
    ``E_{pi_theta}[(log pi_theta - log pi_T) grad log pi_theta] = grad KL(pi_theta || pi_T)``
    when the clip is inactive. clip: float c -> rho clamped to ``[0, c]`` (truncated IS);
    ``(lo, hi)`` -> clamped to ``[lo, hi]``; None -> no clipping (unbiased, higher variance).
    The loss value is a surrogate, not the KL; see the metrics for KL estimates.

    Inputs are ``[B, T]`` as in :func:`opd_policy_loss`. Metrics (floats): ``loss``,
    ``reverse_kl_iw`` (rho-weighted k1, estimates KL(pi_theta || pi_T)), ``reverse_kl_k1``
    (old - teacher), ``rho_mean``, ``clip_frac``, ``num_tokens``.
    """
    if not (logprobs.shape == old_logprobs.shape == teacher_logprobs.shape == mask.shape):
        raise ValueError(
            "shape mismatch: logprobs "
            f"{tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)}, "
            f"teacher_logprobs {tuple(teacher_logprobs.shape)}, mask {tuple(mask.shape)}"
        )
    if clip is None:
        lo, hi = 0.0, math.inf
    elif isinstance(clip, (tuple, list)):
        lo, hi = float(clip[0]), float(clip[1])
    else:
        lo, hi = 0.0, float(clip)
    if not (0.0 <= lo <= hi):
        raise ValueError(f"clip must satisfy 0 <= low <= high, got {clip!r}")
    keep = mask != 0
    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    lp = torch.where(keep, logprobs, zero)
    with torch.no_grad():
        old = torch.where(keep, old_logprobs.detach().to(lp.dtype), zero)
        teacher = torch.where(keep, teacher_logprobs.detach().to(lp.dtype), zero)
        rho = torch.exp(lp.detach() - old)
        rho_c = rho.clamp(lo, hi)
        coef = rho_c * (lp.detach() - teacher)
    loss = masked_mean(coef * lp, mask)
    with torch.no_grad():
        metrics = {
            "loss": float(loss.detach()),
            "reverse_kl_iw": float(masked_mean(rho * (lp.detach() - teacher), mask)),
            "reverse_kl_k1": float(masked_mean(old - teacher, mask)),
            "rho_mean": float(masked_mean(rho, mask)),
            "clip_frac": float(masked_mean((rho_c != rho).to(lp.dtype), mask)),
            "num_tokens": float(keep.sum()),
        }
    return loss, metrics
