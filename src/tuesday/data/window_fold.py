"""Window aggregates folded over slices of sorted rows, and the column readers of the
numpy path of lag and window features (``features.SortedRows``).

``fold_windows`` adds the rows of every point's slice in time order, one row position at
a time for all points together, so sums and means are added in the order
``SUM(x ORDER BY t)`` adds them: the same to the bit as the SQL.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.project import Feature

NAT = np.iinfo(np.int64).min  # a missing time
NEVER = np.iinfo(np.int64).max  # the availability of a row whose available_at is missing

Values = dict[str, tuple[np.ndarray, np.ndarray | None]]  # column -> values, validity


def fold_windows(members: list[Feature], lens: np.ndarray, i0: np.ndarray,
                 times: np.ndarray, vals: Values, avail: np.ndarray | None,
                 origin: np.ndarray | None, hi: np.ndarray, n: int, *,
                 per_point: int) -> dict[str, np.ndarray]:
    """Fold every member's aggregate over the slices [i0, i0 + lens) of the sorted rows:
    step k adds row i0 + k of every point whose slice is longer than k; once fewer than
    ``per_point`` points are left, each finishes the rest of its slice in one go."""
    pts = np.argsort(-lens, kind="stable")  # longest first: the active points are a prefix
    ln, st = lens[pts], i0[pts]
    fold = _Fold(members, times, vals, avail, origin[pts] if origin is not None else None, n)
    longest = int(ln[0]) if n else 0
    active = np.searchsorted(-ln, -np.arange(longest), side="left")  # points with len > k
    k = 0
    while k < longest:
        m = int(active[k])
        if m < per_point:
            break
        fold.step(slice(0, m), st[:m] + k)
        k += 1
    if k < longest:  # the few longest slices: the rest of each in one go
        for j in range(int(active[k])):
            fold.finish(slice(j, j + 1), np.arange(st[j] + k, st[j] + ln[j]))
    inv = np.empty(n, np.int64)
    inv[pts] = np.arange(n)
    return fold.result(inv, hi)


class _Fold:
    """The accumulators of one fold, per point in the fold's (longest first) order: per
    column (None: any row) a count, per aggregate its accumulator, per column read by
    ``last`` / ``time_since_last`` the latest time seen."""

    def __init__(self, members: list[Feature], times: np.ndarray, vals: Values,
                 avail: np.ndarray | None, org: np.ndarray | None, n: int) -> None:
        self.members, self.times, self.vals, self.avail, self.org = (
            members, times, vals, avail, org)
        self.cols = {f.column for f in members}
        self.count = {c: np.zeros(n, np.int64) for c in self.cols}
        self.acc: dict[str, np.ndarray] = {}
        self.last_t: dict[str | None, np.ndarray] = {}
        for f in members:
            if f.agg in ("sum", "mean"):
                v = vals[f.column or ""][0]
                self.acc[f.name] = np.zeros(n, v.dtype)
            elif f.agg == "min":
                self.acc[f.name] = np.full(n, np.nan)
            elif f.agg == "max":
                self.acc[f.name] = np.full(n, -np.inf)
            elif f.agg == "last":
                self.acc[f.name] = np.full(n, np.nan)
            if f.agg in ("last", "time_since_last"):
                self.last_t.setdefault(f.column, np.full(n, NAT))

    def _masks(self, idx: np.ndarray, sel: slice) -> dict[str | None, np.ndarray | None]:
        """Per column, the rows ``idx`` that count (available at the origin, value not
        missing); None: all of them."""
        avail, org = self.avail, self.org
        ok = avail[idx] <= org[sel] if avail is not None and org is not None else None
        out: dict[str | None, np.ndarray | None] = {}
        for c in self.cols:
            valid = self.vals[c][1] if c else None
            if valid is None:
                out[c] = ok
            else:
                out[c] = valid[idx] if ok is None else valid[idx] & ok
        return out

    def step(self, sel: slice, idx: np.ndarray) -> None:
        """Add row ``idx[j]`` to point ``sel.start + j``, for every point of ``sel``."""
        mk = self._masks(idx, sel)
        for c in self.cols:
            mc = mk[c]
            self.count[c][sel] += 1 if mc is None else mc
        for f in self.members:
            if f.agg not in ("sum", "mean", "min", "max"):
                continue
            mc, a = mk[f.column], self.acc[f.name]
            v = self.vals[f.column or ""][0][idx]
            if f.agg in ("sum", "mean"):
                a[sel] += v if mc is None else np.where(mc, v, v.dtype.type(0))
            elif f.agg == "min":  # NaN only when every value is NaN, as in SQL
                x = v.astype(np.float64) if mc is None else np.where(mc, v, np.nan)
                a[sel] = np.fmin(a[sel], x)
            elif f.agg == "max":  # NaN sorts above every number, as in SQL
                x = v.astype(np.float64) if mc is None else np.where(mc, v, -np.inf)
                a[sel] = np.maximum(a[sel], x)
        t = self.times[idx] if self.last_t else None
        for c, lt in self.last_t.items():
            mc = mk[c]
            assert t is not None
            take = np.ones(len(idx), bool) if mc is None else mc
            same = take & (t == lt[sel])  # ties at the latest time: the largest value
            for f in self.members:
                if f.agg == "last" and f.column == c:
                    v = self.vals[c or ""][0][idx].astype(np.float64)
                    a = self.acc[f.name]
                    a[sel] = np.where(same, np.maximum(a[sel], v), np.where(take, v, a[sel]))
            lt[sel] = np.where(take, t, lt[sel])

    def finish(self, sel: slice, idx: np.ndarray) -> None:
        """Add every row of ``idx`` to the one point ``sel``, in order."""
        mk = self._masks(idx, sel)
        for c in self.cols:
            mc = mk[c]
            self.count[c][sel] += len(idx) if mc is None else int(mc.sum())
        for f in self.members:
            if f.agg not in ("sum", "mean", "min", "max"):
                continue
            mc, a = mk[f.column], self.acc[f.name]
            v = self.vals[f.column or ""][0][idx]
            if f.agg in ("sum", "mean"):
                x = v if mc is None else np.where(mc, v, v.dtype.type(0))
                # a sequential fold, as the step-by-step one
                a[sel] = np.add.accumulate(np.concatenate((a[sel], x)))[-1]
            elif f.agg == "min":
                x = v.astype(np.float64) if mc is None else np.where(mc, v, np.nan)
                a[sel] = np.fmin.reduce(np.concatenate((a[sel], x)))
            elif f.agg == "max":
                x = v.astype(np.float64) if mc is None else np.where(mc, v, -np.inf)
                a[sel] = np.maximum.reduce(np.concatenate((a[sel], x)))
        t = self.times[idx] if self.last_t else None
        for c, lt in self.last_t.items():
            mc = mk[c]
            assert t is not None
            tt = t if mc is None else t[mc]
            if not len(tt):
                continue
            newest = tt[-1]
            for f in self.members:
                if f.agg == "last" and f.column == c:
                    v = self.vals[c or ""][0][idx]
                    v = (v if mc is None else v[mc])[tt == newest].astype(np.float64)
                    a = self.acc[f.name]
                    prev = a[sel] if lt[sel][0] == newest else np.empty(0)
                    a[sel] = np.maximum.reduce(np.concatenate((prev, v)))
            lt[sel] = newest

    def result(self, inv: np.ndarray, hi: np.ndarray) -> dict[str, np.ndarray]:
        """Every member's values in the points' order (``inv``: fold position of each)."""
        out: dict[str, np.ndarray] = {}
        for f in self.members:
            cnt = self.count[f.column][inv]
            if f.agg == "count":
                out[f.name] = cnt
            elif f.agg == "time_since_last":
                lt = self.last_t[f.column][inv]
                out[f.name] = np.where(lt != NAT, (hi - lt).astype(np.float64) / 1e6, np.nan)
            else:
                a = self.acc[f.name][inv]
                if f.agg == "mean":
                    res = a.astype(np.float64) / np.maximum(cnt, 1)
                else:
                    res = a.astype(np.float64)
                out[f.name] = np.where(cnt > 0, res, np.nan)
        return out


def int_if_whole(x: np.ndarray) -> np.ndarray:
    """Integer values without a gap as int64, as the SQL returns them (float with NaN
    otherwise)."""
    return x.astype(np.int64) if len(x) and not np.isnan(x).any() else x



def us_of(td: pd.Timedelta) -> int:
    return int(td // pd.Timedelta(microseconds=1))


def is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def micros_of(col: pa.ChunkedArray) -> np.ndarray | None:
    """Naive timestamps or dates as int64 microseconds (null: INT64_MIN); None for other
    types (timezone-aware, or nanoseconds that are not whole microseconds)."""
    t = col.type
    if pa.types.is_date(t):
        col = col.cast(pa.timestamp("us"))
    elif not pa.types.is_timestamp(t) or t.tz is not None:
        return None
    unit = col.type.unit
    v = col.cast(pa.int64()).fill_null(NAT).to_numpy()
    v = np.asarray(v, dtype=np.int64)
    nat = v == NAT
    if unit == "ns":
        if (v[~nat] % 1000).any():
            return None
        return np.where(nat, NAT, v // 1000)
    factor = {"s": 1_000_000, "ms": 1_000, "us": 1}[unit]
    return v if factor == 1 else np.where(nat, NAT, v * factor)


def number_values(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A float64 or signed integer column as numpy values and validity (None: no
    nulls); None for other types."""
    t = col.type
    if pa.types.is_float64(t):
        dtype: type = np.float64
    elif pa.types.is_signed_integer(t):
        dtype = np.int64
    else:
        return None
    valid = None
    if col.null_count:
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        col = col.fill_null(0)
    return np.asarray(col.to_numpy(), dtype=dtype), valid
