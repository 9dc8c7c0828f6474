"""``agentdistill`` command line: ``eval``, ``inspect``, ``envs``, ``export``, ``view``,
``compare``, ``train`` (more commands append below).

Each command is one function decorated with ``@app.command(...)``; adding a command means
appending one such function. Bad arguments raise ``typer.BadParameter``: exit code 2 and
one ``Error: ...`` line on stderr saying what is wrong and how to fix it, never a traceback.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup


class OneLineErrorGroup(TyperGroup):
    """A TyperGroup that prints a usage error as one ``Error: ...`` line on stderr.

    Typer's default draws the usage, a ``--help`` hint and a box that wraps the message
    over several lines; scripts and users grep one line.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                typer.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=OneLineErrorGroup,
    add_completion=False,
    no_args_is_help=True,
    help="agentdistill: evaluate and train LLM agents on multi-turn text environments.",
)
console = Console()

DEFAULT_ENV = "agentdistill/Sokoban-v0"
DEFAULT_POLICY = "smollm2"
DTYPES = ("float32", "bfloat16", "float16", "auto")


def _print_version(value: bool) -> None:
    if value:
        from agentdistill import __version__

        typer.echo(f"agentdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """agentdistill: evaluate and train LLM agents on multi-turn text environments."""


# --- shared helpers ---------------------------------------------------------------------
def check_env_id(env_id: str) -> str:
    """The env id if registered, else a BadParameter with the closest id. ``module:EnvId``
    imports the module (from the current directory too) and returns the id it registered,
    as ``gym.make`` does."""
    import os

    import gymnasium as gym

    import agentdistill.envs  # noqa: F401 - registers the ids
    from agentdistill.envs.registration import env_ids
    from agentdistill.envs.wrappers import resolve_env_id

    if ":" in env_id:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())  # like ``python -m``: the user's own modules
        try:
            registered = resolve_env_id(env_id)
        except ImportError as exc:
            raise typer.BadParameter(str(exc).splitlines()[0], param_hint="--env") from exc
        if registered not in gym.registry:
            module = env_id.partition(":")[0]
            raise typer.BadParameter(
                f"importing {module} did not register {registered!r}; call "
                f"gymnasium.register(id={registered!r}, entry_point=...) in it",
                param_hint="--env",
            )
        return registered
    if env_id not in gym.registry:
        ids = env_ids()
        names = {i.rsplit("/", 1)[-1].lower(): i for i in ids}
        wanted = env_id.rsplit("/", 1)[-1].lower()
        close = [names[n] for n in difflib.get_close_matches(wanted, list(names), n=1)]
        hint = f"did you mean {close[0]}? " if close else ""
        raise typer.BadParameter(
            f"unknown env id {env_id!r}; {hint}valid ids: {', '.join(ids)}", param_hint="--env"
        )
    return env_id


def probe_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Make (and close) the env once: a missing optional engine fails with its fix, and
    an env that does not take and return text (CartPole, Atari ...) is refused."""
    import gymnasium as gym
    from gymnasium import spaces

    from agentdistill.envs.registration import env_ids

    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except ImportError as exc:
        family = env_id.rsplit("/", 1)[-1].split("-")[0].lower()
        raise typer.BadParameter(
            f"{env_id} needs an optional engine ({exc}); install it with "
            f"pip install 'agentdistill[{family}]'",
            param_hint="--env",
        ) from exc
    try:
        obs_space, act_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not (isinstance(obs_space, spaces.Text) and isinstance(act_space, spaces.Text)):
        raise typer.BadParameter(
            f"{env_id} is not a text environment (observations {type(obs_space).__name__}, "
            f"actions {type(act_space).__name__}); use a text env such as "
            f"{', '.join(env_ids())}",
            param_hint="--env",
        )


def _outputs(path: Path) -> list[Path]:
    """The files an eval run writes for episodes file ``path`` (episodes, summary, partial
    and the partial's settings)."""
    return [path, summary_path_for(path), partial_path_for(path), partial_settings_path_for(path)]


def summary_path_for(path: Path) -> Path:
    """``runs/eval/x.jsonl`` -> ``runs/eval/x.summary.json``."""
    return path.with_name(path.stem + ".summary.json")


def partial_path_for(path: Path) -> Path:
    """Where episodes are appended as they finish, before the final rename to ``path``."""
    return path.with_name(path.name + ".partial")


def partial_settings_path_for(path: Path) -> Path:
    """The settings of the run writing ``partial_path_for(path)`` (what ``--resume`` checks)."""
    return path.with_name(path.name + ".partial.settings.json")


#: Settings that may differ between an interrupted run and its resumption.
RESUME_FREE_SETTINGS = ("agentdistill_version", "git")


def load_resumable(out: Path, settings: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The finished episodes of the interrupted eval run at ``out``, and where they came from.

    After a crash or kill they are in ``<out>.partial`` (a last line torn by the kill is
    skipped); after Ctrl-C in ``<out>`` itself. The run's recorded settings must equal
    ``settings`` except :data:`RESUME_FREE_SETTINGS`, else BadParameter says which differ.
    """
    from agentdistill.agents.trajectory import iter_jsonl

    partial = partial_path_for(out)
    if partial.exists():
        source, recorded_at = partial, partial_settings_path_for(out)
    elif out.exists():
        source, recorded_at = out, summary_path_for(out)
    else:
        raise typer.BadParameter(
            f"nothing to resume: neither {out} nor {partial} exists; run without --resume",
            param_hint="--resume",
        )
    try:
        episodes = list(iter_jsonl(source, skip_torn_tail=source == partial))
        recorded = json.loads(recorded_at.read_text(encoding="utf-8")).get("protocol")
    except FileNotFoundError:
        recorded = None
    except (OSError, ValueError, AttributeError) as exc:
        raise typer.BadParameter(f"cannot resume from {source}: {str(exc).splitlines()[0]}",
                                 param_hint="--resume") from exc
    if not isinstance(recorded, dict):
        raise typer.BadParameter(
            f"{recorded_at} does not record the settings of {source}, so a resumed run could "
            "not be checked to play the same way; start a new --out",
            param_hint="--resume",
        )
    now = json.loads(json.dumps(settings, default=str))
    differ = [k for k in sorted(set(recorded) | set(now))
              if k not in RESUME_FREE_SETTINGS and recorded.get(k) != now.get(k)]
    if differ:
        k = differ[0]
        raise typer.BadParameter(
            f"{source} was played with other settings ({k}: {recorded.get(k)!r} there, "
            f"{now.get(k)!r} now; {len(differ)} setting(s) differ); resume with the same "
            "options, or start a new --out",
            param_hint="--resume",
        )
    return episodes, {"from": str(source), "episodes_finished": len(episodes),
                      "earlier_git": recorded.get("git")}


def resolve_out(out: Path | None, default: Path, overwrite: bool) -> Path:
    """The episodes path an eval run may write, checked before any work is done.

    An explicit ``out`` that exists (or whose summary / partial file exists) is refused
    unless ``overwrite``; the ``default`` path gets a ``-2``, ``-3`` ... suffix instead.
    Raises BadParameter when the path is a directory, sits under a file, or is unwritable.
    """
    path = out if out is not None else default
    if path.is_dir():
        raise typer.BadParameter(
            f"{path} is a directory; give a file path such as {path / 'episodes.jsonl'}",
            param_hint="--out",
        )
    for parent in path.parents:  # the nearest existing ancestor must be a directory
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(
                    f"cannot write {path}: {parent} is a file, not a directory; "
                    "choose another --out",
                    param_hint="--out",
                )
            break
    if not overwrite:
        taken = [p for p in _outputs(path) if p.exists()]
        if taken and out is not None:
            raise typer.BadParameter(
                f"{taken[0]} already exists; pass --overwrite to replace it, or choose "
                "another --out",
                param_hint="--out",
            )
        n = 2
        while any(p.exists() for p in _outputs(path)):
            path = default.with_name(f"{default.stem}-{n}{default.suffix}")
            n += 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.write-test")
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {path}: {exc.strerror or exc}; choose another --out",
            param_hint="--out",
        ) from exc
    return path


def _write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _slug(text: str) -> str:
    name = Path(text.rstrip("/")).name or text
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "policy"


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def results_table(episodes: list[Any], title: str) -> tuple[Table, dict[str, Any]]:
    """A rich table (all episodes, plus one row per task type when there are several)
    and the same numbers as a dict."""
    from agentdistill.agents.trajectory import summarize

    summary: dict[str, Any] = {"all": summarize(episodes)}
    types = sorted(
        {
            str(e.metadata.get("task_type"))
            for e in episodes
            if e.metadata.get("task_type") is not None
        }
    )
    if len(types) > 1:
        for t in types:
            summary[t] = summarize([e for e in episodes if str(e.metadata.get("task_type")) == t])
    table = Table(title=title)
    for col in ("", "episodes", "success rate", "mean score", "mean turns", "invalid-action rate"):
        table.add_column(col, justify="left" if not col else "right")
    for name, s in summary.items():
        table.add_row(
            name,
            str(s["episodes"]),
            _fmt(s["success_rate"]),
            _fmt(s["mean_score"]),
            _fmt(s["mean_turns"]),
            _fmt(s["invalid_action_rate"]),
        )
    return table, summary


def _weight_dtype(policy: str, dtype: str, device: str) -> str:
    """The dtype an LLM policy's weights got here ('auto' depends on the machine)."""
    from agentdistill import api

    if policy in ("expert", "random") or policy.startswith(api.OPENAI_PREFIX):
        return dtype
    from agentdistill.agents.models import resolve_dtype_name

    return resolve_dtype_name(dtype, device)


def shipped_defaults(
    policy: str, env: str, *, history_k: int | None, dtype: str | None,
    response_prefix: str | None, max_new_tokens: int | None,
) -> tuple[int, str, str | None, int | None]:
    """:func:`agentdistill.api.policy_settings` (a shipped student's own settings where
    the user gave none), with a one-line ``--policy`` error and a warning when the
    student was trained on another env."""
    from agentdistill import api
    from agentdistill.agents.models import ModelLoadError, named_adapter

    try:
        shipped = named_adapter(policy)
        settings = api.policy_settings(policy, history_k=history_k, dtype=dtype,
                                       response_prefix=response_prefix,
                                       max_new_tokens=max_new_tokens)
    except ModelLoadError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from exc
    trained_on = shipped[1].get("env") if shipped else None
    if trained_on and trained_on != env:
        console.print(f"[yellow]{policy} was trained on {trained_on}, not {env}")
    return settings


def make_policy(
    policy: str,
    *,
    seed: int,
    batch_size: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int | None,
    history_k: int,
    device: str,
    dtype: str,
    response_prefix: str | None = None,
    model: str | None = None,
    tokenizer: str | None = None,
) -> Any:
    """``expert`` | ``random`` | a model (``smollm2``, HF id, local dir or .gguf) |
    ``openai:URL`` (with ``model``): :func:`agentdistill.api.make_policy`, whose errors
    become one-line ``--policy`` errors.

    ``response_prefix=None`` picks the default: ``"<action>"`` for SmolLM2-135M (it does
    not follow the think/action format zero-shot), none for other models. Expert and random
    turns are rendered through ``tokenizer``'s prompts (default ``smollm2``: SFT-ready
    episodes; ``none``: prompt messages only).
    """
    from agentdistill import api
    from agentdistill.agents.models import ModelLoadError

    served = policy.startswith(api.OPENAI_PREFIX)
    if served and not model:
        raise typer.BadParameter(
            f"{policy} needs the served model's name: add --model NAME", param_hint="--model"
        )
    tok: str | None = tokenizer
    if policy in ("expert", "random"):
        if tokenizer is None:
            tok = "smollm2"
            try:
                api._cached_tokenizer(tok)
            except Exception:  # no bundled tokenizer: prompt messages only
                tok = None
        elif tokenizer.lower() == "none":
            tok = None
    try:
        if policy in ("expert", "random") or served:
            return api.make_policy(
                policy, seed=seed, model=model, tokenizer=tok, batch_size=batch_size,
                temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                history_k=history_k, response_prefix=response_prefix,
            )
        with console.status(f"loading {policy} ..."):
            return api.make_policy(
                policy, seed=seed, batch_size=batch_size, temperature=temperature, top_p=top_p,
                max_new_tokens=max_new_tokens, history_k=history_k, device=device, dtype=dtype,
                response_prefix=response_prefix,
            )
    except ModelLoadError as exc:
        hint = "--tokenizer" if tokenizer is not None or served else "--policy"
        raise typer.BadParameter(str(exc), param_hint=hint) from exc
    except ValueError as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="--policy") from exc


#: Forced answer start for SmolLM2-135M: zero-shot it answered in the think/action format
#: once in 192 Sokoban turns; with "<action>" prefilled most answers parse.
SMALL_MODEL_PREFIX = "<action>"


# --- eval -------------------------------------------------------------------------------
@app.command("eval")
def eval_cmd(
    env: str = typer.Option(DEFAULT_ENV, help="registered env id"),
    policy: str = typer.Option(
        DEFAULT_POLICY,
        help="smollm2 | smollm2-sokoban, smollm2-sokoban-v2, smollm2-webshop (shipped trained "
        "students) | "
        "expert | random | HF id | model dir | .gguf file | openai:http://host:port/v1 "
        "(an OpenAI-compatible server; with --model)",
    ),
    model: str | None = typer.Option(
        None, help="served model name for --policy openai:URL (also its tokenizer by default)"
    ),
    tokenizer: str | None = typer.Option(
        None,
        help="tokenizer (name, HF id or dir) of the served model for openai:URL; for expert / "
        "random, the one their turns are rendered with as SFT data (default smollm2; none)",
    ),
    episodes: int = typer.Option(16, min=1, help="number of seeded tasks"),
    seed: int = typer.Option(0, min=0, help="first seed (>= 0); tasks use seed, seed+1, ..."),
    split: str = typer.Option("test", help="train | valid_seen | valid_unseen | test"),
    batch_size: int = typer.Option(8, min=1, help="envs stepped (and prompts generated) together"),
    temperature: float = typer.Option(
        0.0, min=0.0, help="0 = greedy (the default, as published evaluations)"
    ),
    top_p: float = typer.Option(1.0, help="nucleus sampling mass, in (0, 1]"),
    max_new_tokens: int | None = typer.Option(
        None, min=1, help="tokens per answer (default: 16 after a response prefix, else 64)"
    ),
    max_turns: int | None = typer.Option(None, min=1, help="override the env's turn limit"),
    history_k: int | None = typer.Option(
        None, min=0, help="past steps shown in the prompt (default 2; a shipped student's own)"
    ),
    device: str = typer.Option("auto", help="cpu | cuda | auto"),
    dtype: str | None = typer.Option(
        None, help="float32 | bfloat16 | float16 | auto (bfloat16 where the CPU/GPU has it "
        "natively, else float32); default float32, a shipped student's own"
    ),
    out: Path | None = typer.Option(
        None,
        help="episodes JSONL; an existing file is refused unless --overwrite (default "
        "runs/eval/<env>-<policy>.jsonl, or -2, -3 ... appended when that exists)",
    ),
    overwrite: bool = typer.Option(
        False, help="replace an existing --out (only once the new run has finished)"
    ),
    progress: bool = typer.Option(True, help="show a progress bar"),
    threads: int = typer.Option(0, min=0, help="torch CPU threads (0 = torch's default)"),
    response_prefix: str | None = typer.Option(
        None,
        help='text forced at the start of each answer, e.g. "<action>" (default: "<action>" '
        'for smollm2, none otherwise; "" turns it off)',
    ),
    all_tasks: bool = typer.Option(
        False, "--all-tasks",
        help="play every task of the split once (Sokoban: seeds 0-499) instead of --episodes",
    ),
    tasks_file: Path | None = typer.Option(
        None, "--tasks", help="play the tasks listed in this JSONL (see evaluation_protocol)"
    ),
    samples: int = typer.Option(1, min=1, help="episodes per task; reports pass@k for k > 1"),
    env_kwargs: str | None = typer.Option(
        None, help='JSON object of env constructor kwargs, e.g. \'{"render_style": "ragen"}\''
    ),
    resume: bool = typer.Option(
        False, "--resume",
        help="continue the interrupted run at --out with the same options: keep its finished "
        "episodes (OUT.partial after a crash or kill, OUT after Ctrl-C), play the rest",
    ),
) -> None:
    """Roll a policy out on seeded tasks; print success (95% Wilson CI) / score / turns /
    invalid actions, overall and per task type.

    Episodes are appended to ``<out>.partial`` as they finish (nothing is lost on Ctrl-C
    or a crash), then written in seed order to ``<out>`` by an atomic rename, so an
    earlier file is never truncated; a summary JSON is written next to it. ``--resume``
    continues an interrupted run from those files.
    """
    from agentdistill.agents.trajectory import episode_to_json, save_jsonl
    from agentdistill.envs.core import SPLITS

    env = check_env_id(env)  # ``module:EnvId`` -> the id its module registered
    if split not in SPLITS:
        raise typer.BadParameter(
            f"unknown split {split!r}; use one of {', '.join(SPLITS)}", param_hint="--split"
        )
    if not 0 < top_p <= 1:
        raise typer.BadParameter(
            f"{top_p} is not in (0, 1]; 1 samples from the whole distribution",
            param_hint="--top-p",
        )
    if dtype is not None and dtype not in DTYPES:
        raise typer.BadParameter(
            f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}", param_hint="--dtype"
        )
    from agentdistill import evaluation_protocol as protocol

    try:
        extra_kwargs = json.loads(env_kwargs) if env_kwargs else {}
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--env-kwargs") from exc
    if not isinstance(extra_kwargs, dict):
        raise typer.BadParameter("give a JSON object", param_hint="--env-kwargs")
    if all_tasks and tasks_file is not None:
        raise typer.BadParameter("give --all-tasks or --tasks, not both", param_hint="--tasks")
    if resume and (out is None or overwrite):
        raise typer.BadParameter(
            "give the --out of the run to continue" if out is None
            else "give --resume or --overwrite, not both", param_hint="--resume")
    name = f"{_slug(env)}-{_slug(model if policy.startswith('openai:') and model else policy)}"
    out = resolve_out(out, Path("runs") / "eval" / f"{name}.jsonl", overwrite or resume)
    probe_env(env, extra_kwargs)
    try:
        if all_tasks:
            task_list, tasks_desc = protocol.all_tasks(env, split, extra_kwargs), "all"
        elif tasks_file is not None:
            task_list, tasks_desc = protocol.load_tasks(tasks_file), str(tasks_file)
        else:
            task_list = [protocol.Task(f"seed-{s}", s, {"split": split})
                         for s in range(seed, seed + episodes)]
            tasks_desc = f"seeds {seed}-{seed + episodes - 1}"
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--tasks") from exc
    history_k, dtype, response_prefix, max_new_tokens = shipped_defaults(
        policy, env, history_k=history_k, dtype=dtype, response_prefix=response_prefix,
        max_new_tokens=max_new_tokens)
    if threads:
        import torch

        torch.set_num_threads(threads)
    agent = make_policy(
        policy,
        seed=seed,
        batch_size=batch_size,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        history_k=history_k,
        device=device,
        dtype=dtype,
        response_prefix=response_prefix,
        model=model,
        tokenizer=tokenizer,
    )
    seeds = [t.seed for t in task_list]
    max_new = getattr(getattr(agent, "sampling", None), "max_new_tokens", None)
    sampling = {"temperature": temperature, "top_p": top_p, "seed": seed,
                "max_new_tokens": max_new, "response_prefix": getattr(agent, "response_prefix", None),
                "history_k": history_k}
    settings = protocol.run_settings(
        env, split=split, env_kwargs=extra_kwargs, max_turns=max_turns, policy=policy,
        sampling=sampling, dtype=_weight_dtype(policy, dtype, device), device=device,
        samples=samples, tasks=tasks_desc)
    kept: list[Any] = []
    resumed = None
    if resume:
        earlier, resumed = load_resumable(out, settings)
        try:
            kept, todo = protocol.resume_split(env, task_list, samples, earlier)
        except ValueError as exc:
            raise typer.BadParameter(f"cannot resume from {resumed['from']}: {exc}",
                                     param_hint="--resume") from exc
        resumed.update(episodes_kept=len(kept), tasks_left=len(todo))
        console.print(f"resuming {resumed['from']}: {len(kept)} episodes kept, "
                      f"{len(todo)} of {len(task_list)} tasks left")
    partial = partial_path_for(out)
    try:
        # Kept episodes first (a kill during this run keeps them too), then the new ones.
        save_jsonl(kept, partial)
        _write_text_atomic(partial_settings_path_for(out),
                           json.dumps({"protocol": settings}, indent=2, default=str) + "\n")
        fh = partial.open("a", encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot write {partial}: {exc.strerror or exc}; choose another --out",
            param_hint="--out",
        ) from exc
    load_start, started = protocol.load_average(), time.perf_counter()
    with fh:

        def write(episode: Any) -> None:
            fh.write(episode_to_json(episode) + "\n")
            fh.flush()

        done = protocol.play(
            agent,
            env,
            task_list,
            samples=samples,
            max_turns=max_turns,
            env_kwargs=extra_kwargs,
            progress=progress,
            on_episode=write,
            batch_size=batch_size,
            finished=kept,
        )
    interrupted = len(done) < len(seeds) * samples
    if not done:  # interrupted before any episode finished: leave an earlier --out alone
        partial.unlink(missing_ok=True)
        partial_settings_path_for(out).unlink(missing_ok=True)
        console.print("[yellow]interrupted before any episode finished; nothing written")
        raise typer.Exit(130)
    # Seed order (the partial file is in finishing order), then an atomic rename.
    save_jsonl(done, out)
    partial.unlink(missing_ok=True)
    partial_settings_path_for(out).unlink(missing_ok=True)
    summary = protocol.protocol_summary(done, samples)
    console.print(protocol.protocol_table(summary, f"{policy} on {env}", samples))
    summary_path = summary_path_for(out)
    meta = {
        "env": env,
        "policy": policy,
        "model": model,
        "episodes_requested": episodes,
        "seeds": seeds,
        "split": split,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new,
        "response_prefix": getattr(agent, "response_prefix", None),
        "history_k": history_k,
        "batch_size": batch_size,
        "interrupted": interrupted,
        "episodes_file": str(out),
        # this invocation's; a resumed run's earlier part is not counted
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": protocol.machine(load_start),
        "protocol": settings,
    }
    if resumed is not None:
        meta["resumed"] = resumed
    _write_text_atomic(summary_path, json.dumps({**meta, "results": summary}, indent=2) + "\n")
    console.print(f"episodes: {out}\nsummary: {summary_path}")
    if interrupted:
        console.print(
            f"[yellow]interrupted: {len(done)}/{len(seeds) * samples} episodes finished"
        )
        raise typer.Exit(130)


