"""ALFWorld env overhead: agentdistill/ALFWorld-v0 vs the bare TextWorld/ALFWorld env.

The baseline is what ALFWorld's ``AlfredTWEnv`` plays: ``textworld.envs.PddlEnv`` wrapped
in ALFWorld's ``AlfredDemangler`` and ``AlfredInfos``, loading ``game.tw-pddl`` files.
Both play the same generated games (one per task type, written to a temp dir in the
official layout) with the same seeded action sequences (random admissible commands with
the expert plan appended); their observations are checked equal step by step. Timings are
interleaved (bare, ours without and with memoized parsing, repeated) and medians are
reported.

Run: ``python benchmarks/alfworld_bench.py [--repeats 3] [--steps 30]``; writes
``benchmarks/results/alfworld_bench.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from agentdistill.envs.alfworld import data, generator, speedups, vocab
from agentdistill.envs.alfworld.env import ALFWorldEnv

RESULTS = Path(__file__).parent / "results"


def make_bare_env():
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs import PddlEnv

    infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
    return AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))


def action_script(env: ALFWorldEnv, game_id: str, steps: int, seed: int) -> list[str]:
    """Seeded random admissible commands, then the expert's plan from there (ends in a win)."""
    rng = random.Random(seed)
    _, info = env.reset(seed=0, options={"split": "valid_unseen", "task_id": game_id})
    actions = []
    for _ in range(steps):
        action = rng.choice(info["admissible_actions"])
        actions.append(action)
        _, _, term, _, info = env.step(action)
        if term:
            return actions
    return actions + env.expert_plan()


