"""Point-in-time features: an oracle (slow, obviously correct loops) and a leakage test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuesday.data.calendar_features import calendar_values, holiday_values
from tuesday.data.features import feature_frame, points_frame
from tuesday.project import (
    Baseline,
    Column,
    Contract,
    Entity,
    Feature,
    Model,
    Project,
    Source,
    calendar,
    holiday,
    lag,
    lookup,
    scheduled,
    time_since_last,
    window,
)

shop = Entity("shop")
SALES = Source("sales", Contract((Column("shop", "str"), Column("day", "date"),
                                  Column("qty", "float"))), time="day", entity=shop)
PRICES = Source("prices", Contract((Column("shop", "str"), Column("day", "date"),
                                    Column("seen", "timestamp"), Column("price", "float"))),
                time="day", available_at="seen", entity=shop)
PLAN = Source("plan", Contract((Column("day", "date"), Column("published", "timestamp"),
                                Column("promo", "float"))), time="day", available_at="published")
FEATURES = (
    lag("sales", "qty", "3d"),
    lag("sales", "qty", "7d"),
    window("sales", "qty", "4d", lag="3d"),
    window("sales", "qty", "5d", lag="3d", agg="sum"),
    window("sales", "qty", "5d", lag="3d", agg="count"),
    window("sales", "qty", "6d", lag="4d", agg="max"),
    lookup("prices", "price"),
    scheduled("plan", "promo", default=0.0),
    calendar("day_of_week"),
    holiday("US", "is_holiday"),
)
MODEL = Model("m", shop, "sales", "qty", FEATURES, (Baseline("n", "naive"),), horizon="3d")
PROJECT = Project("p", (SALES, PRICES, PLAN), (MODEL,))
DAY = pd.Timedelta(days=1)


def make_data(seed: int, n_days: int = 40) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-06-20")
    rows = []
    for s in ("a", "b", "c"):
        for d in range(n_days):
            if rng.random() < 0.2:  # gaps
                continue
            rows.append((s, start + d * DAY, float(rng.integers(0, 50))))
    sales = pd.DataFrame(rows, columns=["shop", "day", "qty"])
    prices = []
    for s in ("a", "b"):
        for d in range(0, n_days, 3):
            day = start + d * DAY
            # some prices become known late, some the same day
            seen = day + pd.Timedelta(hours=int(rng.integers(0, 96)))
            prices.append((s, day, seen, float(rng.normal(10, 2))))
    price = pd.DataFrame(prices, columns=["shop", "day", "seen", "price"])
    plan = pd.DataFrame({"day": [start + d * DAY for d in range(n_days)],
                         "published": [start + d * DAY - pd.Timedelta(days=int(k))
                                       for d, k in enumerate(rng.integers(0, 8, n_days))],
                         "promo": rng.integers(0, 2, n_days).astype(float)})
    return {"sales": sales, "prices": price, "plan": plan}


def arrow(data: dict[str, pd.DataFrame]) -> dict[str, pa.Table]:
    out = {}
    for name, frame in data.items():
        f = frame.copy()
        for c in f.columns:
            if pd.api.types.is_datetime64_any_dtype(f[c]):
                f[c] = f[c].astype("datetime64[us]")
        out[name] = pa.Table.from_pandas(f, preserve_index=False)
    return out


def oracle(data: dict[str, pd.DataFrame], shop_key: str, target: pd.Timestamp) -> dict:
    """Obviously-correct loops over the rows."""
    origin = target - 3 * DAY
    sales = data["sales"][data["sales"]["shop"] == shop_key]
    by_day = {r.day: r.qty for r in sales.itertuples()}
    out: dict[str, float] = {}
    out["qty_lag_3d"] = by_day.get(target - 3 * DAY, math.nan)
    out["qty_lag_7d"] = by_day.get(target - 7 * DAY, math.nan)

    def win(days: int, lag_days: int) -> list[float]:
        hi = target - lag_days * DAY
        lo = hi - days * DAY
        return [q for d, q in by_day.items() if lo < d <= hi]

    w = win(4, 3)
    out["qty_mean_4d_lag_3d"] = float(np.mean(w)) if w else math.nan
    w = win(5, 3)
    out["qty_sum_5d_lag_3d"] = float(np.sum(w)) if w else math.nan
    out["qty_count_5d_lag_3d"] = float(len(w))
    w = win(6, 4)
    out["qty_max_6d_lag_4d"] = float(np.max(w)) if w else math.nan
    prices = data["prices"]
    known = prices[(prices["shop"] == shop_key) & (prices["seen"] <= origin)]
    # latest by availability time
    out["price"] = float(known.sort_values("seen")["price"].iloc[-1]) if len(known) else math.nan
    plan = data["plan"]
    hit = plan[(plan["day"] == target) & (plan["published"] <= origin)]
    out["promo"] = float(hit["promo"].iloc[0]) if len(hit) else 0.0
    out["day_of_week"] = float(target.day_of_week)
    out["holiday_is_holiday"] = 1.0 if target.date() == pd.Timestamp("2024-07-04").date() \
        else 0.0
    return out


def points(n_days: int = 40) -> pd.DataFrame:
    start = pd.Timestamp("2024-06-20")
    keys, times = [], []
    for s in ("a", "b", "c", "zz"):
        for d in range(0, n_days + 5):
            keys.append(s)
            times.append(start + d * DAY)
    return points_frame(MODEL, pd.Series(keys), pd.Series(times))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feature_frame_matches_oracle(seed: int) -> None:
    data = make_data(seed)
    pts = points()
    got = feature_frame(PROJECT, MODEL, pts, arrow(data))
    assert list(got.columns) == [f.name for f in FEATURES]
    assert len(got) == len(pts)
    for i, row in pts.iterrows():
        want = oracle(data, row["shop"], row["_target_time"])
        for name, value in want.items():
            g = got.at[i, name]
            if name == "qty_count_5d_lag_3d" and value == 0:
                assert g == 0 or math.isnan(g)
                continue
            assert (math.isnan(value) and math.isnan(g)) or g == pytest.approx(value, abs=1e-9), \
                (name, row["shop"], row["_target_time"], g, value)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(5, 35), bump=st.floats(-100, 100))
def test_changing_the_future_changes_nothing(seed: int, cut: int, bump: float) -> None:
    """Rows not yet available at a point's origin never reach its features."""
    data = make_data(seed)
    pts = points()
    origin_cut = pd.Timestamp("2024-06-20") + cut * DAY
    keep = (pts["_origin"] < origin_cut).to_numpy()
    before = feature_frame(PROJECT, MODEL, pts, arrow(data))[keep]
    future = {k: v.copy() for k, v in data.items()}
    s = future["sales"]
    s.loc[s["day"] >= origin_cut, "qty"] += bump
    p = future["prices"]
    p.loc[p["seen"] >= origin_cut, "price"] += bump
    pl = future["plan"]
    pl.loc[pl["published"] >= origin_cut, "promo"] += bump
    after = feature_frame(PROJECT, MODEL, pts, arrow(future))[keep]
    pd.testing.assert_frame_equal(before, after)


