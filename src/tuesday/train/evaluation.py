"""Metrics, backtest folds and slices.

Folds are plain descriptions (which rows train, which rows test); the caller fits and
predicts. Metrics are plain functions ``f(actual, predicted) -> float``.

Example:
    >>> import numpy as np
    >>> round(rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0])), 4)
    1.4142
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tuesday.project import Backtest, Metric, Model, duration
from tuesday.train import ranking


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def wape(y: np.ndarray, p: np.ndarray) -> float:
    denom = float(np.sum(np.abs(y)))
    return float(np.sum(np.abs(y - p)) / denom) if denom else float("nan")


def bias(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p - y))


def mase(y: np.ndarray, p: np.ndarray, scale: float | None = None) -> float:
    """MAE scaled by the in-sample MAE of the seasonal naive forecast (``scale``)."""
    if not scale:
        return float("nan")
    return float(np.mean(np.abs(y - p)) / scale)


def precision_at(k: int, y: np.ndarray, p: np.ndarray) -> float:
    """Share of positives among the ``k`` highest scores (ties broken by order)."""
    if not len(y):
        return float("nan")
    top = np.argsort(-p, kind="stable")[:k]
    return float(np.mean(y[top]))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rmse": rmse, "mae": mae, "wape": wape, "bias": bias,
    "auc": auc, "log_loss": log_loss, "brier": brier,
}
HIGHER_IS_BETTER = {"auc"}
#: metrics where closer to zero is better rather than lower
ABSOLUTE = {"bias"}


def _way(metric: str, way: str | None) -> str:
    if way:
        return way
    if ranking.is_ranking_metric(metric):
        return ranking.direction(metric)
    if metric in HIGHER_IS_BETTER or metric.startswith("precision_at_"):
        return "higher"
    return "zero" if metric in ABSOLUTE else "lower"


def better(metric: str, a: float, b: float, way: str | None = None) -> bool:
    """Whether value ``a`` is strictly better than ``b`` for ``metric``."""
    w = _way(metric, way)
    if w == "higher":
        return a > b
    if w == "zero":
        return abs(a) < abs(b)
    return a < b


def lift(metric: str, model: float, baseline: float, way: str | None = None) -> float:
    """Relative improvement of the model over the baseline (0.3 = 30% better)."""
    w = _way(metric, way)
    if not baseline:
        return float("nan")
    if w == "higher":
        return (model - baseline) / abs(baseline)
    if w == "zero":
        return (abs(baseline) - abs(model)) / abs(baseline)
    return (baseline - model) / baseline


@dataclass(frozen=True)
class Verdict:
    """Who wins on a set of rows (overall, a fold, a slice, a window): the model or the
    best of the baselines scored on the same rows.

    Attributes:
        beats: The model is strictly better than the best baseline; None when they
            cannot be compared (no finite value).
        best_baseline: The baseline with the best value on these rows (None: none).
        model: The model's value (on the best baseline's rows when they differ).
        baseline: The best baseline's value.
        lift: Relative improvement of the model over it (0.3 = 30% better).
    """

    beats: bool | None
    best_baseline: str | None
    model: float | None
    baseline: float | None
    lift: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"beats_baseline": self.beats, "best_baseline": self.best_baseline,
                "model_value": self.model, "baseline_value": self.baseline,
                "lift": self.lift}


def verdict(metric: str, model: float | Mapping[str, float],
            baselines: Mapping[str, float], way: str | None = None) -> Verdict:
    """The one rule that decides whether the model beats its baselines on some rows.

    The model is compared with the best baseline *on those same rows* (not with the
    baseline that is best overall): a slice where any declared baseline does better
    is a slice the model loses. Ties go to the baseline (the model must be strictly
    better); among baselines with the same value, the first declared is the best. The
    report, the plan, the gates, the fallback and the monitor all decide with it.

    Args:
        metric: The metric name (its direction from ``way``, or from the name).
        model: The model's value, or its value on the rows of each baseline (a
            baseline with unknown values is then compared on its own rows).
        baselines: Each baseline's value on the rows.
        way: ``'lower'``, ``'higher'`` or ``'zero'`` (closest to zero is best).

    Example:
        >>> v = verdict("wape", 0.61, {"mean_4_weekdays": 0.64, "tsb": 0.53})
        >>> v.beats, v.best_baseline
        (False, 'tsb')
    """
    w = _way(metric, way)
    best: str | None = None
    for name, value in baselines.items():
        if value is None or not np.isfinite(value):
            continue
        if best is None or better(metric, float(value), float(baselines[best]), w):
            best = name
    if best is None:
        mine = model if not isinstance(model, Mapping) else None
        return Verdict(None, None, _finite(mine), None, None)
    theirs = float(baselines[best])
    mine = model.get(best) if isinstance(model, Mapping) else model
    if mine is None or not np.isfinite(mine):
        return Verdict(None, best, None, theirs, None)
    gain = lift(metric, float(mine), theirs, w)
    return Verdict(bool(better(metric, float(mine), theirs, w)), best, float(mine), theirs,
                   gain if np.isfinite(gain) else None)


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


def score(metrics: Sequence[str | Metric], y: np.ndarray, p: np.ndarray, *,
          scale: float | None = None) -> dict[str, float]:
    """Every metric on the rows where both actual and prediction are known.

    ``scale`` is MASE's denominator (see ``seasonal_scale``).
    """
    ok = ~np.isnan(y) & ~np.isnan(p)
    out: dict[str, float] = {}
    for m in metrics:
        name = m.name if isinstance(m, Metric) else m
        if not ok.any():
            out[name] = float("nan")
        elif isinstance(m, Metric):
            out[name] = float(m.fn(y[ok], p[ok]))
        elif m == "mase":
            out[name] = mase(y[ok], p[ok], scale)
        elif m.startswith("precision_at_"):
            out[name] = precision_at(int(m.rsplit("_", 1)[1]), y[ok], p[ok])
        else:
            out[name] = METRICS[m](y[ok], p[ok])
    return out


def score_rows(model: Model, frame: pd.DataFrame, target: str, column: str, *,
               scale: float | None = None) -> dict[str, float]:
    """Every metric of the model for the predictions in ``frame[column]``: per row, or
    for a ranking model per request (its ``slate.group``; every row its own request
    without one) over the items (the entity key) ranked in each."""
    y = frame[target].to_numpy(dtype=float)
    p = frame[column].to_numpy(dtype=float)
    if model.task != "ranking":
        return score(model.metrics, y, p, scale=scale)
    names = model.metric_names
    pointwise = [m for m in model.metrics
                 if isinstance(m, Metric) or not ranking.is_ranking_metric(m)]
    ok = ~np.isnan(y)
    relevant = np.where(np.isnan(y), np.nan, (y > 0).astype(float))
    out = score(pointwise, relevant, p) if pointwise else {}
    col = model.slate.group if model.slate is not None else None
    group = frame[col].to_numpy() if col else np.arange(len(frame))
    ranked = ranking.score([n for n in names if ranking.is_ranking_metric(n)], group[ok],
                           frame[model.entity.key].to_numpy()[ok], y[ok], p[ok])
    return {n: ranked.get(n, out.get(n, float("nan"))) for n in names}


def direction(model: Model) -> dict[str, str]:
    """For each metric name: 'higher', 'lower' or 'zero' (closest to zero is best)."""
    out = {}
    for m in model.metrics:
        if isinstance(m, Metric):
            out[m.name] = "higher" if m.higher_is_better else "lower"
        elif ranking.is_ranking_metric(m):
            out[m] = ranking.direction(m)
        elif m in HIGHER_IS_BETTER or m.startswith("precision_at_"):
            out[m] = "higher"
        elif m in ABSOLUTE:
            out[m] = "zero"
        else:
            out[m] = "lower"
    return out


def seasonal_scale(frame: pd.DataFrame, key: str, time: str | None, target: str,
                   season_days: int) -> float | None:
    """Mean absolute difference between each value and the value ``season_days`` earlier
    of the same entity, over ``frame`` (MASE's in-sample scale)."""
    if time is None or frame.empty:
        return None
    a = frame[[key, time, target]]
    b = a.assign(**{time: a[time] + pd.Timedelta(days=season_days)})
    both = a.merge(b, on=[key, time], suffixes=("", "_prev"))
    diff = np.abs(both[target].to_numpy(float) - both[f"{target}_prev"].to_numpy(float))
    value = float(np.nanmean(diff)) if len(diff) else float("nan")
    return value if np.isfinite(value) and value > 0 else None


@dataclass(frozen=True)
class Fold:
    """One backtest fold: boolean masks over the training frame."""

    number: int
    train: np.ndarray
    test: np.ndarray
    cutoff: pd.Timestamp | None


def folds(model: Model, frame: pd.DataFrame, time_col: str | None,
          target: str) -> Iterator[Fold]:
    """Rolling-origin folds (gap = horizon, optional sliding window) or K-fold CV."""
    ev = model.evaluation
    if isinstance(ev, Backtest) and time_col is not None:
        t = frame[time_col]
        step = duration(ev.step, what="backtest step")
        gap = duration(model.horizon, what="horizon")
        win = duration(model.window, what="window") if model.window else None
        last = t.max()
        for i in range(ev.folds):
            cut = last - (ev.folds - i) * step
            test = ((t > cut) & (t <= cut + step)).to_numpy()
            train = (t <= cut - gap)
            if win is not None:
                train &= t > cut - gap - win
            yield Fold(i, train.to_numpy(), test, cut)
        return
    y = frame[target].to_numpy()
    kf = StratifiedKFold(n_splits=ev.folds, shuffle=True, random_state=model.seed)
    strata = y if model.task == "binary" else np.zeros(len(y))
    for i, (tr, te) in enumerate(kf.split(np.zeros(len(y)), strata)):
        train = np.zeros(len(y), bool)
        test = np.zeros(len(y), bool)
        train[tr] = True
        test[te] = True
        yield Fold(i, train, test, None)


def slice_table(model: Model, preds: pd.DataFrame, actual: str,
                predictors: list[str], scale: float | None = None) -> list[dict[str, object]]:
    """Metrics of each predictor (model and baselines) per value of each slice column."""
    rows: list[dict[str, object]] = []
    for col in model.slices:
        if col not in preds.columns:
            continue
        for value, g in preds.groupby(col, dropna=False, sort=True):
            row: dict[str, object] = {"slice": col, "value": _plain(value), "rows": len(g)}
            for name in predictors:
                row[name] = score_rows(model, g, actual, name, scale=scale)
            rows.append(row)
    return rows


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


# ----------------------------------------------------------------- derived slices

ADI_CUT = 1.32
CV2_CUT = 0.49


def demand_classes(history: pd.DataFrame, key: str, target: str) -> pd.Series:
    """Demand class of each entity from its history (Syntetos-Boylan): ``smooth``,
    ``erratic``, ``intermittent`` or ``lumpy`` by the average demand interval (ADI, cut
    1.32) and the squared coefficient of variation of non-zero demand (CV², cut 0.49);
    ``no_demand`` when the history holds no non-zero value.

    Example:
        >>> h = pd.DataFrame({"k": ["a"] * 4 + ["b"] * 4, "y": [5, 5, 5, 5, 0, 0, 9, 0]})
        >>> demand_classes(h, "k", "y").to_dict()
        {'a': 'smooth', 'b': 'intermittent'}
    """
    out = {}
    for entity, g in history.groupby(key, sort=True):
        y = g[target].to_numpy(dtype=float)
        y = y[~np.isnan(y)]
        nz = y[y != 0]
        if not len(nz):
            out[entity] = "no_demand"
            continue
        adi = len(y) / len(nz)
        cv2 = float((nz.std() / nz.mean()) ** 2) if nz.mean() else 0.0
        out[entity] = ("smooth" if cv2 < CV2_CUT else "erratic") if adi < ADI_CUT else (
            "intermittent" if cv2 < CV2_CUT else "lumpy")
    return pd.Series(out, name="demand_class", dtype="object")


def history_classes(history: pd.DataFrame, key: str, min_rows: int) -> pd.Series:
    """``short`` for entities with fewer than ``min_rows`` rows of history, else ``ok``."""
    counts = history.groupby(key, sort=True).size()
    return pd.Series(np.where(counts < min_rows, "short", "ok"), index=counts.index,
                     name="history", dtype="object")
