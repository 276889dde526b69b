"""Metrics, backtest folds and slices.

Folds are plain descriptions (which rows train, which rows test); the caller fits and
predicts. Metrics are plain functions ``f(actual, predicted) -> float``.

Example:
    >>> import numpy as np
    >>> round(rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0])), 4)
    1.4142
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tuesday.project import Backtest, Model, duration


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p)))


def wape(y: np.ndarray, p: np.ndarray) -> float:
    denom = float(np.sum(np.abs(y)))
    return float(np.sum(np.abs(y - p)) / denom) if denom else float("nan")


def bias(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p - y))


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


def better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` is strictly better than ``b`` for ``metric``."""
    if metric in HIGHER_IS_BETTER:
        return a > b
    if metric in ABSOLUTE:
        return abs(a) < abs(b)
    return a < b


def lift(metric: str, model: float, baseline: float) -> float:
    """Relative improvement of the model over the baseline (0.3 = 30% better)."""
    if metric in HIGHER_IS_BETTER:
        return (model - baseline) / abs(baseline) if baseline else float("nan")
    if metric in ABSOLUTE:
        return (abs(baseline) - abs(model)) / abs(baseline) if baseline else float("nan")
    return (baseline - model) / baseline if baseline else float("nan")


def score(metrics: tuple[str, ...], y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    ok = ~np.isnan(y) & ~np.isnan(p)
    if not ok.any():
        return {m: float("nan") for m in metrics}
    return {m: METRICS[m](y[ok], p[ok]) for m in metrics}


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
                predictors: list[str]) -> list[dict[str, object]]:
    """Metrics of each predictor (model and baselines) per value of each slice column."""
    rows: list[dict[str, object]] = []
    for col in model.slices:
        if col not in preds.columns:
            continue
        for value, g in preds.groupby(col, dropna=False, sort=True):
            row: dict[str, object] = {"slice": col, "value": _plain(value), "rows": len(g)}
            y = g[actual].to_numpy(dtype=float)
            for name in predictors:
                row[name] = score(model.metrics, y, g[name].to_numpy(dtype=float))
            rows.append(row)
    return rows


def _plain(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v
