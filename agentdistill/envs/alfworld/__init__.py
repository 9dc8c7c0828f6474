"""ALFWorld text games on TextWorld's PDDL engine (official data or generated games)."""

from agentdistill.envs.alfworld.vocab import TASK_TYPES

__all__ = ["TASK_TYPES"]