# --- inspect ----------------------------------------------------------------------------
@app.command("inspect")
def inspect_cmd(
    episodes_file: Path = typer.Argument(..., help="episodes JSONL written by eval/rollout"),
    episode: str | None = typer.Option(None, "--episode", help="only this episode id"),
    max_chars: int = typer.Option(600, min=20, help="cut long texts to this many characters"),
    summary_only: bool = typer.Option(False, "--summary", help="only the summary table"),
    prompt: bool = typer.Option(False, "--prompt", help="also show each turn's prompt messages"),
) -> None:
    """Pretty-print episodes: each turn's response, action, validity, reward, observation.

    Turns are labelled by who acted (model, expert, random, teacher; expert replay for
    TCOD's replayed prefix). Piped output is not wrapped to 80 columns.
    """
    from rich.panel import Panel
    from rich.text import Text

    from agentdistill.agents.trajectory import load_jsonl

    out = console if console.is_terminal else Console(width=10_000, soft_wrap=True)

    try:
        episodes = load_jsonl(episodes_file)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="EPISODES_FILE") from exc
    if not episodes:
        raise typer.BadParameter(
            f"{episodes_file} holds no episodes (the file is empty); pass a JSONL written by "
            "agentdistill eval",
            param_hint="EPISODES_FILE",
        )
    if episode is not None:
        episodes = [e for e in episodes if e.episode_id == episode]
        if not episodes:
            raise typer.BadParameter(
                f"no episode {episode!r} in {episodes_file}", param_hint="--episode"
            )

    def cut(text: str) -> str:
        text = str(text)
        return (
            text
            if len(text) <= max_chars
            else text[:max_chars] + f" [... {len(text) - max_chars} more]"
        )

    if not summary_only:
        for ep in episodes:
            who = actor_label(ep)
            head = (
                f"[bold]{ep.episode_id}[/]  task {ep.task_id}  seed {ep.seed}  "
                f"won {ep.won}  score {ep.score:.2f}  return {ep.episode_return:.2f}  "
                f"turns {ep.num_turns}{'  truncated' if ep.truncated else ''}"
            )
            if out is console:
                out.rule(head)
            else:
                out.print(f"=== {head}")
            out.print(Text(f"task: {cut(ep.task)}", style="dim"))
            if ep.initial_observation:
                out.print(Text(f"initial observation:\n{cut(ep.initial_observation)}", style="dim"))
            for t in ep.turns:
                tag = "expert replay" if t.is_replay else who
                flags = f"format {'ok' if t.format_valid else 'BAD'}, action {'valid' if t.action_valid else 'INVALID'}"
                body = ""
                if prompt and t.prompt_messages:
                    for m in t.prompt_messages:
                        body += f"[{m.get('role', '?')}]\n{cut(m.get('content', ''))}\n"
                    body += "---\n"
                if t.response_text and t.response_text != t.action:
                    body += f"response: {cut(t.response_text)}\n"
                body += f"action: {t.action!r}  ({flags}, reward {t.reward:+.2f}, {len(t.response_ids)} tokens)\n"
                body += f"observation:\n{cut(t.observation)}"
                out.print(
                    Panel(
                        Text(body), title=Text(f"turn {t.turn_index} [{tag}]"), title_align="left",
                        expand=out is console,
                    )
                )
    table, _ = results_table(episodes, str(episodes_file))
    out.print(table)


