"""The replay timeline's events: grouped per day and kind, alert runs as bands, each kind
its own shape and a colour no series uses."""

from __future__ import annotations

import pandas as pd

from tuesday.charts import line_chart
from tuesday.loop import timeline
from tuesday.loop.timeline import _BASELINE_COLORS, _COLORS, _EVENT_STYLE, day_chart, event_marks

FIRST, LAST = pd.Timestamp("2015-01-01"), pd.Timestamp("2015-12-31")


def _events() -> list[dict[str, str]]:
    out = []
    for d in pd.date_range("2015-06-01", "2015-07-10"):  # 40 alert days, 2 a day
        out += [{"date": str(d.date()), "kind": "alert", "text": "quality degraded"},
                {"date": str(d.date()), "kind": "alert", "text": "drift"}]
    for d in pd.date_range("2015-01-08", "2015-12-31", freq="7D"):
        out.append({"date": str(d.date()), "kind": "retrain", "text": "trained"})
    out += [{"date": "2015-03-01", "kind": "promotion", "text": "v2 promoted"},
            {"date": "2015-03-01", "kind": "promotion", "text": "v3 promoted"},
            {"date": "2015-06-01", "kind": "shock", "text": "x0.6"}]
    return out


def test_a_run_of_alert_days_is_one_band() -> None:
    marks, bands = event_marks(_events(), FIRST, LAST)
    assert len(bands) == 1
    (band,) = bands
    assert (band.x0, band.x1) == (151.0, 191.0)
    assert "80 new alert(s)" in band.note
    assert not [m for m in marks if m.color == _EVENT_STYLE["alert"][0]]


def test_one_mark_per_kind_and_day_with_its_count() -> None:
    marks, _ = event_marks(_events(), FIRST, LAST)
    promo = [m for m in marks if m.shape == "triangle"]
    assert len(promo) == 1 and promo[0].label == "2" and "v2 promoted; v3 promoted" in \
        promo[0].note
    assert len([m for m in marks if m.shape == "square"]) == 52
    assert [m.shape for m in marks if m.shape == "line"] == ["line"]  # only the shock


def test_each_kind_has_its_own_shape_and_a_colour_no_series_uses() -> None:
    colours = [c for c, _ in _EVENT_STYLE.values()]
    shapes = [s for _, s in _EVENT_STYLE.values()]
    assert len(set(colours)) == len(colours) and len(set(shapes)) == len(shapes)
    assert not set(colours) & ({*_COLORS.values(), *_BASELINE_COLORS, "#c0392b"})


def test_the_chart_draws_few_vertical_lines() -> None:
    dates = [str(d.date()) for d in pd.date_range(FIRST, LAST)]
    svg = day_chart(dates, [timeline.Series("x", [1.0] * len(dates), "#222")], _events(),
                    title="t")
    assert svg.count("<rect") - 1 == 1  # the frame, then one alert band
    assert svg.count('stroke-dasharray="5 3"') == 1  # the shock
    assert svg.count("<polygon") == 52 + 1  # retrains and the day of promotions
    assert line_chart([0.0], [], x_ticks=[], title="t") == ""
