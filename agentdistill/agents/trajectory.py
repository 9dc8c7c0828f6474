"""Episodes and turns: the data model shared by rollout, teacher scoring and training.

An :class:`Episode` is one env run; each :class:`Turn` is one student generation plus the
env's answer. Token ids and log-probs are stored per turn so that training rows are
turns with explicit ``episode_id`` and ``turn_index`` (never parsed back out of strings).
Turns replayed from the expert (TCOD b2f) are kept with ``is_replay=True`` and carry no
loss. JSONL save/load round-trips exactly (floats are written with ``repr``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

Message = dict[str, str]


@dataclass
class Turn:
    """One student step: prompt, sampled response, parsed action and the env's reply."""

    turn_index: int
    prompt_messages: list[Message]
    prompt_ids: list[int]
    response_ids: list[int]
    response_logprobs: list[float]
    response_text: str
    action: str | None
    format_valid: bool
    action_valid: bool
    reward: float
    observation: str
    done: bool = False
    is_replay: bool = False
    #: text forced at the start of the assistant turn (already inside ``prompt_ids``);
    #: the response continues it, and teachers must append the same text to their prompt.
    response_prefix: str = ""
    teacher_logprobs: list[float] | None = None
    teacher_topk_ids: list[list[int]] | None = None
    teacher_topk_logprobs: list[list[float]] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        """True when this turn's response tokens carry loss (student-generated, non-empty)."""
        return not self.is_replay and len(self.response_ids) > 0


@dataclass
class Episode:
    """One environment episode played by a policy."""

    episode_id: str
    env_id: str
    task_id: str
    task: str
    seed: int | None
    #: the observation ``reset`` returned (what the first turn's prompt shows)
    initial_observation: str = ""
    turns: list[Turn] = field(default_factory=list)
    won: bool = False
    score: float = 0.0
    episode_return: float = 0.0
    truncated: bool = False
    group_id: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    @property
    def student_turns(self) -> list[Turn]:
        return [t for t in self.turns if not t.is_replay]

    @property
    def invalid_action_rate(self) -> float:
        turns = self.student_turns
        if not turns:
            return 0.0
        return sum(not t.action_valid for t in turns) / len(turns)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["return"] = data.pop("episode_return")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        data = dict(data)
        data["episode_return"] = data.pop("return", 0.0)
        turn_names = {f.name for f in fields(Turn)}
        turns = [Turn(**{k: v for k, v in t.items() if k in turn_names}) for t in data.pop("turns", [])]
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown episode fields: {sorted(unknown)}")
        return cls(turns=turns, **data)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def episode_to_json(episode: Episode) -> str:
    """One JSON line; non-finite floats are kept (Python's json writes NaN/Infinity)."""
    return json.dumps(episode.to_dict(), ensure_ascii=False, default=_json_default)


def save_jsonl(episodes: Iterable[Episode], path: str | Path, append: bool = False) -> Path:
    """Write episodes as JSON lines (one episode per line).

    Without ``append`` the lines go to ``<path>.tmp`` first, renamed over ``path`` once
    complete, so an interrupted write never leaves a truncated or emptied file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if append:
        with path.open("a", encoding="utf-8") as fh:
            for episode in episodes:
                fh.write(episode_to_json(episode) + "\n")
        return path
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for episode in episodes:
                fh.write(episode_to_json(episode) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def iter_jsonl(path: str | Path, skip_torn_tail: bool = False) -> Iterator[Episode]:
    """Read episodes back; a malformed line raises ValueError naming the line number.

    A missing path raises FileNotFoundError; a directory, non-UTF-8 text or a line nested
    too deeply for the JSON parser raise ValueError, each with a one-line message.
    ``skip_torn_tail``: a last line that is not JSON and has no newline (a writer killed
    mid-line, e.g. an eval's ``.partial`` file) is skipped instead.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no episode file at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an episodes JSONL file")
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    if skip_torn_tail and not line.endswith("\n"):
                        return
                    raise ValueError(f"{path}:{lineno}: not an episode record ({exc})") from None
                except RecursionError:
                    raise ValueError(f"{path}:{lineno}: nested too deeply to be an episode record") from None
                try:
                    episode = Episode.from_dict(data)
                except (AttributeError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{lineno}: not an episode record ({exc})") from exc
                yield episode
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text (is it an episodes JSONL file?)") from None


def load_jsonl(path: str | Path) -> list[Episode]:
    """All episodes of a JSONL file (see :func:`iter_jsonl` for the errors)."""
    return list(iter_jsonl(path))


def turn_rows(episodes: Iterable[Episode]) -> list[dict[str, Any]]:
    """Flatten episodes into training rows, one per turn, with explicit ids.

    Each row is the turn's fields (``info`` as a JSON string) plus its episode's
    ``episode_id``, ``env_id``, ``task_id``, ``task``, ``seed``, ``group_id``, ``policy``,
    ``episode_won``, ``episode_score`` and ``episode_return``.
    """
    rows = []
    for ep in episodes:
        for turn in ep.turns:
            row = asdict(turn)
            row.update(
                episode_id=ep.episode_id,
                env_id=ep.env_id,
                task_id=ep.task_id,
                task=ep.task,
                seed=ep.seed,
                group_id=ep.group_id,
                policy=str(ep.metadata.get("source") or ep.metadata.get("policy") or ""),
                episode_won=ep.won,
                episode_score=ep.score,
                episode_return=ep.episode_return,
            )
            row["info"] = json.dumps(row["info"], default=_json_default)
            rows.append(row)
    return rows


def turn_schema() -> Any:
    """The pyarrow schema of :func:`turn_rows` (fixed, whatever the episodes hold)."""
    import pyarrow as pa

    ints, floats = pa.list_(pa.int64()), pa.list_(pa.float64())
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("turn_index", pa.int64()), ("prompt_messages", pa.list_(message)),
        ("prompt_ids", ints), ("response_ids", ints), ("response_logprobs", floats),
        ("response_text", pa.string()), ("action", pa.string()),
        ("format_valid", pa.bool_()), ("action_valid", pa.bool_()), ("reward", pa.float64()),
        ("observation", pa.string()), ("done", pa.bool_()), ("is_replay", pa.bool_()),
        ("response_prefix", pa.string()), ("teacher_logprobs", floats),
        ("teacher_topk_ids", pa.list_(ints)), ("teacher_topk_logprobs", pa.list_(floats)),
        ("info", pa.string()), ("episode_id", pa.string()), ("env_id", pa.string()),
        ("task_id", pa.string()), ("task", pa.string()), ("seed", pa.int64()),
        ("group_id", pa.int64()), ("policy", pa.string()), ("episode_won", pa.bool_()),
        ("episode_score", pa.float64()), ("episode_return", pa.float64()),
    ])


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ImportError("Parquet output needs pyarrow: pip install 'agentdistill[parquet]'") from exc
    return pa, pq


