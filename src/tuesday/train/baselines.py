"""Baselines: the simple forecasts every model must beat.

Lag-based baselines (naive, seasonal naive, seasonal mean, moving average) read
ordinary point-in-time features, so they are computed by the same code as the model's
features, in training and in serving. Croston and TSB (intermittent demand) run their
recursion over each entity's history once and take the state known at each row's
forecast origin. ``mean`` and ``prior`` use the training rows of the fold.

Example:
    >>> import numpy as np
    >>> croston_path(np.array([0.0, 4.0, 0.0, 0.0, 2.0]), alpha=0.5).round(3).tolist()
    [nan, 2.0, 2.0, 2.0, 1.2]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tuesday.data.features import horizon, horizon_days, popular_feature, season_lag
from tuesday.project import Baseline, Model, lag, window

#: baselines computed from each entity's history (one row per period)
RECURSIVE = ("croston", "tsb")
#: baselines the server can compute from the online features and log next to the model
ONLINE = ("naive", "seasonal_naive", "seasonal_mean", "moving_average")


def column(b: Baseline) -> str:
    """Frame column holding a recursive baseline's point-in-time forecast."""
    return f"_baseline_{b.name}"


def predict(model: Model, b: Baseline, frame: pd.DataFrame,
            train_target: np.ndarray, *, fill: bool = True) -> np.ndarray:
    """Predictions of one baseline for ``frame``; where it has no history, the mean of
    ``train_target`` (the fold's training labels), or NaN with ``fill=False`` (the
    server, which has no training labels: a baseline without its inputs is unknown)."""
    fallback = float(np.nanmean(train_target)) if np.isfinite(train_target).any() else 0.0
    src, col = model.label_source, model.target
    if b.kind in ("mean", "prior"):
        return np.full(len(frame), fallback)
    if b.kind in ("naive", "seasonal_naive"):
        p = frame[lag(src, col, season_lag(model, b)).name].to_numpy(dtype=float)
    elif b.kind == "seasonal_mean":
        first = season_lag(model, b)
        cols = [lag(src, col, first + k * b.season).name for k in range(b.seasons)]
        block = frame[cols].to_numpy(dtype=float)
        known = ~np.isnan(block)
        n = known.sum(axis=1)  # the mean of the known seasons; none known: no prediction
        p = np.where(known, block, 0.0).sum(axis=1) / np.where(n > 0, n, 1)
        p[n == 0] = np.nan
    elif b.kind == "moving_average":
        name = window(src, col, f"{b.window}d",
                      lag=f"{max(1, math.ceil(horizon_days(model)))}d").name
        p = frame[name].to_numpy(dtype=float)
    elif b.kind in RECURSIVE:
        p = frame[column(b)].to_numpy(dtype=float)
    elif b.kind == "popular":
        p = frame[popular_feature(model, b).name].to_numpy(dtype=float)
    elif b.kind == "random":
        return np.random.default_rng(model.seed).random(len(frame))
    else:  # rule
        assert b.fn is not None
        p = np.asarray(b.fn(frame), dtype=float)
    return np.where(np.isnan(p), fallback, p) if fill else p


def croston_path(y: np.ndarray, alpha: float) -> np.ndarray:
    """Croston's forecast after each observation (NaN before the first demand)."""
    out = np.full(len(y), np.nan)
    size = interval = None
    since = 1
    for i, v in enumerate(y):
        if not np.isnan(v) and v > 0:
            if size is None:
                size, interval = float(v), float(since)
            else:
                assert interval is not None
                size += alpha * (v - size)
                interval += alpha * (since - interval)
            since = 1
        else:
            since += 1
        if size is not None and interval:
            out[i] = size / interval
    return out


def tsb_path(y: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Teunter-Syntetos-Babai: demand probability updated every period, size on demand."""
    out = np.full(len(y), np.nan)
    size: float | None = None
    prob: float | None = None
    for i, v in enumerate(y):
        if np.isnan(v):
            out[i] = out[i - 1] if i else np.nan
            continue
        hit = 1.0 if v > 0 else 0.0
        prob = hit if prob is None else prob + beta * (hit - prob)
        if hit:
            size = float(v) if size is None else size + alpha * (v - size)
        if size is not None:
            out[i] = prob * size
    return out


def add_recursive(model: Model, frame: pd.DataFrame, key: str, time: str) -> pd.DataFrame:
    """Add each Croston/TSB baseline's forecast as known at every row's origin.

    The recursion runs over each entity's labels in time order (one row per period);
    a row whose target is at time t gets the state after the last label at or before
    its origin t - horizon.
    """
    wanted = [b for b in model.baselines if b.kind in RECURSIVE]
    if not wanted or frame.empty:
        return frame
    h = horizon(model)
    out = frame.copy()
    for b in wanted:
        values = np.full(len(frame), np.nan)
        for _entity, idx in frame.groupby(key, sort=False).indices.items():
            g = frame.iloc[idx].sort_values(time, kind="stable")
            y = g[model.target].to_numpy(dtype=float)
            path = croston_path(y, b.alpha) if b.kind == "croston" else \
                tsb_path(y, b.alpha, b.beta)
            times = g[time].to_numpy()
            origins = (g[time] - h).to_numpy()
            pos = np.searchsorted(times, origins, side="right") - 1
            known = np.where(pos >= 0, path[np.maximum(pos, 0)], np.nan)
            values[g.index.to_numpy()] = known
        out[column(b)] = values
    return out
