"""The evaluation protocol: which tasks, how many samples, which numbers, which settings.

* **Tasks.** :func:`all_tasks` lists every task of a split exactly once: ALFWorld's games,
  WebShop's goals (500 in ``test``), ScienceWorld's (task, variation) pairs, and for
  Sokoban, whose rooms are unbounded, a fixed seed list (``SOKOBAN_SEEDS`` seeds,
  ``0 .. 499``). :func:`stratify` keeps at most N evenly spaced tasks per task type (the
  shipped ``tasklists/scienceworld-test-stratified.jsonl`` is ``stratify(all_tasks(
  "agentdistill/ScienceWorld-v0", "test"), 5)``: 149 of 1,819). A task is a seed plus
  reset options; :func:`save_tasks` / :func:`load_tasks` write and read them as JSONL, so
  any list can be replayed (``agentdistill eval --tasks FILE``). Envs of other families
  can offer ``all_tasks(split) -> list[dict]`` (each with ``options`` and optionally
  ``seed``, ``task_id``, ``task_type``) on their unwrapped class.
* **Samples.** Each task is played ``samples`` times (rollout groups). ``success`` is the
  mean over all episodes (pass@1); ``pass@k`` the unbiased estimator of Chen et al.
  (2021) averaged over tasks; both have a 95% Wilson interval over the tasks (over the
  episodes when ``samples == 1``). Rows per task type come with the overall row.
* **Settings.** :func:`run_settings` records everything that changes the numbers: env id,
  spec and extra kwargs, turn limit, split, data source, policy, sampling, dtype, device,
  package version and git commit. :func:`machine` records where it ran (CPU, cores, load
  average), which changes the wall times, not the numbers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Seeds an "all tasks" Sokoban run plays (its rooms are unbounded): 0 .. SOKOBAN_SEEDS-1.
SOKOBAN_SEEDS = 500
Z95 = 1.959963984540054
TASKLIST_DIR = Path(__file__).resolve().parent / "tasklists"


@dataclass(frozen=True)
class Task:
    """One task of a protocol: the seed and reset options that start it."""

    task_id: str
    seed: int
    options: dict[str, Any] = field(default_factory=dict)
    task_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "task_type": self.task_type, "seed": self.seed,
                "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], index: int = 0) -> Task:
        if not isinstance(data, Mapping) or not isinstance(data.get("options", {}), Mapping):
            raise ValueError(f"task {index}: expected an object with an 'options' object, "
                             f"got {data!r}")
        seed = data.get("seed", index)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"task {index}: seed must be an int >= 0, got {seed!r}")
        task_type = data.get("task_type")
        return cls(task_id=str(data.get("task_id", f"task-{index}")), seed=seed,
                   options=dict(data.get("options", {})),
                   task_type=None if task_type is None else str(task_type))


# --- task lists ---------------------------------------------------------------------------
def env_family(env_id: str) -> str:
    """``sokoban`` / ``alfworld`` / ``webshop`` / ``scienceworld`` from the registered
    entry point, else ``""``."""
    import gymnasium as gym

    import agentdistill.envs  # noqa: F401  (registers the ids)

    entry = str(gym.spec(env_id).entry_point).lower()
    for family in ("sokoban", "alfworld", "webshop", "scienceworld"):
        if f"envs.{family}." in entry:
            return family
    return ""


def _make_kwargs(env_id: str, env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    import gymnasium as gym

    return {**dict(gym.spec(env_id).kwargs or {}), **dict(env_kwargs or {})}


def all_tasks(env_id: str, split: str = "test",
              env_kwargs: Mapping[str, Any] | None = None) -> list[Task]:
    """Every task of ``split`` once, in a fixed order (see the module docstring)."""
    import gymnasium as gym

    from agentdistill.envs.core import SPLITS

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    family = env_family(env_id)
    if family == "sokoban":
        return [Task(f"sokoban-{split}-seed{s}", s, {"split": split}, "sokoban")
                for s in range(SOKOBAN_SEEDS)]
    if family == "scienceworld":
        from agentdistill.envs.scienceworld.env import TASK_NAMES, split_variations

        pairs = [(t, v) for t in TASK_NAMES for v in split_variations(t, split)]
        return [Task(f"{t}-{v}", i, {"split": split, "task": t, "variation": v}, t)
                for i, (t, v) in enumerate(pairs)]
    if family == "webshop":
        from agentdistill.envs.webshop.env import WebShopEnv

        kwargs = _make_kwargs(env_id, env_kwargs)
        env = WebShopEnv(**{k: v for k, v in kwargs.items()
                            if k in ("data_dir", "num_products", "human_goals")})
        goals = env.catalog.split_goals(split)
        env.close()
        return [Task(f"webshop-{g}", i, {"split": split, "task": f"webshop-{g}"},
                     str(env.catalog.goals[g].get("category", "")))
                for i, g in enumerate(goals)]
    if family == "alfworld":
        from agentdistill.envs.alfworld.env import ALFWorldEnv

        kwargs = _make_kwargs(env_id, env_kwargs)
        env = ALFWorldEnv(**{k: v for k, v in kwargs.items() if k in ("source", "data_dir")})
        games = env.games(split)
        return [Task(r.game_id, i, {"split": split, "task_id": r.game_id}, r.task_type)
                for i, r in enumerate(games)]
    env = gym.make(env_id, **dict(env_kwargs or {}))
    try:
        lister = getattr(env.unwrapped, "all_tasks", None)
        if lister is None:
            raise ValueError(f"{env_id} cannot list its tasks (no all_tasks(split) method); "
                             f"give them with --tasks FILE")
        return [Task.from_dict({"options": {"split": split}, **t}, i)
                for i, t in enumerate(lister(split))]
    finally:
        env.close()


def stratify(tasks: Sequence[Task], per_type: int) -> list[Task]:
    """At most ``per_type`` tasks of each task type, evenly spaced through its tasks."""
    by_type: dict[str | None, list[Task]] = {}
    for t in tasks:
        by_type.setdefault(t.task_type, []).append(t)
    keep = set()
    for group in by_type.values():
        n = len(group)
        if n <= per_type:
            keep.update(id(t) for t in group)
        else:
            keep.update(id(group[(i * n) // per_type]) for i in range(per_type))
    return [t for t in tasks if id(t) in keep]


def save_tasks(tasks: Iterable[Task], path: str | Path) -> Path:
    """Write tasks as JSONL (one ``Task.to_dict()`` per line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in tasks), encoding="utf-8")
    return path


