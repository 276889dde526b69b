"""Point-in-time features: one definition, computed for training and for serving.

A prediction point is an entity key and a target time. Its forecast origin is the target
time minus the model's horizon; a feature may only use rows whose event time (and
``available_at`` time, when the source has one) is at or before the origin, except
calendar and holiday features of the target time, which are known in advance.

``feature_frame`` computes every feature for many points with DuckDB over the versioned
tables. Training calls it on the label rows; the online store calls the same function on
the points it will serve (``materialize.materialize``), so training and serving share one code
path and cannot drift apart.

Lag and window features run on the sorted source rows (``_Rows``, folded by
``window_fold``) or, for what that path does not handle, in SQL (``_sql``); calendar and
holiday features come from ``calendar_features``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.data.asof import asof_join
from tuesday.data.asof import key_codes as asof_key_codes
from tuesday.data.calendar_features import calendar_values, holiday_values
from tuesday.data.window_fold import (
    NAT,
    NEVER,
    Values,
    fold_windows,
    int_if_whole,
    is_text,
    micros_of,
    number_values,
    us_of,
)
from tuesday.project import Baseline, Feature, Model, Project, Source, duration, lag, window

TARGET_TIME = "_target_time"
ORIGIN = "_origin"
ROW = "_row"

# lag and window features computed by ``_Rows`` (numpy over the entity-sorted source)
# rather than by the SQL of ``_sql``; both give the same values (tests compare them)
_FAST_WINDOWS = True


def horizon(model: Model) -> pd.Timedelta:
    return duration(model.horizon, what=f"horizon of model {model.name!r}")


def horizon_days(model: Model) -> float:
    return float(horizon(model) / pd.Timedelta(days=1))


def season_lag(model: Model, b: Baseline) -> int:
    """Days back the (seasonal) naive baseline reads: the nearest allowed by the horizon."""
    h = horizon_days(model)
    if b.kind == "naive":
        return max(1, math.ceil(h))
    return b.season * max(1, math.ceil(h / b.season))


def baseline_features(model: Model) -> tuple[Feature, ...]:
    """The features the declared baselines read (computed like any other feature)."""
    out: list[Feature] = []
    src, col = model.label_source, model.target
    for b in model.baselines:
        if b.kind in ("naive", "seasonal_naive"):
            out.append(lag(src, col, season_lag(model, b)))
        elif b.kind == "seasonal_mean":
            first = season_lag(model, b)
            out.extend(lag(src, col, first + k * b.season) for k in range(b.seasons))
        elif b.kind == "moving_average":
            out.append(window(src, col, f"{b.window}d",
                              lag=f"{max(1, math.ceil(horizon_days(model)))}d"))
        elif b.kind == "popular":
            out.append(popular_feature(model, b))
    return tuple(out)


def popular_feature(model: Model, b: Baseline) -> Feature:
    """The window a ``popular`` baseline ranks by: each item's sum (or count) of the
    column over the baseline's window, ending its lag (at least the horizon) before the
    request."""
    column = b.column or model.target
    lag_td = max(duration(b.lag, what=f"lag of baseline {b.name!r}"), horizon(model))
    hours = int(lag_td / pd.Timedelta(hours=1))
    lag_text = f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"
    return window(b.source or model.label_source, column, f"{b.window}d", lag=lag_text,
                  agg=b.agg, default=0.0, name=f"_popular_{b.name}")


def points_frame(model: Model, keys: pd.Series, target_times: pd.Series | None) -> pd.DataFrame:
    """Prediction points: entity key, target time and forecast origin."""
    key = model.entity.key
    if target_times is None:
        target_times = pd.Series(pd.NaT, index=keys.index, dtype="datetime64[us]")
    t = pd.to_datetime(target_times).astype("datetime64[us]").reset_index(drop=True)
    return pd.DataFrame({
        key: keys.reset_index(drop=True).astype("string"),
        TARGET_TIME: t,
        ORIGIN: (t - horizon(model)).astype("datetime64[us]"),
        ROW: np.arange(len(t), dtype="int64"),
    })


def feature_frame(
    project: Project,
    model: Model,
    points: pd.DataFrame,
    tables: Mapping[str, pa.Table],
    *,
    extra: tuple[Feature, ...] = (),
    request: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Compute every feature of ``model`` (plus ``extra``) for each point, in order.

    Args:
        project: The project (for sources).
        model: The model whose features to compute.
        points: From ``points_frame``.
        tables: Arrow tables by source name, as read at the versions the caller chose.
        extra: More features (e.g. the lags a baseline needs).
        request: Values of request-time features, aligned with ``points``.

    Returns:
        One row per point, in the same order, with one column per feature.
    """
    feats = _dedupe(model.features + extra)
    out = pd.DataFrame(index=pd.RangeIndex(len(points)))
    con = duckdb.connect()
    try:
        _source_features(out, con, project, model, feats, points, tables)
    finally:
        con.close()
    _known_in_advance(out, feats, points[TARGET_TIME], request)
    for f in feats:
        if f.kind == "holiday" and f.region is not None:
            out[f.name] = _regional_holidays(project, model, f, points, tables)
    for f in feats:
        if f.dtype == "category":  # text, None where missing; coded by the learner
            out[f.name] = category_values(out[f.name])
            continue
        if f.default is not None:
            out[f.name] = out[f.name].fillna(f.default)
        if out[f.name].dtype == object:
            out[f.name] = pd.to_numeric(out[f.name], errors="coerce")
    return out[[f.name for f in feats]]


