"""What every results file records about where it ran: the CPU model and the git commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentdistill.agents.models import cpu_model

__all__ = ["ROOT", "cpu_model", "git_commit"]

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    """The short commit of the checkout, or None outside git."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
