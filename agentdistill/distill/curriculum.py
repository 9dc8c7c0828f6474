"""TCOD temporal curricula: how many student turns a training rollout exposes at each step.

Modes (DESIGN.md, TCOD), with ``s`` the optimizer step, ``K`` the period, ``H`` the horizon:

- ``"f2b"`` (front to back): ``depth(s) = min(1 + floor(s / K), H)`` student turns from the
  start; the trainer truncates training rollouts there.
- ``"b2f"`` (back to front): the first ``replay_length(s, L) = max(0, L - 1 - floor(s / K))``
  expert actions of an ``L``-step expert solution are replayed (no loss), then the student
  acts for the rest of the episode (``depth(s) = H``).
- ``"adaptive"`` (ours, beyond the paper): like f2b, but the depth advances as soon as the
  trajectory KL stops rising at the current depth, and never lags behind f2b with period
  ``K`` (here ``K`` plays K_max, the fixed-K fallback). The exact rule, applied by
  :meth:`TCODSchedule.update` once per training step with that step's trajectory-KL mean and
  std (over the batch's trajectories):

  1. Fallback first: if the f2b depth with period ``K`` at this step exceeds the current
     depth, jump to it (and forget the window history).
  2. Non-finite KL values are ignored (no decision on NaN).
  3. Keep the (mean, std) pairs observed at the current depth. Once there are at least
     ``2 * window``, compare the average over the last ``window`` (``cur``) with the average
     over the ``window`` before it (``prev``). The KL has *stopped rising* when
     ``cur_mean <= prev_mean + tol * |prev_mean|`` and
     ``cur_std <= prev_std + tol * |prev_std|``.
  4. If it has stopped rising and depth < H: depth += 1 and the history is cleared (so at
     least ``2 * window`` steps are spent at every depth unless the fallback forces a jump).

  Evaluation always uses the full horizon; the schedule only governs training rollouts.
  ``state_dict()`` / ``load_state_dict()`` carry the adaptive state across checkpoints.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TCOD_MODES", "TCODSchedule"]

TCOD_MODES = ("f2b", "b2f", "adaptive")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class TCODSchedule:
    """Depth / replay-length schedule for TCOD; see the module docstring for the rules.

    Args:
        mode: ``"f2b"``, ``"b2f"`` or ``"adaptive"``.
        K: steps per depth increment (f2b, b2f) or the fallback period K_max (adaptive).
        horizon: H, the maximum number of student turns (the env's turn limit).
        window: adaptive only: steps per averaging window (>= 1).
        tol: adaptive only: relative rise still counted as "not rising" (>= 0).
    """

    def __init__(
        self, mode: str, K: int, horizon: int, *, window: int = 2, tol: float = 0.0
    ) -> None:
        if mode not in TCOD_MODES:
            raise ValueError(f"unknown TCOD mode {mode!r}; expected one of {TCOD_MODES}")
        self.mode = mode
        self.K = _check_int("K", K, 1)
        self.horizon = _check_int("horizon", horizon, 1)
        self.window = _check_int("window", window, 1)
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
        self.tol = float(tol)
        self._depth = 1
        self._history: list[tuple[float, float]] = []
        self._last_step = -1

    def __repr__(self) -> str:
        return f"TCODSchedule(mode={self.mode!r}, K={self.K}, horizon={self.horizon})"

    @staticmethod
    def _check_step(step: Any) -> int:
        return _check_int("step", step, 0)

    def _f2b_depth(self, step: int) -> int:
        return min(1 + step // self.K, self.horizon)

    def depth(self, step: int) -> int:
        """Student turns a training rollout may take at ``step`` (``H`` in b2f mode)."""
        step = self._check_step(step)
        if self.mode == "b2f":
            return self.horizon
        if self.mode == "f2b":
            return self._f2b_depth(step)
        return max(self._depth, self._f2b_depth(step))

    def replay_length(self, step: int, expert_length: int) -> int:
        """Expert actions to replay before the student acts (0 outside b2f mode)."""
        step = self._check_step(step)
        expert_length = _check_int("expert_length", expert_length, 0)
        if self.mode != "b2f":
            return 0
        return max(0, expert_length - 1 - step // self.K)

    def update(self, step: int, kl_mean: float, kl_std: float) -> int:
        """Feed step ``step``'s trajectory-KL mean/std (adaptive mode); returns the depth for
        the next step. A no-op outside adaptive mode. Steps must not go backwards."""
        step = self._check_step(step)
        if step < self._last_step:
            raise ValueError(f"update() steps must not decrease: {step} after {self._last_step}")
        self._last_step = step
        if self.mode != "adaptive":
            return self.depth(step + 1)
        fallback = self._f2b_depth(step)
        if fallback > self._depth:
            self._depth = fallback
            self._history.clear()
        m, s = float(kl_mean), float(kl_std)
        if not (math.isfinite(m) and math.isfinite(s)):
            return self.depth(step + 1)
        self._history.append((m, s))
        w = self.window
        if len(self._history) >= 2 * w and self._depth < self.horizon:
            prev, cur = self._history[-2 * w : -w], self._history[-w:]
            prev_m = sum(x[0] for x in prev) / w
            prev_s = sum(x[1] for x in prev) / w
            cur_m = sum(x[0] for x in cur) / w
            cur_s = sum(x[1] for x in cur) / w
            if cur_m <= prev_m + self.tol * abs(prev_m) and cur_s <= prev_s + self.tol * abs(
                prev_s
            ):
                self._depth += 1
                self._history.clear()
        return self.depth(step + 1)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (config and adaptive state), JSON-serialisable."""
        return {
            "mode": self.mode,
            "K": self.K,
            "horizon": self.horizon,
            "window": self.window,
            "tol": self.tol,
            "depth": self._depth,
            "history": [list(x) for x in self._history],
            "last_step": self._last_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the configuration must match."""
        for key in ("mode", "K", "horizon", "window", "tol"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"TCOD state has {key}={state.get(key)!r}, schedule has {getattr(self, key)!r}"
                )
        self._depth = _check_int("depth", state["depth"], 1)
        self._history = [(float(m), float(s)) for m, s in state["history"]]
        self._last_step = int(state["last_step"])
