"""Checks that catch real shocks and stay quiet in calm: a day's accuracy against the
model's own backtest (not only against baselines, which fail the same way in a storm),
and the drift of key features (a price) judged one by one, by an index for panels.

Example:
    >>> import pandas as pd
    >>> ref = pd.DataFrame({"entity": ["a", "b"], "price": [10.0, 20.0]})
    >>> cur = pd.DataFrame({"entity": ["a", "b"], "price": [10.6, 21.2]})
    >>> round(panel_index(ref, cur, "price"), 3)
    1.06
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tuesday.project import Metric, Model, Watch
from tuesday.train import evaluation


def watch_of(model: Model) -> Watch:
    """What the monitor watches for a model: its declared ``Watch``, or the default."""
    return model.watch if model.watch is not None else Watch()


def not_voting(model: Model) -> set[str]:
    """Features left out of the dataset-drift share: calendar and holiday features
    (fixed by the date: their drift is the season) and those declared seasonal."""
    return {f.name for f in model.features if f.kind in ("calendar", "holiday")} | set(
        watch_of(model).seasonal)


# --------------------------------------------------------------- day accuracy


def limits(model: Model, backtest: float | None, profile: dict[str, Any] | None
           ) -> dict[str, Any] | None:
    """The absolute limits a target day is held to: its primary metric at most
    ``max_error_ratio`` x the backtest's (and above the backtest's 99th-percentile
    day), its forecast total within ``max_total_ratio`` of the actual (and beyond the
    backtest's days). None for metrics where higher is better, or without a backtest
    value."""
    w = watch_of(model)
    way = evaluation.direction(model).get(model.primary_metric)
    if way == "higher" or backtest is None or not np.isfinite(backtest):
        return None
    base = abs(backtest) if way == "zero" else backtest
    error = w.max_error_ratio * base
    hi, lo = w.max_total_ratio, 1.0 / w.max_total_ratio
    if profile:
        error = max(error, float(profile.get("q99") or 0.0))
        if profile.get("total_ratio_q99") is not None:
            hi = max(hi, float(profile["total_ratio_q99"]))
        if profile.get("total_ratio_q01") is not None:
            lo = min(lo, float(profile["total_ratio_q01"]))
    return {"metric": model.primary_metric, "backtest": backtest, "error": error,
            "total_high": hi, "total_low": lo}


def day_accuracy(model: Model, joined: pd.DataFrame, lim: dict[str, Any] | None
                 ) -> list[dict[str, Any]]:
    """Each target day of ``joined`` (served rows with ground truth: ``target_time``,
    ``y``, ``prediction``): its rows, primary metric, forecast and actual totals, and
    whether it breaks a limit (``anomaly``, with ``why``)."""
    if joined.empty or "target_time" not in joined.columns or lim is None \
            or joined["target_time"].isna().all():
        return []
    primary = model.primary_metric
    metric: str | Metric = next(m for m in model.metrics
                                if (m.name if isinstance(m, Metric) else m) == primary)
    way = evaluation.direction(model).get(primary)
    day = pd.to_datetime(joined["target_time"]).dt.normalize()
    out = []
    for d, g in joined.groupby(day, sort=True):
        y, p = g["y"].to_numpy(float), g["prediction"].to_numpy(float)
        v = evaluation.score([metric], y, p)[primary]
        level = abs(v) if way == "zero" else v
        total_y, total_p = float(np.nansum(y)), float(np.nansum(p))
        ratio = total_p / total_y if total_y > 0 else None
        why = []
        if np.isfinite(level) and level > lim["error"]:
            why.append(f"{primary} {v:.3g} is {level / lim['backtest']:.1f}x the "
                       f"backtest's {lim['backtest']:.3g} (limit {lim['error']:.3g})"
                       if lim["backtest"] else f"{primary} {v:.3g} above {lim['error']:.3g}")
        if ratio is not None and ratio > lim["total_high"]:
            why.append(f"the forecast total {total_p:.4g} is {ratio:.2f}x the actual "
                       f"{total_y:.4g} (limit {lim['total_high']:.2f}x)")
        elif ratio is not None and ratio < lim["total_low"]:
            why.append(f"the forecast total {total_p:.4g} is {ratio:.2f}x the actual "
                       f"{total_y:.4g} (limit {lim['total_low']:.2f}x)")
        out.append({"date": pd.Timestamp(d).date().isoformat(), "rows": len(g),
                    "metric": primary, "value": v if np.isfinite(v) else None,
                    "forecast_total": total_p, "actual_total": total_y,
                    "total_ratio": ratio, "anomaly": bool(why), "why": "; ".join(why)})
    return out


# ------------------------------------------------------------------ key features


def panel_index(reference: pd.DataFrame, current: pd.DataFrame, column: str) -> float | None:
    """The median over entities of each one's mean of ``column`` in ``current``
    relative to its own mean in ``reference`` (entities in both with a non-zero
    reference mean); None when there is none. 1.06: the typical entity moved up 6%.

    Both frames hold ``entity`` and ``column``.
    """
    ref = pd.to_numeric(reference[column], errors="coerce").groupby(
        reference["entity"].astype(str)).mean()
    cur = pd.to_numeric(current[column], errors="coerce").groupby(
        current["entity"].astype(str)).mean()
    both = pd.concat([ref.rename("ref"), cur.rename("cur")], axis=1, join="inner").dropna()
    both = both[both["ref"] != 0]
    if both.empty:
        return None
    return float(np.median(both["cur"] / both["ref"]))


def key_drift(model: Model, reference: pd.DataFrame, current: pd.DataFrame,
              columns: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each key feature on its own: its index (``panel_index``), its drift test (from
    ``columns``, the per-column results of the drift report) and ``drifted`` (the
    index beyond ``1 ± max_index_change``, or the test drifted)."""
    w = watch_of(model)
    tests = {c["column"]: c for c in columns}
    out = []
    for name in w.key:
        if name not in reference.columns or name not in current.columns:
            continue
        idx = panel_index(reference, current, name)
        test = tests.get(name) or {}
        moved = idx is not None and abs(idx - 1.0) > w.max_index_change
        out.append({"feature": name, "index": idx, "max_index_change": w.max_index_change,
                    "test_drifted": bool(test.get("drifted")), "method": test.get("method"),
                    "statistic": test.get("statistic"),
                    "drifted": bool(moved or test.get("drifted"))})
    return out
