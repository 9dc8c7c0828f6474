"""agentdistill: multi-turn text-agent environments and on-policy distillation."""

__version__ = "0.1.0"
