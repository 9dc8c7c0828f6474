"""On-policy distillation: teacher scoring, divergence losses, RL pieces, TCOD/SOD/Skill-SD.

The math modules (:mod:`.losses`, :mod:`.rl`, :mod:`.weighting`, :mod:`.curriculum`) are
pure functions over ``[B, T]`` token tensors with explicit masks and depend on torch only;
they are re-exported here. Model-facing modules (teacher, skills, trainer) are imported
from their own submodules so that importing this package stays light.
"""

from agentdistill.distill.curriculum import TCODSchedule
from agentdistill.distill.losses import (
    opd_policy_loss,
    sampled_kl,
    skill_sd_loss,
    token_divergence,
    topk_divergence,
)
from agentdistill.distill.rl import grpo_advantages, masked_mean, ppo_clip_loss
from agentdistill.distill.weighting import (
    broadcast_turn_weights,
    effective_weight_mass,
    sod_token_weights,
    sod_weights,
    turn_mean_abs_divergence,
)

__all__ = [
    "TCODSchedule",
    "broadcast_turn_weights",
    "effective_weight_mass",
    "grpo_advantages",
    "masked_mean",
    "opd_policy_loss",
    "ppo_clip_loss",
    "sampled_kl",
    "skill_sd_loss",
    "sod_token_weights",
    "sod_weights",
    "token_divergence",
    "topk_divergence",
    "turn_mean_abs_divergence",
]