def save_parquet(episodes: Iterable[Episode], path: str | Path) -> Path:
    """Write one row per turn to Parquet with :func:`turn_schema` (needs pyarrow)."""
    pa, pq = _pyarrow()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(turn_rows(episodes), schema=turn_schema()), path)
    return path


_HF_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
---
# agentdistill turns

One row per turn of {episodes} episodes ({rows} turns) of {envs}, written by
`agentdistill export`. Columns: the turn (`prompt_messages`, `prompt_ids`,
`response_ids`, `response_logprobs`, `action`, `action_valid`, `reward`, `observation`, ...)
with its episode's ids, plus `prompt` / `completion` chat messages (TRL's conversational
prompt-completion form; empty completion for turns without a response).

```python
from datasets import load_dataset
ds = load_dataset("path/to/this/folder", split="train")
```
"""


def save_hf_dataset(episodes: Iterable[Episode], folder: str | Path) -> Path:
    """A dataset folder that ``datasets.load_dataset(folder)`` reads without agentdistill:
    ``data/train-00000-of-00001.parquet`` (turn rows + ``prompt`` / ``completion``) and a
    README card declaring it."""
    pa, pq = _pyarrow()
    episodes = list(episodes)
    rows = turn_rows(episodes)
    for row in rows:
        row["prompt"] = [dict(m) for m in row["prompt_messages"]]
        answer = row["response_prefix"] + row["response_text"] if row["response_ids"] else ""
        row["completion"] = [{"role": "assistant", "content": answer}] if answer else []
    schema = turn_schema()
    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    schema = schema.append(pa.field("prompt", message)).append(pa.field("completion", message))
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema),
                   folder / "data" / "train-00000-of-00001.parquet")
    envs = ", ".join(sorted({e.env_id for e in episodes})) or "no env"
    (folder / "README.md").write_text(
        _HF_CARD.format(episodes=len(episodes), rows=len(rows), envs=envs), encoding="utf-8")
    return folder


def export_turns(episodes: Iterable[Episode], out: str | Path, fmt: str) -> tuple[Path, int]:
    """``fmt`` ``"parquet"`` (:func:`save_parquet`) or ``"hf"`` (:func:`save_hf_dataset`);
    returns the path written and the number of turn rows."""
    episodes = list(episodes)
    n = sum(len(e.turns) for e in episodes)
    if fmt == "parquet":
        return save_parquet(episodes, out), n
    if fmt == "hf":
        return save_hf_dataset(episodes, out), n
    raise ValueError(f"unknown export format {fmt!r}; use parquet or hf")


def summarize(episodes: list[Episode]) -> dict[str, float]:
    """Success rate, mean score, mean turns and invalid-action rate over episodes."""
    n = len(episodes)
    if n == 0:
        return {"episodes": 0, "success_rate": math.nan, "mean_score": math.nan,
                "mean_turns": math.nan, "invalid_action_rate": math.nan}
    student_turns = sum(len(e.student_turns) for e in episodes)
    invalid = sum(sum(not t.action_valid for t in e.student_turns) for e in episodes)
    return {
        "episodes": n,
        "success_rate": sum(e.won for e in episodes) / n,
        "mean_score": sum(e.score for e in episodes) / n,
        "mean_turns": sum(e.num_turns for e in episodes) / n,
        "invalid_action_rate": invalid / student_turns if student_turns else 0.0,
    }
