"""The monitor report reads right: accuracy leads the headline, drift is a warning beside
it, the drift column says what it holds, ages read in days, slices by their values, and
a chart of served accuracy against the baselines sits at the top."""

from __future__ import annotations

import re
from typing import Any

from tuesday.watch.monitor_html import age, slice_value
from tuesday.watch.monitoring import render_html


def _window(start: str, model: float, naive: float) -> dict[str, Any]:
    return {"start": start, "end": start, "rows": 7, "model": {"wape": model},
            "baselines": {"seasonal_naive": {"wape": naive}}, "beats_baseline": model < naive,
            "best_baseline": "seasonal_naive"}


def _report(**changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "model": "ridership_14d", "as_of": "2016-08-28T00:00:00", "production_version": 1,
        "predictions_logged": 56, "status": "drift", "primary_metric": "wape",
        "quality": {"rows_with_ground_truth": 55, "rows_served": 55,
                    "model": {"wape": 0.04}, "baselines": {"seasonal_naive": {"wape": 0.08}},
                    "best_baseline": "seasonal_naive", "beats_baseline": True},
        "windows": [_window("2016-07-04", 0.05, 0.09), _window("2016-07-11", 0.03, 0.07),
                    _window("2016-07-18", 0.04, 0.08)],
        "slices": [{"slice": "day_of_week", "value": 0.0, "rows": 8, "model": {"wape": 0.04},
                    "baselines": {"seasonal_naive": {"wape": 0.08}}, "beats_baseline": True}],
        "drift": {"share_drifted": 0.5, "dataset_drifted": True, "columns": [
            {"column": "rides_lag_14d", "method": "ks", "statistic": 0.0123,
             "threshold": 0.05, "drifted": True, "reference_rows": 365, "current_rows": 56},
            {"column": "temp", "method": "wasserstein", "statistic": 0.02,
             "threshold": 0.1, "drifted": False, "reference_rows": 365, "current_rows": 56}]},
        "prediction_drift": None,
        "data_health": [{"source": "ridership", "ingests": 3,
                         "latest": {"as_of": "2016-08-28T00:00:00"},
                         "volume": {"received": 1}, "missing": {},
                         "freshness": {"newest": "2016-08-28T00:00:00",
                                       "age_hours": 89990.0, "ok": None}}],
    }
    report.update(changes)
    return report


def test_drift_over_an_accurate_model_is_a_warning_not_a_red_headline() -> None:
    page = render_html(_report())
    h1 = re.search(r"<h1>.*?</h1>", page).group(0)  # type: ignore[union-attr]
    assert "class=warn" in h1 and "class=bad" not in h1
    assert "accurate" in h1
    assert "50% of the baseline" in page


def test_a_model_worse_than_its_baseline_is_red() -> None:
    q = _report()["quality"] | {"beats_baseline": False, "model": {"wape": 0.1}}
    h1 = re.search(r"<h1>.*?</h1>", render_html(_report(status="degraded", quality=q)))
    assert h1 is not None and "class=bad" in h1.group(0) and "worse" in h1.group(0)


def test_drift_table_names_what_it_shows() -> None:
    page = render_html(_report())
    assert "<th>statistic</th>" not in page
    assert "<td>p-value</td><td>0.0123</td><td>p-value &le; 0.05</td>" in page
    assert "<td>distance</td><td>0.02</td><td>distance &ge; 0.1</td>" in page


def test_ages_and_dates_in_human_units() -> None:
    page = render_html(_report())
    assert "e+04" not in page and "10.3 years" in page
    assert "2016-08-28T00:00:00" not in page
    assert (age(5), age(60), age(24 * 3.5), age(24 * 40)) == ("5 h", "2.5 days", "3.5 days",
                                                             "40 days")


def test_slices_are_labelled_by_their_values() -> None:
    page = render_html(_report())
    assert "day of week: Monday" in page and "= 0.0" not in page
    assert slice_value("day_of_week", 6) == "Sunday"
    assert slice_value("holiday_is_holiday", 1.0) == "yes"
    assert slice_value("month", 12) == "December"
    assert slice_value("region", "north") == "north"


def test_chart_of_served_accuracy_against_the_baselines_comes_first() -> None:
    page = render_html(_report())
    svg = page.index("<svg")
    assert svg < page.index("<h2>")
    chart = page[svg:page.index("</svg>")]
    assert chart.count("<polyline") == 2
    assert "seasonal_naive" in chart and "model" in chart
    assert "<svg" not in render_html(_report(windows=_report()["windows"][:1]))
