"""The online definition of an event feature: its value at a request time from events
sorted by time (``value``), as pure functions over tuples and slices."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Compiled:
    """One event feature, ready to compute: durations in microseconds, column by index."""

    name: str
    agg: str
    col: int  # index into Spec.columns; -1: no column (time_since_last of any event)
    lag: int
    window: int
    default: float | None
    fast: Callable[..., float | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", FAST[self.agg])



# ----------------------------------------------------------------- the pure function
#
# One definition in two paths: the fast one when every event of the window is available
# at the request time and the column has no missing value (the usual case: one small
# function per aggregate over a slice), the general one otherwise. ``value`` picks the
# path; the parity tests run both against the SQL of ``features.feature_frame``.


def _f_count(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
             default: float | None) -> float | None:
    return float(i1 - i0)


def _f_sum(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
           default: float | None) -> float | None:
    return math.fsum(vals) if i1 > i0 else default


def _f_mean(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
            default: float | None) -> float | None:
    return math.fsum(vals) / (i1 - i0) if i1 > i0 else default


def _f_min(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
           default: float | None) -> float | None:
    return float(min(vals)) if i1 > i0 else default


def _f_max(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
           default: float | None) -> float | None:
    return float(max(vals)) if i1 > i0 else default


def _f_last(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
            default: float | None) -> float | None:
    if i1 <= i0:
        return default
    t, j = times[i1 - 1], i1 - 1
    while j > i0 and times[j - 1] == t:  # ties at the latest time: the largest value
        j -= 1
    return float(max(vals[j - i0:]))


def _f_since(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
             default: float | None) -> float | None:
    return (hi - times[i1 - 1]) / 1_000_000 if i1 > i0 else default


FAST: dict[str, Callable[..., float | None]] = {
    "count": _f_count, "sum": _f_sum, "mean": _f_mean, "min": _f_min, "max": _f_max,
    "last": _f_last, "time_since_last": _f_since}


def general(f: Compiled, i0: int, i1: int, hi: int, times: Sequence[int],
             col: Sequence[float] | None, avail: Sequence[int], at: int) -> float | None:
    """Any window: only events available at ``at`` and values not missing count."""
    rows = [i for i in range(i0, i1) if avail[i] <= at and (col is None or col[i] == col[i])]
    if f.col < 0 or col is None:  # time_since_last of any event
        return (hi - times[rows[-1]]) / 1_000_000 if rows else f.default
    times_k = [times[i] for i in rows]
    return FAST[f.agg](times_k, [col[i] for i in rows], 0, len(rows), hi, f.default)


def value(f: Compiled, times: Sequence[int], avail: Sequence[int],
          cols: Sequence[Sequence[float]], at: int, *, settled: bool = False,
          dense: Sequence[bool] = ()) -> float | None:
    """The value of one event feature at time ``at`` (us) from events sorted by time.

    This is the online definition; ``features.feature_frame`` computes the same in SQL.
    ``settled`` (every event available at ``at``) and ``dense`` (no missing value per
    column) only select the faster path, with the same result.

    Example:
        >>> f = Compiled("n_1h", "count", 0, 0, 3_600_000_000, None)
        >>> value(f, [0, 1_800_000_000], [0, 1_800_000_000], [[1.0, 2.0]], 3_600_000_000)
        1.0
    """
    hi = at - f.lag
    i1 = bisect_right(times, hi)
    i0 = bisect_right(times, hi - f.window, 0, i1)
    col = cols[f.col] if f.col >= 0 else None
    if settled and (col is None or bool(dense and dense[f.col])):
        return FAST[f.agg](times, col[i0:i1] if col is not None else (), i0, i1, hi,
                           f.default)
    return general(f, i0, i1, hi, times, col, avail, at)
