r"""WebShop reward on "Buy Now", from the paper's definition (Yao et al., 2022, sec. 3.1).

For a goal with attribute list U_att, option list U_opt and price bound u_price, buying
product Y with selected options Y_opt at price y_price gives

    r = r_type * ( |U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price <= u_price] )
                 / ( |U_att| + |U_opt| + 1 )

* ``|U_att ∩ Y_att|``: goal attributes matched by the product — an attribute matches when
  its fuzzy token-set similarity with one of the product's attributes is above 85 (of
  100), or, failing that, when it occurs verbatim (lower-case) in the title, the bullet
  points or the description.
* ``|U_opt ∩ Y_opt|``: goal options with a selected option of fuzzy similarity above 85.
* ``r_type`` (product type match, in {0, 0.1, 0.5, 1}): with ``query_match`` = same search
  query as the goal's product, ``category_match`` = at least two shared levels of the
  "A › B › C" category path, and ``title_score`` = fraction of the goal product's title
  nouns found in the bought product's title:
  r_type = 0 if title_score == 0; 0.1 if title_score < 0.1; else 0.5 if none of
  (query_match, category_match, title_score > 0.2) holds; else 1. If the goal title has
  no nouns, title_score = 0.2.

Two documented approximations, both because the original's libraries are unavailable
offline: the similarity is a token-set ratio computed with ``difflib`` (the original used
``thefuzz``'s ``token_set_ratio``, which is the same construction), and "nouns" are the
title's content words (alphabetic, not a stop word, not a unit/number) instead of spaCy
NOUN/PROPN tags. The original's colour-name normalisation of options is not applied.
``score`` = r in [0, 1]; ``won`` = (r == 1).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Any

MATCH_THRESHOLD = 85
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z]+")
_TITLE_STOPWORD_TEXT = (
    "a an and are as at by for from in into is it of on or the to with without set pack "
    "count piece pieces oz ounce ounces fl inch inches ft lb lbs pound pounds mm cm ml "
    "size new premium edition value classic"
)
TITLE_STOPWORDS = frozenset(_TITLE_STOPWORD_TEXT.split())


def _process(text: str) -> str:
    """Lower-case, non-alphanumerics to spaces, collapsed (thefuzz's ``full_process``)."""
    return " ".join(_NON_ALNUM.sub(" ", str(text).lower()).split())


def _ratio(a: str, b: str) -> float:
    if not a and not b:
        return 0.0
    return 100.0 * SequenceMatcher(None, a, b, autojunk=False).ratio()


def token_set_ratio(a: str, b: str) -> float:
    """Token-set similarity in [0, 100]: 100 when one token set contains the other."""
    ta, tb = set(_process(a).split()), set(_process(b).split())
    if not ta or not tb:
        return 0.0
    common = " ".join(sorted(ta & tb))
    only_a = " ".join(sorted(ta - tb))
    only_b = " ".join(sorted(tb - ta))
    full_a = f"{common} {only_a}".strip()
    full_b = f"{common} {only_b}".strip()
    return max(_ratio(common, full_a), _ratio(common, full_b), _ratio(full_a, full_b))


def title_nouns(title: str) -> set[str]:
    """Content words of a title (stand-in for spaCy's NOUN/PROPN tokens)."""
    return {w for w in _WORD.findall(title.lower()) if len(w) > 1 and w not in TITLE_STOPWORDS}


def type_reward(product: dict[str, Any], goal: dict[str, Any]) -> dict[str, Any]:
    """r_type and its parts (query match, category match, title score)."""
    query_match = product.get("query", "") == goal.get("query", "")
    p_cat = {x.strip() for x in str(product.get("product_category", "")).split("›")} - {""}
    g_cat = {x.strip() for x in str(goal.get("product_category", "")).split("›")} - {""}
    category_match = len(p_cat & g_cat) >= 2
    wanted = title_nouns(goal.get("name", ""))
    got = title_nouns(product.get("name", product.get("Title", "")))
    title_score = 0.2 if not wanted else len(wanted & got) / len(wanted)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {"r_type": r_type, "query_match": query_match, "category_match": category_match,
            "title_score": title_score}


def attribute_matches(product: dict[str, Any], goal_attrs: list[str]) -> int:
    """Number of goal attributes found in the product (fuzzy, then verbatim in its text)."""
    text_fields = [
        str(product.get("Title", "")).lower(),
        " ".join(product.get("BulletPoints", [])).lower(),
        str(product.get("Description", "")).lower(),
    ]
    n = 0
    for attr in goal_attrs:
        fuzzy = any(token_set_ratio(p, attr) > MATCH_THRESHOLD
                    for p in product.get("Attributes", []))
        if fuzzy or any(attr.lower() in t for t in text_fields):
            n += 1
    return n


def option_matches(selected: list[str], goal_options: list[str]) -> int:
    """Number of goal options matched by some selected option."""
    return sum(
        any(token_set_ratio(s, g) > MATCH_THRESHOLD for s in selected) for g in goal_options
    )


def compute_reward(product: dict[str, Any], goal: dict[str, Any], price: float,
                   selected_options: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """The reward of buying ``product`` at ``price`` with ``selected_options`` for ``goal``."""
    parts = type_reward(product, goal)
    goal_attrs = list(goal.get("attributes", []))
    goal_opts = list(goal.get("goal_options", []))
    n_attr = attribute_matches(product, goal_attrs)
    n_opt = option_matches(list(selected_options.values()), goal_opts)
    price_ok = bool(price <= goal.get("price_upper", float("inf")))
    total = (n_attr + n_opt + int(price_ok)) / (len(goal_attrs) + len(goal_opts) + 1)
    reward = float(min(1.0, max(0.0, total * parts["r_type"])))
    parts.update({
        "r_att": n_attr / len(goal_attrs) if goal_attrs else None,
        "r_option": n_opt / len(goal_opts) if goal_opts else None,
        "r_price": price_ok,
        "n_attr_matches": n_attr,
        "n_option_matches": n_opt,
        "reward": reward,
    })
    return reward, parts
