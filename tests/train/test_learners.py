"""One conformance test for every learner and every baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from tuesday.data.features import baseline_features
from tuesday.errors import TuesdayError
from tuesday.project import BASELINE_KINDS, Baseline, Entity, Learner, Model, duration
from tuesday.train import baselines, learners

RNG = np.random.default_rng(5)
X = pd.DataFrame({"a": RNG.normal(size=400), "b": RNG.normal(size=400),
                  "c": RNG.integers(0, 5, 400).astype(float)})
X.loc[::17, "b"] = np.nan
Y_REG = 3 * X["a"].to_numpy() + np.nan_to_num(X["b"].to_numpy()) + RNG.normal(0, .1, 400)
Y_BIN = (X["a"].to_numpy() + RNG.normal(0, .5, 400) > 0).astype(float)
Y_COUNT = RNG.poisson(np.exp(0.5 + 0.4 * X["a"].to_numpy())).astype(float)

LEARNERS = {
    "lightgbm": Learner("lightgbm", {"num_boost_round": 50}),
    "lightgbm_poisson": Learner("lightgbm", {"num_boost_round": 50, "objective": "poisson"}),
    "linear": Learner("linear"),
    "linear_poisson": Learner("linear", {"objective": "poisson"}),
    "sklearn_hgb": Learner("sklearn", estimator=HistGradientBoostingRegressor(max_iter=50)),
    "sklearn_pipeline": Learner("sklearn", estimator=make_pipeline(SimpleImputer(),
                                                                    LinearRegression())),
}
BINARY = {
    "lightgbm": Learner("lightgbm", {"num_boost_round": 50}),
    "linear": Learner("linear"),
    "sklearn_hgb": Learner("sklearn", estimator=HistGradientBoostingClassifier(max_iter=50)),
}


def _check(learner: Learner, task: str, y: np.ndarray) -> learners.Fitted:
    train, test = X.iloc[:300], X.iloc[300:]
    fitted = learners.fit(learner, task, train, y[:300], seed=3)
    p = fitted.predict(test.to_numpy(dtype=float))
    assert p.shape == (100,) and np.isfinite(p).all()
    if task == "binary":
        assert ((p >= 0) & (p <= 1)).all()
    # saved and loaded: identical predictions, from data only
    back = learners.loads(fitted.format, fitted.dumps())
    np.testing.assert_array_equal(back.predict(test.to_numpy(dtype=float)), p)
    assert back.features == ("a", "b", "c")
    # same inputs, same model
    again = learners.fit(learner, task, train, y[:300], seed=3)
    np.testing.assert_array_equal(again.predict(test.to_numpy(dtype=float)), p)
    if fitted.kind != "sklearn":  # skops' zip container stamps times
        assert again.dumps() == fitted.dumps()
    assert set(fitted.importance()) == {"a", "b", "c"}
    return fitted


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_regression_learner_conformance(name: str) -> None:
    y = Y_COUNT if "poisson" in name else Y_REG
    fitted = _check(LEARNERS[name], "regression", y)
    p = fitted.predict(X.iloc[300:].to_numpy(dtype=float))
    baseline = np.mean((y[300:] - y[:300].mean()) ** 2)
    assert np.mean((y[300:] - p) ** 2) < baseline  # learns something
    if "poisson" in name:
        assert (p > 0).all()


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_learner_conformance(name: str) -> None:
    _check(BINARY[name], "binary", Y_BIN)


def test_skops_refuses_untrusted_types() -> None:
    import skops.io as sio

    data = sio.dumps({"features": ["a"], "task": "regression",
                      "estimator": pd.Timestamp("2020-01-01")})
    with pytest.raises(TuesdayError, match="types tuesday does not trust"):
        learners.loads("skops", data)


def test_sklearn_estimator_that_cannot_fit_is_a_clear_error() -> None:
    with pytest.raises(TuesdayError, match=r"(?s)LinearRegression failed to fit.*"
                                           r"Features with missing values: b"):
        learners.fit(Learner("sklearn", estimator=LinearRegression()), "regression", X,
                     Y_REG, seed=0)


def test_sklearn_learner_needs_an_estimator() -> None:
    with pytest.raises(TuesdayError, match="needs estimator="):
        learners.fit(Learner("sklearn"), "regression", X, Y_REG, seed=0)


# --------------------------------------------------------------------- baselines


def _series_model(b: Baseline) -> Model:
    return Model("m", Entity("item"), "sales", "qty", (), (b,), horizon="7d")


def _series_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    rows = []
    for item in ("a", "b"):
        demand = rng.poisson(0.4, len(days)) * rng.integers(1, 9, len(days))
        rows.append(pd.DataFrame({"item": item, "day": days, "qty": demand.astype(float)}))
    return pd.concat(rows, ignore_index=True)


def _with_lags(model: Model, frame: pd.DataFrame) -> pd.DataFrame:
    """The baseline features, computed directly with pandas."""
    out = frame.copy()
    s = frame.set_index(["item", "day"])["qty"]
    for f in baseline_features(model):
        d = duration(f.lag, what="lag")
        if f.kind == "lag":
            idx = pd.MultiIndex.from_arrays([frame["item"], frame["day"] - d])
            out[f.name] = s.reindex(idx).to_numpy()
        else:
            w = duration(f.window, what="window")
            out[f.name] = [
                s.loc[i][(s.loc[i].index > t - d - w) & (s.loc[i].index <= t - d)].mean()
                for i, t in zip(frame["item"], frame["day"], strict=True)]
    return baselines.add_recursive(model, out, "item", "day")


@pytest.mark.parametrize("kind", [k for k in BASELINE_KINDS if k != "prior"])
def test_baseline_conformance(kind: str) -> None:
    b = Baseline(kind, kind, fn=(lambda f: np.full(len(f), 2.0)) if kind == "rule" else None)
    model = _series_model(b)
    frame = _with_lags(model, _series_frame())
    train_y = frame["qty"].to_numpy()[:100]
    p = baselines.predict(model, b, frame, train_y)
    assert p.shape == (len(frame),) and np.isfinite(p).all()
    # no history -> the training mean
    if kind in baselines.ONLINE or kind in baselines.RECURSIVE:
        assert p[0] == pytest.approx(train_y.mean())
    # no look-ahead: changing values after a row's origin never changes its forecast
    future = _series_frame()
    cut = pd.Timestamp("2024-03-01")
    future.loc[future["day"] > cut, "qty"] += 100
    p2 = baselines.predict(model, b, _with_lags(model, future), train_y)
    early = (frame["day"] - pd.Timedelta(days=7) <= cut).to_numpy()
    np.testing.assert_array_equal(p[early], p2[early])


def _croston_textbook(y: list[float], alpha: float) -> list[float]:
    """Croston (1972) as usually written: z (size) and p (interval) updated on demand."""
    out, z, p, q = [], None, None, 1
    for v in y:
        if v > 0:
            if z is None:
                z, p = v, q
            else:
                z = z + alpha * (v - z)
                p = p + alpha * (q - p)
            q = 1
        else:
            q += 1
        out.append(z / p if z is not None else float("nan"))
    return out


def test_croston_matches_the_textbook_recursion() -> None:
    y = np.random.default_rng(1).poisson(0.3, 300) * 5.0
    got = baselines.croston_path(y, 0.2)
    want = _croston_textbook(list(y), 0.2)
    np.testing.assert_allclose(got, want, equal_nan=True, rtol=1e-12)


def test_tsb_probability_and_size() -> None:
    y = np.array([0.0, 0.0, 6.0, 0.0, 2.0])
    got = baselines.tsb_path(y, alpha=0.5, beta=0.5)
    # prob: 0, 0, .5, .25, .625 ; size: -, -, 6, 6, 4
    np.testing.assert_allclose(got, [np.nan, np.nan, 3.0, 1.5, 2.5], equal_nan=True)