def category_values(values: pd.Series) -> pd.Series:
    """A category feature's values as text (object dtype), None where missing."""
    s = pd.Series(values, dtype=object)
    text = s.map(lambda v: None if v is None or (isinstance(v, float) and v != v)
                 or v is pd.NA else str(v))
    return text.astype(object)


def _source_features(out: pd.DataFrame, con: duckdb.DuckDBPyConnection, project: Project,
                     model: Model, feats: tuple[Feature, ...], points: pd.DataFrame,
                     tables: Mapping[str, pa.Table]) -> None:
    """The features read from sources, one group at a time: lookups by an as-of join,
    lags and windows on the sorted rows (``_Rows``) when it handles the source, the rest
    (and what ``_Rows`` leaves) by the SQL of ``_sql``."""
    sql_ready = False
    sorted_rows: dict[str, _Rows | None] = {}
    for group, members in _groups(feats).items():
        kind = group[0]
        src = project.source(group[1])
        if kind == "lookup" and _known(src) is not None:
            _lookup(out, points, tables[src.name], src, members, model.entity.key)
            continue
        if kind in ("lag", "window") and _FAST_WINDOWS:
            if src.name not in sorted_rows:
                sorted_rows[src.name] = _Rows.prepare(
                    points, tables[src.name], src, model.entity.key,
                    [f for f in feats if f.source == src.name])
            rows = sorted_rows[src.name]
            values = None if rows is None else (
                rows.windows(members, group) if kind == "window" else rows.lags(members))
            if values is not None:
                for f in members:
                    out[f.name] = values[f.name]
                continue
        if not sql_ready:
            _register(con, project, feats, points, tables)
            sql_ready = True
        sql = _sql(kind, src, members, model.entity.key, group)
        res = con.execute(sql).df()
        res = res.set_index(ROW).reindex(np.arange(len(points)))
        for f in members:
            out[f.name] = res[f.name].to_numpy()


def _known_in_advance(out: pd.DataFrame, feats: tuple[Feature, ...], t: pd.Series,
                      request: pd.DataFrame | None) -> None:
    """Calendar and holiday features of the target times ``t``, and the request-time
    values sent with the points (NaN when not sent)."""
    for f in feats:
        if f.kind == "calendar":
            out[f.name] = calendar_values(f.part or "", t)
        elif f.kind == "holiday":
            out[f.name] = holiday_values(f.country or "", f.part or "", t)
        elif f.kind == "request":
            if request is not None and f.name in request.columns and f.dtype == "category":
                out[f.name] = category_values(request[f.name]).to_numpy()
            elif request is not None and f.name in request.columns:
                out[f.name] = pd.to_numeric(request[f.name], errors="coerce").to_numpy()
            else:
                out[f.name] = np.nan