def run(repeats: int, steps: int) -> dict:
    env = ALFWorldEnv(source="generated")  # memoized parsing (the default)
    plain = ALFWorldEnv(source="generated", memoize_parsing=False)
    games = [next(r for r in env.games("valid_unseen", t)) for t in vocab.TASK_TYPES]
    scripts = {g.game_id: action_script(env, g.game_id, steps, i) for i, g in enumerate(games)}
    domain, grammar = generator.alfworld_logic()
    bundle = {g["game_id"]: g for g in data._bundle()["games"]}
    tmp = Path(tempfile.mkdtemp(prefix="alfworld_bench_"))
    files = generator.write_official_tree(tmp, [bundle[g.game_id] for g in games], domain, grammar)
    file_of = {g.game_id: str(f) for g, f in zip(games, files, strict=True)}
    bare = make_bare_env()
    won_games: set[str] = set()

    def ours_episode(e: ALFWorldEnv, game_id: str) -> tuple[float, float, list[str]]:
        t0 = time.perf_counter()
        obs, _ = e.reset(seed=0, options={"split": "valid_unseen", "task_id": game_id})
        t1 = time.perf_counter()
        trace = [obs]
        for a in scripts[game_id]:
            obs, _, _, _, info = e.step(a)
            trace.append(obs)
        if info["won"]:
            won_games.add(game_id)
        return t1 - t0, time.perf_counter() - t1, trace

    def bare_episode(game_id: str) -> tuple[float, float, list[str]]:
        t0 = time.perf_counter()
        bare.load(file_of[game_id])
        state = bare.reset()
        t1 = time.perf_counter()
        trace = [state.feedback.split("=-", 1)[-1].strip()]
        for a in scripts[game_id]:
            state, _, _ = bare.step(a)
            trace.append(state.feedback)
        return t1 - t0, time.perf_counter() - t1, trace

    configs = {
        "bare": (speedups.uninstall, bare_episode),
        "ours_plain": (speedups.uninstall, lambda gid: ours_episode(plain, gid)),
        "ours": (speedups.install, lambda gid: ours_episode(env, gid)),
    }
    rows = {k: {"reset": [], "steps": []} for k in configs}
    n_steps = sum(len(s) for s in scripts.values())
    reference = None
    for _ in range(repeats):
        for name, (setup, fn) in configs.items():
            setup()
            reset_t, step_t = 0.0, 0.0
            traces = {}
            for g in games:
                r, s, tr = fn(g.game_id)
                reset_t, step_t, traces[g.game_id] = reset_t + r, step_t + s, tr
            rows[name]["reset"].append(reset_t / len(games))
            rows[name]["steps"].append(step_t)
            reference = reference or traces
            assert traces == reference, f"observations of {name} differ from the others"
    speedups.install()
    won = len(won_games)

    # Same-game reset (ours skips recompiling a game it already holds; the engine still
    # re-translates the PDDL on reset) and expert cost from the initial state.
    same_reset, plan_t = [], []
    for g in games:
        env.reset(seed=0, options={"split": "valid_unseen", "task_id": g.game_id})
        t0 = time.perf_counter()
        env.reset(seed=0, options={"split": "valid_unseen", "task_id": g.game_id})
        same_reset.append(time.perf_counter() - t0)
        env._plan = None
        t0 = time.perf_counter()
        env.expert_plan()
        plan_t.append(time.perf_counter() - t0)

    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in rows.items()}
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} 2-core CPU, no GPU, "
                   "shared with other jobs (timings are noisy)",
        "python": platform.python_version(),
        "games": [g.game_id for g in games],
        "steps_per_repeat": n_steps,
        "repeats": repeats,
        "scripts_end_in_win": won,
        "observations_identical": True,
        "steps_per_s": {k: n_steps / v["steps"] for k, v in med.items()},
        "step_time_ratio_over_bare": {k: v["steps"] / med["bare"]["steps"] for k, v in med.items()},
        "new_game_reset_s": {k: v["reset"] for k, v in med.items()},
        "reset_time_ratio_over_bare": {k: v["reset"] / med["bare"]["reset"] for k, v in med.items()},
        "ours_same_game_reset_s": statistics.median(same_reset),
        "expert_plan_from_start_s_median": statistics.median(plan_t),
        "expert_plan_from_start_s_max": max(plan_t),
        "raw": rows,
    }
    env.close()
    plain.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    res = run(args.repeats, args.steps)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "alfworld_bench.json").write_text(json.dumps(res, indent=2))
    md = [
        "# ALFWorld env overhead (agentdistill/ALFWorld-v0 vs bare TextWorld PddlEnv + ALFWorld wrappers)",
        "",
        f"Machine: {res['machine']}. Python {res['python']}.",
        f"Games: one generated valid_unseen game per task type ({len(res['games'])}); "
        f"{res['steps_per_repeat']} steps per repeat (seeded random admissible commands, then "
        f"the expert plan; {res['scripts_end_in_win']}/{len(res['games'])} end in a win); "
        f"median of {res['repeats']} interleaved repeats; observations identical step by step.",
        "",
        "| config | env steps/s | step time / bare | new-game reset s | reset / bare |",
        "|---|---|---|---|---|",
        *[f"| {label} | {res['steps_per_s'][k]:.1f} | {res['step_time_ratio_over_bare'][k]:.3f}x | "
          f"{res['new_game_reset_s'][k]:.2f} | {res['reset_time_ratio_over_bare'][k]:.3f}x |"
          for k, label in (("bare", "bare TextWorld PddlEnv + ALFWorld wrappers"),
                           ("ours_plain", "ALFWorld-v0, memoize_parsing=False"),
                           ("ours", "ALFWorld-v0 (default: memoized parsing)"))],
        "",
        f"Same-game reset (ours): {res['ours_same_game_reset_s']:.2f} s. Expert plan from the "
        f"start (Fast Downward): median {res['expert_plan_from_start_s_median']:.3f} s, "
        f"max {res['expert_plan_from_start_s_max']:.3f} s.",
        "",
        "Command: `python benchmarks/alfworld_bench.py "
        f"--repeats {res['repeats']} --steps {args.steps}`",
        "",
    ]
    (RESULTS / "alfworld_bench.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
