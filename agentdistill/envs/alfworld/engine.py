"""One ALFWorld game on TextWorld's PDDL engine, with ALFWorld's object names.

A thin layer over ``textworld.envs.PddlEnv`` (the engine ALFWorld's ``AlfredTWEnv`` plays):
it names entities the way ALFWorld's demangler does ("cabinet 3", "sinkbasin 1"), exposes
feedback, admissible commands and the goal check, and asks Fast Downward (bundled with
TextWorld's PDDL extra) for an optimal plan from the current state.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

_REPLACEMENTS = (("_bar_", "|"), ("_minus_", "-"), ("_plus_", "+"), ("_dot_", "."), ("_comma_", ","))


def alfred_names(ids: list[str]) -> dict[str, str]:
    """PDDL ids -> display names, numbered per class the way ALFWorld's demangler numbers them.

    ``apple_bar__plus_01_dot_20_bar_...`` becomes ``apple N``; ids of a class are sorted and
    numbered from the class count down (ALFWorld pops numbers off the end of 1..count);
    ``sink_bar_..._bar_sinkbasin`` becomes ``sinkbasin N``; ids without ``_bar_`` (types,
    the agent) keep their id followed by a space, as in ALFWorld.
    """
    ids = sorted(ids)

    def cls_of(pddl_id: str) -> str | None:
        parts = pddl_id.split("_bar_", 1)
        if len(parts) == 1:
            return None
        return parts[0] + ("basin" if "basin" in pddl_id else "")

    numbers: dict[str, list[int]] = {}
    for cls, count in Counter(c for c in map(cls_of, ids) if c).items():
        numbers[cls] = list(range(1, count + 1))
    names = {}
    for pddl_id in ids:
        cls = cls_of(pddl_id)
        if cls is None:
            text = pddl_id
            for old, new in _REPLACEMENTS:
                text = text.replace(old, new)
            names[pddl_id] = f"{text} "
        else:
            names[pddl_id] = f"{cls} {numbers[cls].pop()}"
    return names


NOTHING_HAPPENS = "Nothing happens."


class GameLoadError(ValueError):
    """A game file that cannot be read or compiled; the message names the file."""


def read_game_file(path: str | Path) -> dict[str, Any]:
    """Read a ``game.tw-pddl`` JSON file, raising :class:`GameLoadError` naming it if malformed."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GameLoadError(f"cannot read ALFWorld game file {path}: {exc}") from exc
    _check_payload(payload, str(path))
    return payload


def _check_payload(payload: Any, source: str) -> None:
    if not isinstance(payload, dict):
        raise GameLoadError(f"ALFWorld game {source} is not a JSON object")
    missing = [k for k in ("pddl_domain", "grammar", "pddl_problem") if not isinstance(payload.get(k), str)]
    if missing:
        raise GameLoadError(f"ALFWorld game {source} lacks {', '.join(missing)}")


class AlfredGame:
    """One engine instance: ``load(payload)``, ``reset()``, ``step(command)``, ``plan()``.

    TextWorld's ``PddlEnv`` loads a private copy of Fast Downward's shared library per
    instance, so an instance is reused across games rather than created per reset.
    ``memoize_parsing`` installs :mod:`~agentdistill.envs.alfworld.speedups` (same text,
    faster steps; process-wide).
    """

    def __init__(self, memoize_parsing: bool = True):
        try:
            import textworld
            from textworld.envs.pddl import PddlEnv
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the ALFWorld environment needs TextWorld's PDDL engine: "
                "pip install 'agentdistill[alfworld]'"
            ) from exc
        if memoize_parsing:
            from agentdistill.envs.alfworld import speedups

            speedups.install()
        self._env = PddlEnv(textworld.EnvInfos(admissible_commands=True, won=True))
        self.source: str | None = None
        self._state: Any = None
        self._admissible_set: frozenset[str] = frozenset()

    def load(self, payload: dict[str, Any], source: str = "<memory>") -> None:
        """Compile a ``game.tw-pddl`` payload; :class:`GameLoadError` names ``source`` on failure."""
        _check_payload(payload, source)
        self.source = None
        self._state = None
        try:
            self._env.load(payload)
        except Exception as exc:  # TextWorld/Fast Downward raise many kinds on bad PDDL
            raise GameLoadError(f"cannot load ALFWorld game {source}: {exc!r}") from exc
        infos = self._env._entity_infos
        for pddl_id, name in alfred_names(list(infos)).items():
            infos[pddl_id].name = name
        self.source = source

    def close(self) -> None:
        """Free the planner's task memory.

        The private library copy itself stays mapped: ``dlclose`` on it (fast_downward's
        ``close_lib``) makes the interpreter crash at exit once two copies were closed.
        """
        lib = getattr(self._env, "downward_lib", None)
        if lib is not None:
            lib.cleanup()
            self._env.downward_lib = None
        self.source = None
        self._state = None

    def reset(self) -> str:
        """Restart the game; return the engine's opening text."""
        self._state = self._env.reset()
        self._admissible_set = frozenset(self._state["admissible_commands"])
        return self._state.feedback

    def step(self, command: str) -> tuple[str, bool]:
        """Play ``command``; return (feedback, whether it was an admissible command).

        For a command outside the admissible set the engine answers "Nothing happens." and
        changes nothing (it only re-derives the same state); that answer is returned here
        without the re-derivation, which costs as much as a real step.
        """
        if command not in self._admissible_set:
            return NOTHING_HAPPENS, False
        self._state, _, _ = self._env.step(command)
        self._admissible_set = frozenset(self._state["admissible_commands"])
        return self._state.feedback, True

    @property
    def admissible(self) -> list[str]:
        return list(self._state["admissible_commands"])

    @property
    def won(self) -> bool:
        return bool(self._state["won"])

    def plan(self) -> list[str]:
        """An optimal command sequence from the current state to the goal ([] if none)."""
        pddl_state = self._env._pddl_state
        return list(pddl_state.replan(self._env._entity_infos))