def _regional_holidays(project: Project, model: Model, f: Feature, points: pd.DataFrame,
                       tables: Mapping[str, pa.Table]) -> np.ndarray:
    """A holiday feature of each point's own region: the entity's subdivision read from
    the region source as known at the origin, the country's holidays without one."""
    assert f.region is not None
    src = project.source(f.region[0])
    key = model.entity.key
    known = _known(src)
    table = tables[src.name]
    if known is not None:
        region = asof_join(points[[key, ORIGIN]], table, key, ORIGIN, known,
                           {f.region[1]: "_region"})["_region"]
    else:
        last = table.select([key, f.region[1]]).to_pandas().drop_duplicates(key, keep="last")
        region = points[[key]].merge(last.astype({key: "string"}), on=key, how="left")[
            f.region[1]]
    region = pd.Series(region.to_numpy(dtype=object), index=points.index)
    t = points[TARGET_TIME]
    out = np.empty(len(points), dtype=object if f.part == "name" else float)
    for r in pd.unique(region):
        mask = (region.isna() if r is None or r != r else region == r).to_numpy()
        where = str(f.country) if r is None or r != r else f"{f.country}-{r}"
        out[mask] = holiday_values(where, f.part or "", t[mask])
    return out


def _register(con: duckdb.DuckDBPyConnection, project: Project, feats: tuple[Feature, ...],
              points: pd.DataFrame, tables: Mapping[str, pa.Table]) -> None:
    """The points (with each lag's and window's bounds) and the sources, for ``_sql``."""
    con.execute("SET threads TO 2")
    p = points.copy()
    for f in feats:
        if f.kind in ("lag", "window"):
            lag = duration(f.lag, what="lag")
            p[f"_hi_{_days(lag)}"] = (p[TARGET_TIME] - lag).astype("datetime64[us]")
        if f.kind == "window":
            lo = duration(f.lag, what="lag") + duration(f.window, what="window")
            p[f"_lo_{_days(lo)}"] = (p[TARGET_TIME] - lo).astype("datetime64[us]")
    con.register("p", pa.Table.from_pandas(p, preserve_index=False))
    registered: set[str] = set()
    for f in feats:
        if f.kind in ("calendar", "holiday", "request"):
            continue
        src = project.source(f.source or "")
        if src.name not in registered:
            con.register(f"s_{src.name}", tables[src.name])
            registered.add(src.name)


def _known(src: Source) -> str | None:
    """The column saying when a row became known: ``available_at`` or the event time."""
    return src.available_at or src.time


def _lookup(out: pd.DataFrame, points: pd.DataFrame, table: pa.Table, src: Source,
            members: list[Feature], key: str) -> None:
    """Lookup features: the entity's row most recently known at each point's origin
    (an exact as-of join; every point is kept, with nulls where nothing was known)."""
    known = _known(src)
    assert known is not None
    cols = {c: f"_v{i}" for i, c in enumerate(sorted({f.column or "" for f in members}))}
    res = asof_join(points[[key, ORIGIN]], table, key if src.entity is not None else None,
                    ORIGIN, known, cols)
    for f in members:
        out[f.name] = res[cols[f.column or ""]].to_numpy()


def _dedupe(feats: tuple[Feature, ...]) -> tuple[Feature, ...]:
    seen: dict[str, Feature] = {}
    for f in feats:
        seen.setdefault(f.name, f)
    return tuple(seen.values())


def _days(td: pd.Timedelta) -> int:
    return int(td / pd.Timedelta(hours=1))


