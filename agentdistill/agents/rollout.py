"""Batched multi-env, multi-turn rollout: N envs in lockstep -> :class:`Episode` records.

Each turn, every still-active env contributes one :class:`ActRequest` and the policy is
called ONCE for the whole batch (one batched generation for LLM policies). At most
``batch_size`` envs run at a time; when one finishes, the next pending episode starts in
its place, so the batch stays full.

Options (TCOD and GRPO hooks):

* ``group_size``: each seed is played ``group_size`` times; the copies share
  ``group_id`` (the seed's index in ``seeds``) for group-relative advantages.
* ``max_turns``: overrides the registered horizon (``gym.make(max_episode_steps=...)``).
* ``task_options``: one reset-options dict per seed (instead of ``options`` for all), so
  a batch can hold different tasks (``evaluation_protocol.play``).
* ``max_student_turns``: stop after that many student turns with ``truncated=True``
  (TCOD f2b windows).
* ``replay_expert_turns``: an int or ``callable(seed) -> int``; the first c expert
  actions are played before the student acts and stored as ``Turn(is_replay=True)``
  with empty token lists (TCOD b2f). Replay stops early if the expert has no action.
* ``record_expert``: before each student action, ``Turn.info["expert_action"]`` (and
  ``"expert_plan"`` when the env provides one) hold the oracle's answer for the state the
  student saw; the same values are in ``ActRequest.info`` (privileged teacher hints).

Every episode stores its ``initial_observation`` and ``metadata["policy"]`` (the policy's
``name``); turns of policies that build no prompt (expert, random) get the default prompt
messages rendered for them, so every episode file has one schema. The first step of an env
whose ``info`` lacks ``won`` / ``action_valid`` warns once (see
:mod:`agentdistill.envs.wrappers`). The progress bar counts episodes and shows turns done,
generated tokens/s and success so far after every batched turn.

Episode ids are ``f"{env name}-s{seed}-g{group index}"`` (plus ``-r{k}`` when a seed
repeats in ``seeds``): unique and deterministic. ``Episode.metadata["task_type"]`` comes
from the env's reset info when present. A KeyboardInterrupt stops the rollout and returns
the episodes finished so far (``on_episode`` has already seen each of them).

``env_pool`` (an :class:`agentdistill.envs.pool.EnvPool`, built by the caller for this
``env_id``) runs the envs in worker processes or Ray actors and steps each turn's batch in
parallel; at most ``env_pool.num_envs`` episodes are in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from agentdistill.agents.policies import ActRequest, ActResult, Policy
from agentdistill.agents.prompts import build_messages
from agentdistill.agents.trajectory import Episode, Turn
from agentdistill.envs.wrappers import check_info_keys

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    """One episode in flight."""

    index: int
    episode: Episode
    env: Any = None
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str | None, str]] = field(default_factory=list)
    student_turns: int = 0
    done: bool = False


def episode_ids(env_id: str, seeds: Sequence[int | None], group_size: int) -> list[list[str]]:
    """The ids :func:`rollout` gives its episodes: ``ids[i][g]`` for seed ``i``, copy ``g``."""
    name = env_id.rsplit("/", 1)[-1]
    seen: dict[Any, int] = {}
    ids = []
    for seed in seeds:
        k = seen.get(seed, 0)
        seen[seed] = k + 1
        suffix = f"-r{k}" if k else ""
        ids.append([f"{name}-s{seed}-g{g}{suffix}" for g in range(group_size)])
    return ids


def _expert_info(env: Any) -> dict[str, Any]:
    base = env.unwrapped
    info: dict[str, Any] = {"expert_action": base.expert_action()}
    plan = base.expert_plan() if hasattr(base, "expert_plan") else None
    if plan is not None:
        info["expert_plan"] = list(plan)
    return info


def rollout(
    policy: Policy,
    env_id: str,
    seeds: Sequence[int | None],
    *,
    options: dict[str, Any] | None = None,
    task_options: Sequence[dict[str, Any]] | None = None,
    group_size: int = 1,
    max_turns: int | None = None,
    max_student_turns: int | None = None,
    replay_expert_turns: int | Callable[[int | None], int] = 0,
    record_expert: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    progress_desc: str | None = None,
    on_episode: Callable[[Episode], None] | None = None,
    batch_size: int | None = None,
    env_pool: Any = None,
) -> list[Episode]:
    """Play ``policy`` on ``env_id`` for every seed (x ``group_size``); see module docstring.

    Returns the finished episodes in ``seeds`` order (group copies adjacent).
    ``progress_desc`` labels the progress bar (default: ``env_id``).
    """
    if group_size < 1:
        raise ValueError("group_size must be >= 1")
    if max_student_turns is not None and max_student_turns < 1:
        raise ValueError("max_student_turns must be >= 1")
    if task_options is not None and len(task_options) != len(seeds):
        raise ValueError(f"task_options has {len(task_options)} entries for {len(seeds)} seeds")
    make_kwargs = dict(env_kwargs or {})
    if max_turns is not None:
        make_kwargs["max_episode_steps"] = int(max_turns)
    ids = episode_ids(env_id, seeds, group_size)
    pending = [
        (i * group_size + g, seed, i, ids[i][g])
        for i, seed in enumerate(seeds)
        for g in range(group_size)
    ]
    total = len(pending)
    width = total if batch_size is None else max(1, int(batch_size))
    if env_pool is not None:  # an agentdistill.envs.pool.EnvPool: envs live in its workers
        env_pool.check_env(env_id, make_kwargs)
        width = min(width, env_pool.num_envs)
    finished: dict[int, Episode] = {}
    active: list[_Slot] = []

    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=progress_desc or env_id, unit="ep", disable=not progress,
               dynamic_ncols=True)
    policy_name = str(getattr(policy, "name", type(policy).__name__))
    counts = {"turns": 0, "tokens": 0}
    t_start = time.perf_counter()

    def show() -> None:
        """Turns done, generated tokens/s and success so far (the bar moves per episode)."""
        if not progress:
            return
        wins = sum(e.won for e in finished.values())
        elapsed = time.perf_counter() - t_start
        post = {"turns": counts["turns"]}
        if counts["tokens"]:
            post["tok/s"] = f"{counts['tokens'] / max(elapsed, 1e-9):.1f}"
        post["success"] = f"{wins}/{len(finished)}"
        bar.set_postfix(post)

    def finish(slot: _Slot) -> None:
        slot.done = True
        if slot.env is not None:
            slot.env.close()
            slot.env = None
        finished[slot.index] = slot.episode
        bar.update(1)
        show()
        if on_episode is not None:
            on_episode(slot.episode)

    def start(index: int, seed: int | None, group_id: int, episode_id: str) -> _Slot:
        env = env_pool.acquire() if env_pool is not None else gym.make(env_id, **make_kwargs)
        opts = task_options[group_id] if task_options is not None else options
        obs, info = env.reset(seed=seed, options=dict(opts) if opts else None)
        episode = Episode(
            episode_id=episode_id,
            env_id=env_id,
            task_id=str(info.get("task_id", "")),
            task=str(info.get("task", "")),
            seed=seed,
            initial_observation=str(obs),
            group_id=group_id,
            options=dict(opts or {}),
        )
        episode.metadata["policy"] = policy_name
        if info.get("task_type") is not None:
            episode.metadata["task_type"] = info["task_type"]
        slot = _Slot(index=index, episode=episode, env=env, observation=obs, info=info)
        n_replay = (
            replay_expert_turns(seed) if callable(replay_expert_turns) else replay_expert_turns
        )
        for _ in range(max(0, int(n_replay))):
            action = env.unwrapped.expert_action()
            if action is None:
                break
            _apply(slot, ActResult(action=action, response_text=action), replay=True)
            if slot.done:
                break
        return slot

    def _apply(slot: _Slot, result: ActResult, replay: bool, extra: dict | None = None) -> None:
        env = slot.env
        obs, reward, terminated, truncated, info = env.step(
            result.action if result.action is not None else ""
        )
        ep = slot.episode
        if not ep.turns:
            check_info_keys(env_id, info)
        prompt_messages = list(result.prompt_messages)
        if not replay:
            slot.student_turns += 1
            counts["turns"] += 1
            counts["tokens"] += len(result.response_ids)
            if not prompt_messages:  # expert / random: the prompt an LLM would have seen
                prompt_messages = build_messages(
                    env_id, ep.task, slot.observation, slot.history,
                    slot.info.get("admissible_actions") or [],
                )
            if (
                max_student_turns is not None
                and slot.student_turns >= max_student_turns
                and not terminated
            ):
                truncated = True
        turn_info = dict(extra or {})
        if result.finish_reason is not None:
            turn_info["finish_reason"] = result.finish_reason
        turn_info["won"] = bool(info.get("won", False))
        turn_info["score"] = float(info.get("score", 0.0))
        ep.turns.append(
            Turn(
                turn_index=len(ep.turns),
                prompt_messages=prompt_messages,
                prompt_ids=list(result.prompt_ids),
                response_ids=list(result.response_ids),
                response_logprobs=list(result.response_logprobs),
                response_text=result.response_text,
                action=result.action,
                format_valid=bool(result.format_valid),
                action_valid=bool(info.get("action_valid", False)) and result.action is not None,
                reward=float(reward),
                observation=obs,
                done=bool(terminated or truncated),
                is_replay=replay,
                response_prefix=result.response_prefix,
                info=turn_info,
            )
        )
        ep.won = bool(info.get("won", False))
        ep.score = float(info.get("score", 0.0))
        ep.episode_return += float(reward)
        ep.truncated = bool(truncated and not terminated)
        slot.history.append((result.action, obs))
        slot.observation, slot.info = obs, info
        if terminated or truncated:
            finish(slot)

    try:
        while pending or active:
            while pending and len(active) < width:
                slot = start(*pending.pop(0))
                if not slot.done:
                    active.append(slot)
            if not active:
                continue
            requests = []
            extras = []
            for slot in active:
                extra = _expert_info(slot.env) if record_expert else {}
                extras.append(extra)
                requests.append(
                    ActRequest(
                        env_id=env_id,
                        task=slot.episode.task,
                        observation=slot.observation,
                        history=list(slot.history),
                        admissible_actions=list(slot.info.get("admissible_actions") or []),
                        episode_id=slot.episode.episode_id,
                        turn_index=len(slot.episode.turns),
                        env=slot.env,
                        info=dict(extra),
                    )
                )
            results = policy.act(requests)
            if len(results) != len(requests):
                raise RuntimeError(
                    f"policy returned {len(results)} results for {len(requests)} requests"
                )
            if env_pool is not None:  # one parallel step for the batch; env.step() reuses it
                pairs = zip(active, results, strict=True)
                env_pool.step_envs(
                    [(s.env, "" if r.action is None else r.action) for s, r in pairs]
                )
            for slot, result, extra in zip(active, results, extras, strict=True):
                _apply(slot, result, replay=False, extra=extra)
            active = [s for s in active if not s.done]
            show()
    except KeyboardInterrupt:
        log.warning("rollout interrupted: keeping %d finished episodes", len(finished))
    finally:
        for slot in active:
            if slot.env is not None:
                slot.env.close()
        bar.close()
    return [finished[i] for i in sorted(finished)]


def registered_max_turns(env_id: str) -> int:
    """The turn limit ``env_id`` was registered with."""
    spec = gym.spec(env_id)
    if spec.max_episode_steps is None:
        raise ValueError(f"{env_id} has no max_episode_steps; set env.max_turns in the config")
    return int(spec.max_episode_steps)


def expert_solution_length(env_id: str, seed: int | None, options: dict[str, Any],
                            env_kwargs: dict[str, Any], max_turns: int) -> int:
    """Expert actions needed from reset: ``len(expert_plan())`` or by playing the expert
    (TCOD b2f replay lengths)."""
    env = gym.make(env_id, max_episode_steps=max_turns, **env_kwargs)
    try:
        env.reset(seed=seed, options=options)
        plan = env.unwrapped.expert_plan()
        if plan is not None:
            return len(plan)
        n = 0
        for _ in range(max_turns):
            action = env.unwrapped.expert_action()
            if action is None:
                break
            n += 1
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        return n
    finally:
        env.close()
