"""Gymnasium text environments: Sokoban, ALFWorld, ScienceWorld, WebShop."""

from agentdistill.envs.core import AnyText, StepResult, TaskState, TextEnv, normalize_action
from agentdistill.envs.registration import env_ids, register_envs

register_envs()

__all__ = [
    "AnyText",
    "StepResult",
    "TaskState",
    "TextEnv",
    "env_ids",
    "normalize_action",
    "register_envs",
]