def actor_label(episode: Any) -> str:
    """Who played an episode's turns: ``model``, ``expert``, ``random`` or ``teacher``."""
    source = episode.metadata.get("source")
    if source in ("expert", "teacher"):
        return str(source)
    policy = str(episode.metadata.get("policy", "llm"))
    if policy in ("expert", "expert_answer"):
        return "expert"
    if policy == "random":
        return "random"
    return "model"


# --- envs -------------------------------------------------------------------------------
#: name -> (engine, splits, data source, optional module the engine needs)
ENV_INFO: dict[str, tuple[str, str, str, str | None]] = {
    "Sokoban": ("our own (reverse-play generator, BFS solver)", "train / test by seed range",
                "generated per seed", None),
    "ALFWorld": ("TextWorld PDDL engine", "train, valid_seen, valid_unseen (test = valid_unseen)",
                 "alfworld", "textworld"),
    "ScienceWorld": ("ScienceWorld simulator (JVM)", "train, dev (valid_*), test variations",
                     "the simulator's 30 tasks", "scienceworld"),
    "WebShop": ("our state machine + bm25s search", "test 500 / valid 1,000 / train goals",
                "webshop", "bm25s"),
}


def _data_source(kind: str) -> str:
    import os

    if kind == "alfworld":
        for cand in (os.environ.get("ALFWORLD_DATA"), Path.home() / ".cache" / "alfworld"):
            if cand and (Path(cand) / "json_2.1.1").is_dir():
                return f"official games ({cand})"
        return "360 generated games (shipped)"
    if kind == "webshop":
        folder = os.environ.get("WEBSHOP_DATA")
        return f"official files ($WEBSHOP_DATA={folder})" if folder else \
            "synthetic catalog, 1,250 products (shipped)"
    return kind


