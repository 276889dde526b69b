"""The statistics behind ``tuesday.watch.drift``'s methods (their definitions are in its
module docstring), computed as scipy and Evidently compute them, with numpy.

Numeric samples: each sorted once, the two merged (``Merged``: a stable ``argsort`` of the
two sorted runs) with cumulative counts for the CDFs of ``ks`` and ``wasserstein`` and for
the distinct values. Category counts: ``chi2``, ``z``, and the distances
``jensenshannon`` and ``psi`` over shares. scipy is used only for distribution tail
functions and the exact small-sample KS p-value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy import special, stats

__all__ = ["KS_EXACT_MAX_ROWS", "Merged", "chi2_pvalue", "distance", "jensenshannon", "ks_pvalue",
           "ks_statistic", "n_distinct_sorted", "psi", "z_pvalue"]

KS_EXACT_MAX_ROWS = 10_000
"""Up to this many rows in the larger sample, the KS p-value is exact (as
``scipy.stats.ks_2samp(method="auto")``); above, asymptotic."""


def n_distinct_sorted(sorted_values: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(sorted_values))) + 1


_CHUNK = 1 << 16  # values per block when walking the merged samples (temporaries stay small)


class Merged:
    """Both sorted samples merged in one sorted order, with the two empirical CDFs.

    ``both`` holds the sorted reference values followed by the sorted current values. The
    merge is a stable ``argsort`` of these two sorted runs (one linear merge in numpy's
    timsort); which sample each merged value came from gives the CDFs by a cumulative
    count, instead of two binary searches per value. Inside a run of equal values the
    counts are not yet the CDFs (``searchsorted(side="right")``), but there the gap to the
    next value is 0; at the last value of the run they are exact.

    The CDF differences are computed block by block, so their temporaries stay small
    (fewer fresh pages to fault in than whole-length temporaries).
    """

    def __init__(self, both: np.ndarray, n_ref: int) -> None:
        self.both = both
        self.n_ref, self.n_cur = n_ref, both.size - n_ref
        self.order = np.argsort(both, kind="stable")
        self.gaps = np.diff(both[self.order])  # merged[i + 1] - merged[i]

    @property
    def n_distinct(self) -> int:
        return int(np.count_nonzero(self.gaps)) + 1

    def _cdf_gaps(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Blocks of ``|F_ref - F_cur|`` just after ``merged[i]``, ``i < size - 1``; exact
        where ``gaps[i] != 0``, meaningless (but finite) inside a run of equal values."""
        size = self.gaps.size
        ref_before = 0
        for start in range(0, size, _CHUNK):
            stop = min(start + _CHUNK, size)
            ref_count: np.ndarray = np.cumsum(self.order[start:stop] < self.n_ref, dtype=np.int64)
            ref_count += ref_before
            ref_before = int(ref_count[-1])
            cur_count = np.arange(start + 1, stop + 1)
            cur_count -= ref_count
            gap = ref_count / self.n_ref  # as scipy: integer count / sample size
            gap -= cur_count / self.n_cur
            yield slice(start, stop), np.abs(gap, out=gap)

    def wasserstein(self) -> float:
        """``scipy.stats.wasserstein_distance`` of the two samples: the same terms, summed
        as scipy does (one ``np.sum`` over all of them)."""
        terms = np.empty_like(self.gaps)
        for block, gap in self._cdf_gaps():
            np.multiply(gap, self.gaps[block], out=terms[block])
        return float(np.sum(terms))

    def ks_statistic(self) -> float:
        """``max |F_ref - F_cur|``: over the last value of each run of equal values (the
        CDFs are both 1 after the largest value)."""
        d = 0.0
        for block, gap in self._cdf_gaps():
            exact = gap[self.gaps[block] != 0]
            if exact.size:
                d = max(d, float(exact.max()))
        return d

    def distinct_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct values, sorted, and how often each occurs in each sample."""
        last = np.flatnonzero(np.r_[self.gaps != 0, True])  # last index of each run
        values = self.both[self.order[last]]
        ref_count = np.cumsum(self.order < self.n_ref)[last]
        cur_count = last + 1 - ref_count
        return values, np.diff(ref_count, prepend=0), np.diff(cur_count, prepend=0)


def ks_statistic(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, merged: Merged | None = None
) -> float:
    """Two-sided KS statistic ``max |F_ref - F_cur|`` over both samples' values."""
    if merged is None:
        merged = Merged(np.concatenate((ref_sorted, cur_sorted)), ref_sorted.size)
    return merged.ks_statistic()


def ks_pvalue(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, merged: Merged | None = None
) -> float:
    """Two-sided KS p-value with ``scipy.stats.ks_2samp(method="auto")`` semantics."""
    n1, n2 = ref_sorted.size, cur_sorted.size
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:
        # Exact distribution (scipy falls back to asymptotic on its own if it must).
        return float(stats.ks_2samp(ref_sorted, cur_sorted, method="auto").pvalue)
    d = ks_statistic(ref_sorted, cur_sorted, merged)
    m, n = sorted((float(n1), float(n2)), reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def chi2_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """``scipy.stats.chisquare(cur_counts, ref_counts * n_cur / n_ref).pvalue``."""
    f_exp = ref_counts * (cur_counts.sum() / ref_counts.sum())
    f_obs = cur_counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (f_obs - f_exp) ** 2 / f_exp
    statistic = float(terms.sum())
    dof = ref_counts.size - 1
    if dof < 1:
        return math.nan  # one category only: scipy's p-value is NaN too
    return float(special.chdtrc(dof, statistic))


def z_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray, uniques: Any) -> float:
    """Evidently's two-proportion Z-test: smallest value vs the rest, two-sided."""
    if ref_counts.size == 1:
        return 1.0  # both samples hold the same single value
    values = list(uniques)
    try:
        first = min(range(len(values)), key=values.__getitem__)
    except TypeError:  # values of mixed, unorderable types
        first = min(range(len(values)), key=lambda i: (type(values[i]).__name__, str(values[i])))
    n1 = float(ref_counts.sum())
    n2 = float(cur_counts.sum())
    p1 = (n1 - float(ref_counts[first])) / n1
    p2 = (n2 - float(cur_counts[first])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - special.ndtr(abs(z))))


def distance(method: str, ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    if method == "jensenshannon":
        return jensenshannon(ref_share, cur_share)
    return psi(ref_share, cur_share)


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(x / y), 0.0)


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q)`` (natural log)."""
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    js = float(np.sum(_rel_entr(p, m)) + np.sum(_rel_entr(q, m)))
    return math.sqrt(max(js, 0.0) / 2.0)


def _fill_empty(share: np.ndarray) -> np.ndarray:
    smallest = float(share[share != 0].min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(share == 0, fill, share)


def psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    """Evidently's population stability index over shares (empty shares filled)."""
    r = _fill_empty(ref_share)
    c = _fill_empty(cur_share)
    return float(np.sum((r - c) * np.log(r / c)))
