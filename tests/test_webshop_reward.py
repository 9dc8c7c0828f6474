"""WebShop reward against hand-computed cases (formula in agentdistill/envs/webshop/reward.py)."""

from __future__ import annotations

import pytest

from agentdistill.envs.webshop.reward import (
    compute_reward,
    title_nouns,
    token_set_ratio,
    type_reward,
)


def _product(**over):
    p = {
        "asin": "B0TEST0001",
        "name": "Acme Red Cotton Crew Shirt",
        "Title": "Acme Red Cotton Crew Shirt",
        "Description": "A soft shirt for everyday wear.",
        "BulletPoints": ["Machine wash cold.", "Short sleeve."],
        "Attributes": ["machine wash", "short sleeve"],
        "query": "men's t-shirt",
        "product_category": "Clothing › Men › Shirts › T-Shirts",
        "options": {"size": ["small", "large"], "color": ["red", "blue"]},
    }
    p.update(over)
    return p


def _goal(**over):
    g = {
        "asin": "B0TEST0001",
        "name": "Acme Red Cotton Crew Shirt",
        "query": "men's t-shirt",
        "product_category": "Clothing › Men › Shirts › T-Shirts",
        "attributes": ["machine wash", "short sleeve"],
        "goal_options": ["large", "red"],
        "price_upper": 30.0,
    }
    g.update(over)
    return g


def test_exact_match_is_one():
    r, parts = compute_reward(_product(), _goal(), 20.0, {"size": "large", "color": "red"})
    assert r == 1.0
    assert parts["r_type"] == 1.0 and parts["r_price"] is True
    assert parts["n_attr_matches"] == 2 and parts["n_option_matches"] == 2


def test_wrong_option():
    # (2 attrs + 1 of 2 options + price) / (2 + 2 + 1)
    r, parts = compute_reward(_product(), _goal(), 20.0, {"size": "small", "color": "red"})
    assert r == pytest.approx(4 / 5)
    assert parts["r_option"] == pytest.approx(0.5)


def test_no_option_selected():
    r, _ = compute_reward(_product(), _goal(), 20.0, {})
    assert r == pytest.approx(3 / 5)


def test_missing_attribute():
    goal = _goal(attributes=["machine wash", "short sleeve", "organic cotton"])
    r, parts = compute_reward(_product(), goal, 20.0, {"size": "large", "color": "red"})
    assert r == pytest.approx(5 / 6)
    assert parts["n_attr_matches"] == 2


def test_attribute_found_in_text_counts():
    # "everyday wear" is not an attribute of the product but occurs in its description.
    goal = _goal(attributes=["machine wash", "everyday wear"])
    r, _ = compute_reward(_product(), goal, 20.0, {"size": "large", "color": "red"})
    assert r == 1.0


def test_over_price():
    r, parts = compute_reward(_product(), _goal(), 35.0, {"size": "large", "color": "red"})
    assert r == pytest.approx(4 / 5)
    assert parts["r_price"] is False


def test_wrong_type_is_zero():
    sofa = _product(name="Zed Leather Sofa", Title="Zed Leather Sofa", query="loveseat sofa",
                    product_category="Home & Kitchen › Furniture › Sofas",
                    Attributes=["velvet fabric"], Description="", BulletPoints=[])
    r, parts = compute_reward(sofa, _goal(), 20.0, {"size": "large", "color": "red"})
    assert parts["r_type"] == 0.0 and parts["title_score"] == 0.0
    assert r == 0.0


def test_type_half_when_only_weak_title_overlap():
    # goal nouns {acme, red, cotton, crew, shirt}; one shared noun -> title_score 0.2,
    # different query and category -> r_type 0.5;
    # reward = 0.5 * (0 attrs + 1 option ("red") + price) / 5
    other = _product(name="Zed Cotton Sofa", Title="Zed Cotton Sofa", query="sofa",
                     product_category="Home › Furniture", Attributes=["velvet"],
                     Description="", BulletPoints=[])
    parts = type_reward(other, _goal())
    assert parts["title_score"] == pytest.approx(0.2)
    assert parts["r_type"] == 0.5
    r, _ = compute_reward(other, _goal(), 20.0, {"color": "red"})
    assert r == pytest.approx(0.5 * 2 / 5)


def test_type_one_via_category_match():
    other = _product(name="Zed Cotton Polo", Title="Zed Cotton Polo", query="polo shirt")
    parts = type_reward(other, _goal())
    assert not parts["query_match"] and parts["category_match"]
    assert parts["r_type"] == 1.0


def test_type_tenth_when_title_score_below_point_one():
    long_name = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo shirt"
    goal = _goal(name=long_name)
    other = _product(name="Zed Shirt", Title="Zed Shirt")
    parts = type_reward(other, goal)
    assert parts["title_score"] == pytest.approx(1 / 12)
    assert parts["r_type"] == 0.1


def test_no_price_bound_and_no_options():
    goal = _goal(goal_options=[], price_upper=1_000_000.0)
    r, parts = compute_reward(_product(), goal, 999.0, {})
    assert r == 1.0 and parts["r_option"] is None


def test_token_set_ratio_properties():
    assert token_set_ratio("machine wash", "Machine-Wash") == 100
    assert token_set_ratio("red", "dark red") == 100  # subset: same as thefuzz
    assert token_set_ratio("small", "large") < 85
    assert token_set_ratio("", "x") == 0
    assert 0 <= token_set_ratio("gluten free", "sugar free") <= 100


def test_title_nouns_drop_units_and_stopwords():
    assert title_nouns("Acme Shampoo for Dry Hair, 12 Fl Oz (Pack of 2)") == {
        "acme", "shampoo", "dry", "hair"}
