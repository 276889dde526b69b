"""Business rules applied after the model: the rules a model declares
(:mod:`tuesday.project.rules`) run in order over one request's rows and raw predictions.

Example:
    >>> import numpy as np
    >>> from tuesday.project.rules import floor, round_to
    >>> rs = (floor(0), round_to(6))
    >>> out = apply(rs, [{"sku": "a"}, {"sku": "b"}], np.array([-2.0, 7.5]),
    ...             np.random.default_rng(0))
    >>> out.predictions.tolist()
    [0.0, 12.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuesday.project.rules import EXPLORATION, SLATE_KINDS, Rule
from tuesday.train.slates import RuleFailed

THOMPSON_DRAWS = 2000


@dataclass(frozen=True)
class Applied:
    """The outcome of the rules on one request.

    ``predictions`` is NaN where a row was dropped (``dropped_by`` names the rule);
    ``order`` is the response order (rank order when exploring, else input order);
    ``propensity`` is the probability of each row being ranked first, or None.
    """

    predictions: np.ndarray
    dropped_by: list[str | None]
    order: np.ndarray
    propensity: np.ndarray | None
    explored: bool


#: a user rule function raised; carries the rule's name (one class for rows and slates)
RuleError = RuleFailed


def apply(rules: Sequence[Rule], rows: Sequence[dict[str, Any]], raw: np.ndarray,
          rng: np.random.Generator) -> Applied:
    """Run the rules in order over one request's rows and raw predictions."""
    p = np.asarray(raw, dtype=float).copy()
    dropped: list[str | None] = [None] * len(p)
    explore: Rule | None = None
    for r in rules:
        if r.kind in SLATE_KINDS:  # a ranking model's slate rules: the rank endpoint's
            continue
        if r.kind in EXPLORATION:
            explore = r
        elif r.kind == "floor":
            p = np.maximum(p, r.value)
        elif r.kind == "cap":
            p = np.minimum(p, r.value)
        elif r.kind == "round_to":
            # a tiny tolerance keeps 12.000000001 packs from becoming 13
            packs = p / r.value
            if r.mode == "up":
                packs = np.ceil(packs - 1e-9)
            elif r.mode == "down":
                packs = np.floor(packs + 1e-9)
            else:  # halves go up (2.5 packs -> 3), not to the even number
                packs = np.floor(packs + 0.5)
            p = packs * r.value
        else:
            for i, row in enumerate(rows):
                if dropped[i] is not None:
                    continue
                try:
                    if r.kind in ("keep", "drop"):
                        hit = bool(r.when(row))  # type: ignore[misc]
                        if hit != (r.kind == "keep"):
                            dropped[i] = r.name
                    elif r.kind == "boost":
                        if r.when(row):  # type: ignore[misc]
                            p[i] = p[i] + r.value if r.add else p[i] * r.value
                    elif r.kind == "function":
                        v = r.fn(row, float(p[i]))  # type: ignore[misc]
                        if v is None:
                            dropped[i] = r.name
                        else:
                            p[i] = float(v)
                except Exception as exc:  # the user's function: name it, keep its message
                    raise RuleError(r.name, i, exc) from exc
    live = np.array([d is None for d in dropped], dtype=bool)
    p[~live] = np.nan
    if explore is None:
        return Applied(p, dropped, np.arange(len(p)), None, False)
    order, prop = _explore(explore, p, live, rng)
    return Applied(p, dropped, order, prop, True)


def _explore(r: Rule, p: np.ndarray, live: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rank order and first-place propensities of the live rows; dropped rows go last."""
    idx = np.flatnonzero(live)
    n = len(idx)
    prop = np.zeros(len(p))
    if n == 0:
        return np.arange(len(p)), prop
    scores = p[idx]
    greedy = idx[np.argsort(-scores, kind="stable")]
    if r.kind == "epsilon_greedy":
        eps = r.value
        prop[idx] = eps / n
        prop[greedy[0]] += 1 - eps
        if rng.random() < eps:
            first = idx[rng.integers(n)]
            ranked = np.concatenate([[first], greedy[greedy != first]])
        else:
            ranked = greedy
    else:
        k = r.value
        q = np.clip(scores, 0.0, 1.0)
        a, b = 1 + q * k, 1 + (1 - q) * k
        draw = rng.beta(a, b)
        ranked = idx[np.argsort(-draw, kind="stable")]
        # probability of coming first, estimated by simulation of the same policy
        sims = rng.beta(a, b, size=(THOMPSON_DRAWS, n))
        wins = np.bincount(sims.argmax(axis=1), minlength=n) / THOMPSON_DRAWS
        prop[idx] = wins
    rest = np.flatnonzero(~live)
    return np.concatenate([ranked, rest]).astype(int), prop