def _groups(feats: tuple[Feature, ...]) -> dict[tuple[str, ...], list[Feature]]:
    groups: dict[tuple[str, ...], list[Feature]] = {}
    for f in feats:
        if f.kind in ("lag", "scheduled", "lookup"):
            g: tuple[str, ...] = (f.kind, f.source or "", f.lag)
        elif f.kind == "window":
            g = (f.kind, f.source or "", f.lag, f.window)
        else:
            continue
        groups.setdefault(g, []).append(f)
    return groups


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql(kind: str, src: Source, members: list[Feature], key: str,
         group: tuple[str, ...]) -> str:
    s = f"s_{src.name}"
    keyjoin = f"AND s.{_q(key)} = p.{_q(key)}" if src.entity is not None else ""
    known = src.available_at or src.time
    avail = f"AND s.{_q(src.available_at)} <= p.{ORIGIN}" if src.available_at else ""
    # several rows may match one point: issues of a forecast for one day, made at
    # different times; the latest one known at the origin is the point's value
    latest = (f"QUALIFY row_number() OVER (PARTITION BY p.{ROW} ORDER BY "
              f"s.{_q(known or '')} DESC NULLS LAST) = 1") if known else ""
    if kind == "lag":
        hi = f"_hi_{_days(duration(group[2], what='lag'))}"
        cols = ", ".join(f"s.{_q(f.column or '')} AS {_q(f.name)}" for f in members)
        return (f"SELECT p.{ROW}, {cols} FROM p LEFT JOIN {s} s "
                f"ON s.{_q(src.time or '')} = p.{hi} {keyjoin} {avail} {latest}")
    if kind == "window":
        lag_td = duration(group[2], what="lag")
        hi = f"_hi_{_days(lag_td)}"
        lo = f"_lo_{_days(lag_td + duration(group[3], what='window'))}"
        # ORDER BY makes float sums independent of thread scheduling: same inputs, same
        # bits, so the model trained on them is byte-identical
        order = f"ORDER BY s.{_q(src.time or '')}"
        aggs = ", ".join(f"{_window_agg(f, src, hi, order)} AS {_q(f.name)}" for f in members)
        t = _q(src.time or "")
        # only the source rows some point's window can reach: the cost stays flat as
        # history grows
        reach = (f"(SELECT * FROM {s} WHERE {t} > (SELECT MIN({lo}) FROM p) "
                 f"AND {t} <= (SELECT MAX({hi}) FROM p))")
        return (f"SELECT p.{ROW}, {aggs} FROM p LEFT JOIN {reach} s "
                f"ON s.{t} > p.{lo} AND s.{t} <= p.{hi} "
                f"{keyjoin} {avail} GROUP BY p.{ROW}")
    if kind == "scheduled":
        cols = ", ".join(f"s.{_q(f.column or '')} AS {_q(f.name)}" for f in members)
        return (f"SELECT p.{ROW}, {cols} FROM p LEFT JOIN {s} s "
                f"ON s.{_q(src.time or '')} = p.{TARGET_TIME} {keyjoin} {avail} {latest}")
    # lookup: the latest row known at the origin
    cols = ", ".join(f"s.{_q(f.column or '')} AS {_q(f.name)}" for f in members)
    if known is None:
        return f"SELECT p.{ROW}, {cols} FROM p LEFT JOIN {s} s ON TRUE {keyjoin}"
    on = f"s.{_q(key)} = p.{_q(key)} AND " if src.entity is not None else ""
    return (f"SELECT p.{ROW}, {cols} FROM p ASOF LEFT JOIN {s} s "
            f"ON {on}p.{ORIGIN} >= s.{_q(known)}")


def _window_agg(f: Feature, src: Source, hi: str, order: str) -> str:
    """The SQL aggregate of one window feature over the joined rows ``s``.

    ``last`` is the value at the latest time (the largest value if several rows share it);
    ``time_since_last`` is in seconds from the window's end ``hi``, computed on integer
    microseconds so it equals the online value (``tuesday.data.events``) to the bit.
    """
    t = f"s.{_q(src.time or '')}"
    if f.agg == "time_since_last":
        where = f" FILTER (WHERE s.{_q(f.column)} IS NOT NULL)" if f.column else ""
        return (f"CAST(epoch_us(MAX(p.{hi})) - epoch_us(MAX({t}){where}) AS DOUBLE) "
                "/ 1e6")
    col = f"s.{_q(f.column or '')}"
    if f.agg == "last":
        return f"(MAX(struct_pack(t := {t}, v := {col})) FILTER (WHERE {col} IS NOT NULL)).v"
    return f"{f.agg.upper()}({col} {order})"


# ------------------------------------------------------ lag and window features
#
# The values of the SQL of ``_sql`` for lag and window features, without its joins. For
# a window DuckDB runs ``s.key = p.key AND s.t > p.lo AND s.t <= p.hi`` as a hash join on
# the key with the time range as a residual filter, so every point probes every row of
# its entity. Here a source's rows are sorted once by (entity, time); a point's window is
# one contiguous slice [i0, i1) of them, found by two binary searches, and a lag is the
# one row at its time. The aggregates are folded over the slices in time order, one row
# position at a time for all points together (numpy), with the availability filter
# (``available_at <= origin``) and missing values applied per row. Folding in time order
# adds the values in the order ``SUM(x ORDER BY t)`` does, so sums and means are the
# same to the bit (a prefix-sum difference would not be, and loses precision on large
# magnitudes; only rows tied at the same time may be added in another order, which the
# SQL leaves undefined). The cost is the rows inside the windows, not the rows of the
# entity, and only source rows some point can reach are sorted.
#
# Column types this path does not handle (text values, timezone-aware times, non-text
# keys...) and lags with several rows at one time fall back to the SQL.

