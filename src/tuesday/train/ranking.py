"""Ranking metrics: how good the top ``k`` of each request's ordered candidates is.

A ranking is judged per request (a *group*: one user at one time, and the candidates
scored for it). Each group's candidates are ordered by score, highest first (ties keep
the input order), and its top ``k`` is compared with the relevance labels:

* ``ndcg_at_k``: DCG of the top ``k`` (gain = relevance, discount ``log2(rank + 1)``,
  as ``sklearn.metrics.ndcg_score``) over the DCG of the ideal order;
* ``map_at_k``: average precision at ``k``: the mean of the precision at each relevant
  item's rank within the top ``k``, over ``min(k, relevant items)``;
* ``recall_at_k``: the share of the group's relevant items in its top ``k``;
* ``hit_rate_at_k``: 1 when the top ``k`` holds a relevant item, else 0;
* ``coverage_at_k``: the share of the catalog (every item among the candidates) that
  some group's top ``k`` shows;
* ``gini_at_k``: the Gini coefficient of how often each catalog item is in a top ``k``
  (0: every item shown equally often; near 1: a few items take all the exposure).

A relevant item has a relevance above 0. The first four are means over the groups that
have at least one relevant item (a group without one cannot be ranked well or badly);
coverage and Gini are over all groups. Pointwise metrics of the scores (``auc``,
``log_loss``) are available to ranking models too.

Example:
    >>> import numpy as np
    >>> g = np.array([0, 0, 0, 1, 1, 1]); rel = np.array([0, 1, 0, 1, 0, 0.])
    >>> s = np.array([.9, .8, .1, .3, .2, .1]); items = np.array([1, 2, 3, 1, 2, 3])
    >>> round(ndcg_at(2, g, rel, s), 4), hit_rate_at(1, g, rel, s)
    (0.8155, 0.5)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: ranking metric names: the metric and ``_at_`` the cut-off, e.g. ``ndcg_at_10``
RANKING_PATTERN = re.compile(r"(ndcg|map|recall|hit_rate|coverage|gini)_at_(\d+)")
#: ranking metrics where lower is better (exposure concentrated on few items)
LOWER_IS_BETTER = ("gini",)


@dataclass(frozen=True)
class Ranked:
    """Candidates sorted by group, then by score (highest first, ties in input order).

    ``rank`` is each sorted row's 0-based rank within its group; ``starts`` the first
    sorted row of each group; ``order`` maps sorted rows back to the input rows.
    """

    order: np.ndarray
    group: np.ndarray  # group code of each sorted row (0 .. groups-1)
    rank: np.ndarray
    rel: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, group: np.ndarray, rel: np.ndarray, score: np.ndarray) -> Ranked:
        _, codes = np.unique(np.asarray(group), return_inverse=True)
        codes = codes.ravel()
        s = np.asarray(score, dtype=float)
        # NaN scores (a dropped candidate) go last in their group
        key = np.where(np.isnan(s), np.inf, -s)
        order = np.lexsort((np.arange(len(s)), key, codes))
        g = codes[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else \
            np.zeros(0, dtype=np.int64)
        sizes = np.diff(np.r_[starts, len(g)])
        rank = np.arange(len(g)) - np.repeat(starts, sizes)
        return cls(order, g, rank, np.asarray(rel, dtype=float)[order], starts, sizes)

    def per_group(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` (one per sorted row) in each group."""
        return np.add.reduceat(values, self.starts) if len(values) else np.zeros(0)

    def relevant(self) -> np.ndarray:
        """How many relevant items each group holds."""
        return self.per_group((self.rel > 0).astype(float))


def _mean_over_relevant(r: Ranked, per_group: np.ndarray) -> float:
    ok = r.relevant() > 0
    return float(per_group[ok].mean()) if ok.any() else float("nan")


def _ranked(group: np.ndarray, rel: np.ndarray, score: np.ndarray) -> Ranked:
    return Ranked.of(group, rel, score)