@app.command("envs")
def envs_cmd(
    all_: bool = typer.Option(False, "--all", help="also list every other registered gymnasium id"),
) -> None:
    """List the environment ids with engine, turn limit, splits and data source."""
    import importlib.util

    import gymnasium as gym

    from agentdistill.envs.registration import ENV_SPECS, NAMESPACE, register_envs

    register_envs()
    table = Table(title="agentdistill environments", title_justify="left")
    for col in ("id", "engine", "turn limit", "splits", "data source", "installed"):
        table.add_column(col, justify="right" if col == "turn limit" else "left")
    for name, (_, max_steps, _) in ENV_SPECS.items():
        family = name.split("-")[0]
        engine, splits, source, module = ENV_INFO.get(family, ("?", "?", "?", None))
        ok = module is None or importlib.util.find_spec(module) is not None
        table.add_row(f"{NAMESPACE}/{name}", engine, str(max_steps), splits, _data_source(source),
                      "yes" if ok else f"no: pip install 'agentdistill[{family.lower()}]'")
    if all_:
        for env_id, spec in sorted(gym.registry.items()):
            if env_id.startswith(f"{NAMESPACE}/"):
                continue
            entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(
                spec.entry_point, "__qualname__", str(spec.entry_point))
            table.add_row(env_id, str(entry), str(spec.max_episode_steps or "-"), "-", "-", "-")
    (console if console.is_terminal else Console(width=400)).print(table)


