"""Where ALFWorld games come from: the official data if present, else our generated bundle.

Official data is what ``alfworld-download`` puts under ``$ALFWORLD_DATA`` (default
``~/.cache/alfworld``): ``json_2.1.1/{train,valid_seen,valid_unseen}/<task>/<trial>/`` with
``game.tw-pddl`` and ``traj_data.json``. Games are kept exactly as ALFWorld's own
``AlfredTWEnv`` keeps them (the six task types, no movable/sliced variants, files marked
solvable), which yields the standard 3,553 / 140 / 134 games.

Without it, games come from ``games.json.gz`` shipped next to this module: procedurally
generated rooms (see :mod:`agentdistill.envs.alfworld.generator`) stored as compact PDDL
problems and combined at load time with ALFWorld's own domain and grammar into the same
``game.tw-pddl`` payload.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentdistill.envs.alfworld.engine import GameLoadError, read_game_file
from agentdistill.envs.alfworld.vocab import TASK_TYPES

logger = logging.getLogger(__name__)

BUNDLE_PATH = Path(__file__).with_name("games.json.gz")
OFFICIAL_SPLITS = ("train", "valid_seen", "valid_unseen")
#: The env's split names -> data split. ALFWorld has no public test games; "test" is the
#: out-of-distribution evaluation split, valid_unseen, as in ALFWorld's own eval configs.
SPLIT_ALIASES = {"train": "train", "valid_seen": "valid_seen", "valid_unseen": "valid_unseen",
                 "test": "valid_unseen"}
_SOLVABLE = re.compile(r'"solvable"\s*:\s*true')


@dataclass(frozen=True)
class GameRecord:
    """One playable game: where it comes from and how to get its ``game.tw-pddl`` payload."""

    game_id: str
    split: str
    task_type: str
    source: str  # "official" or "generated"
    location: str  # file path, or "<bundle>#<game_id>"
    walkthrough: tuple[str, ...] | None = None

    def payload(self) -> dict[str, Any]:
        if self.source == "official":
            return read_game_file(self.location)
        return _generated_payload(self.game_id)


def official_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The directory holding ``json_2.1.1`` (argument, ``$ALFWORLD_DATA``, or alfworld's cache)."""
    candidates = [data_dir] if data_dir is not None else [
        os.environ.get("ALFWORLD_DATA"), Path.home() / ".cache" / "alfworld"]
    for cand in candidates:
        if cand and (Path(cand) / "json_2.1.1").is_dir():
            return Path(cand)
    return None


@functools.lru_cache(maxsize=4)
def load_official(root: str) -> tuple[GameRecord, ...]:
    """Index the official tree under ``root`` (reads each traj_data.json once per process)."""
    records = []
    base = Path(root) / "json_2.1.1"
    for split in OFFICIAL_SPLITS:
        split_dir = base / split
        if not split_dir.is_dir():
            continue
        for traj_path in sorted(split_dir.rglob("traj_data.json")):
            game_dir = traj_path.parent
            rel = game_dir.relative_to(split_dir).as_posix()
            if "movable" in rel or "Sliced" in rel:
                continue
            game_path = game_dir / "game.tw-pddl"
            if not game_path.is_file():
                continue
            try:
                task_type = json.loads(traj_path.read_text())["task_type"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise GameLoadError(f"cannot read ALFWorld traj_data file {traj_path}: {exc}") from exc
            if task_type not in TASK_TYPES:
                continue
            if not _SOLVABLE.search(game_path.read_text(errors="replace")):
                continue
            records.append(GameRecord(rel, split, task_type, "official", str(game_path)))
    return tuple(records)


@functools.lru_cache(maxsize=1)
def _bundle() -> dict[str, Any]:
    from agentdistill.envs.alfworld.generator import alfworld_logic

    try:
        with gzip.open(BUNDLE_PATH, "rb") as f:
            bundle = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise GameLoadError(f"cannot read the generated ALFWorld games {BUNDLE_PATH}: {exc}") from exc
    domain, grammar = alfworld_logic()
    bundle["domain"], bundle["grammar"] = domain, grammar
    bundle["by_id"] = {g["game_id"]: g for g in bundle["games"]}
    return bundle


def _generated_payload(game_id: str) -> dict[str, Any]:
    bundle = _bundle()
    game = bundle["by_id"][game_id]
    return {
        "pddl_domain": bundle["domain"],
        "grammar": bundle["grammar"].replace("UNKNOWN GOAL", game["task_desc"]),
        "pddl_problem": game["pddl_problem"],
        "solvable": True,
        "walkthrough": game["walkthrough"],
    }


def load_generated() -> tuple[GameRecord, ...]:
    """Records of the shipped generated games."""
    return tuple(
        GameRecord(g["game_id"], g["split"], g["task_type"], "generated",
                   f"{BUNDLE_PATH}#{g['game_id']}",
                   tuple(g["walkthrough"]) if g.get("walkthrough") else None)
        for g in _bundle()["games"]
    )


def load_catalog(source: str = "auto", data_dir: str | os.PathLike | None = None
                 ) -> tuple[str, tuple[GameRecord, ...]]:
    """(source used, records). ``source`` is "auto", "official" or "generated"."""
    if source not in ("auto", "official", "generated"):
        raise ValueError(f"unknown ALFWorld source {source!r}; use auto, official or generated")
    if source in ("auto", "official"):
        root = official_root(data_dir)
        if root is not None:
            records = load_official(str(root))
            if records:
                logger.info("ALFWorld: official games from %s (%d games)", root, len(records))
                return "official", records
        if source == "official":
            raise FileNotFoundError(
                f"no official ALFWorld games under {data_dir or '$ALFWORLD_DATA or ~/.cache/alfworld'}"
                " (expected json_2.1.1/<split>/**/game.tw-pddl; run alfworld-download)"
            )
    records = load_generated()
    logger.info("ALFWorld: official data not found; using %d generated games from %s",
                len(records), BUNDLE_PATH)
    return "generated", records
