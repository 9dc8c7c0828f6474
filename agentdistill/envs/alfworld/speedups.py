"""Memoized parsing for TextWorld's PDDL text generation (same output, about 3x faster steps).

Every step, TextWorld's PDDL engine turns each admissible action into a command and the
action into feedback by deriving strings from ALFWorld's grammar. Each derivation re-parses
the same few dozen template strings and condition expressions with TatSu, which is most of
a step's cost. Both parses are pure functions of their input string, so they are cached
here: templates by (text, rule), returned as deep copies because derivation mutates the
symbols' contexts; condition queries as the parsed ``Rule``, which matching only reads.
Observations and admissible commands are byte-identical with and without (the tests check
this on full episodes). The patch is process-wide and can be removed with
:func:`uninstall`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

_ORIGINALS: dict[str, Any] = {}


def installed() -> bool:
    return bool(_ORIGINALS)


def install() -> None:
    """Patch ``textworld.envs.pddl.textgen`` and ``textworld.logic.Rule`` (idempotent)."""
    if _ORIGINALS:
        return
    import textworld.envs.pddl.textgen as textgen
    from textworld.logic import Rule

    parse = textgen._parse_and_convert
    query = Rule.__dict__["parse_conjunctive_query"]

    @functools.lru_cache(maxsize=8192)
    def _cached_parse(text: str, rule_name: str) -> Any:
        return parse(text, rule_name=rule_name)

    def parse_and_convert(text: Any, rule_name: str = "symbols", **kwargs: Any) -> Any:
        if kwargs.get("trace") or set(kwargs) - {"trace"} or not isinstance(text, str):
            return parse(text, rule_name=rule_name, **kwargs)
        return copy.deepcopy(_cached_parse(text, rule_name))

    @functools.lru_cache(maxsize=8192)
    def _cached_query(cls: type, expr: str) -> Any:
        return query.__func__(cls, expr)

    def parse_conjunctive_query(cls: type, expr: str) -> Any:
        return _cached_query(cls, expr) if isinstance(expr, str) else query.__func__(cls, expr)

    _ORIGINALS["parse"] = parse
    _ORIGINALS["query"] = query
    textgen._parse_and_convert = parse_and_convert
    Rule.parse_conjunctive_query = classmethod(parse_conjunctive_query)


def uninstall() -> None:
    """Restore TextWorld's original functions."""
    if not _ORIGINALS:
        return
    import textworld.envs.pddl.textgen as textgen
    from textworld.logic import Rule

    textgen._parse_and_convert = _ORIGINALS.pop("parse")
    Rule.parse_conjunctive_query = _ORIGINALS.pop("query")