# --- export -----------------------------------------------------------------------------
EXPORT_FORMATS = ("parquet", "hf")


@app.command("export")
def export_cmd(
    episodes_file: Path = typer.Argument(..., help="episodes JSONL written by eval/rollout"),
    fmt: str = typer.Option("parquet", "--format", help="parquet | hf"),
    out: Path | None = typer.Option(
        None, "--out", "-o",
        help="output path (default: next to the input, .parquet or a -hf directory)",
    ),
    overwrite: bool = typer.Option(False, help="replace an existing output"),
) -> None:
    """Write episodes as a flat turn table: one row per turn with its episode's ids.

    ``parquet``: one file. ``hf``: a dataset folder (``data/train-00000-of-00001.parquet``
    plus a README card) that ``datasets.load_dataset(FOLDER)`` reads; its rows also hold
    ``prompt`` / ``completion`` chat messages (TRL's conversational prompt-completion form).
    """
    from agentdistill.agents.trajectory import export_turns, load_jsonl

    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(
            f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}", param_hint="--format"
        )
    try:
        episodes = load_jsonl(episodes_file)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="EPISODES_FILE") from exc
    if not episodes:
        raise typer.BadParameter(f"{episodes_file} holds no episodes", param_hint="EPISODES_FILE")
    if out is None:
        out = (episodes_file.with_suffix(".parquet") if fmt == "parquet"
               else episodes_file.with_name(episodes_file.stem + "-hf"))
    if out.exists() and not overwrite:
        raise typer.BadParameter(f"{out} already exists; pass --overwrite or choose another --out",
                                 param_hint="--out")
    try:
        path, rows = export_turns(episodes, out, fmt)
    except ImportError as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="--format") from exc
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {out}: {exc.strerror or exc}",
                                 param_hint="--out") from exc
    console.print(f"{rows} turns of {len(episodes)} episodes -> {path}")


