"""Exact contributions: every learner's add up to its raw score, LightGBM's equal
shap.TreeExplainer's, and explanations read as sentences in the target's units."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from tuesday.errors import TuesdayError
from tuesday.project import (
    Entity,
    Learner,
    Model,
    calendar,
    holiday,
    lag,
    lookup,
    request,
    scheduled,
    window,
)
from tuesday.release import registry
from tuesday.train import training
from tuesday.train.contributions import contributions, inverse_link
from tuesday.train.explanations import explain, phrase
from tuesday.train.learners import fit
from tuesday.workspace import Workspace

shap = pytest.importorskip("shap")

RNG = np.random.default_rng(7)
X = pd.DataFrame({"a": RNG.normal(size=600), "b": RNG.uniform(0, 5, size=600),
                  "c": RNG.integers(0, 7, size=600).astype(float)})
X.loc[X.index[::17], "b"] = np.nan  # missing values take each learner's own path
SCORE = 0.8 * X["a"].to_numpy() + np.nan_to_num(X["b"].to_numpy()) / 3 + (X["c"] == 5)
COUNTS = RNG.poisson(np.exp(0.3 + 0.4 * SCORE)).astype(float)
CLASSES = (SCORE + RNG.normal(size=600) > 1.2).astype(float)
SMALL = {"num_boost_round": 60, "num_threads": 1}

LEARNERS = {
    "lightgbm-regression": (Learner("lightgbm", SMALL), "regression", SCORE, "identity"),
    "lightgbm-poisson": (Learner("lightgbm", {**SMALL, "objective": "poisson"}),
                         "regression", COUNTS, "log"),
    "lightgbm-tweedie": (Learner("lightgbm", {**SMALL, "objective": "tweedie"}),
                         "regression", COUNTS, "log"),
    "lightgbm-binary": (Learner("lightgbm", SMALL), "binary", CLASSES, "logit"),
    "linear-ridge": (Learner("linear"), "regression", SCORE, "identity"),
    "linear-poisson": (Learner("linear", {"objective": "poisson"}), "regression", COUNTS,
                       "log"),
    "linear-logistic": (Learner("linear"), "binary", CLASSES, "logit"),
    "sklearn-ridge": (Learner("sklearn", estimator=Ridge()), "regression", SCORE, "identity"),
    "sklearn-logistic": (Learner("sklearn", estimator=LogisticRegression()), "binary",
                         CLASSES, "logit"),
}


def _complete(kind: str) -> pd.DataFrame:
    return X.fillna(0.0) if kind.startswith("sklearn") else X


@pytest.mark.parametrize("kind", sorted(LEARNERS))
def test_contributions_add_up_to_the_raw_score(kind: str) -> None:
    learner, task, y, link = LEARNERS[kind]
    x = _complete(kind)
    fitted = fit(learner, task, x, y, seed=3)
    c = contributions(fitted, x.to_numpy(dtype=float))
    assert c.link == link
    assert c.values.shape == (len(x), 3)
    np.testing.assert_allclose(c.expected + c.values.sum(axis=1), c.raw, rtol=0, atol=1e-9)
    # the raw score is the one the model predicts from
    np.testing.assert_allclose(inverse_link(link, c.raw),
                               fitted.predict(x.to_numpy(dtype=float)), rtol=1e-9, atol=1e-12)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier with TreeExplainer")
@pytest.mark.parametrize("kind", [k for k in sorted(LEARNERS) if k.startswith("lightgbm")])
def test_lightgbm_contributions_equal_shap_tree_explainer(kind: str) -> None:
    learner, task, y, _ = LEARNERS[kind]
    fitted = fit(learner, task, X, y, seed=3)
    rows = X.to_numpy(dtype=float)[:200]
    ours = contributions(fitted, rows)
    explainer = shap.TreeExplainer(fitted.model)
    theirs = np.asarray(explainer.shap_values(rows))
    np.testing.assert_allclose(ours.values, theirs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.expected, float(np.ravel(explainer.expected_value)[0]),
                               rtol=0, atol=1e-9)


def test_linear_contributions_are_coefficient_times_distance_from_the_mean() -> None:
    fitted = fit(Learner("linear"), "regression", X, SCORE, seed=0)
    m = fitted.model
    row = np.array([[2.0, np.nan, 5.0]])
    c = contributions(fitted, row)
    filled = np.array([2.0, m["medians"][1], 5.0])
    want = np.asarray(m["coef"]) * (filled - np.asarray(m["means"])) / np.asarray(m["scales"])
    np.testing.assert_allclose(c.values[0], want, rtol=0, atol=1e-12)
    assert c.expected[0] == m["intercept"]


def test_an_estimator_without_an_exact_method_says_so() -> None:
    fitted = fit(Learner("sklearn", estimator=HistGradientBoostingRegressor(max_iter=5)),
                 "regression", X, SCORE, seed=0)
    with pytest.raises(TuesdayError, match="HistGradientBoostingRegressor has no exact "
                                           "per-feature contributions"):
        contributions(fitted, X.to_numpy(dtype=float)[:3])
    with pytest.raises(TuesdayError, match="need 3 feature columns"):
        contributions(fitted, np.zeros((1, 2)))


def test_features_describe_themselves() -> None:
    assert phrase(lag("ridership", "rides", "14d"), 16020.0) == "rides 14 days earlier (16,020)"
    assert phrase(window("ridership", "rides", "28d", lag="14d"), 15500.4) == \
        "average rides over the 28 days ending 14 days earlier (15,500)"
    assert phrase(holiday("US"), 1.0) == "it is a public holiday"
    assert phrase(holiday("US"), 0.0) == "it is not a public holiday"
    assert phrase(holiday("US", "days_to_next"), 3.0) == "3 days to the next public holiday"
    assert phrase(calendar("day_of_week"), 0.0) == "it is a Monday"
    assert phrase(calendar("month"), 8.0) == "it is August"
    tx = window("transactions", "amount", "1h", lag="0d", agg="count")
    assert phrase(tx, 5.0) == "5 transactions in the last 1 hour"
    assert phrase(lag("ridership", "rides", "14d"), float("nan")) == \
        "rides 14 days earlier (missing)"
    game = lag("games", "home_game", "0d", describe="a Cubs home game is scheduled ({value})")
    assert phrase(game, 1.0) == "a Cubs home game is scheduled (1)"
    flag = request("is_promo", describe=lambda v: "on promotion" if v else "not on promotion")
    assert phrase(flag, 1.0) == "on promotion"
    assert phrase(flag, 0.0) == "not on promotion"
    assert phrase(holiday("US", "days_since_last"), 1.0) == \
        "1 day since the last public holiday"
    assert phrase(lookup("weather", "temp", name="temp_last_known"), 80.05) == \
        "latest known temp (80)"
    assert phrase(scheduled("games", "home_games"), 2.0) == "2 home games scheduled"


def _model(features: tuple, task: str = "regression") -> Model:
    return Model("m", Entity("shop"), "sales", "units" if task == "regression" else "churn",
                 features, (), task=task)


def test_an_identity_link_explanation_adds_up_in_units() -> None:
    feats = (lag("sales", "a", "14d"), lag("sales", "b", "14d"), calendar("day_of_week"))
    fitted = fit(Learner("linear"), "regression", X.set_axis([f.name for f in feats], axis=1),
                 SCORE, seed=0)
    c = contributions(fitted, X.to_numpy(dtype=float)[:5])
    e = explain(_model(feats), c, 0, baseline=("naive", 1.0), when=datetime(2016, 8, 29),
                entity="s1")
    assert e.prediction == pytest.approx(e.expected + sum(r.shift for r in e.reasons), abs=1e-9)
    assert abs(e.reasons[0].shift) >= abs(e.reasons[-1].shift)
    assert e.sentence.startswith("Forecast ")
    assert " units for s1 on Mon 29 Aug 2016, " in e.sentence
    assert "the naive forecast (1)" in e.sentence
    assert "Raised mostly by" in e.sentence or "Held back by" in e.sentence


def test_a_classifier_explanation_speaks_in_probability_and_says_how() -> None:
    feats = (lag("sales", "a", "14d"), lag("sales", "b", "14d"), calendar("day_of_week"))
    names = [f.name for f in feats]
    fitted = fit(Learner("lightgbm", SMALL), "binary", X.set_axis(names, axis=1), CLASSES,
                 seed=0)
    c = contributions(fitted, X.to_numpy(dtype=float)[:5])
    e = explain(_model(feats, "binary"), c, 2)
    without = c.without(2)
    for r in e.reasons:
        j = names.index(r.feature)
        assert r.shift == pytest.approx(e.prediction - without[j], abs=1e-12)
    assert e.sentence.startswith("Probability of churn = 1: ")
    assert "without that reason alone" in e.sentence
    assert e.to_dict()["contributions"][0]["feature"] == e.reasons[0].feature


def test_the_ridership_model_explains_a_real_forecast(trained_ws: Workspace,
                                                      ridership: object) -> None:
    model = ridership.project.model("ridership_14d")  # type: ignore[attr-defined]
    v1 = registry.get_version(trained_ws, "ridership_14d", 1)
    fitted = training.load_model(trained_ws, v1["manifest"])
    ref = pq.read_table(io.BytesIO(trained_ws.get_artifact(
        v1["manifest"]["reference"]["sha256"]))).to_pandas()
    x = ref[list(fitted.features)].to_numpy(dtype=float)[:50]
    c = contributions(fitted, x)
    np.testing.assert_allclose(c.expected + c.values.sum(axis=1), c.raw, atol=1e-9)
    np.testing.assert_allclose(c.predictions(), fitted.predict(x), rtol=1e-12)
    e = explain(model, c, 0)
    assert e.sentence.startswith("Forecast ") and " rides" in e.sentence
    assert {r.feature for r in e.reasons} == set(fitted.features)


def test_one_row_through_the_fast_api_equals_the_batch() -> None:
    from tuesday.train.contributions import RowContributions

    learner, task, y, _ = LEARNERS["lightgbm-poisson"]
    fitted = fit(learner, task, X, y, seed=3)
    rows = X.to_numpy(dtype=float)[:40]
    batch = contributions(fitted, rows)
    one = RowContributions(fitted)
    for i, r in enumerate(rows):
        c = one(r)
        np.testing.assert_array_equal(c.values[0], batch.values[i])
        assert c.expected[0] == batch.expected[i]
        assert c.raw[0] == pytest.approx(batch.raw[i], abs=1e-9)
