"""Alert arithmetic: evidence is counted in target days, not rows (133 items on one day
are one day), and the replay's WAPE says how it aggregates (per item, store total)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tuesday.loop import recent, timeline
from tuesday.project import Baseline, Model, Policy
from tuesday.watch import monitoring, quality

ITEMS = 133


def report_with(days: int, rows: int) -> dict[str, object]:
    return {"model": "units_1d", "primary_metric": "wape",
            "quality": {"rows_with_ground_truth": rows, "days_with_ground_truth": days,
                        "model": {"wape": 0.9}, "baselines": {"ma28": {"wape": 0.5}},
                        "best_baseline": "ma28", "beats_baseline": False}}


def test_evidence_counts_target_days() -> None:
    t = pd.date_range("2016-06-01", periods=3, freq="D").repeat(ITEMS)
    assert quality.evidence(pd.DataFrame({"target_time": t})) == 3
    assert quality.evidence(pd.DataFrame({"target_time": [pd.NaT] * 4})) == 4
    assert quality.evidence(pd.DataFrame({"target_time": []})) == 0


def test_one_day_of_many_items_raises_no_quality_alert() -> None:
    assert monitoring.alerts_for(report_with(days=1, rows=ITEMS)) == []
    days = monitoring.MIN_DAYS_FOR_QUALITY
    (alert,) = monitoring.alerts_for(report_with(days=days, rows=days * ITEMS))
    assert alert["severity"] == "critical" and alert["details"]["days"] == days
    assert f"({days} target days)" in alert["title"]


def test_the_loop_judges_after_min_days_not_min_rows() -> None:
    pol = Policy(min_days=7)
    q = {"rows_with_ground_truth": 6 * ITEMS, "days_with_ground_truth": 6,
         "model": {"wape": 0.9}, "baselines": {"ma28": {"wape": 0.5}},
         "best_baseline": "ma28", "beats_baseline": False}
    expected = {"metric": "wape", "backtest": 0.5}
    assert recent._judge(q, expected, pol, "wape")["degraded"] is False
    q7 = {**q, "rows_with_ground_truth": 7 * ITEMS, "days_with_ground_truth": 7}
    judged = recent._judge(q7, expected, pol, "wape")
    assert judged["degraded"] is True and "worse than baseline 'ma28'" in judged["why"]


def test_replay_wape_per_item_and_store_total() -> None:
    """Two items whose errors cancel within each day: the store total says the model is
    perfect and the baseline is not; per item, it is the other way round."""
    days = pd.date_range("2016-06-01", periods=14, freq="D")
    rows = []
    for d in days:
        rows.append({"entity": "a", "target_time": d, "version": 1, "actual": 10.0,
                     "prediction": 14.0, "ma28": 11.0})
        rows.append({"entity": "b", "target_time": d, "version": 1, "actual": 10.0,
                     "prediction": 6.0, "ma28": 11.0})
    j = pd.DataFrame(rows)
    acc = timeline.daily_accuracy(j, ["ma28"])
    model = Model("units_1d", None, "sales", "units", (),  # type: ignore[arg-type]
                  (Baseline("ma28", "moving_average"),))
    got = timeline._overall(acc, model)
    y, p, b = (j[c].to_numpy() for c in ("actual", "prediction", "ma28"))
    assert got["aggregation"] == "item" and "per item" in got["definition"]
    assert got["wape"] == pytest.approx(np.abs(p - y).sum() / y.sum())  # 0.4
    assert got["baseline_wape"] == pytest.approx(np.abs(b - y).sum() / y.sum())  # 0.1
    assert got["beats_baseline"] is False
    tot = got["store_total"]
    daily = j.groupby("target_time")[["actual", "prediction", "ma28"]].sum()
    assert tot["wape"] == pytest.approx(0.0)
    assert tot["baseline_wape"] == pytest.approx(
        (daily["ma28"] - daily["actual"]).abs().sum() / daily["actual"].sum())
    assert tot["beats_baseline"] is True and "store total" in tot["definition"]
    # the rolling WAPE of the chart is per item too
    assert acc["wape"].dropna().iloc[-1] == pytest.approx(0.4)