# --- view -----------------------------------------------------------------------------
@app.command("view")
def view_cmd(
    episodes_file: Path = typer.Argument(..., help="episodes JSONL written by eval/rollout"),
    out: Path | None = typer.Option(None, "--out", "-o", help="HTML file (default: RUN.html)"),
    tokenizer: str | None = typer.Option(
        None, help="the run's tokenizer (e.g. smollm2), to show token texts in KL strips"
    ),
    max_chars: int = typer.Option(4000, min=20, help="cut long observations to this many characters"),
) -> None:
    """Write one self-contained HTML page for a run: task, turns, actions, validity, rewards,
    prompts and, for teacher-scored turns, a per-token KL heat strip."""
    from agentdistill.agents.trajectory import load_jsonl
    from agentdistill.view import render_html

    try:
        episodes = load_jsonl(episodes_file)
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="EPISODES_FILE") from exc
    if not episodes:
        raise typer.BadParameter(f"{episodes_file} holds no episodes", param_hint="EPISODES_FILE")
    tok = None
    if tokenizer:
        from agentdistill import api
        from agentdistill.agents.models import ModelLoadError

        try:
            tok = api._cached_tokenizer(tokenizer)
        except ModelLoadError as exc:
            raise typer.BadParameter(str(exc), param_hint="--tokenizer") from exc
    out = out if out is not None else episodes_file.with_suffix(".html")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(out, render_html(episodes, episodes_file.name, tok, max_chars))
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {out}: {exc.strerror or exc}",
                                 param_hint="--out") from exc
    console.print(f"{len(episodes)} episodes -> {out}")


