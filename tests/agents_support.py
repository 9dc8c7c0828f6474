"""Shared test helpers for the agents tests: a tiny TextEnv and a tiny random LLM."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym

from agentdistill.envs.core import StepResult, TaskState, TextEnv

TOY_ID = "agentdistill-test/Toy-v0"


class ToyEnv(TextEnv):
    """Reach a target counter value with inc/dec; ``stop`` ends the episode.

    Seed s: start 0, target 1 + s % 3; task_type alternates "up"/"down" by seed parity
    (the target is negated for "down"). Rewards: +1 on reaching the target (won), -0.1
    otherwise; unknown actions are invalid steps.
    """

    ACTIONS = ("inc", "dec", "stop")

    def _reset_task(self, options: dict[str, Any]) -> TaskState:
        seed_draw = int(self.np_random.integers(0, 1_000_000))
        self.kind = "up" if seed_draw % 2 == 0 else "down"
        self.target = (1 + seed_draw % 3) * (1 if self.kind == "up" else -1)
        self.value = 0
        return TaskState(
            observation=f"value 0, target {self.target}",
            task=f"make the counter equal {self.target}",
            task_id=f"toy-{self.target}",
            extra={"task_type": self.kind},
        )

    def admissible_actions(self) -> list[str]:
        return list(self.ACTIONS)

    def _step_action(self, action: str) -> StepResult:
        action = action.lower()
        if action not in self.ACTIONS:
            return StepResult(f"unknown action {action!r}", -0.1, False, action_valid=False)
        if action == "stop":
            won = self.value == self.target
            return StepResult("stopped", 0.0, True, won=won, score=float(won))
        self.value += 1 if action == "inc" else -1
        won = self.value == self.target
        return StepResult(
            f"value {self.value}, target {self.target}",
            1.0 if won else -0.1,
            won,
            won=won,
            score=float(won),
        )

    def expert_action(self) -> str | None:
        if self.value == self.target:
            return None
        return "inc" if self.value < self.target else "dec"

    def expert_plan(self) -> list[str] | None:
        step = "inc" if self.value < self.target else "dec"
        return [step] * abs(self.target - self.value)


if TOY_ID not in gym.registry:
    gym.register(id=TOY_ID, entry_point=ToyEnv, max_episode_steps=6, disable_env_checker=True)


@functools.cache
def get_tiny_lm():
    """(model, tokenizer): a 2-layer random Llama with SmolLM2's tokenizer (built once)."""
    import torch

    from agentdistill.agents.models import tiny_random_model

    # one thread: CI has 2 cores, and oversubscribed BLAS threads slow tiny matmuls 10x
    torch.set_num_threads(1)
    return tiny_random_model(seed=0)
