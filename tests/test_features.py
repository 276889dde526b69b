"""Point-in-time features: an oracle (slow, obviously correct loops) and a leakage test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuesday.features import calendar_values, feature_frame, holiday_values, points_frame
from tuesday.project import (
    Baseline,
    Column,
    Contract,
    Entity,
    Model,
    Project,
    Source,
    calendar,
    holiday,
    lag,
    lookup,
    scheduled,
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
