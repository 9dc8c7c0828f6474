"""ScienceWorld (Wang et al., 2022) as a text environment over the real simulator.

The simulator is the Scala jar shipped by PyPI ``scienceworld`` (1.2.x), run in a JVM of
our own (:mod:`agentdistill.envs.scienceworld.jvm`); one JVM per env instance, started on
the first ``reset`` and shut down by ``close()``, garbage collection or interpreter exit.

Tasks and splits. All 30 task types (``TASK_NAMES``) with all their variations. Each task
splits its variations into the simulator's own train/dev/test ranges (table shipped in
``variations.json``, checked against the live simulator by the tests). Our split names
map onto them as: ``train`` -> train, ``valid_seen`` -> dev, ``valid_unseen`` -> dev,
``test`` -> test (the simulator has a single development split, so both validation names
give the same variations). ``reset(options={"task": name, "variation": i})`` picks a task
(name, paper name like ``"matter boil"`` or id like ``"1-2"``) and a simulator variation
index, which must lie in the requested split (default ``train``); whatever is left out is
drawn uniformly with ``self.np_random``: the task among the 30, then the variation among
that task's variations in the split. ``"simplifications"`` (default ``"easy"``, the
simulator's comma-separated names, ``""`` for none) can be set per env or per reset.

Observations. ``reset`` returns the task description, a blank line and the output of the
simulator's ``look around`` (what the bare ``ScienceWorldEnv.reset`` runs). ``step``
returns the simulator's text for the action, unchanged. ``info["task"]`` holds the task
description at every step, ``info["task_type"]`` the task name (the CLI groups per-task
success by it), ``info["variation"]`` the variation index and ``info["sim_score"]`` the
simulator's raw score (-100..100).

Actions. Free text, parsed by the simulator. Unknown input gives its ``"No known action
matches that input."`` with ``action_valid=False`` (the world does not advance). An
ambiguous input gives the simulator's numbered menu (``action_valid=True``); answering it
with the number picks an option, as in the simulator. ``reset task`` is refused
(``action_valid=False``): it would rewind the simulator under a running episode.

Admissible actions. The simulator's valid action-object combinations for the current
state (``getValidActionObjectCombinations``), which number 100-4,500 (more in rooms with
many objects), minus ``reset task``: all of them by default (``max_admissible_actions=
None``; the prompt builder shows a model the first ones and "... and N more"). An int
bounds the list: grouped by their first word (the verb) in the simulator's alphabetical
order and taken round-robin across verbs, so every kind of action stays represented (a
bound can drop a gold action: the 200 kept before issue 14 missed one in boil:28); ``0``
skips the query (it costs the simulator 20-400 ms per step, far more than the step
itself). The simulator rejects about 1 in 7 of its own
valid combinations with ``"No known action matches that input."`` (28 of 200 sampled at
reset, 23 of 145 in random play; mostly ``move``/``pour``/``dunk``; the bare
``scienceworld`` package does the same): its action generator and its parser build object
referents differently. They are passed on unfiltered; a step with one is an ordinary
invalid step.

Score and reward. ``info["score"]`` is the simulator's score / 100, clipped to [0, 1].
The reward follows the simulator (``scienceworld.ScienceWorldEnv.step``): the change of
its integer score (``round(100 * getScore())``), divided by 100, unclipped; so a failure
(e.g. ``focus on`` the wrong object, score -100) is penalised: from a score of 25 the
step's reward is -1.25. ``won`` and ``terminated`` when the simulator reports the task
completed; a negative simulator score terminates with ``won=False`` and score 0, as the
original sets ``isCompleted`` when ``score < 0``. An episode's return is its final
simulator score minus its starting one (most tasks start above 0), over 100.

Turn limits. ``ScienceWorld-v0`` stops after 30 turns; ``ScienceWorld-Long-v0`` after the
simulator's own ``envStepLimit`` of 100 (``agentdistill eval --max-turns`` sets any).

Expert. ``expert_action()`` follows the simulator's gold action sequence for the current
variation (generated on load when ``expert=True``, the default; pass ``expert=False`` to
skip that work). Its length ranges from 2 to several hundred actions (2 to 743 on the
shipped stratified test list, the longest an inclined-plane variation), so under the default 30-turn limit the expert cannot finish
every variation; and the simulator's own gold path does not win every variation (e.g.
``freeze`` variation 11 ends at score 0.87 in the bare simulator too). Actions are compared to the gold path case- and whitespace-
insensitively; actions the simulator rejected (``action_valid=False``) are ignored. As
long as every accepted action equals the gold path so far, the expert returns the next
gold action and ``expert_plan()`` the rest; once the agent has left the gold path both
return None (the simulator cannot plan from arbitrary states).

Determinism. ``reset(seed=s)`` (or the same options) gives the same episode whatever the
JVM played before: the simulator seeds its own random generator from the variation on
load, and two things that leaked across loads are fixed here. Object order came from
identity-hash sets, i.e. from the JVM's hash generator state; the JVM runs with
``-XX:hashCode=2`` (``jvm.DETERMINISTIC_JAVA_OPTS``). The gold agent's JVM-wide route
cache is cleared before each load (``SimulatorProcess.forget_episodes``). Cost, measured
over 40 resets: 0.34 -> 0.46 s per reset with ``expert=False``, 2.9 -> 3.6 s with the gold
path (colliding hashes make the simulator's sets linear; route cache misses); steps with
the admissible query cost the same (0.14 s).

Failures. Every simulator call has a deadline (``step_timeout``, ``reset_timeout``). A
JVM that hangs past it is killed; one that dies (during a step or between steps) is
noticed. Either way the step ends the episode with ``truncated=True``,
``action_valid=False`` and ``info["error"]``, and the next ``reset`` starts a fresh JVM.
Actions are made UTF-8-safe first (lone surrogates become ``?``), so no input text can
break the py4j call. ``reset`` retries once on a fresh JVM and raises
:class:`~agentdistill.envs.scienceworld.jvm.SimulatorError` (a ``RuntimeError``) only if
that fails too. py4j exceptions never reach the caller.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from agentdistill.envs.core import StepResult, TaskState, TextEnv
from agentdistill.envs.scienceworld.jvm import SimulatorError, SimulatorProcess

#: Our split names -> the simulator's.
SPLIT_MAP = {"train": "train", "valid_seen": "dev", "valid_unseen": "dev", "test": "test"}
INVALID_FEEDBACK = "No known action matches that input."
#: What the simulator answers to a step before any load (e.g. in a freshly started JVM).
UNINITIALIZED_FEEDBACK = "ERROR: Interface is not initialized"
RESET_TASK_FEEDBACK = (
    "The action 'reset task' is disabled in this environment; call env.reset() instead."
)
FIRST_ACTION = "look around"
DEFAULT_MAX_ADMISSIBLE: int | None = None  # the full list (200 before issue 14)
SIMPLIFICATIONS = (
    "easy", "teleportAction", "selfWateringFlowerPots", "openContainers", "openDoors",
    "noElectricalAction",
)
_ELECTRICAL = ("power-component", "conductivity")


@cache
def variation_table() -> dict[str, dict[str, Any]]:
    """Per task: ``num_variations`` and half-open ``[start, stop)`` ranges per split."""
    text = resources.files(__package__).joinpath("variations.json").read_text()
    return json.loads(text)["tasks"]


TASK_NAMES: tuple[str, ...] = tuple(sorted(variation_table()))


def split_variations(task: str, split: str) -> range:
    """The simulator variations of ``task`` in our ``split`` (see ``SPLIT_MAP``)."""
    start, stop = variation_table()[task][SPLIT_MAP[split]]
    return range(start, stop)


def resolve_task(name: Any) -> str:
    """Canonical task name for a name, paper name or id; ValueError listing valid ones."""
    if isinstance(name, str):
        key = name.strip()
        if key in variation_table():
            return key
        try:
            from scienceworld.utils import infer_task

            key = infer_task(key)
        except Exception:  # noqa: BLE001 - any failure here just means "unknown"
            key = ""
        if key in variation_table():
            return key
    raise ValueError(f"unknown ScienceWorld task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")


def build_variation_table(sim: SimulatorProcess, timeout: float = 120.0) -> dict[str, Any]:
    """Ask the simulator for every task's split ranges (how ``variations.json`` is made)."""

    def query(server: Any) -> dict[str, Any]:
        table: dict[str, Any] = {}
        for task in server.getTaskNames():
            server.load(task, 0, "", False)
            entry: dict[str, Any] = {"num_variations": int(server.getTaskMaxVariations(task))}
            for split, ids in (("train", server.getVariationsTrain()),
                               ("dev", server.getVariationsDev()),
                               ("test", server.getVariationsTest())):
                ids = sorted(int(i) for i in ids)
                if ids != list(range(ids[0], ids[-1] + 1)):
                    raise ValueError(f"{task}: {split} variations are not contiguous")
                entry[split] = [ids[0], ids[-1] + 1]
            table[str(task)] = entry
        return table

    return sim.call(query, timeout)


