"""The LLM side: prompts, parsing, backends, policies, batched rollout, trajectories.

Heavy modules (torch, transformers) load lazily, so ``import agentdistill.agents`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Episode": "agentdistill.agents.trajectory",
    "Turn": "agentdistill.agents.trajectory",
    "load_jsonl": "agentdistill.agents.trajectory",
    "save_jsonl": "agentdistill.agents.trajectory",
    "summarize": "agentdistill.agents.trajectory",
    "build_messages": "agentdistill.agents.prompts",
    "prompt_token_ids": "agentdistill.agents.prompts",
    "ParsedAction": "agentdistill.agents.parsing",
    "parse_action": "agentdistill.agents.parsing",
    "SamplingParams": "agentdistill.agents.backends.base",
    "HFBackend": "agentdistill.agents.backends.hf",
    "load_model": "agentdistill.agents.models",
    "load_tokenizer": "agentdistill.agents.models",
    "tiny_random_model": "agentdistill.agents.models",
    "ModelLoadError": "agentdistill.agents.models",
    "ActRequest": "agentdistill.agents.policies",
    "ActResult": "agentdistill.agents.policies",
    "Policy": "agentdistill.agents.policies",
    "ExpertPolicy": "agentdistill.agents.policies",
    "RandomPolicy": "agentdistill.agents.policies",
    "LLMPolicy": "agentdistill.agents.policies",
    "rollout": "agentdistill.agents.rollout",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agentdistill.agents' has no attribute {name!r}")