# --- compare --------------------------------------------------------------------------
@app.command("compare")
def compare_cmd(
    run_dirs: list[Path] = typer.Argument(..., help="training run directories (output_dir)"),
    plot: Path = typer.Option(Path("compare.png"), help="the side-by-side plot (PNG)"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the table as JSON"),
) -> None:
    """Compare training runs: final held-out success with a 95% CI, KL, steps and wall time
    per method (seeds of one method pooled), and one plot of the runs side by side."""
    from agentdistill.report import compare_rows, load_run, plot_compare

    runs = []
    for d in run_dirs:
        try:
            runs.append(load_run(d))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise typer.BadParameter(str(exc).splitlines()[0], param_hint="RUN_DIRS") from exc
    rows = compare_rows(runs)
    table = Table(title="runs compared", title_justify="left")
    for col in ("method", "runs", "held-out success [95% CI]", "KL", "steps", "wall time"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        ci = ("" if math.isnan(r["success_lo"]) else
              f" [{r['success_lo']:.2f}, {r['success_hi']:.2f}] ({r['ci']})")
        kl = "-" if math.isnan(r["kl"]) else f"{r['kl']:.4f} ({r['kl_kind']})"
        table.add_row(r["method"], str(r["runs"]), f"{_fmt(r['success'])}{ci}", kl,
                      str(r["steps"]), f"{r['wall_s'] / 60:.1f} min")
    out = console if console.is_terminal else Console(width=200)
    out.print(table)
    try:
        path = plot_compare(runs, plot)
        if json_out is not None:
            _write_text_atomic(json_out, json.dumps(rows, indent=1, default=float) + "\n")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write: {exc.strerror or exc}", param_hint="--plot") from exc
    out.print(f"plot: {path}")


# --- train ------------------------------------------------------------------------------
@app.command("train")
def train_cmd(
    config: str | None = typer.Argument(
        None, help="YAML train config (see configs/); with --print-config: a method name"
    ),
    resume: Path | None = typer.Option(
        None, help="continue from a checkpoint dir, a run dir (its latest) or .../latest"
    ),
    overwrite: bool = typer.Option(False, help="replace an earlier run in output_dir"),
    print_config: bool = typer.Option(
        False, "--print-config", help="print the full default config of METHOD (default opd)"
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="override a config field, e.g. --set steps=5 --set optim.lr=1e-4"
    ),
) -> None:
    """Train a student (OPD, GRPO, GRPO+OPD, SOD, TCOD, Skill-SD) from a config file."""
    from agentdistill.distill import trainer
    from agentdistill.distill.config import ConfigError, parse_overrides

    if print_config:
        try:
            typer.echo(trainer.print_config(config), nl=False)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="METHOD") from exc
        return
    if config is None:
        raise typer.BadParameter("give a YAML train config (or --print-config [METHOD])",
                                 param_hint="CONFIG")
    try:
        overrides = parse_overrides(set_)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc  # the message names --set
    try:
        summary = trainer.run_train(config, resume=resume, overrides=overrides, overwrite=overwrite)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="CONFIG") from exc
    except FileNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="--resume") from exc
    from agentdistill.distill.distributed import is_main_process

    if is_main_process():  # under torchrun: rank 0 prints the summary
        console.print_json(json.dumps(summary, default=float))


def main() -> None:
    """Console-script entry point (``agentdistill``)."""
    app()


if __name__ == "__main__":
    main()
