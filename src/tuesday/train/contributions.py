"""Exact per-feature contributions of a fitted learner to each prediction.

A contribution lives in the learner's raw-score space: ``expected + sum(values) == raw``
for every row (to floating-point rounding), where ``raw`` is the score before the output
transform (``link``): the prediction itself for an identity link, its logarithm for
Poisson, Tweedie or gamma objectives, its log-odds for a classifier.

- ``lightgbm``: path-dependent TreeSHAP, computed by LightGBM itself
  (``Booster.predict(pred_contrib=True)``); the same numbers as ``shap.TreeExplainer``.
- ``linear``: ``coef * (value - reference mean) / scale`` on the standardised inputs the
  model was fitted on (missing values take the training median, as in prediction); the
  expected value is the intercept, the score at the training means.
- ``sklearn``: estimators with ``coef_`` and ``intercept_`` (linear and logistic
  regression), as ``coef * value`` around the intercept; any other estimator has no exact
  method here and gets a clear error.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tuesday.project import Learner
    >>> from tuesday.train.learners import fit
    >>> x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    >>> f = fit(Learner("linear", {"alpha": 0.0}), "regression", x, np.array([1., 3, 5, 7]),
    ...         seed=0)
    >>> c = contributions(f, np.array([[4.0, 1.0]]))
    >>> round(float(c.expected[0] + c.values[0].sum() - c.raw[0]), 9)
    0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tuesday.errors import TuesdayError
from tuesday.train.learners import Fitted

#: output transforms, from raw score to prediction
LINKS = ("identity", "log", "logit")
_LOG_OBJECTIVES = ("poisson", "tweedie", "gamma")


@dataclass(frozen=True)
class Contributions:
    """Per-row, per-feature contributions in raw-score space.

    Attributes:
        features: The feature names, in the columns' order.
        values: ``(rows, features)`` contributions.
        expected: Per row, the score with no feature information (LightGBM's expected
            value over the training data; the intercept for linear models).
        raw: Per row, the raw score (``expected + values.sum(axis=1)``).
        link: How the raw score becomes the prediction: ``identity``, ``log`` or ``logit``.
        inputs: The feature values explained, ``(rows, features)`` (category features as
            their codes).
        categories: The category features' values in code order (``Fitted``).
    """

    features: tuple[str, ...]
    values: np.ndarray
    expected: np.ndarray
    raw: np.ndarray
    link: str
    inputs: np.ndarray
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def shown(self, row: int, j: int) -> float | str | None:
        """Feature ``j`` of row ``row`` as a reader knows it: a number, a category's
        name (``'(unseen in training)'`` for the unseen code), None when missing."""
        v = self.inputs[row, j]
        if np.isnan(v):
            return None
        cats = self.categories.get(self.features[j])
        if cats is None:
            return float(v)
        k = int(v)
        return cats[k] if 0 <= k < len(cats) else "(unseen in training)"

    def predictions(self) -> np.ndarray:
        """The predictions the raw scores stand for."""
        return inverse_link(self.link, self.raw)

    def without(self, row: int) -> np.ndarray:
        """For one row, the prediction if each feature's contribution alone were taken
        away (the others kept): the honest shift in the target's units under a log or
        logit link, where contributions do not add up in those units."""
        return inverse_link(self.link, self.raw[row] - self.values[row])


def inverse_link(link: str, raw: np.ndarray | float) -> np.ndarray:
    """The prediction for raw score(s) under ``link``."""
    r = np.asarray(raw, dtype=float)
    if link == "log":
        return np.asarray(np.exp(r))
    if link == "logit":
        return np.asarray(1.0 / (1.0 + np.exp(-r)))
    return r


def link_of(fitted: Fitted) -> str:
    """The output transform of a fitted learner."""
    if fitted.kind == "lightgbm":
        objective = str(fitted.model.params.get("objective", "regression")).split()[0]
        if objective.startswith("binary") or objective in ("cross_entropy", "xentropy"):
            return "logit"
        return "log" if objective in _LOG_OBJECTIVES else "identity"
    if fitted.kind == "linear":
        return {"identity": "identity", "log": "log", "logit": "logit"}[fitted.model["link"]]
    return "logit" if fitted.task == "binary" else "identity"


def contributions(fitted: Fitted, x: np.ndarray, *, num_threads: int = 1) -> Contributions:
    """Exact contributions of every feature to every row of ``x`` (a float matrix with the
    model's feature columns, NaN for missing).

    Raises:
        TuesdayError: The learner has no exact method (a scikit-learn estimator that is
            not a linear model).
    """
    a = np.atleast_2d(np.asarray(x, dtype=float))
    if a.shape[1] != len(fitted.features):
        raise TuesdayError(
            f"Contributions need {len(fitted.features)} feature columns "
            f"({', '.join(fitted.features)}); got a matrix with {a.shape[1]}.",
            fix="Pass the rows with the model's features, in the model's order.")
    if fitted.kind == "lightgbm":
        return _lightgbm(fitted, a, num_threads)
    if fitted.kind == "linear":
        return _linear(fitted, a)
    return _sklearn(fitted, a)


def _lightgbm(fitted: Fitted, a: np.ndarray, num_threads: int) -> Contributions:
    booster = fitted.model
    out = np.asarray(booster.predict(a, pred_contrib=True, num_threads=num_threads),
                     dtype=float)
    raw = np.asarray(booster.predict(a, raw_score=True, num_threads=num_threads), dtype=float)
    return Contributions(fitted.features, out[:, :-1], out[:, -1], raw, link_of(fitted), a,
                         dict(fitted.categories))


def _linear(fitted: Fitted, a: np.ndarray) -> Contributions:
    m: dict[str, Any] = fitted.model
    filled = np.where(np.isnan(a), np.asarray(m["medians"]), a)
    z = (filled - np.asarray(m["means"])) / np.asarray(m["scales"])
    values = z * np.asarray(m["coef"])
    expected = np.full(len(a), float(m["intercept"]))
    raw = z @ np.asarray(m["coef"]) + float(m["intercept"])
    return Contributions(fitted.features, values, expected, raw, link_of(fitted), a)


def _sklearn(fitted: Fitted, a: np.ndarray) -> Contributions:
    est = fitted.model
    coef = getattr(est, "coef_", None)
    intercept = getattr(est, "intercept_", None)
    if coef is None or intercept is None or np.ravel(coef).size != a.shape[1]:
        raise TuesdayError(
            f"The scikit-learn estimator {type(est).__name__} has no exact per-feature "
            "contributions in tuesday (only linear models with coef_ and intercept_ do).",
            fix="Use the 'lightgbm' or 'linear' learner for explained predictions, or "
                "leave explanations off for this model.")
    if np.isnan(a).any():
        raise TuesdayError(
            f"The scikit-learn estimator {type(est).__name__} cannot explain rows with "
            "missing feature values.", fix="Impute the features before the estimator.")
    w = np.ravel(np.asarray(coef, dtype=float))
    b = float(np.ravel(np.asarray(intercept, dtype=float))[0])
    values = a * w
    raw = a @ w + b
    return Contributions(fitted.features, values, np.full(len(a), b), raw, link_of(fitted),
                         a)


#: backtest rows explained per fold and per baseline: those where the model lost most to it
LOSSES_PER_BASELINE = 5
#: the backtest predictions' column of each explained row's expected value (raw score)
EXPECTED_COLUMN = "contribution:(expected)"


def contribution_column(feature: str) -> str:
    """The backtest predictions' column of a feature's contribution (raw score)."""
    return f"contribution:{feature}"


def backtest_losses(fitted: Fitted, part: pd.DataFrame, features: Sequence[str],
                    target: str, baselines: Sequence[str], *,
                    per_baseline: int = LOSSES_PER_BASELINE) -> pd.DataFrame | None:
    """Contributions of the fold's model to the backtest rows where it lost most to a
    baseline: for each baseline, the ``per_baseline`` rows whose absolute error exceeds
    the baseline's most (only rows where it does). One column per feature and the
    expected value, indexed like ``part``, NaN on the other rows; None when the learner
    has no exact method (then nothing is explained)."""
    y = part[target].to_numpy(dtype=float)
    err = np.abs(part["model"].to_numpy(dtype=float) - y)
    chosen: set[int] = set()
    for b in baselines:
        excess = err - np.abs(part[b].to_numpy(dtype=float) - y)
        excess = np.where(np.isfinite(excess), excess, -np.inf)
        top = np.argsort(-excess, kind="stable")[:per_baseline]
        chosen.update(int(i) for i in top if excess[i] > 0)
    cols = [contribution_column(f) for f in features] + [EXPECTED_COLUMN]
    out = pd.DataFrame(np.nan, index=part.index, columns=cols)
    if not chosen:
        return out
    rows = np.array(sorted(chosen))
    try:
        c = contributions(fitted, fitted.encode(part.iloc[rows]))
    except TuesdayError:  # no exact method for this learner: nothing to explain
        return None
    out.iloc[rows, :-1] = c.values
    out.iloc[rows, -1] = c.expected
    return out


class RowContributions:
    """One row's LightGBM contributions through ``LGBM_BoosterPredictForMatSingleRowFast``
    (``C_API_PREDICT_CONTRIB``): the predictor set up once, then TreeSHAP on the one row,
    without ``Booster.predict``'s per-call parameter parsing (the same numbers: tests
    compare them). Calls are serialised by a lock (one input and one output buffer)."""

    def __init__(self, fitted: Fitted) -> None:
        import ctypes
        import threading

        from lightgbm.basic import _LIB, _safe_call

        if fitted.kind != "lightgbm":
            raise TuesdayError(f"Fast row contributions need a LightGBM model; this one is "
                               f"{fitted.kind!r}.", fix="Use contributions() instead.")
        booster = fitted.model
        self.fitted, self.link = fitted, link_of(fitted)
        self.ncol = int(booster.num_feature())
        self._config = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(3),  # C_API_PREDICT_CONTRIB
            ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(1),  # all iterations, float64
            ctypes.c_int32(self.ncol), ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(self._config)))
        self._fn = ctypes.PyDLL(_LIB._name, handle=_LIB._handle
                                ).LGBM_BoosterPredictForMatSingleRowFast
        self._free = _LIB.LGBM_FastConfigFree
        self._in = np.empty(self.ncol, dtype=np.float64)
        self._out = np.empty(self.ncol + 1, dtype=np.float64)
        self._len = ctypes.c_int64(0)
        self._args = (ctypes.c_void_p(self._in.ctypes.data), ctypes.byref(self._len),
                      ctypes.c_void_p(self._out.ctypes.data))
        self._check = _safe_call
        self._lock = threading.Lock()

    def __call__(self, row: np.ndarray) -> Contributions:
        """The contributions of one row (``ncol`` values)."""
        with self._lock:
            self._in[:] = row
            self._check(self._fn(self._config, *self._args))
            out = self._out.copy()
        values = out[None, :-1]
        expected = out[-1:]
        return Contributions(self.fitted.features, values, expected,
                             np.array([expected[0] + values.sum()]), self.link,
                             self._in.copy()[None, :])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._free(config)