def test_calendar_and_holidays() -> None:
    t = pd.Series(pd.to_datetime(["2024-12-23", "2024-12-25", "2024-12-31", "2025-01-01"]))
    assert calendar_values("day_of_week", t).tolist() == [0, 2, 1, 2]
    assert calendar_values("month", t).tolist() == [12, 12, 12, 1]
    assert holiday_values("US", "is_holiday", t).tolist() == [0, 1, 0, 1]
    assert holiday_values("US", "days_to_next", t).tolist() == [2, 0, 1, 0]
    assert holiday_values("US", "days_since_last", t).tolist() == [
        (pd.Timestamp("2024-12-23") - pd.Timestamp("2024-11-28")).days, 0, 6, 0]


# ------------------------------------------- window features: fast path vs the SQL

EV = Source("ev", Contract((Column("shop", "str"), Column("ts", "timestamp"),
                            Column("seen", "timestamp"), Column("x", "float"),
                            Column("n", "int"))),
            time="ts", available_at="seen", entity=shop)
EV_NOW = Source("ev_now", Contract((Column("shop", "str"), Column("day", "date"),
                                    Column("x", "float"), Column("n", "int"))),
                time="day", entity=shop)
EV_ALL = Source("ev_all", Contract((Column("ts", "timestamp"), Column("x", "float"))),
                time="ts")
AGGS = ("mean", "sum", "min", "max", "count", "last")


def _window_feats(src: str, spans: list[tuple[str, str]], cols: tuple[str, ...]
                  ) -> tuple[Feature, ...]:
    out: list[Feature] = []
    for w, g in spans:
        for c in cols:
            out += [window(src, c, w, lag=g, agg=a) for a in AGGS]
            out.append(time_since_last(src, c, within=w, lag=g,
                                       name=f"{src}_{c}_since_{w}_{g}"))
        out.append(time_since_last(src, within=w, lag=g, name=f"{src}_since_{w}_{g}"))
    return tuple(out)


