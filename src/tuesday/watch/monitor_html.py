"""Pieces of the monitor report's HTML page that put numbers in words a reader can use:
the headline (accuracy first, drift as a warning beside it), the chart of served
accuracy against the baselines over time, data ages in days and dates, slice values by
their names (Monday, not ``0.0``) and what the drift column holds (a p-value or a
distance). :func:`tuesday.watch.monitoring.render_html` assembles the page.
"""

from __future__ import annotations

import html
import math
from typing import Any

from tuesday.charts import Series, line_chart
from tuesday.watch.drift import DEFAULT_THRESHOLDS

#: the series colours of the accuracy chart: the model first, then each baseline
COLORS = ("#1f4e9c", "#d35400", "#7f8c8d", "#8e44ad", "#16a085")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_P_VALUE = frozenset({"ks", "chi2", "z"})


def headline(report: dict[str, Any]) -> tuple[str, str, str]:
    """(word, CSS class, sentence) of the report's verdict. Accuracy on ground truth
    leads; feature drift over a model that still beats its baselines is a warning, not
    a failure."""
    status = report.get("status", "")
    q = report.get("quality") or {}
    primary = report.get("primary_metric") or next(iter(q.get("model") or {}), None)
    beats = q.get("beats_baseline")
    sentence = ""
    best = q.get("best_baseline")
    if q.get("rows_with_ground_truth") and primary and best:
        mv = q["model"].get(primary)
        bv = (q["baselines"].get(best) or {}).get(primary)
        sentence = (f"On {q['rows_with_ground_truth']} served rows with ground truth the "
                    f"model's {primary} is {_fmt(mv)}, the best baseline's ({best}) "
                    f"{_fmt(bv)}")
        if _finite(mv) and _finite(bv) and bv:
            sentence += f": {mv / bv:.0%} of the baseline's."
        else:
            sentence += "."
    drifted = bool((report.get("drift") or {}).get("dataset_drifted"))
    if drifted:
        sentence += " Some features drifted from the training data: see Feature drift."
    if status == "degraded" or beats is False:
        return "degraded: worse than a baseline", "bad", sentence
    if status == "anomaly":
        a = (report.get("anomalies") or [None])[-1] or report.get("anomaly") or {}
        return ("anomaly: far off its own backtest", "bad",
                f"{sentence} On {a.get('date', '?')}: {a.get('why', '')}.".strip())
    if status == "no_traffic":
        return "no traffic", "note", sentence or "No predictions were logged."
    if drifted:
        word = "accurate, features drifted" if beats else "features drifted"
        return word, "warn", sentence
    return ("accurate" if beats else status or "ok"), "ok", sentence


def accuracy_chart(report: dict[str, Any]) -> str:
    """SVG: the served model's primary metric per window against each baseline's on the
    same rows (``""`` with fewer than two windows)."""
    rows = report.get("windows") or []
    if len(rows) < 2:
        return ""
    metric = report.get("primary_metric") or next(iter(rows[0]["model"]))
    bls = sorted({b for r in rows for b in r.get("baselines") or {}})
    series = [Series("model", [r["model"].get(metric) for r in rows], COLORS[0])]
    series += [Series(b, [(r["baselines"].get(b) or {}).get(metric) for r in rows],
                      COLORS[1 + i % (len(COLORS) - 1)], dash="5 3")
               for i, b in enumerate(bls)]
    x = list(range(len(rows)))
    every = max(1, math.ceil(len(rows) / 10))
    ticks = [(float(i), str(rows[i]["start"])[:10]) for i in x[::every]]
    return line_chart(x, series, x_ticks=ticks, title=f"Served {metric} against the baselines",
                      y_label=metric, x_label="window start", markers=True)


def age(hours: Any) -> str:
    """An age in hours as people say it: ``5 h``, ``3.5 days``, ``2.5 years``."""
    if not _finite(hours):
        return "&ndash;"
    h = float(hours)
    if h < 48:
        return f"{h:.0f} h"
    d = h / 24
    if d < 365:
        return f"{d:.1f} days" if d < 10 else f"{d:.0f} days"
    return f"{d / 365.25:.1f} years"


def when(value: Any) -> str:
    """A timestamp as its date (and time of day when it is not midnight)."""
    text = "" if value is None else str(value)
    day, _, clock = text.replace("T", " ").partition(" ")
    clock = clock[:5]
    return html.escape(day if clock in ("", "00:00") else f"{day} {clock}")


def slice_value(name: str, value: Any) -> str:
    """A slice's value by its meaning: weekdays and months by name, flags as yes/no,
    whole numbers without ``.0``."""
    v = value
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        if name.endswith("day_of_week") and 0 <= v <= 6:
            return WEEKDAYS[v]
        if name.endswith("month") and 1 <= v <= 12:
            return MONTHS[v - 1]
        if name.startswith("is_") or "_is_" in name:
            return "yes" if v else "no"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def slice_label(row: dict[str, Any]) -> str:
    """``day of week: Monday`` for a slice row."""
    name = str(row["slice"])
    return f"{name.replace('_', ' ')}: {slice_value(name, row['value'])}"


def drift_shown(method: str) -> str:
    """What a drift method's number is: ``p-value`` or ``distance``."""
    return "p-value" if method in _P_VALUE else "distance"


def drift_rule(method: str, threshold: float | None) -> str:
    """When the column counts as drifted, in words (``p-value <= 0.05``)."""
    t = DEFAULT_THRESHOLDS.get(method) if threshold is None else threshold
    if method == "ks":
        return f"p-value &le; {_fmt(t)}"
    if method in _P_VALUE:
        return f"p-value &lt; {_fmt(t)}"
    return f"distance &ge; {_fmt(t)}"


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if _finite(v) else "&ndash;"
