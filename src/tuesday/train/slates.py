"""Slates: from a ranking model's scores of one request's candidates to the ordered items
shown, through the model's business rules and its exploration, with the probability of
each shown item at its position under that policy.

Two steps, so that a logged request can be arranged again with another model's scores
(off-policy evaluation of a candidate version):

1. ``hits`` runs the rules' functions on the request rows once: which rows each
   ``keep``/``drop``/``boost``/``pin`` rule applies to and each row's ``max_per``
   category. That is all the rules need to know of a row, and it is what the log keeps.
2. ``arrange`` applies the rules in order to the scores (bounds, filters, boosts), then
   builds the slate: an ordering of the live candidates (the scores' order; with
   exploration a drawn one) filled into ``size`` positions, pinned items first at their
   positions, skipping an item whose category already has ``max_per`` items.

``distribution`` gives every candidate's probability of each position under the policy:
exact for a deterministic policy and for epsilon-greedy without slate rules (``1 - eps``
on the model's slate plus ``eps / n`` each), otherwise by simulating the policy
``draws`` times (the slate actually shown is one of the draws, so its propensity is never
zero). Thompson sampling draws a score per item from ``Beta(1 + p * strength,
1 + (1 - p) * strength)`` (``p``: the model's click probability, clipped to [0, 1]), or
from explicit ``Beta(alpha, beta)`` parameters (``thompson_distribution``).

Example:
    >>> import numpy as np
    >>> s = arrange((), np.array([0.1, 0.9, 0.5]), Hits.empty(3), size=2,
    ...             rng=np.random.default_rng(0))
    >>> s.slate.tolist(), s.propensity.tolist()
    [[1, 2], [1.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuesday.project.rules import EXPLORATION, SLATE_KINDS, Rule

#: simulated draws of a stochastic policy to estimate its position probabilities
DRAWS = 2000
#: rule kinds whose outcome per row ``hits`` records
ROW_KINDS = ("keep", "drop", "boost", "pin", "max_per")


class RuleFailed(Exception):
    """A user rule function raised; carries the rule's name and the row."""

    def __init__(self, rule: str, row: int, exc: BaseException) -> None:
        self.rule, self.row, self.exc = rule, row, exc
        super().__init__(f"rule {rule!r} failed on row {row}: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class Hits:
    """What each row rule found on each candidate, by rule name: a bool per row
    (``keep``, ``drop``, ``boost``, ``pin``) or the row's value of the column
    (``max_per``). ``values`` holds the outcome of ``rule(fn)`` functions, which depend
    on the score and so are only known for the scores they were computed with."""

    n: int
    by_rule: dict[str, list[Any]]
    values: dict[str, list[float | None]]

    @classmethod
    def empty(cls, n: int) -> Hits:
        return cls(n, {}, {})

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i``'s hits (only the true ones and categories): what the log keeps."""
        out: dict[str, Any] = {}
        for name, vals in self.by_rule.items():
            v = vals[i]
            if v is True or (v is not False and v is not None):
                out[name] = v
        return out

    @classmethod
    def from_rows(cls, rules: Sequence[Rule], logged: Sequence[dict[str, Any]]) -> Hits:
        """Hits read back from the log's per-row records (``row``)."""
        n = len(logged)
        by_rule: dict[str, list[Any]] = {}
        for r in rules:
            if r.kind in ("keep", "drop", "boost", "pin"):
                by_rule[r.name] = [bool(d.get(r.name, False)) for d in logged]
            elif r.kind == "max_per":
                by_rule[r.name] = [d.get(r.name) for d in logged]
        return cls(n, by_rule, {})


def hits(rules: Sequence[Rule], rows: Sequence[dict[str, Any]]) -> Hits:
    """Run the row rules' functions on the rows (``RuleFailed`` names a failing one)."""
    by_rule: dict[str, list[Any]] = {}
    for r in rules:
        if r.kind not in ROW_KINDS:
            continue
        out: list[Any] = []
        for i, row in enumerate(rows):
            try:
                out.append(row.get(r.column or "") if r.kind == "max_per"
                           else bool(r.when(row)))  # type: ignore[misc]
            except Exception as exc:  # the user's function: name it, keep its message
                raise RuleFailed(r.name, i, exc) from exc
        by_rule[r.name] = out
    return Hits(len(rows), by_rule, {})


@dataclass(frozen=True)
class Arranged:
    """One request's slate.

    ``scores``: each candidate's score after the rules (NaN: dropped, ``dropped_by``
    names the rule); ``slate``: the candidates shown, top first; ``propensity``: each
    shown candidate's probability of being at its position; ``probabilities``: every
    candidate's probability of each position (candidates x size); ``explored``: whether
    the slate shown differs from the model's own; ``greedy``: the model's own slate.
    """

    scores: np.ndarray
    dropped_by: list[str | None]
    slate: np.ndarray
    propensity: np.ndarray
    probabilities: np.ndarray
    explored: bool
    greedy: np.ndarray
    exploration: str | None


def scored(rules: Sequence[Rule], raw: np.ndarray, h: Hits,
           rows: Sequence[dict[str, Any]] | None = None
           ) -> tuple[np.ndarray, list[str | None]]:
    """The scores after the rules that change scores or drop rows, in order; dropped
    rows are NaN. ``rule(fn)`` functions need the ``rows``."""
    p = np.asarray(raw, dtype=float).copy()
    dropped: list[str | None] = [None] * len(p)
    for r in rules:
        if r.kind == "floor":
            p = np.maximum(p, r.value)
        elif r.kind == "cap":
            p = np.minimum(p, r.value)
        elif r.kind == "round_to":
            packs = p / r.value
            if r.mode == "up":
                packs = np.ceil(packs - 1e-9)
            elif r.mode == "down":
                packs = np.floor(packs + 1e-9)
            else:
                packs = np.floor(packs + 0.5)
            p = packs * r.value
        elif r.kind in ("keep", "drop"):
            for i, hit in enumerate(h.by_rule[r.name]):
                if dropped[i] is None and hit != (r.kind == "keep"):
                    dropped[i] = r.name
        elif r.kind == "boost":
            on = np.array(h.by_rule[r.name], dtype=bool) & np.array(
                [d is None for d in dropped], dtype=bool)
            p = np.where(on, p + r.value if r.add else p * r.value, p)
        elif r.kind == "function":
            if rows is None:
                raise ValueError(f"rule {r.name!r} is a function of the row; it cannot be "
                                 "applied to logged scores")
            for i, row in enumerate(rows):
                if dropped[i] is not None:
                    continue
                try:
                    v = r.fn(row, float(p[i]))  # type: ignore[misc]
                except Exception as exc:
                    raise RuleFailed(r.name, i, exc) from exc
                if v is None:
                    dropped[i] = r.name
                else:
                    p[i] = float(v)
    live = np.array([d is None for d in dropped], dtype=bool)
    p[~live] = np.nan
    return p, dropped


def fill(order: np.ndarray, size: int, slate_rules: Sequence[Rule], h: Hits) -> np.ndarray:
    """The slate from an ordering of the live candidates: each ``pin`` takes its
    position with its first item in ``order``; the other positions take the next items
    of ``order``, skipping one whose ``max_per`` category is full."""
    size = min(size, len(order))
    slot = np.full(size, -1, dtype=np.int64)
    used: set[int] = set()
    caps = [(h.by_rule[r.name], int(r.value)) for r in slate_rules if r.kind == "max_per"]
    counts: list[dict[Any, int]] = [{} for _ in caps]

    def fits(i: int) -> bool:
        return all(cnt.get(vals[i], 0) < n or vals[i] is None
                   for (vals, n), cnt in zip(caps, counts, strict=True))

    def take(i: int) -> None:
        used.add(i)
        for (vals, _), cnt in zip(caps, counts, strict=True):
            if vals[i] is not None:
                cnt[vals[i]] = cnt.get(vals[i], 0) + 1

    for r in slate_rules:
        if r.kind != "pin":
            continue
        k = int(r.value) - 1
        if k >= size or slot[k] >= 0:
            continue
        flags = h.by_rule[r.name]
        for i in order:
            i = int(i)
            if flags[i] and i not in used and fits(i):
                slot[k] = i
                take(i)
                break
    free = [k for k in range(size) if slot[k] < 0]
    j = 0
    for i in order:
        if j >= len(free):
            break
        i = int(i)
        if i in used or not fits(i):
            continue
        slot[free[j]] = i
        take(i)
        j += 1
    return slot[slot >= 0] if (slot < 0).any() else slot


def arrange(rules: Sequence[Rule], raw: np.ndarray, h: Hits, *, size: int,
            rng: np.random.Generator, rows: Sequence[dict[str, Any]] | None = None,
            draws: int = DRAWS, explore: bool = True) -> Arranged:
    """Apply the rules to one request's raw scores and draw its slate (see the module
    docstring). ``explore=False`` leaves exploration out (the model's own slate)."""
    scores, dropped = scored(rules, raw, h, rows)
    live = np.flatnonzero(~np.isnan(scores))
    slate_rules = [r for r in rules if r.kind in SLATE_KINDS]
    explorer = next((r for r in rules if r.kind in EXPLORATION), None) if explore else None
    n = len(scores)
    greedy_order = live[np.argsort(-scores[live], kind="stable")]
    greedy = fill(greedy_order, size, slate_rules, h)
    if explorer is None or len(live) == 0:
        probs = np.zeros((n, max(size, 0)))
        probs[greedy, np.arange(len(greedy))] = 1.0
        return Arranged(scores, dropped, greedy, np.ones(len(greedy)), probs, False,
                        greedy, None)
    if explorer.kind == "epsilon_greedy":
        eps = explorer.value
        random_order = live[rng.permutation(len(live))]
        shown = fill(random_order, size, slate_rules, h) if rng.random() < eps else greedy
        probs = _epsilon_probs(eps, greedy, live, n, size, slate_rules, h, rng, draws, shown)
    else:
        q = np.clip(scores[live], 0.0, 1.0)
        a, b = 1 + q * explorer.value, 1 + (1 - q) * explorer.value
        shown = fill(live[np.argsort(-rng.beta(a, b), kind="stable")], size, slate_rules, h)
        probs = _simulated(lambda g, s: g.beta(a, b, size=(s, len(live))), live, n, size,
                           slate_rules, h, rng, draws, shown)
    prop = probs[shown, np.arange(len(shown))]
    explored = len(shown) != len(greedy) or bool((shown != greedy).any())
    return Arranged(scores, dropped, shown, prop, probs, explored, greedy, explorer.kind)


#: epsilon-greedy's uniform part by the live candidates' slate-rule values: it does not
#: depend on the scores, so requests over one catalog simulate it once
_UNIFORM: dict[tuple[Any, ...], np.ndarray] = {}
_UNIFORM_MAX = 256


def _epsilon_probs(eps: float, greedy: np.ndarray, live: np.ndarray, n: int, size: int,
                   slate_rules: Sequence[Rule], h: Hits, rng: np.random.Generator,
                   draws: int, shown: np.ndarray) -> np.ndarray:
    """Epsilon-greedy's position probabilities: ``1 - eps`` on the model's slate plus
    ``eps`` times those of a uniformly random ordering (``1 / n`` each without slate
    rules; with them simulated once per set of the live candidates' rule values)."""
    probs = np.zeros((n, size))
    probs[greedy, np.arange(len(greedy))] = 1.0 - eps
    if eps == 0:
        return probs
    if not slate_rules:
        k = min(size, len(live))
        probs[np.ix_(live, np.arange(k))] += eps / len(live)
        return probs
    by_cat = _uniform_by_category(live, size, slate_rules, h, draws)
    if by_cat is not None:
        probs[live] += eps * by_cat
        return probs
    key = (size, draws, tuple(r.name for r in slate_rules),
           tuple(tuple(h.by_rule[r.name][i] for r in slate_rules) for i in live))
    uniform = _UNIFORM.get(key)
    if uniform is None:
        local = Hits(len(live), {r.name: [h.by_rule[r.name][i] for i in live]
                                 for r in slate_rules}, {})
        idx = np.arange(len(live))
        uniform = _simulated(lambda g, s: g.random((s, len(live))), idx, len(live), size,
                             slate_rules, local, np.random.default_rng(0), draws, None)
        if len(_UNIFORM) >= _UNIFORM_MAX:
            _UNIFORM.pop(next(iter(_UNIFORM)))
        _UNIFORM[key] = uniform
    probs[live] += eps * uniform
    return probs


def _uniform_by_category(live: np.ndarray, size: int, slate_rules: Sequence[Rule], h: Hits,
                         draws: int) -> np.ndarray | None:
    """A uniformly random ordering's position probabilities under one ``max_per`` rule
    (no pin): items of one category are exchangeable, so each item's probability of a
    position is its category's over the category's size. The categories of the kept items
    are simulated as draws from an urn without replacement (``draws`` at once, one
    position at a time, cached by the categories' sizes); None when the rules are not
    that case."""
    if len(slate_rules) != 1 or slate_rules[0].kind != "max_per":
        return None
    rule = slate_rules[0]
    values = [h.by_rule[rule.name][i] for i in live]
    codes: dict[Any, int] = {}
    cat = np.array([codes.setdefault(v, len(codes)) for v in values], dtype=np.int64)
    sizes = np.bincount(cat, minlength=len(codes))
    uncapped = np.array([v is None for v in codes], dtype=bool)
    key = ("urn", size, int(rule.value), draws, tuple(sizes.tolist()),
           tuple(uncapped.tolist()))
    per_cat = _UNIFORM.get(key)
    if per_cat is None:
        per_cat = _urn(sizes, uncapped, int(rule.value), size, draws)
        if len(_UNIFORM) >= _UNIFORM_MAX:
            _UNIFORM.pop(next(iter(_UNIFORM)))
        _UNIFORM[key] = per_cat
    return per_cat[cat] / sizes[cat][:, None]


def _urn(sizes: np.ndarray, uncapped: np.ndarray, cap: int, size: int, draws: int
         ) -> np.ndarray:
    """(categories x size) probability that the kept item at each position is of each
    category, for a uniformly random order of items with ``sizes`` per category, keeping
    at most ``cap`` per capped category."""
    rng = np.random.default_rng(0)
    g = len(sizes)
    left = np.tile(sizes.astype(float), (draws, 1))  # items not drawn yet, per category
    kept = np.zeros((draws, g))
    filled = np.zeros(draws, dtype=np.int64)
    out = np.zeros((g, size))
    total = int(sizes.sum())
    for _ in range(total):
        active = (filled < size) & (left.sum(axis=1) > 0)
        if not active.any():
            break
        cum = np.cumsum(left, axis=1)
        u = rng.random(draws) * cum[:, -1]
        pick = np.minimum((cum <= u[:, None]).sum(axis=1), g - 1)
        rows = np.arange(draws)
        left[rows[active], pick[active]] -= 1
        ok = active & (uncapped[pick] | (kept[rows, pick] < cap))
        np.add.at(out, (pick[ok], filled[ok]), 1.0)
        kept[rows[ok], pick[ok]] += 1
        filled[ok] += 1
    return out / draws


def _simulated(sample: Callable[[np.random.Generator, int], np.ndarray], live: np.ndarray,
               n: int, size: int, slate_rules: Sequence[Rule], h: Hits,
               rng: np.random.Generator, draws: int,
               shown: np.ndarray | None) -> np.ndarray:
    """Position probabilities of the policy that orders the live candidates by
    ``sample(rng, draws)`` (one row of scores per draw) and fills the slate: the share of
    the ``draws`` (plus the slate ``shown``, when given) putting each candidate at each
    position."""
    counts = np.zeros((n, size))
    order = live[np.argsort(-sample(rng, draws), axis=1, kind="stable")]
    pos = _fill_many(order, size, slate_rules, h)
    if pos is None:  # pins, or several max_per rules: one draw at a time
        for row in order:
            s = fill(row, size, slate_rules, h)
            counts[s, np.arange(len(s))] += 1
    else:
        rows, cols = np.nonzero(pos >= 0)
        np.add.at(counts, (order[rows, cols], pos[rows, cols]), 1.0)
    total = draws
    if shown is not None:
        counts[shown, np.arange(len(shown))] += 1
        total += 1
    return counts / total


def _fill_many(order: np.ndarray, size: int, slate_rules: Sequence[Rule], h: Hits
               ) -> np.ndarray | None:
    """``fill`` for every row of ``order`` at once, as the position of each ordered
    candidate (-1: not shown); None when the rules need ``fill`` itself (a pin, or more
    than one ``max_per``). With one ``max_per`` of ``n`` per category, a candidate is
    shown when fewer than ``n`` earlier candidates of its row share its category (the
    skipped ones never count), and takes the next position."""
    if any(r.kind == "pin" for r in slate_rules):
        return None
    caps = [r for r in slate_rules if r.kind == "max_per"]
    if len(caps) > 1:
        return None
    if caps:
        values = h.by_rule[caps[0].name]
        codes = {v: i for i, v in enumerate(dict.fromkeys(v for v in values if v is not None))}
        cat = np.array([codes.get(v, -1) if v is not None else -1 for v in values])
        c = cat[order]  # (draws, candidates)
        onehot = (c[:, :, None] == np.arange(max(len(codes), 1))[None, None, :])
        before = np.cumsum(onehot, axis=1) - onehot  # same-category candidates earlier
        same = np.take_along_axis(before, np.maximum(c, 0)[:, :, None], axis=2)[:, :, 0]
        kept = (c < 0) | (same < int(caps[0].value))
    else:
        kept = np.ones(order.shape, dtype=bool)
    pos = np.cumsum(kept, axis=1) - 1
    return np.where(kept & (pos < size), pos, -1)


def thompson_distribution(alpha: np.ndarray, beta: np.ndarray, size: int, *,
                          draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """Position probabilities (items x size) of Thompson sampling from ``Beta(alpha,
    beta)`` per item, by ``draws`` simulated slates (the top ``size`` of each draw)."""
    a, b = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    n = len(a)
    rng = np.random.default_rng(seed)
    counts = np.zeros((n, size))
    chunk = 20_000  # draws at a time: memory stays flat for a million draws
    done = 0
    while done < draws:
        m = min(chunk, draws - done)
        top = np.argsort(-rng.beta(a, b, size=(m, n)), axis=1, kind="stable")[:, :size]
        for pos in range(size):
            counts[:, pos] += np.bincount(top[:, pos], minlength=n)
        done += m
    return counts / draws