def _events(rng: np.random.Generator, n: int, *, hours: bool, avail: bool, nan: bool,
            big: bool, ties: bool, keyed: bool = True) -> pa.Table:
    start = pd.Timestamp("2024-03-01")
    unit = pd.Timedelta(hours=1) if hours else DAY
    shops = rng.choice(["a", "b", "c", None], n, p=[0.4, 0.3, 0.25, 0.05])
    steps = rng.integers(0, 30, n)  # repeats: ties in time
    ts = pd.Series(start + steps * unit).astype("datetime64[us]")
    ts[rng.random(n) < 0.03] = pd.NaT
    scale = 10.0 ** rng.integers(-3, 15, n) if big else 1.0
    x = pd.Series(rng.normal(0, 1, n) * scale)
    x[rng.random(n) < 0.15] = None
    frame = pd.DataFrame({"shop": shops, "ts": ts, "x": x,
                          "n": pd.array(rng.integers(-1000, 1000, n), dtype="Int64")})
    frame.loc[rng.random(n) < 0.1, "n"] = pd.NA
    if not ties:  # one row per (key, time), as a table with that unique key holds
        frame = frame.drop_duplicates(["shop", "ts"] if keyed else ["ts"])
        frame = frame.reset_index(drop=True)
        n = len(frame)
    if avail:
        seen = frame["ts"] + pd.to_timedelta(rng.integers(0, 72, n), unit="h")
        seen[rng.random(n) < 0.05] = pd.NaT
        frame["seen"] = seen.astype("datetime64[us]")
    schema = pa.schema([("shop", pa.string()), ("ts", pa.timestamp("us")), ("x", pa.float64()),
                        ("n", pa.int64())] + ([("seen", pa.timestamp("us"))] if avail else []))
    table = pa.Table.from_pandas(frame, schema, preserve_index=False)
    if nan:  # NaN values (not nulls) are numbers to SQL: they propagate
        xs = table.column("x").to_numpy(zero_copy_only=False).copy()
        valid = table.column("x").is_valid().to_numpy(zero_copy_only=False)
        hit = rng.random(n) < 0.05
        xs[hit] = np.nan
        arr = pa.array(xs, mask=~(valid | hit), from_pandas=False)
        table = table.set_column(table.column_names.index("x"), "x", arr)
    return table


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(0, 120), hours=st.booleans(),
       nan=st.booleans(), big=st.booleans(), ties=st.booleans(),
       horizon_h=st.sampled_from([0, 5, 24, 72]), per_point=st.sampled_from([0, 16, 10**9]))
def test_fast_windows_equal_the_sql(seed: int, n: int, hours: bool, nan: bool, big: bool,
                                    ties: bool, horizon_h: int, per_point: int) -> None:
    """The numpy path of lag and window features gives the SQL's values on random sources with
    nulls, NaN, unknown and null keys, late availability, dates and timestamps. Without
    ties in (key, time) every value is the same to the bit (both add in time order);
    with ties the SQL adds tied rows in no defined order, so sums and means may differ
    in the last bits there (and only there). ``per_point``: below how many points with
    rows left the fold finishes each point on its own (0: never; 10**9: always)."""
    from tuesday.data import features as F
    rng = np.random.default_rng(seed)
    spans = [("3d", "0d"), ("1d", "2d")] if not hours else [("5h", "0d"), ("7h", "3h")]
    feats = (_window_feats("ev", spans, ("x", "n")) + _window_feats("ev_now", spans, ("x",))
             + _window_feats("ev_all", spans, ("x",)))
    if not ties:  # a lag reads the one row at its time
        feats += tuple(lag(s, c, g) for s, c in (("ev", "x"), ("ev", "n"), ("ev_now", "x"),
                                                ("ev_all", "x"))
                       for g in (("0d", "1d") if not hours else ("0d", "3h")))
    ev = _events(rng, n, hours=hours, avail=True, nan=nan, big=big, ties=ties)
    now = _events(rng, n, hours=False, avail=False, nan=nan, big=big, ties=ties)
    now = now.set_column(1, "day", now.column("ts").cast(pa.date32()))
    every = _events(rng, n, hours=hours, avail=False, nan=nan, big=big, ties=ties,
                    keyed=False).select(["ts", "x"])
    model = Model("w", shop, "ev", "x", feats, (), horizon=f"{horizon_h}h")
    project = Project("q", (EV, EV_NOW, EV_ALL), (model,))
    keys = rng.choice(["a", "b", "c", "zz", None], 60)
    unit = pd.Timedelta(hours=1) if hours else DAY
    times = pd.Series(pd.Timestamp("2024-03-01") + rng.integers(-3, 36, 60) * unit)
    times[rng.random(60) < 0.05] = pd.NaT
    pts = points_frame(model, pd.Series(keys), times)
    tabs = {"ev": ev, "ev_now": now, "ev_all": every}
    for src in project.sources:  # no silent fallback to the SQL
        rows = F._Rows.prepare(pts, tabs[src.name], src, "shop",
                               [f for f in feats if f.source == src.name])
        assert rows is not None
        for group, members in F._groups(feats).items():
            if group[0] == "lag" and group[1] == src.name:
                assert rows.lags(members) is not None
    default = F._PER_POINT
    F._PER_POINT = per_point
    try:
        fast = feature_frame(project, model, pts, tabs)
        F._FAST_WINDOWS = False
        sql = feature_frame(project, model, pts, tabs)
    finally:
        F._FAST_WINDOWS, F._PER_POINT = True, default
    added = [f.name for f in feats if f.agg in ("sum", "mean")] if ties else []
    pd.testing.assert_frame_equal(fast.drop(columns=added), sql.drop(columns=added),
                                  check_exact=True)
    if added:
        scale = max(1.0, *(float(np.nanmax(np.abs(t.column("x").to_numpy(
            zero_copy_only=False)), initial=0.0)) for t in tabs.values()))
        pd.testing.assert_frame_equal(fast[added], sql[added], check_exact=False,
                                      rtol=1e-12, atol=1e-13 * scale * max(n, 1))
