"""Metrics against scikit-learn and folds against their definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from tuesday.project import Backtest, Baseline, CrossValidation, Entity, Model
from tuesday.train import evaluation

RNG = np.random.default_rng(3)
Y = RNG.gamma(2.0, 3.0, 500)
P = Y + RNG.normal(0, 1, 500)
YB = (RNG.random(500) < 0.3).astype(float)
PB = np.clip(YB * 0.4 + RNG.random(500) * 0.6, 0.001, 0.999)


def test_regression_metrics_match_sklearn() -> None:
    assert evaluation.rmse(Y, P) == pytest.approx(np.sqrt(skm.mean_squared_error(Y, P)), 1e-12)
    assert evaluation.mae(Y, P) == pytest.approx(skm.mean_absolute_error(Y, P), 1e-12)
    assert evaluation.wape(Y, P) == pytest.approx(np.abs(Y - P).sum() / np.abs(Y).sum(), 1e-12)
    assert evaluation.bias(Y, P) == pytest.approx(np.mean(P - Y), 1e-12)


def test_binary_metrics_match_sklearn() -> None:
    assert evaluation.auc(YB, PB) == pytest.approx(skm.roc_auc_score(YB, PB), 1e-12)
    assert evaluation.log_loss(YB, PB) == pytest.approx(skm.log_loss(YB, PB), 1e-12)
    assert evaluation.brier(YB, PB) == pytest.approx(skm.brier_score_loss(YB, PB), 1e-12)


def test_score_skips_missing_and_better_lift() -> None:
    y = np.array([1.0, np.nan, 3.0])
    p = np.array([1.0, 5.0, np.nan])
    assert evaluation.score(("mae",), y, p) == {"mae": 0.0}
    assert evaluation.better("rmse", 1.0, 2.0) and not evaluation.better("auc", 0.6, 0.7)
    assert evaluation.better("bias", -0.1, 0.2)
    assert evaluation.lift("rmse", 1.0, 4.0) == pytest.approx(0.75)
    assert evaluation.lift("auc", 0.8, 0.5) == pytest.approx(0.6)


def _model(**kw) -> Model:
    return Model("m", Entity("e"), "s", "y", (), (Baseline("b", "mean"),), **kw)


def test_rolling_origin_folds_have_a_gap_equal_to_the_horizon() -> None:
    days = pd.date_range("2020-01-01", periods=200, freq="D")
    frame = pd.DataFrame({"t": days, "y": np.arange(200.0)})
    model = _model(horizon="14d", evaluation=Backtest(folds=3, step="10d"), window="60d")
    folds = list(evaluation.folds(model, frame, "t", "y"))
    assert [f.number for f in folds] == [0, 1, 2]
    for f in folds:
        test_days = frame["t"][f.test]
        train_days = frame["t"][f.train]
        assert len(test_days) == 10
        assert test_days.min() - train_days.max() == pd.Timedelta(days=15)
        assert len(train_days) == 60
    assert frame["t"][folds[-1].test].max() == days[-1]


def test_cross_validation_is_stratified_and_seeded() -> None:
    frame = pd.DataFrame({"y": YB})
    model = _model(task="binary", evaluation=CrossValidation(folds=5), metrics=("auc",))
    a = [f.test for f in evaluation.folds(model, frame, None, "y")]
    b = [f.test for f in evaluation.folds(model, frame, None, "y")]
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert np.sum(a, axis=0).tolist() == [1] * len(frame)
    rates = [YB[t].mean() for t in a]
    assert max(rates) - min(rates) < 0.02


def test_mase_against_a_direct_computation() -> None:
    days = pd.date_range("2020-01-01", periods=60, freq="D")
    y = np.sin(np.arange(60) / 3) * 10 + 50
    frame = pd.DataFrame({"k": "a", "t": days, "y": y})
    scale = evaluation.seasonal_scale(frame, "k", "t", "y", 7)
    assert scale == pytest.approx(np.mean(np.abs(y[7:] - y[:-7])), rel=1e-12)
    p = y + 1.0
    assert evaluation.score(("mase",), y, p, scale=scale)["mase"] == pytest.approx(1 / scale)


def test_precision_at_n_and_user_metric() -> None:
    from tuesday.project import Metric

    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.2])
    revenue = Metric("revenue", lambda a, b: float(np.sum(a * (b > 0.5))), True)
    out = evaluation.score(("precision_at_2", revenue), y, p)
    assert out == {"precision_at_2": 0.5, "revenue": 2.0}


def test_demand_and_history_classes() -> None:
    h = pd.DataFrame({"k": ["s"] * 10 + ["e"] * 10 + ["i"] * 10 + ["l"] * 10 + ["z"] * 3,
                      "y": [5, 6, 5, 6, 5, 6, 5, 6, 5, 6,
                            1, 20, 2, 30, 1, 25, 3, 40, 1, 30,
                            0, 0, 5, 0, 0, 5, 0, 0, 6, 0,
                            0, 0, 1, 0, 0, 40, 0, 0, 2, 0,
                            0, 0, 0]})
    assert evaluation.demand_classes(h, "k", "y").to_dict() == {
        "e": "erratic", "i": "intermittent", "l": "lumpy", "s": "smooth", "z": "no_demand"}
    assert evaluation.history_classes(h, "k", 5).to_dict() == {
        "e": "ok", "i": "ok", "l": "ok", "s": "ok", "z": "short"}
