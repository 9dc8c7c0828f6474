"""Register agentdistill's env ids whenever gymnasium is imported, without importing us.

gymnasium < 1.0 loaded third-party ids through the ``gymnasium.envs`` entry-point group
(still declared in pyproject.toml); gymnasium 1.x removed that plugin system. To keep
``gym.make("agentdistill/Sokoban-v0")`` working after ``pip install`` with no explicit
``import agentdistill``, the wheel ships ``agentdistill_gym.pth`` which imports this tiny
module at interpreter start. It installs a meta-path finder that waits for the
``gymnasium`` package to finish importing and then calls
:func:`agentdistill.envs.registration.register_envs`. Nothing heavy runs at start-up, and
a failure here only warns: it must never break an unrelated Python program.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings

_TARGET = "gymnasium"


def _register() -> None:
    try:
        from agentdistill.envs.registration import register_envs

        register_envs()
    except Exception as exc:  # pragma: no cover - defensive: never break gymnasium
        warnings.warn(f"agentdistill could not register its gymnasium envs: {exc}", stacklevel=2)


class _LoaderWrapper(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):  # noqa: ANN001 - importlib protocol
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001 - importlib protocol
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _GymnasiumFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib protocol
        if fullname != _TARGET:
            return None
        # Let the real finders locate gymnasium, then wrap its loader once.
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _LoaderWrapper(spec.loader)
        return spec


_FINDER = _GymnasiumFinder()


def install() -> None:
    """Arrange for registration at gymnasium import (or now, if it is already imported)."""
    if _TARGET in sys.modules:
        _register()
        return
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


install()