def _canon(action: str) -> str:
    return " ".join(action.lower().split())


def java_text(text: str) -> str:
    """``text`` with what UTF-8 cannot carry (lone surrogates) replaced by ``?``.

    py4j sends strings as UTF-8; a lone surrogate (e.g. from a model's broken decoding)
    failed inside py4j, which looked like a dead JVM and ended the episode.
    """
    return text.encode("utf-8", errors="replace").decode("utf-8")


def bound_actions(actions: Sequence[str], limit: int | None) -> list[str]:
    """Drop duplicates and ``reset task``; keep at most ``limit``, round-robin over verbs."""
    unique = [a for a in dict.fromkeys(actions) if a != "reset task"]
    if limit is None or len(unique) <= limit:
        return unique
    groups: dict[str, list[str]] = {}
    for action in unique:
        groups.setdefault(action.partition(" ")[0], []).append(action)
    chosen: set[str] = set()
    depth = 0
    while len(chosen) < limit:
        for group in groups.values():
            if depth < len(group) and len(chosen) < limit:
                chosen.add(group[depth])
        depth += 1
    return [a for a in unique if a in chosen]


class ScienceWorldEnv(TextEnv):
    """The ScienceWorld simulator behind the agentdistill text-env contract.

    Args:
        simplifications: default simplification string for every reset ("easy").
        max_admissible_actions: bound on ``info["admissible_actions"]`` (None: all, 0: skip).
        expert: generate the gold path on load (needed by ``expert_action``).
        step_timeout: seconds one step may take before the JVM is declared hung.
        reset_timeout: seconds one reset (task load, gold path) may take.
        java_opts: JVM flags (default ``jvm.DEFAULT_JAVA_OPTS``).

    Identical to the original: the simulator (its jar), task descriptions, observations,
    scores, completion, valid actions and gold paths; the reward (score change, failures
    included). Not identical: ``info["score"]`` clipped to [0, 1] and in fractions, rewards
    in points / 100, the first ``look around`` folded into ``reset``, ``reset task``
    refused, determinism fixes (see the module docstring).

    Version history:

    * v0, issue 14: the reward follows the simulator's score change, so a failure is
      penalised (it was 0); ``info["admissible_actions"]`` is the full list (it was capped
      at 200); ``ScienceWorld-Long-v0`` (100 turns). Returns of failed episodes before it
      were too high; random-policy results change with the longer action list.
    * v0, first release.
    """

    invalid_action_feedback = INVALID_FEEDBACK
    option_keys = ("task", "variation", "simplifications")  # reset options besides split

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        simplifications: str = "easy",
        max_admissible_actions: int | None = DEFAULT_MAX_ADMISSIBLE,
        expert: bool = True,
        step_timeout: float = 30.0,
        reset_timeout: float = 120.0,
        java_opts: Sequence[str] | None = None,
    ):
        super().__init__(render_mode=render_mode)
        if max_admissible_actions is not None and max_admissible_actions < 0:
            raise ValueError("max_admissible_actions must be >= 0 or None")
        self.simplifications = self._check_simplifications(simplifications, None)
        self.max_admissible_actions = max_admissible_actions
        self.expert = bool(expert)
        self.step_timeout = float(step_timeout)
        self.reset_timeout = float(reset_timeout)
        self.sim = SimulatorProcess(java_opts=java_opts)
        self._admissible: list[str] = []
        self._gold: list[str] = []
        self._accepted: list[str] = []
        self._on_gold_path = False
        self._sim_score = 0.0
        self._failed_result: StepResult | None = None
        self._task_name = ""
        self._variation = -1
        self._jvm_start = 0  # ``sim.starts`` when the episode was loaded

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _check_simplifications(value: Any, task: str | None) -> str:
        if not isinstance(value, str):
            raise ValueError(f"simplifications must be a string, got {value!r}")
        parts = [p.strip() for p in value.split(",") if p.strip()]
        unknown = [p for p in parts if p not in SIMPLIFICATIONS]
        if unknown:
            raise ValueError(f"unknown simplification(s) {unknown}; valid: {SIMPLIFICATIONS}")
        if task is not None and "noElectricalAction" in parts and any(
            e in task for e in _ELECTRICAL
        ):
            raise ValueError(f"task {task!r} needs electrical actions; drop noElectricalAction")
        return ",".join(parts)

    def _valid_actions(self, server: Any) -> list[str]:
        if self.max_admissible_actions == 0:
            return []
        joined = self.sim.join_lines(server.getValidActionObjectCombinations())
        return joined.split("\n") if joined else []

    def _pick(self, options: dict[str, Any]) -> tuple[str, int]:
        split = options["split"]
        if options.get("task") is None:
            task = TASK_NAMES[int(self.np_random.integers(len(TASK_NAMES)))]
        else:
            task = resolve_task(options["task"])
        allowed = split_variations(task, split)
        variation = options.get("variation")
        if variation is None:
            return task, int(allowed[int(self.np_random.integers(len(allowed)))])
        if isinstance(variation, bool) or not isinstance(variation, (numbers.Integral, str)):
            raise ValueError(f"variation must be an int, got {variation!r}")
        try:
            variation = int(variation)
        except ValueError as err:
            raise ValueError(f"variation must be an int, got {variation!r}") from err
        if variation not in allowed:
            total = variation_table()[task]["num_variations"]
            home = [s for s in SPLIT_MAP if variation in split_variations(task, s)]
            where = f"it belongs to split(s) {home}" if home else f"{task!r} has {total} variations"
            raise ValueError(
                f"variation {variation} of {task!r} is not in split {split!r} "
                f"(variations {allowed.start}-{allowed.stop - 1}); {where}"
            )
        return task, variation

    # --- TextEnv hooks ----------------------------------------------------------------
    def _reset_task(self, options: dict[str, Any]) -> TaskState:
        task, variation = self._pick(options)
        simpl = self._check_simplifications(
            options.get("simplifications", self.simplifications), task
        )
        gold = self.expert

        def load(server: Any) -> tuple:
            self.sim.forget_episodes()
            server.load(task, variation, simpl, gold)
            look = server.step(FIRST_ACTION)
            return (
                str(look), str(server.getTaskDescription()), float(server.getScore()),
                list(server.getGoldActionSequence()) if gold else [],
                self._valid_actions(server),
            )

        try:
            result = self.sim.call(load, self.reset_timeout)
        except SimulatorError:
            self.sim.kill()  # a fresh JVM gets one more chance
            result = self.sim.call(load, self.reset_timeout)
        look, description, sim_score, gold_path, valid = result
        self._jvm_start = self.sim.starts
        self._task_name, self._variation = task, variation
        self._gold = [str(a) for a in gold_path]
        self._accepted = []
        self._on_gold_path = self.expert
        self._admissible = bound_actions(valid, self.max_admissible_actions)
        self._sim_score = sim_score
        self._failed_result = None
        description = description.strip()
        return TaskState(
            observation=f"{description}\n\n{look.strip()}",
            task=description,
            task_id=f"{task}:{variation}",
            extra=self._extra(score=self._norm(sim_score)),
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        # The base class zeroes the score; ScienceWorld tasks often start above 0.
        self._score = info["score"]
        return obs, info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._failed_result is not None:
            # The episode already ended on a simulator failure: whatever the input (even
            # one the base class would reject), answer with that failure again.
            action = FIRST_ACTION
        return super().step(action)

    @staticmethod
    def _norm(sim_score: float) -> float:
        return min(1.0, max(0.0, sim_score))

    def _extra(self, **more: Any) -> dict[str, Any]:
        return {
            "task_type": self._task_name,
            "variation": self._variation,
            "sim_score": round(100 * self._sim_score),
            **more,
        }

    def _step_action(self, action: str) -> StepResult:
        if self._failed_result is not None:  # the JVM failed earlier in this episode
            return self._failed_result
        if _canon(action) == "reset task":
            return StepResult(
                observation=RESET_TASK_FEEDBACK, reward=0.0, terminated=False,
                action_valid=False, won=self._won, score=self._score, extra=self._extra(),
            )

        text = java_text(action)

        def step(server: Any) -> tuple:
            obs = server.step(text)
            return (str(obs), float(server.getScore()), bool(server.getCompleted()),
                    self._valid_actions(server))

        try:
            if self.sim.starts != self._jvm_start:
                raise SimulatorError("the JVM was restarted since reset", jvm_alive=True)
            # start=False: a JVM that died since the last step must end the episode, not
            # be replaced by an empty one ("Interface is not initialized").
            obs, sim_score, completed, valid = self.sim.call(
                step, self.step_timeout, start=False
            )
            if obs.startswith(UNINITIALIZED_FEEDBACK):
                raise SimulatorError("the simulator has no task loaded", jvm_alive=True)
        except SimulatorError as err:
            return self._fail(err)
        valid_action = obs.strip() != INVALID_FEEDBACK
        if valid_action and self._on_gold_path:
            k = len(self._accepted)
            self._on_gold_path = k < len(self._gold) and _canon(self._gold[k]) == _canon(action)
            self._accepted.append(action)
        self._admissible = bound_actions(valid, self.max_admissible_actions)
        reward = (round(100 * sim_score) - round(100 * self._sim_score)) / 100
        self._sim_score = sim_score
        failed = sim_score < 0
        won = completed and not failed
        score = self._norm(sim_score)
        return StepResult(
            observation=obs, reward=reward, terminated=won or failed,
            action_valid=valid_action, won=won, score=score, extra=self._extra(),
        )

    def _fail(self, err: SimulatorError) -> StepResult:
        """End the episode on a simulator failure; later steps repeat this result."""
        self._admissible = []
        self._on_gold_path = False
        self._failed_result = StepResult(
            observation=f"The simulator failed and the episode was ended: {err}",
            reward=0.0, terminated=False, truncated=True, action_valid=False,
            won=False, score=self._score, extra=self._extra(error=str(err)),
        )
        return self._failed_result

    def admissible_actions(self) -> list[str]:
        return list(self._admissible)

    def expert_plan(self) -> list[str] | None:
        if not self.expert or not self._on_gold_path or self._task is None:
            return None
        return self._gold[len(self._accepted):]

    def expert_action(self) -> str | None:
        plan = self.expert_plan()
        return plan[0] if plan else None

    def close(self) -> None:
        self.sim.close()
        super().close()
