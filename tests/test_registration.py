"""gym.make works after install with no ``import agentdistill`` (the .pth import hook)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agentdistill.envs.registration import env_ids


def _run(code: str) -> subprocess.CompletedProcess:
    # a fresh interpreter started outside the repo: only the installed .pth can register us
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd="/")


def test_gym_make_without_importing_agentdistill():
    code = (
        "import json, gymnasium as gym\n"
        "env = gym.make('agentdistill/Sokoban-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "assert info['task_id'], info\n"
        "print(json.dumps(sorted(k for k in gym.registry if k.startswith('agentdistill/'))))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == sorted(env_ids())


def test_hook_does_not_import_gymnasium_at_start():
    """Interpreter start stays light: gymnasium is loaded only when someone imports it."""
    result = _run("import sys; print('gymnasium' in sys.modules, 'agentdistill._gym_hook' in sys.modules)")
    assert result.returncode == 0, result.stderr
    gym_loaded, hook_loaded = result.stdout.split()
    if hook_loaded != "True":
        pytest.skip("agentdistill_gym.pth is not installed in this interpreter's site-packages")
    assert gym_loaded == "False"


def test_register_envs_is_idempotent():
    import gymnasium as gym

    from agentdistill.envs.registration import register_envs

    before = {k: gym.registry[k] for k in env_ids()}
    register_envs()
    assert {k: gym.registry[k] for k in env_ids()} == before
