"""Slates: business rules on the slate, exploration and its position probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from tuesday.project import rules
from tuesday.train import slates

ROWS = [
    {"item": "a", "category": "shoes", "new": False, "stock": 3},
    {"item": "b", "category": "shoes", "new": False, "stock": 0},
    {"item": "c", "category": "shoes", "new": False, "stock": 5},
    {"item": "d", "category": "bags", "new": True, "stock": 1},
    {"item": "e", "category": "bags", "new": False, "stock": 2},
    {"item": "f", "category": "hats", "new": False, "stock": 9},
]
RAW = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1])


def arranged(rs, raw=RAW, size=4, seed=0, rows=ROWS):
    h = slates.hits(rs, rows)
    return slates.arrange(rs, raw, h, size=size, rng=np.random.default_rng(seed),
                          rows=rows)


def items(a: slates.Arranged) -> list[str]:
    return [ROWS[i]["item"] for i in a.slate]


def test_model_order_without_rules() -> None:
    a = arranged(())
    assert items(a) == ["a", "b", "c", "e"]
    assert a.propensity.tolist() == [1.0] * 4 and not a.explored


def test_filters_boosts_diversity_and_pins() -> None:
    rs = (rules.drop(lambda r: r["stock"] == 0, name="out_of_stock"),
          rules.boost(lambda r: r["new"], by=4.0, name="new_items"),
          rules.max_per("category", 1),
          rules.pin(lambda r: r["category"] == "hats", position=2, name="promo"))
    a = arranged(rs)
    # b is dropped; d is boosted to 0.8 (second best); one shoe, one bag; f pinned at 2
    assert a.dropped_by[1] == "out_of_stock" and np.isnan(a.scores[1])
    assert a.scores[3] == pytest.approx(0.8)
    assert items(a) == ["a", "f", "d"]  # no fourth category is left
    h = slates.hits(rs, ROWS)
    assert h.row(3) == {"new_items": True, "max_1_per_category": "bags"}
    assert h.row(5) == {"promo": True, "max_1_per_category": "hats"}
    # the log's record of the hits replays the same slate without the rows
    again = slates.Hits.from_rows(rs, [h.row(i) for i in range(len(ROWS))])
    b = slates.arrange(rs, RAW, again, size=4, rng=np.random.default_rng(0))
    assert items(b) == items(a)


def test_epsilon_greedy_probabilities_are_exact_and_agree_with_simulation() -> None:
    rs = (rules.epsilon_greedy(0.3),)
    a = arranged(rs, size=3)
    n = len(ROWS)
    want = np.zeros((n, 3))
    want[[0, 1, 2], [0, 1, 2]] = 0.7
    want += 0.3 / n
    np.testing.assert_allclose(a.probabilities, want)
    # how often each item lands at each position over many requests
    counts = np.zeros((n, 3))
    for seed in range(2000):
        s = arranged(rs, size=3, seed=seed).slate
        counts[s, np.arange(3)] += 1
    np.testing.assert_allclose(counts / 2000, want, atol=0.035)


def test_thompson_probabilities_sum_to_one_per_position_and_cover_the_shown_slate() -> None:
    rs = (rules.thompson(5.0), rules.max_per("category", 2))
    a = arranged(rs, size=3, seed=3)
    np.testing.assert_allclose(a.probabilities.sum(axis=0), 1.0)
    assert (a.propensity > 0).all()
    assert a.exploration == "thompson"
    # with slate rules, every drawn slate keeps them
    for seed in range(50):
        cats = [ROWS[i]["category"] for i in arranged(rs, size=3, seed=seed).slate]
        assert max(cats.count(c) for c in set(cats)) <= 2


def test_epsilon_with_slate_rules_is_simulated() -> None:
    rs = (rules.epsilon_greedy(0.5), rules.max_per("category", 1))
    a = arranged(rs, size=3, seed=2)
    np.testing.assert_allclose(a.probabilities.sum(axis=0), 1.0, atol=1e-9)
    greedy_p = a.probabilities[a.greedy, np.arange(len(a.greedy))]
    assert (greedy_p >= 0.5).all()


def test_function_rules_need_rows_and_failures_name_the_rule() -> None:
    rs = (rules.rule(lambda row, p: None if row["item"] == "a" else p, name="no_a"),)
    a = arranged(rs)
    assert a.dropped_by[0] == "no_a"
    with pytest.raises(ValueError, match="cannot be applied to logged scores"):
        slates.arrange(rs, RAW, slates.Hits.empty(6), size=2, rng=np.random.default_rng(0))
    bad = (rules.drop(lambda r: r["missing"], name="broken"),)
    with pytest.raises(slates.RuleFailed, match="rule 'broken' failed on row 0: KeyError"):
        slates.hits(bad, ROWS)


def test_slate_rule_declarations_are_checked() -> None:
    problems = " ".join(rules.check((rules.max_per("", 0), rules.pin(lambda r: True, 0),
                                     rules.boost(lambda r: True, by=2),
                                     rules.boost(lambda r: False, by=3)), "Model 'm'"))
    assert "max_per needs a column name" in problems
    assert "pin 'pin' needs when=" in problems
    assert "two rules are named 'boost'" in problems


def test_uniform_part_by_category_agrees_with_simulating_the_fill() -> None:
    rng = np.random.default_rng(5)
    n, size = 30, 5
    rows = [{"category": str(c)} for c in rng.integers(0, 4, n)]
    rows[3]["category"] = None  # no category: never capped
    rs = (rules.max_per("category", 2),)
    h = slates.hits(rs, rows)
    live = np.arange(n)
    urn = slates._uniform_by_category(live, size, rs, h, 10_000)
    brute = slates._simulated(lambda g, s: g.random((s, n)), live, n, size, rs, h,
                              np.random.default_rng(1), 10_000, None)
    np.testing.assert_allclose(urn.sum(axis=0), 1.0)
    np.testing.assert_allclose(urn, brute, atol=0.015)
