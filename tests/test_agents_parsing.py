"""parse_action: tolerant extraction, strict format flag, never raises."""

from __future__ import annotations

import random

import pytest

from agentdistill.agents.parsing import ParsedAction, parse_action
from agentdistill.envs.core import MAX_ACTION_CHARS


@pytest.mark.parametrize(
    ("text", "action", "valid"),
    [
        ("<think>box is left</think><action>left</action>", "left", True),
        ("<action>up</action>", "up", True),  # think is optional
        ("<think>x</think>\n<action>  go to  desk 1 \n</action>", "go to desk 1", True),
        ("<ACTION>Down</Action>", "Down", True),  # tags case-insensitive, content case kept
        ("< action >right</ action >", "right", True),
        ("<think>hm</think><action>up", "up", True),  # generation stopped on </action>
        ('<action>"left"</action>', "left", True),
        ("<action>`click[Buy Now]`</action>", "click[Buy Now]", True),
        ("<action>click[Buy Now]</action>", "click[Buy Now]", True),  # brackets inside kept
        ("<action>up</action><action>down</action>", "up", False),  # two actions: first, flagged
        ("<action>up<action>down", "up", False),
        ("<think>unclosed <action>up</action>", "up", False),
        ("<action>up</action><think>late</think>", "up", False),  # think after action
        ("<action>   </action>", None, False),
        ("<action></action>", None, False),
        ("up", None, False),  # no tags: never guessed
        ("", None, False),
        ("<think>only thinking</think>", None, False),
    ],
)
def test_parse_cases(text, action, valid):
    parsed = parse_action(text)
    assert parsed.action == action
    assert parsed.format_valid is valid


def test_think_content_returned():
    assert parse_action("<think> plan A </think><action>a</action>").think == "plan A"


@pytest.mark.parametrize("bad", [None, 3, 4.5, ["<action>up</action>"], object()])
def test_non_strings_are_invalid(bad):
    assert parse_action(bad) == ParsedAction(None, False)


def test_bytes_and_non_utf8():
    assert parse_action(b"<action>up</action>").action == "up"
    parsed = parse_action(b"<action>\xff\xfeup</action>")
    assert parsed.action is not None and parsed.action.endswith("up")


def test_huge_action_rejected_and_huge_text_fine():
    assert parse_action("<action>" + "a" * (MAX_ACTION_CHARS + 1) + "</action>").action is None
    big = "x" * 1_000_000 + "<action>left</action>"
    assert parse_action(big).action == "left"


def test_random_garbage_never_raises():
    rng = random.Random(0)
    alphabet = "<>/actionthink ACTION\n\"'`[](){}\x00é漢"
    for _ in range(2_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        parsed = parse_action(text)
        assert isinstance(parsed, ParsedAction)
        if parsed.format_valid:
            assert parsed.action