def ndcg_at(k: int, group: np.ndarray, rel: np.ndarray, score: np.ndarray, *,
            ranked: Ranked | None = None) -> float:
    """Mean NDCG@k over the groups with a relevant item (linear gain)."""
    r = ranked or _ranked(group, rel, score)
    top = r.rank < k
    discount = 1.0 / np.log2(r.rank + 2.0)
    dcg = r.per_group(np.where(top, r.rel * discount, 0.0))
    # the ideal order: each group's relevances sorted descending
    ideal_rel = np.empty_like(r.rel)
    for s, n in zip(r.starts, r.sizes, strict=True):
        ideal_rel[s:s + n] = np.sort(r.rel[s:s + n])[::-1]
    idcg = r.per_group(np.where(top, ideal_rel * discount, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)
    return _mean_over_relevant(r, per)


def map_at(k: int, group: np.ndarray, rel: np.ndarray, score: np.ndarray, *,
           ranked: Ranked | None = None) -> float:
    """Mean average precision at k over the groups with a relevant item."""
    r = ranked or _ranked(group, rel, score)
    hit = ((r.rel > 0) & (r.rank < k)).astype(float)
    hits_so_far = np.cumsum(hit)
    before = np.repeat(np.r_[0.0, hits_so_far][r.starts], r.sizes)
    precision = (hits_so_far - before) / (r.rank + 1.0)
    ap = r.per_group(precision * hit) / np.maximum(np.minimum(r.relevant(), k), 1.0)
    return _mean_over_relevant(r, ap)


def recall_at(k: int, group: np.ndarray, rel: np.ndarray, score: np.ndarray, *,
              ranked: Ranked | None = None) -> float:
    """Mean share of each group's relevant items in its top k."""
    r = ranked or _ranked(group, rel, score)
    found = r.per_group(((r.rel > 0) & (r.rank < k)).astype(float))
    return _mean_over_relevant(r, found / np.maximum(r.relevant(), 1.0))


def hit_rate_at(k: int, group: np.ndarray, rel: np.ndarray, score: np.ndarray, *,
                ranked: Ranked | None = None) -> float:
    """Share of the groups (with a relevant item) whose top k holds one."""
    r = ranked or _ranked(group, rel, score)
    found = r.per_group(((r.rel > 0) & (r.rank < k)).astype(float))
    return _mean_over_relevant(r, (found > 0).astype(float))


def exposure(k: int, group: np.ndarray, item: np.ndarray, score: np.ndarray, *,
             ranked: Ranked | None = None) -> np.ndarray:
    """How many groups show each catalog item (every distinct item of ``item``, in
    sorted order) in their top k."""
    r = ranked or _ranked(group, np.zeros(len(score)), score)
    items, codes = np.unique(np.asarray(item), return_inverse=True)
    shown = codes.ravel()[r.order][r.rank < k]
    return np.bincount(shown, minlength=len(items)).astype(float)


def coverage_at(k: int, group: np.ndarray, item: np.ndarray, score: np.ndarray, *,
                ranked: Ranked | None = None) -> float:
    """Share of the catalog shown in at least one top k."""
    counts = exposure(k, group, item, score, ranked=ranked)
    return float((counts > 0).mean()) if len(counts) else float("nan")


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 equal, towards 1 concentrated).

    Example:
        >>> gini(np.array([1.0, 1.0, 1.0])), round(gini(np.array([0.0, 0.0, 3.0])), 4)
        (0.0, 0.6667)
    """
    x = np.sort(np.asarray(counts, dtype=float))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0:
        return float("nan")
    return float(2.0 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def gini_at(k: int, group: np.ndarray, item: np.ndarray, score: np.ndarray, *,
            ranked: Ranked | None = None) -> float:
    """Gini of the catalog items' top-k exposure."""
    return gini(exposure(k, group, item, score, ranked=ranked))


_BY_RELEVANCE: dict[str, Callable[..., float]] = {
    "ndcg": ndcg_at, "map": map_at, "recall": recall_at, "hit_rate": hit_rate_at}
_BY_ITEM: dict[str, Callable[..., float]] = {"coverage": coverage_at, "gini": gini_at}


def is_ranking_metric(name: str) -> bool:
    m = RANKING_PATTERN.fullmatch(name)
    return m is not None and int(m.group(2)) > 0


def direction(name: str) -> str:
    """'higher' or 'lower' for a ranking metric name."""
    m = RANKING_PATTERN.fullmatch(name)
    return "lower" if m is not None and m.group(1) in LOWER_IS_BETTER else "higher"


def score(names: Sequence[str], group: np.ndarray, item: np.ndarray, rel: np.ndarray,
          p: np.ndarray) -> dict[str, float]:
    """Every ranking metric of ``names`` (others are skipped) for scores ``p``.

    Example:
        >>> import numpy as np
        >>> score(["recall_at_1", "coverage_at_1"], np.array([0, 0, 1, 1]),
        ...       np.array(["a", "b", "a", "b"]), np.array([1, 0, 0, 1.]),
        ...       np.array([.9, .1, .9, .1]))
        {'recall_at_1': 0.5, 'coverage_at_1': 0.5}
    """
    ranked = _ranked(group, rel, p)
    out: dict[str, float] = {}
    for name in names:
        m = RANKING_PATTERN.fullmatch(name)
        if m is None:
            continue
        kind, k = m.group(1), int(m.group(2))
        if kind in _BY_RELEVANCE:
            out[name] = _BY_RELEVANCE[kind](k, group, rel, p, ranked=ranked)
        else:
            out[name] = _BY_ITEM[kind](k, group, item, p, ranked=ranked)
    return out