def load_tasks(path: str | Path) -> list[Task]:
    """Read a task list: JSONL of task objects, or one JSON list of them."""
    text = Path(path).read_text(encoding="utf-8")
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{path} holds no tasks")
    try:
        rows = json.loads(stripped) if stripped.startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSONL of task objects: {exc}") from exc
    return [Task.from_dict(row, i) for i, row in enumerate(rows)]


# --- numbers ------------------------------------------------------------------------------
def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (``successes`` may be fractional)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` successes: 1 - C(n-c, k) / C(n, k)."""
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _row(episodes: list[Any], samples: int) -> dict[str, Any]:
    from agentdistill.agents.trajectory import summarize

    row: dict[str, Any] = dict(summarize(episodes))
    groups: dict[Any, list[Any]] = {}
    for e in episodes:
        groups.setdefault(e.group_id, []).append(e)
    row["tasks"] = len(groups)
    if samples <= 1 or not groups:
        wins = sum(e.won for e in episodes)
        row["ci95"] = list(wilson_interval(wins, len(episodes)))
        return row
    per_task = [sum(e.won for e in g) / len(g) for g in groups.values()]
    row["ci95"] = list(wilson_interval(sum(per_task), len(groups)))
    k = samples
    passes = [pass_at_k(len(g), sum(e.won for e in g), min(k, len(g))) for g in groups.values()]
    row[f"pass@{k}"] = sum(passes) / len(passes)
    row[f"pass@{k}_ci95"] = list(wilson_interval(sum(passes), len(groups)))
    return row


def protocol_summary(episodes: list[Any], samples: int = 1) -> dict[str, dict[str, Any]]:
    """``{"all": row, <task type>: row, ...}``; a row is ``summarize()`` plus ``tasks``,
    ``ci95`` and, for ``samples > 1``, ``pass@k`` with its interval."""
    summary = {"all": _row(episodes, samples)}
    types = sorted({str(e.metadata["task_type"]) for e in episodes
                    if e.metadata.get("task_type") is not None})
    if len(types) > 1:
        for t in types:
            summary[t] = _row([e for e in episodes
                               if str(e.metadata.get("task_type")) == t], samples)
    return summary


def protocol_table(summary: Mapping[str, Mapping[str, Any]], title: str, samples: int = 1) -> Any:
    """The summary as a rich table: tasks, episodes, success rate and its 95% CI, pass@k
    when sampled, mean score, mean turns, invalid-action rate."""
    from rich.table import Table

    def fmt(x: Any) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"

    cols = ["", "tasks", "eps", "success rate", "95% CI"]
    if samples > 1:
        cols.append(f"pass@{samples}")
    cols += ["score", "turns", "invalid"]
    table = Table(title=title)
    for col in cols:
        table.add_column(col, justify="left" if not col else "right")
    for name, s in summary.items():
        lo, hi = s["ci95"]
        cells = [name, str(s["tasks"]), str(s["episodes"]), fmt(s["success_rate"]),
                 f"{lo:.2f}-{hi:.2f}" if not math.isnan(lo) else "-"]
        if samples > 1:
            cells.append(fmt(s.get(f"pass@{samples}")))
        cells += [fmt(s["mean_score"]), fmt(s["mean_turns"]), fmt(s["invalid_action_rate"])]
        table.add_row(*cells)
    return table


# --- settings -----------------------------------------------------------------------------
def git_commit(path: str | Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout holding ``path`` (this package
    by default), or None outside a git checkout."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                 "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha.strip(), "dirty": bool(status.strip())}


def machine(load_start: Sequence[float] | None = None) -> dict[str, Any]:
    """Where a run ran: CPU model, core count, 1/5/15-minute load average at ``load_start``
    (taken by the caller before the run) and now. Without a load average (not on Linux or
    macOS) those fields are None."""
    from agentdistill.agents.models import cpu_model

    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load_start] if load_start else None,
            "load_average_end": load_average()}


def load_average() -> list[float] | None:
    """The 1/5/15-minute load average, rounded, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def data_source(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> str:
    """Where the env's tasks come from (synthetic / official data, simulator version)."""
    family = env_family(env_id)
    kwargs = _make_kwargs(env_id, env_kwargs)
    if family == "webshop":
        from agentdistill.envs.webshop.env import WebShopEnv

        env = WebShopEnv(**{k: v for k, v in kwargs.items()
                            if k in ("data_dir", "num_products", "human_goals")})
        kind = "synthetic" if env.catalog.source.startswith("shipped") else "official"
        goals = "human" if env.catalog.goals and isinstance(
            env.catalog.goals[0].get("goal_options"), list) else "synthetic"
        return f"{kind}: {env.catalog.source} ({len(env.catalog.goals)} {goals} goals)"
    if family == "alfworld":
        from agentdistill.envs.alfworld.env import ALFWorldEnv

        env = ALFWorldEnv(**{k: v for k, v in kwargs.items() if k in ("source", "data_dir")})
        return f"{env.source} games"
    if family == "scienceworld":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"scienceworld simulator {version('scienceworld')}"
        except PackageNotFoundError:
            return "scienceworld simulator (not installed)"
    if family == "sokoban":
        return f"generated rooms ({kwargs.get('generator', 'reverse')} generator)"
    return "unknown"


def run_settings(env_id: str, *, split: str, env_kwargs: Mapping[str, Any] | None,
                 max_turns: int | None, policy: str, sampling: Mapping[str, Any],
                 dtype: str | None, device: str | None, samples: int,
                 tasks: str) -> dict[str, Any]:
    """Every setting that changes an evaluation's numbers, for ``summary.json``."""
    import gymnasium as gym

    import agentdistill

    spec = gym.spec(env_id)
    return {
        "env": env_id,
        "env_kwargs": {**dict(spec.kwargs or {}), **dict(env_kwargs or {})},
        "max_turns": int(max_turns) if max_turns is not None else spec.max_episode_steps,
        "split": split,
        "data_source": data_source(env_id, env_kwargs),
        "tasks": tasks,
        "samples": samples,
        "policy": policy,
        "sampling": dict(sampling),
        "dtype": dtype,
        "device": device,
        "agentdistill_version": agentdistill.__version__,
        "git": git_commit(),
    }


def resume_split(env_id: str, tasks: Sequence[Task], samples: int,
                 finished: Sequence[Any]) -> tuple[list[Any], list[int]]:
    """Which of an interrupted run's ``finished`` episodes a resumed run keeps, and the
    indices of the tasks it still has to play.

    A task is kept when all its ``samples`` episodes finished; a task with only some of them
    is played again in full (its copies form one group). An episode that is not one of this
    task list's (another env, seed or list) raises ValueError.
    """
    from agentdistill.agents.rollout import episode_ids

    ids = episode_ids(env_id, [t.seed for t in tasks], samples)
    earlier = {e.episode_id: e for e in finished}
    strangers = sorted(set(earlier) - {eid for row in ids for eid in row})
    if strangers:
        raise ValueError(f"episode {strangers[0]!r} is not one of this run's tasks "
                         f"({len(strangers)} such); was it played on another env or task list?")
    complete = [all(eid in earlier for eid in row) for row in ids]
    kept = [earlier[eid] for row, done in zip(ids, complete, strict=True) if done for eid in row]
    return kept, [i for i, done in enumerate(complete) if not done]


def play(agent: Any, env_id: str, tasks: Sequence[Task], *, samples: int = 1,
         max_turns: int | None = None, env_kwargs: Mapping[str, Any] | None = None,
         batch_size: int | None = None, progress: bool = False,
         on_episode: Any = None, finished: Sequence[Any] = ()) -> list[Any]:
    """Play every task ``samples`` times (copies share ``group_id`` = the task's index).

    ``finished``: episodes an earlier, interrupted run of the same task list already played
    (``agentdistill eval --resume``); the tasks :func:`resume_split` keeps are not played
    again. The result holds kept and new episodes in task order, with the ids and
    ``group_id`` one uninterrupted run gives; ``on_episode`` sees only the new ones.
    """
    from agentdistill.agents.rollout import episode_ids, rollout

    if samples < 1:
        raise ValueError("samples must be >= 1")
    kept, todo = resume_split(env_id, tasks, samples, finished)
    ids = episode_ids(env_id, [t.seed for t in tasks], samples)
    position = {eid: (i, g) for i, row in enumerate(ids) for g, eid in enumerate(row)}
    # The rollout numbers the tasks it plays 0..len(todo)-1: map its ids back to the full run's.
    sub_ids = episode_ids(env_id, [tasks[i].seed for i in todo], samples)
    renamed = {sub_ids[j][g]: (i, ids[i][g]) for j, i in enumerate(todo) for g in range(samples)}

    def report(episode: Any) -> None:
        episode.group_id, episode.episode_id = renamed[episode.episode_id]
        if on_episode is not None:
            on_episode(episode)

    played = rollout(agent, env_id, [tasks[i].seed for i in todo],
                     task_options=[dict(tasks[i].options) for i in todo], group_size=samples,
                     max_turns=max_turns, env_kwargs=dict(env_kwargs or {}),
                     batch_size=batch_size, progress=progress, on_episode=report) if todo else []
    # ``report`` saw (and relabelled) every episode the rollout returns: the same objects.
    return sorted([*kept, *played], key=lambda e: position[e.episode_id])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m agentdistill.evaluation_protocol ENV_ID [SPLIT] [--per-type N]``: print a
    task list (JSONL) for ``agentdistill eval --tasks``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m agentdistill.evaluation_protocol")
    parser.add_argument("env_id")
    parser.add_argument("split", nargs="?", default="test")
    parser.add_argument("--per-type", type=int, default=None,
                        help="keep at most N evenly spaced tasks per task type")
    args = parser.parse_args(argv)
    tasks = all_tasks(args.env_id, args.split)
    if args.per_type is not None:
        tasks = stratify(tasks, args.per_type)
    sys.stdout.write("".join(json.dumps(t.to_dict()) + "\n" for t in tasks))


if __name__ == "__main__":
    main()
