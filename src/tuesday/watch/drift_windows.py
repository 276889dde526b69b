"""Drift per feature over time: the served feature values of each time window (a week by
default) against the production version's training reference, feature by feature, with
the same tests and thresholds as the monitor (:func:`tuesday.watch.drift.dataset_drift`).

A window with fewer than ``MIN_ROWS_FOR_DRIFT`` served values of a feature is not
tested for it (None). Calendar and holiday features are left out, as in the monitor:
their values are fixed by the date, so their "drift" is the season.

Example:
    >>> out = drift_over_time(model, prod, ref, log)  # doctest: +SKIP
    >>> out["features"][0]["drifted"]  # doctest: +SKIP
    [False, False, True]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tuesday.project import Model
from tuesday.watch import quality
from tuesday.watch.drift import dataset_drift

__all__ = ["MIN_ROWS_FOR_DRIFT", "drift_over_time"]

#: fewest served values of a feature in a window to test it for drift
MIN_ROWS_FOR_DRIFT = 5


def drift_over_time(model: Model, prod: dict[str, Any], ref: pd.DataFrame,
                    log: pd.DataFrame, period: str = "W") -> dict[str, Any]:
    """Per time window of the served rows' target time (``period``: a pandas period
    alias), each feature's drift statistic against the reference and whether it
    drifted.

    Returns:
        ``period``, ``windows`` (each ``window``, ``start``, ``end``, ``rows``) and
        ``features``: each ``feature``, ``method``, ``threshold`` and one ``statistic``
        and ``drifted`` per window (None where the window has too few values).
    """
    out: dict[str, Any] = {"period": period, "windows": [], "features": []}
    if log.empty:
        return out
    fixed = {f.name for f in model.features if f.kind in ("calendar", "holiday")}
    names = [f for f in prod["manifest"]["features"] if f not in fixed and f in ref.columns
             and ref[f].notna().any()]
    served = quality.feature_frame(log.reset_index(drop=True))
    names = [f for f in names if f in served.columns]
    key = quality.when(log.reset_index(drop=True)).dt.to_period(period)
    rows: dict[str, dict[str, Any]] = {
        f: {"feature": f, "method": None, "threshold": None, "statistic": [], "drifted": []}
        for f in names}
    for p, idx in served.groupby(key, sort=True).groups.items():
        part = served.loc[idx]
        out["windows"].append({"window": str(p), "start": p.start_time.date().isoformat(),
                               "end": p.end_time.date().isoformat(), "rows": len(part)})
        cols = [f for f in names if part[f].notna().sum() >= MIN_ROWS_FOR_DRIFT]
        found = {}
        if cols:
            report = dataset_drift(ref[cols], part[cols].astype(float), columns=cols)
            found = {c.column: c for c in report.columns}
        for f in names:
            c = found.get(f)
            r = rows[f]
            if c is None:
                r["statistic"].append(None)
                r["drifted"].append(None)
                continue
            r["method"], r["threshold"] = c.method, c.threshold
            r["statistic"].append(float(c.statistic) if np.isfinite(c.statistic) else None)
            r["drifted"].append(bool(c.drifted))
    out["features"] = list(rows.values())
    return out
