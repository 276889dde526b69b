"""Learners: fit, predict, and save in a safe format that loads without running code.

Kinds:
- ``lightgbm``: LightGBM boosting (regression incl. ``objective="poisson"`` or
  ``"tweedie"`` for counts, binary classification, ranking: ``lambdarank`` over the
  candidates of each request, or a pointwise ``binary`` click model). Saved as
  LightGBM's text format.
  Deterministic settings; the same inputs give a byte-identical file.
- ``linear``: a linear model (ridge regression, Poisson regression with
  ``params={"objective": "poisson"}``, or logistic regression for binary), with median
  imputation and standardisation, fitted by scikit-learn and saved as plain JSON.
  Byte-identical too.
- ``sklearn``: any scikit-learn-compatible estimator the user passes as
  ``Learner("sklearn", estimator=...)``; saved with skops, whose loader only accepts
  known types and never unpickles arbitrary code. Predictions are reproducible; the
  file is not byte-identical (its zip container records times).

Example:
    >>> import numpy as np, pandas as pd
    >>> from tuesday.project import Learner
    >>> x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]}); y = np.array([1.0, 3.0, 5.0, 7.0])
    >>> f = fit(Learner("linear", {"alpha": 0.0}), "regression", x, y, seed=0)
    >>> [round(v, 6) for v in f.predict(np.array([[4.0]]))]
    [9.0]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from tuesday.errors import TuesdayError
from tuesday.project import Learner
from tuesday.train.model_file import check_lightgbm_text

LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "bagging_fraction": 1.0,
    "lambda_l2": 1.0,
    "num_boost_round": 400,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
FORMATS = {"lightgbm": "lightgbm-text", "linear": "linear-json", "sklearn": "skops"}


@dataclass(frozen=True)
class Fitted:
    """A fitted learner: ``predict`` takes a float matrix with the training columns
    (``encode`` makes one from a frame, category features as their codes).

    ``categories`` holds, per category feature, the values seen in training in code
    order: value ``categories[f][k]`` has code ``k``; a value not seen in training has
    the code ``len(categories[f])`` (one LightGBM never split on, so it goes the way of
    the categories a split did not name), a missing value NaN. It is recorded in the
    version's manifest, so serving codes values exactly as training did.
    """

    kind: str
    task: str
    features: tuple[str, ...]
    model: Any
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def encode(self, x: pd.DataFrame) -> np.ndarray:
        """The float matrix of ``x``'s feature columns, categories as their codes."""
        return encode(x, self.features, self.categories)

    def predict(self, x: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        if self.kind == "lightgbm":
            return np.asarray(self.model.predict(x, num_threads=num_threads), dtype=float)
        if self.kind == "linear":
            return _linear_predict(self.model, x)
        if self.task == "binary" and hasattr(self.model, "predict_proba"):
            return np.asarray(self.model.predict_proba(x)[:, 1], dtype=float)
        return np.asarray(self.model.predict(x), dtype=float)

    @property
    def format(self) -> str:
        return FORMATS[self.kind]

    def dumps(self) -> bytes:
        if self.kind == "lightgbm":
            return str(self.model.model_to_string(num_iteration=-1)).encode()
        if self.kind == "linear":
            return json.dumps(self.model, sort_keys=True, separators=(",", ":")).encode()
        import skops.io as sio

        return bytes(sio.dumps({"features": list(self.features), "task": self.task,
                                "estimator": self.model}))

    def importance(self) -> dict[str, float]:
        """Feature importance (LightGBM gain, |standardised coefficient| for linear)."""
        if self.kind == "lightgbm":
            gain = self.model.feature_importance(importance_type="gain")
            return dict(zip(self.features, map(float, gain), strict=True))
        if self.kind == "linear":
            return dict(zip(self.features, map(abs, self.model["coef"]), strict=True))
        coef = getattr(self.model, "feature_importances_", None)
        if coef is None:
            coef = np.abs(np.ravel(getattr(self.model, "coef_", np.zeros(len(self.features)))))
        return dict(zip(self.features, map(float, coef), strict=True))


#: objectives that rank the candidates of each request (they need the request groups)
RANK_OBJECTIVES = ("lambdarank", "rank_xendcg")


def lightgbm_params(learner: Learner, task: str, seed: int, *,
                    grouped: bool = False) -> dict[str, Any]:
    """LightGBM's parameters: the defaults, the learner's own, the objective of the task
    (a ranking task with request groups defaults to ``lambdarank``, without them to a
    pointwise ``binary`` click model) and the seed."""
    params = {**LIGHTGBM_DEFAULTS, **dict(learner.params)}
    default = {"binary": "binary",
               "ranking": "lambdarank" if grouped else "binary"}.get(task, "regression")
    params["objective"] = params.get("objective") or default
    params["seed"] = seed
    return params


def categories_of(x: pd.DataFrame, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The values of each category column of ``x``, sorted: their codes."""
    return {n: tuple(sorted({str(v) for v in x[n] if v is not None and v == v}))
            for n in names}


def encode(x: pd.DataFrame, features: tuple[str, ...],
           categories: dict[str, tuple[str, ...]]) -> np.ndarray:
    """``x``'s feature columns as floats: a category's value as its code (see
    ``Fitted``), unseen values as the unseen code, missing values as NaN.

    Example:
        >>> encode(pd.DataFrame({"c": ["b", None, "z"], "n": [1, 2, 3]}), ("c", "n"),
        ...        {"c": ("a", "b")}).tolist()
        [[1.0, 1.0], [nan, 2.0], [2.0, 3.0]]
    """
    if not categories:
        return x[list(features)].to_numpy(dtype=float)
    cols = []
    for f in features:
        if f not in categories:
            cols.append(pd.to_numeric(x[f], errors="coerce").to_numpy(dtype=float))
            continue
        cats = categories[f]
        values = x[f].astype(object)
        missing = values.isna().to_numpy()
        codes = pd.Index(list(cats), dtype=object).get_indexer(
            [None if m else str(v) for v, m in zip(values, missing, strict=True)])
        cols.append(np.where(missing, np.nan, np.where(codes < 0, len(cats), codes))
                    .astype(float))
    return np.column_stack(cols) if cols else np.zeros((len(x), 0))


def fit(learner: Learner, task: str, x: pd.DataFrame, y: np.ndarray, *, seed: int,
        categorical: tuple[str, ...] = (), group: np.ndarray | None = None) -> Fitted:
    """Fit ``learner`` on ``x`` (float columns; ``categorical`` names text columns that
    LightGBM takes as categories) and ``y``; deterministic for a seed.

    ``group``: for ranking, the size of each request's run of consecutive rows (what
    LightGBM's ranking objectives learn from).
    """
    features = tuple(str(c) for c in x.columns)
    if learner.kind == "lightgbm":
        params = lightgbm_params(learner, task, seed, grouped=group is not None)
        rounds = int(params.pop("num_boost_round"))
        ranks = str(params["objective"]) in RANK_OBJECTIVES
        if ranks and group is None:
            raise TuesdayError(f"The {params['objective']} objective needs the request of "
                               "each row.", fix="Declare Slate(group=COLUMN) on the model.")
        cats = categories_of(x, tuple(c for c in categorical if c in features))
        matrix = pd.DataFrame(encode(x, features, cats), columns=list(features))
        data = lgb.Dataset(matrix, label=y, feature_name=list(features), free_raw_data=True,
                           categorical_feature=list(cats) or "auto",
                           group=group if ranks else None, params={"verbosity": -1})
        return Fitted("lightgbm", task, features, lgb.train(params, data,
                                                             num_boost_round=rounds), cats)
    if task == "ranking":  # a pointwise model of the relevance
        task = "binary" if set(np.unique(y)) <= {0.0, 1.0} else "regression"
    if learner.kind == "linear":
        return Fitted("linear", task, features, _linear_fit(learner, task, x, y, seed))
    if learner.kind == "sklearn":
        from sklearn.base import clone

        if learner.estimator is None:
            raise TuesdayError("Learner('sklearn') needs estimator=, a scikit-learn estimator.",
                               fix="Pass e.g. Learner('sklearn', estimator=HistGradient"
                                   "BoostingRegressor()).")
        est = clone(learner.estimator)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        try:
            est.fit(x.to_numpy(dtype=float), y)
        except ValueError as exc:
            missing = [c for c in x.columns if x[c].isna().any()]
            raise TuesdayError(
                f"The scikit-learn estimator {type(est).__name__} failed to fit: {exc}"
                + (f" Features with missing values: {', '.join(map(str, missing))}."
                   if missing else ""),
                fix="Wrap it in a pipeline that handles missing values, e.g. "
                    "make_pipeline(SimpleImputer(), estimator).") from exc
        return Fitted("sklearn", task, features, est)
    raise TuesdayError(f"Learner kind {learner.kind!r} is unknown.",
                       fix="Use 'lightgbm', 'linear' or 'sklearn'.")


def loads(fmt: str, data: bytes, *, what: str = "The model file") -> Fitted:
    """Load a saved learner. Only data is read; no code runs. A LightGBM file is checked
    first (``model_file.check_lightgbm_text``): LightGBM itself trusts its files."""
    if fmt == "lightgbm-text":
        check_lightgbm_text(data, what=what)
        booster = lgb.Booster(model_str=data.decode())
        objective = str(booster.params.get("objective", ""))
        task = "binary" if objective.startswith("binary") else (
            "ranking" if objective.startswith(RANK_OBJECTIVES) else "regression")
        return Fitted("lightgbm", task, tuple(booster.feature_name()), booster)
    if fmt == "linear-json":
        model = json.loads(data)
        return Fitted("linear", model["task"], tuple(model["features"]), model)
    if fmt == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        allowed = [t for t in untrusted if t.split(".")[0] in ("sklearn", "numpy", "scipy")]
        refused = sorted(set(untrusted) - set(allowed))
        if refused:
            raise TuesdayError(f"The skops artifact holds types tuesday does not trust: "
                               f"{', '.join(refused)}.",
                               fix="Use scikit-learn estimators, or the lightgbm/linear "
                                   "learners.")
        obj = sio.loads(data, trusted=allowed)
        return Fitted("sklearn", obj["task"], tuple(obj["features"]), obj["estimator"])
    raise TuesdayError(f"Artifact format {fmt!r} is unknown.",
                       fix="Retrain the model with this version of tuesday.")


# ----------------------------------------------------------------------- linear


def _linear_fit(learner: Learner, task: str, x: pd.DataFrame, y: np.ndarray,
                seed: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge

    a = x.to_numpy(dtype=float)
    medians = np.nanmedian(a, axis=0) if len(a) else np.zeros(a.shape[1])
    medians = np.where(np.isnan(medians), 0.0, medians)
    a = np.where(np.isnan(a), medians, a)
    means = a.mean(axis=0)
    scales = a.std(axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    z = (a - means) / scales
    params = dict(learner.params)
    objective = params.pop("objective", "binary" if task == "binary" else "regression")
    alpha = float(params.pop("alpha", 1.0))
    if task == "binary":
        est: Any = LogisticRegression(C=1.0 / max(alpha, 1e-12), max_iter=1000,
                                      random_state=seed)
        link = "logit"
    elif objective == "poisson":
        est = PoissonRegressor(alpha=alpha, max_iter=1000)
        link = "log"
    else:
        est = Ridge(alpha=alpha, random_state=seed)
        link = "identity"
    est.fit(z, y)
    return {"kind": "linear", "task": task, "link": link,
            "features": [str(c) for c in x.columns],
            "medians": medians.tolist(), "means": means.tolist(), "scales": scales.tolist(),
            "coef": np.ravel(est.coef_).tolist(),
            "intercept": float(np.ravel(np.asarray(est.intercept_))[0])}


def _linear_predict(m: dict[str, Any], x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    med = np.asarray(m["medians"])
    a = np.where(np.isnan(a), med, a)
    eta = ((a - np.asarray(m["means"])) / np.asarray(m["scales"])) @ np.asarray(m["coef"])
    eta = eta + m["intercept"]
    if m["link"] == "logit":
        return np.asarray(1.0 / (1.0 + np.exp(-eta)))
    if m["link"] == "log":
        return np.asarray(np.exp(eta))
    return np.asarray(eta)
