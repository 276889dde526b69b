"""The feedback loop of a ranking model, measured from its prediction log and the clicks
posted back: per period, how many requests were served, the share that explored, the
click rate of explored and of the model's own slates, and how concentrated the exposure
is (the Gini of each item's impressions, over every item that was a candidate in the
period, and the share of them shown at all).

A model that feeds on its own output narrows what it shows: its Gini climbs and its
coverage falls while explored slates keep finding clicks elsewhere. That is what this
report makes visible.

Example:
    >>> import pandas as pd
    >>> log = pd.DataFrame({"request_id": ["a", "a", "b", "b"], "entity": ["x", "y", "x", "y"],
    ...     "served_at": pd.to_datetime(["2024-01-01"] * 4), "position": [1, None, None, 1],
    ...     "explored": [False, False, True, True], "reward": [1.0, None, None, 0.0]})
    >>> periods(log, "D")[0]["click_rate_exploited"]
    1.0
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tuesday.data.predictions import read_log
from tuesday.errors import TuesdayError
from tuesday.project import LoadedProject
from tuesday.release.ope import feedback_rewards
from tuesday.train.ranking import gini
from tuesday.workspace import Workspace


def logged(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime
           ) -> pd.DataFrame:
    """The model's rank requests served by ``as_of`` (not as a shadow), with the reward
    posted back on shown rows (0 without one)."""
    model = loaded.project.model(model_name)
    if model.task != "ranking":
        raise TuesdayError(f"Model {model_name!r} is not a ranking model.",
                           fix="Use `tuesday monitor` without the slate report.")
    log = read_log(ws, model.name)
    if log.empty:
        return log.assign(reward=pd.Series(dtype=float))
    log = log[(log["variant"] != "shadow") & (log["served_at"] <= pd.Timestamp(as_of))]
    ranked = set(log.loc[log["position"].notna(), "request_id"])
    log = log[log["request_id"].isin(ranked)].copy()
    log["reward"] = np.where(log["position"].notna(), 0.0, np.nan)
    fb = feedback_rewards(ws, model)
    if not fb.empty and not log.empty:
        got = log[["request_id", "entity"]].merge(fb, on=["request_id", "entity"],
                                                  how="left")["reward"].to_numpy()
        log["reward"] = np.where(log["position"].notna() & ~np.isnan(got), got,
                                 log["reward"])
    return log.reset_index(drop=True)


def periods(log: pd.DataFrame, period: str = "W") -> list[dict[str, Any]]:
    """The loop's figures per period of ``served_at`` (see the module docstring)."""
    if log.empty:
        return []
    out = []
    when = pd.to_datetime(log["served_at"]).dt.to_period(period)
    for p, g in log.groupby(when, sort=True):
        shown = g[g["position"].notna()]
        explored = shown["explored"].fillna(False).astype(bool)
        requests = g["request_id"].nunique()
        explored_requests = shown.loc[explored, "request_id"].nunique()
        counts = shown.groupby("entity").size().reindex(
            pd.Index(g["entity"].unique()), fill_value=0).to_numpy(dtype=float)
        out.append({
            "period": str(p), "start": p.start_time.isoformat(), "requests": int(requests),
            "impressions": len(shown),
            "explored_share": explored_requests / requests if requests else None,
            "click_rate": _mean(shown["reward"]),
            "click_rate_explored": _mean(shown.loc[explored, "reward"]),
            "click_rate_exploited": _mean(shown.loc[~explored, "reward"]),
            "items": len(counts), "coverage": float((counts > 0).mean()) if len(counts)
            else None,
            "exposure_gini": _finite(gini(counts)),
        })
    return out


def report(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime, *,
           period: str = "W") -> dict[str, Any]:
    """The slate report of a ranking model: the figures per period and over all."""
    log = logged(ws, loaded, model_name, as_of)
    rows = periods(log, period)
    total = periods(log.assign(served_at=pd.Timestamp(as_of)), "Y") if len(log) else []
    return {"model": model_name, "as_of": pd.Timestamp(as_of).isoformat(),
            "period": period, "periods": rows, "overall": total[0] if total else None}


def _mean(s: pd.Series) -> float | None:
    return float(s.mean()) if len(s) else None


def _finite(v: float) -> float | None:
    return v if np.isfinite(v) else None
