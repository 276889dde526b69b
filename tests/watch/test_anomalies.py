"""Shock checks: a day's accuracy against the model's own backtest, a key feature's index
across a panel, and seasonal features left out of the drift vote."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tuesday.project import LoadedProject, Model, Watch, check_project
from tuesday.watch import anomalies


@pytest.fixture(scope="module")
def model(ridership: LoadedProject) -> Model:
    m = ridership.project.model("ridership_14d")
    return dataclasses.replace(m, metrics=("wape", "mae"),
                               watch=Watch(key=("temp_last_known",)))


def days_frame(levels: list[float], items: int = 20, seed: int = 0) -> pd.DataFrame:
    """``items`` items over len(levels) days; each day the actual is ``level`` times
    what was forecast (a storm day has a level of 1/3)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, level in enumerate(levels):
        p = rng.uniform(5, 15, items)
        y = rng.poisson(p * level).astype(float)
        rows.append(pd.DataFrame({"entity": [f"i{k}" for k in range(items)],
                                  "target_time": pd.Timestamp("2015-06-01")
                                  + pd.Timedelta(days=i), "y": y, "prediction": p}))
    return pd.concat(rows, ignore_index=True)


def test_a_storm_day_breaks_the_limits_and_calm_days_do_not(model: Model) -> None:
    lim = anomalies.limits(model, 0.3, {"q99": 0.45, "total_ratio_q01": 0.8,
                                        "total_ratio_q99": 1.25})
    assert lim is not None
    assert lim["error"] == pytest.approx(0.6)  # 2 x the backtest beats its worst day
    assert (lim["total_high"], lim["total_low"]) == (2.0, 0.5)
    days = anomalies.day_accuracy(model, days_frame([1, 1, 1, 1 / 3, 1]), lim)
    assert [d["anomaly"] for d in days] == [False, False, False, True, False]
    storm = days[3]
    assert storm["total_ratio"] > 2.0 and "x the actual" in storm["why"]
    y = days_frame([1, 1, 1, 1 / 3, 1])
    g = y[y["target_time"] == pd.Timestamp("2015-06-04")]
    assert storm["value"] == pytest.approx(float(np.abs(g["prediction"] - g["y"]).sum()
                                                 / g["y"].sum()))
    # a backtest whose own days were that bad raises the limit
    loose = anomalies.limits(model, 0.3, {"q99": 5.0, "total_ratio_q99": 4.0})
    assert not any(d["anomaly"] for d in anomalies.day_accuracy(
        model, days_frame([1, 1, 1, 1 / 3, 1]), loose))


def test_a_price_index_moves_where_a_distribution_test_hardly_could() -> None:
    rng = np.random.default_rng(1)
    base = pd.DataFrame({"entity": [f"i{k}" for k in range(91)],
                         "price": rng.uniform(9, 35, 91)})
    ref = pd.concat([base] * 28, ignore_index=True)
    up = base.assign(price=base["price"] * 1.06)
    assert anomalies.panel_index(ref, pd.concat([up] * 7), "price") == pytest.approx(1.06)
    assert anomalies.panel_index(ref, pd.concat([base] * 7), "price") == pytest.approx(1.0)
    m = Model("units", None, "sales", "units", (), (),  # type: ignore[arg-type]
              watch=Watch(key=("price",), max_index_change=0.05))
    (k,) = anomalies.key_drift(m, ref, pd.concat([up] * 7), [])
    assert k["drifted"] and k["index"] == pytest.approx(1.06)
    (calm,) = anomalies.key_drift(m, ref, pd.concat([base] * 7), [])
    assert not calm["drifted"]


def test_seasonal_features_do_not_vote(model: Model) -> None:
    m = dataclasses.replace(model, watch=Watch(seasonal=("temp_last_known",)))
    out = anomalies.not_voting(m)
    assert "temp_last_known" in out and "day_of_week" in out and "holiday_is_holiday" in out
    assert "rides_lag_14d" not in out


def test_watch_declaration_is_checked(ridership: LoadedProject) -> None:
    m = ridership.project.model("ridership_14d")
    bad = dataclasses.replace(m, watch=Watch(key=("price",), key_ticks=0,
                                             max_total_ratio=1.0))
    problems = check_project(dataclasses.replace(ridership.project, models=(bad,)))
    text = " ".join(problems)
    assert "names 'price', which is not a feature" in text
    assert "'key_ticks' must be a whole number >= 1" in text
    assert "'max_total_ratio' must be a number above 1" in text