_PER_POINT = 16  # fewer active points than this: finish each one on its own


@dataclass
class _Rows:
    """A source's rows that the points' lags and windows can reach, sorted by (entity,
    time) (ties in time keep the table's order), and where each point's entity starts.

    ``comb`` is the sort key: entity code * width + the time's offset from the first
    time (or, if that could overflow, its rank among the distinct times ``uniq``), so
    that one binary search finds the rows of an entity at or before a time.
    """

    n: int  # points
    target: np.ndarray  # target time of each point (us)
    origin: np.ndarray | None  # forecast origin of each point (us), with ``available_at``
    ok: np.ndarray  # points with a target time and a known (or no) entity
    base: np.ndarray  # entity code * width of each point
    width: int
    porder: np.ndarray  # the points sorted by (entity, target time)
    comb: np.ndarray
    first: int  # the first time (us)
    span: int  # last - first time (us)
    uniq: np.ndarray | None  # the distinct times, when ``comb`` holds ranks
    times: np.ndarray  # time of each sorted row (us)
    avail: np.ndarray | None  # availability of each sorted row (us; null: never)
    values: dict[str, tuple[np.ndarray, np.ndarray | None]]  # sorted values, validity
    ints: frozenset[str]  # integer columns
    cache: dict[tuple[int, bool], np.ndarray] = field(default_factory=dict)

    @classmethod
    def prepare(cls, points: pd.DataFrame, table: pa.Table, src: Source, key: str,
                feats: list[Feature]) -> _Rows | None:
        """None when a column's type is not one this path handles (then the SQL runs):
        times must be dates or naive timestamps, values float64 or signed integers, the
        entity key text."""
        feats = [f for f in feats if f.kind in ("lag", "window")]
        columns = _read_columns(table, src, key, feats)
        if columns is None:
            return None
        t, avail, values = columns
        n = len(points)
        target = points[TARGET_TIME].to_numpy(dtype="datetime64[us]").view(np.int64)
        ok_p = target != NAT
        target = np.where(ok_p, target, 0)  # no overflow below (those points have no rows)
        origin = None
        if src.available_at:
            origin = points[ORIGIN].to_numpy(dtype="datetime64[us]").view(np.int64)
        ok_s = _reachable(t, target, ok_p, feats)
        rows = np.flatnonzero(ok_s)
        if src.entity is not None:
            keys = table.column(key)
            if len(rows) < len(t):
                keys = keys.take(pa.array(rows))
            pcodes, scodes, ncodes = asof_key_codes(points[key], keys)
            rows, scodes = rows[scodes >= 0], scodes[scodes >= 0]
            ok_p &= pcodes >= 0
        else:
            pcodes, scodes, ncodes = np.zeros(n, np.int64), np.zeros(len(rows), np.int64), 1
        first = int(t[rows].min()) if len(rows) else 0
        span = int(t[rows].max()) - first if len(rows) else 0
        # times as offsets from the first one when entity codes times the span fit in
        # an int64; otherwise their ranks among the distinct times
        uniq = None if ncodes * (span + 2) < 1 << 62 else np.unique(t[rows])
        rel = t[rows] - first if uniq is None else np.searchsorted(uniq, t[rows])
        width = span + 2 if uniq is None else len(uniq) + 1
        if ncodes * width >= 1 << 62:
            return None
        comb = scodes * width + rel
        order = np.argsort(comb, kind="stable")
        comb, rows = comb[order], rows[order]
        base = np.where(ok_p, pcodes, 0) * width
        # points in (entity, target time) order: every search below is then on sorted
        # keys, which binary search walks in order
        porder = np.lexsort((target, base))
        avail_s = None
        if avail is not None:
            a = avail[rows]
            avail_s = np.where(a == NAT, NEVER, a)
        vals = {c: (v[rows], None if valid is None else valid[rows])
                for c, (v, valid) in values.items()}
        ints = frozenset(c for c, (v, _) in values.items() if v.dtype.kind == "i")
        return cls(n, target, origin, ok_p, base, width, porder, comb, first, span, uniq,
                   t[rows], avail_s, vals, ints)

    def upto(self, before: int, *, inclusive: bool = True) -> np.ndarray:
        """For each point, the position among the sorted rows just past its entity's
        rows at or before its target time minus ``before`` us (``inclusive=False``:
        before it). Cached: lags and windows share most of these searches."""
        key = (before, inclusive)
        if key not in self.cache:
            when = self.target - before
            side: Literal["left", "right"] = "right" if inclusive else "left"
            if self.uniq is None:
                rel = np.clip(when - self.first, -1, self.span + 1)
            else:
                rel = np.searchsorted(self.uniq, when, side)
                side = "left"
            q = (self.base + rel)[self.porder]
            out = np.empty(self.n, np.int64)
            out[self.porder] = np.searchsorted(self.comb, q, side)
            self.cache[key] = out
        return self.cache[key]

    def windows(self, members: list[Feature], group: tuple[str, ...]
                ) -> dict[str, np.ndarray]:
        """Window features of one (lag, window) group: the rows with ``lo < time <= hi``
        (and available at the origin), as ``_sql`` selects them."""
        lag_us = us_of(duration(group[2], what="lag"))
        hi = self.target - lag_us
        i1 = self.upto(lag_us)
        i0 = self.upto(lag_us + us_of(duration(group[3], what="window")))
        lens = np.where(self.ok, np.maximum(i1 - i0, 0), 0)
        out = fold_windows(members, lens, i0, self.times, self.values, self.avail,
                           self.origin, hi, self.n, per_point=_PER_POINT)
        for f in members:
            if f.agg in ("min", "max", "last") and f.column in self.ints:
                out[f.name] = int_if_whole(out[f.name])
        return out

    def lags(self, members: list[Feature]) -> dict[str, np.ndarray] | None:
        """Lag features of one lag: the row at exactly ``hi`` if available at the origin;
        None when some point has several rows at its ``hi`` (left to the SQL)."""
        lag_us = us_of(duration(members[0].lag, what="lag"))
        nrows = len(self.comb)
        if not nrows:
            return {f.name: np.full(self.n, np.nan) for f in members}
        j = self.upto(lag_us, inclusive=False)  # the first row at or after hi
        at = np.minimum(j, nrows - 1)
        c = self.comb[at]
        hit = self.ok & (j < nrows) & (self.times[at] == self.target - lag_us) & (
            c >= self.base) & (c - self.base < self.width)
        nxt = np.minimum(at + 1, nrows - 1)
        if (hit & (nxt > at) & (self.comb[nxt] == c)).any():
            return None
        if self.avail is not None and self.origin is not None:
            hit &= self.avail[at] <= self.origin
        out: dict[str, np.ndarray] = {}
        for f in members:
            v, valid = self.values[f.column or ""]
            found = hit if valid is None else hit & valid[at]
            x = np.where(found, v[at], np.nan)
            out[f.name] = int_if_whole(x) if f.column in self.ints else x
        return out


