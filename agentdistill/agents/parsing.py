"""Model text -> action, with a format-validity flag. Never raises.

The answer format is ``<think>...</think><action>...</action>``. Parsing is tolerant:

* tags are case-insensitive and may carry inner whitespace (``< Action >``);
* a missing ``</action>`` is accepted (generation usually stops *on* that string, and
  some backends drop the stop string from the text);
* the action is the content of the FIRST ``<action>`` block, whitespace-collapsed, with
  one pair of surrounding quotes/backticks/brackets removed. Its case is kept: envs
  decide whether case matters (some actions carry quoted text).

``format_valid`` is True only when exactly one non-empty ``<action>`` block is present,
and any ``<think>`` block is closed before it. ``action`` is None (and the rollout
records ``action_valid=False``) when there is no non-empty action block at all, or when
it is longer than the env contract's ``MAX_ACTION_CHARS``. Text without tags is never
guessed into an action: an agent that does not follow the format gets no free moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agentdistill.envs.core import MAX_ACTION_CHARS

_OPEN_ACTION = re.compile(r"<\s*action\s*>", re.IGNORECASE)
_CLOSE_ACTION = re.compile(r"<\s*/\s*action\s*>", re.IGNORECASE)
_OPEN_THINK = re.compile(r"<\s*think\s*>", re.IGNORECASE)
_CLOSE_THINK = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "[": "]", "(": ")", "{": "}", "“": "”"}


@dataclass(frozen=True)
class ParsedAction:
    """``action``: the extracted action or None; ``format_valid``: the format was followed."""

    action: str | None
    format_valid: bool
    think: str | None = None


def _clean(content: str) -> str:
    content = " ".join(content.split())
    if len(content) >= 2 and _QUOTE_PAIRS.get(content[0]) == content[-1]:
        content = " ".join(content[1:-1].split())
    return content


def parse_action(text: Any) -> ParsedAction:
    """Extract the action from a model response (see module docstring); never raises."""
    try:
        return _parse(text)
    except Exception:  # noqa: BLE001 - contract: parsing never raises
        return ParsedAction(None, False)


def _parse(text: Any) -> ParsedAction:
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str) or not text:
        return ParsedAction(None, False)

    think = None
    think_ok = True
    open_think = _OPEN_THINK.search(text)
    if open_think:
        close_think = _CLOSE_THINK.search(text, open_think.end())
        if close_think:
            think = text[open_think.end() : close_think.start()].strip()
        else:
            think_ok = False

    opens = list(_OPEN_ACTION.finditer(text))
    if not opens:
        return ParsedAction(None, False, think)
    first = opens[0]
    close = _CLOSE_ACTION.search(text, first.end())
    end = close.start() if close else len(text)
    # An unclosed block stops at the next opening tag, if any.
    if len(opens) > 1 and opens[1].start() < end:
        end = opens[1].start()
    action = _clean(text[first.end() : end])
    if not action or len(action) > MAX_ACTION_CHARS:
        return ParsedAction(None, False, think)
    if open_think and think_ok:
        close_think = _CLOSE_THINK.search(text, open_think.end())
        think_ok = close_think is not None and close_think.end() <= first.start()
    format_valid = len(opens) == 1 and think_ok
    return ParsedAction(action, format_valid, think)
