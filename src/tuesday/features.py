"""Point-in-time features: one definition, computed for training and for serving.

A prediction point is an entity key and a target time. Its forecast origin is the target
time minus the model's horizon; a feature may only use rows whose event time (and
``available_at`` time, when the source has one) is at or before the origin, except
calendar and holiday features of the target time, which are known in advance.

``feature_frame`` computes every feature for many points with DuckDB over the versioned
tables. Training calls it on the label rows; the online store calls the same function on
the points it will serve (``online.materialize``), so training and serving share one code
path and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import duckdb
import holidays as holidays_pkg
import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.asof import asof_join
from tuesday.project import Feature, Model, Project, Source, duration

TARGET_TIME = "_target_time"
ORIGIN = "_origin"
ROW = "_row"


def horizon(model: Model) -> pd.Timedelta:
    return duration(model.horizon, what=f"horizon of model {model.name!r}")


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
        for group, members in _groups(feats).items():
            kind = group[0]
            if kind == "lookup" and _known(project.source(group[1])) is not None:
                src = project.source(group[1])
                _lookup(out, points, tables[src.name], src, members, model.entity.key)
            elif kind in ("lag", "window", "lookup", "scheduled"):
                src = project.source(group[1])
                sql = _sql(kind, src, members, model.entity.key, group)
                res = con.execute(sql).df()
                res = res.set_index(ROW).reindex(np.arange(len(points)))
                for f in members:
                    out[f.name] = res[f.name].to_numpy()
        t = points[TARGET_TIME]
        for f in feats:
            if f.kind == "calendar":
                out[f.name] = calendar_values(f.part or "", t)
            elif f.kind == "holiday":
                out[f.name] = holiday_values(f.country or "", f.part or "", t)
            elif f.kind == "request":
                if request is not None and f.name in request.columns:
                    out[f.name] = pd.to_numeric(request[f.name], errors="coerce").to_numpy()
                else:
                    out[f.name] = np.nan
        for f in feats:
            if f.default is not None:
                out[f.name] = out[f.name].fillna(f.default)
            if out[f.name].dtype == object:
                out[f.name] = pd.to_numeric(out[f.name], errors="coerce")
    finally:
        con.close()
    return out[[f.name for f in feats]]


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
    if kind == "lag":
        hi = f"_hi_{_days(duration(group[2], what='lag'))}"
        cols = ", ".join(f"s.{_q(f.column or '')} AS {_q(f.name)}" for f in members)
        # a table is append-only with a unique (key, time): at most one row matches
        return (f"SELECT p.{ROW}, {cols} FROM p LEFT JOIN {s} s "
                f"ON s.{_q(src.time or '')} = p.{hi} {keyjoin} {avail}")
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
                f"ON s.{_q(src.time or '')} = p.{TARGET_TIME} {keyjoin} {avail}")
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
    microseconds so it equals the online value (``tuesday.events``) to the bit.
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


# ------------------------------------------------------------- known-in-advance


def calendar_values(part: str, times: pd.Series) -> np.ndarray:
    """A calendar part of each time (day_of_week: Monday=0).

    Example:
        >>> calendar_values("day_of_week", pd.Series(pd.to_datetime(["2024-01-01"])))
        array([0.])
    """
    t = pd.to_datetime(times).dt
    values = {
        "day_of_week": lambda: t.day_of_week,
        "month": lambda: t.month,
        "day_of_year": lambda: t.day_of_year,
        "day_of_month": lambda: t.day,
        "week_of_year": lambda: t.isocalendar().week,
        "year": lambda: t.year,
    }[part]()
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float,
                                                                        na_value=np.nan)


@lru_cache(maxsize=32)
def _holiday_days(country: str, first: int, last: int) -> np.ndarray:
    days = holidays_pkg.country_holidays(country, years=range(first, last + 1))
    return np.array(sorted(np.datetime64(d, "D") for d in days), dtype="datetime64[D]")


def holiday_values(country: str, part: str, times: pd.Series) -> np.ndarray:
    """Holiday features of each date: ``is_holiday`` (0/1), ``days_to_next`` and
    ``days_since_last`` holiday (capped at 366).

    Example:
        >>> holiday_values("US", "is_holiday", pd.Series(pd.to_datetime(["2024-07-04"])))
        array([1.])
    """
    t = pd.to_datetime(times)
    out = np.full(len(t), np.nan)
    valid = t.notna().to_numpy()
    if not valid.any():
        return out
    days = t[valid].to_numpy().astype("datetime64[D]")
    years = pd.DatetimeIndex(t[valid]).year
    hol = _holiday_days(country, int(years.min()) - 1, int(years.max()) + 1)
    if part == "is_holiday":
        idx = np.searchsorted(hol, days)
        hit = (idx < len(hol)) & (hol[np.minimum(idx, len(hol) - 1)] == days)
        out[valid] = hit.astype(float)
    elif part == "days_to_next":
        idx = np.searchsorted(hol, days, side="left")
        nxt = hol[np.minimum(idx, len(hol) - 1)]
        diff = (nxt - days).astype(int).astype(float)
        out[valid] = np.where(idx < len(hol), np.minimum(diff, 366), 366)
    else:  # days_since_last
        idx = np.searchsorted(hol, days, side="right") - 1
        prev = hol[np.maximum(idx, 0)]
        diff = (days - prev).astype(int).astype(float)
        out[valid] = np.where(idx >= 0, np.minimum(diff, 366), 366)
    return out