def _read_columns(table: pa.Table, src: Source, key: str, feats: list[Feature]
                  ) -> tuple[np.ndarray, np.ndarray | None, Values] | None:
    """The source's times, availability times and value columns as numpy; None when a
    column's type is not one the numpy path handles: times must be dates or naive
    timestamps, values float64 or signed integers, the entity key text."""
    names = table.column_names
    tcol, acol = src.time or "", src.available_at
    cols = sorted({f.column for f in feats if f.column})
    if not feats or tcol not in names or (acol and acol not in names) or any(
            c not in names for c in cols):
        return None
    if src.entity is not None and (key not in names or not is_text(table.column(key).type)):
        return None
    t = micros_of(table.column(tcol))
    avail = micros_of(table.column(acol)) if acol else None
    if t is None or (acol and avail is None):
        return None
    values: Values = {}
    for c in cols:
        got = number_values(table.column(c))
        if got is None:
            return None
        values[c] = got
    return t, avail, values


def _reachable(t: np.ndarray, target: np.ndarray, ok_p: np.ndarray, feats: list[Feature]
               ) -> np.ndarray:
    """The source rows some point's lag or window can reach: the cost stays flat as
    history grows."""
    ok_s = t != NAT
    if ok_p.any():
        lags = [us_of(duration(f.lag, what="lag")) for f in feats]
        reach = [us_of(duration(f.lag, what="lag")) + (
            us_of(duration(f.window, what="window")) if f.kind == "window" else 1)
            for f in feats]
        ok_s &= (t > target[ok_p].min() - max(reach)) & (t <= target[ok_p].max() - min(lags))
    else:
        ok_s[:] = False
    return ok_s
