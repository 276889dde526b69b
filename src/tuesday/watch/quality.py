"""Quality of served predictions: ground truth joined back to the prediction log, metrics
over time windows and per slice against the baselines logged on the same rows, metrics per
deployment variant (shadow, canary, A/B) with a bootstrap comparison, and, for binary
classifiers before labels arrive, confidence-based performance estimation (CBPE).

Every figure is computed on rows whose ground truth is known at ``as_of``; the baselines
are scored on exactly the rows the model is scored on, so a window or a slice compares
like with like.

Example:
    >>> import numpy as np
    >>> p = np.array([0.9, 0.8, 0.2, 0.1])
    >>> est = cbpe(p)
    >>> round(est["accuracy"], 3), round(est["precision"], 3)
    (0.85, 0.85)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tuesday.data import derived, tables
from tuesday.data.censoring import CENSORED, censored_rows
from tuesday.project import LoadedProject, Metric, Model, duration
from tuesday.train import evaluation
from tuesday.workspace import Workspace

#: bootstrap resamples and seed of variant comparisons (fixed: the same log, the same CI)
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: the metrics CBPE estimates (expected values under calibrated probabilities)
CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "log_loss")


@dataclass(frozen=True)
class Labels:
    """Ground truth known at a time: one row per (entity[, target_time]).

    Attributes:
        frame: ``entity``, optionally ``target_time``, ``actual`` (the raw target) and
            the label source's other columns that a slice names.
        on: The join keys with the prediction log.
    """

    frame: pd.DataFrame
    on: tuple[str, ...]


def labels_as_of(ws: Workspace, loaded: LoadedProject, model_name: str,
                 as_of: datetime) -> Labels:
    """The model's ground truth as known at ``as_of`` (the label source's version then)."""
    project = loaded.project
    model = project.model(model_name)
    src = project.source(model.label_source)
    if src.derive is not None:
        derived.refresh(ws, project, [src.name])
    versions = tables.versions_as_of(ws, [src.name], as_of)
    raw = tables.read_table(ws, src, versions.get(src.name)).to_pandas()
    key, tcol = model.entity.key, src.time
    extra = [s for s in model.slices if s in raw.columns and s not in (key, tcol, model.target)]
    if model.censored is not None:  # sold-out days, as known at as_of like the labels
        name = model.censored.source or src.name
        tabs = {name: tables.read_table(ws, project.source(name), tables.versions_as_of(
            ws, [name], as_of).get(name))} if name != src.name else {}
        raw[CENSORED] = censored_rows(project, model, raw, tabs)
        extra.append(CENSORED)
    frame = raw[[key, model.target, *([tcol] if tcol else []), *extra]].rename(
        columns={key: "entity", model.target: "actual", **({tcol: "target_time"} if tcol
                                                             else {})})
    frame["entity"] = frame["entity"].astype(str)
    return Labels(frame, ("entity", "target_time") if tcol else ("entity",))


def attach(model: Model, labels: Labels, log: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Served rows joined to their ground truth, and how many distinct rows were served.

    The latest answer for each (entity, target) is the one that counts. The joined frame
    holds the log's columns, ``actual`` and ``y`` (the target as a number: 1.0/0.0 for
    ``positive`` in a binary model).
    """
    on = list(labels.on)
    served = latest_answers(log, labels)
    lab = labels.frame.drop(columns=[c for c in labels.frame.columns
                                     if c in served.columns and c not in on])
    joined = served.merge(lab, on=on, how="inner")
    if model.task == "binary":
        joined["y"] = (joined["actual"] == model.positive).to_numpy(dtype=float)
    else:
        joined["y"] = joined["actual"].to_numpy(dtype=float)
    return joined, len(served)


def latest_answers(log: pd.DataFrame, labels: Labels) -> pd.DataFrame:
    """The latest answer for each (entity[, target_time]) of the log."""
    return log.sort_values("served_at", kind="stable").drop_duplicates(list(labels.on),
                                                                     keep="last")


def baseline_frame(joined: pd.DataFrame) -> pd.DataFrame:
    """The logged baselines of each joined row as columns (one per baseline)."""
    return pd.DataFrame([json.loads(s) if s else {} for s in joined["baselines"]],
                        index=joined.index, dtype=float)


def feature_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The logged features of each row as columns."""
    return pd.DataFrame([json.loads(s) if s else {} for s in rows["features"]],
                        index=rows.index)


def _scored(model: Model, y: np.ndarray, p: np.ndarray, bl: pd.DataFrame) -> dict[str, Any]:
    """Model and baseline metrics on the same rows, and who wins by the shared rule
    (``evaluation.verdict``): the model against the best baseline on these rows, each
    baseline compared on the rows where it is known (one logged null has no inputs)."""
    out: dict[str, Any] = {"model": evaluation.score(model.metrics, y, p), "baselines": {}}
    primary = model.primary_metric
    metric = _metric_of(model, primary)
    mine_on: dict[str, float] = {}
    known_rows: dict[str, int] = {}
    for name in bl.columns:
        b = bl[name].to_numpy(float)
        out["baselines"][name] = evaluation.score(model.metrics, y, b)
        known = ~np.isnan(b)
        known_rows[name] = int(known.sum())
        mine_on[name] = out["model"][primary] if known.all() else \
            evaluation.score([metric], y[known], p[known])[primary]
    v = evaluation.verdict(primary, mine_on,
                           {n: out["baselines"][n][primary] for n in bl.columns},
                           evaluation.direction(model).get(primary))
    out["best_baseline"] = v.best_baseline
    out["beats_baseline"] = v.beats if v.best_baseline is not None else None
    if v.best_baseline is not None and known_rows[v.best_baseline] < len(y):
        out["baseline_rows"] = known_rows[v.best_baseline]
    return out


def live_quality(ws: Workspace, loaded: LoadedProject, model_name: str, log: pd.DataFrame,
                 as_of: datetime, *, labels: Labels | None = None) -> dict[str, Any] | None:
    """Accuracy of the served predictions in ``log`` on the ground truth known at ``as_of``.

    The latest answer per (entity, target) counts. Returns None for an empty log;
    otherwise ``rows_served`` and ``rows_with_ground_truth``, and when some rows have
    ground truth: ``model`` (every declared metric, user ``Metric`` objects included),
    ``baselines`` (each logged baseline on the same rows), ``best_baseline`` and
    ``beats_baseline`` (on the primary metric); ``days_served`` and
    ``days_with_ground_truth`` count the evidence in distinct target days
    (:func:`evidence`).

    Example:
        >>> q = live_quality(ws, loaded, "ridership_14d", read_log(ws, "ridership_14d"),
        ...                  as_of)  # doctest: +SKIP
        >>> q["model"]["wape"] < q["baselines"][q["best_baseline"]]["wape"]  # doctest: +SKIP
        True
    """
    model = loaded.project.model(model_name)
    if log.empty:
        return None
    labels = labels or labels_as_of(ws, loaded, model_name, as_of)
    joined, n_served = attach(model, labels, log)
    served_days = evidence(latest_answers(log, labels))
    if joined.empty:
        return {"rows_with_ground_truth": 0, "rows_served": n_served,
                "days_with_ground_truth": 0, "days_served": served_days}
    scored = _scored(model, joined["y"].to_numpy(float), joined["prediction"].to_numpy(float),
                     baseline_frame(joined))
    out: dict[str, Any] = {"rows_served": n_served, "rows_with_ground_truth": len(joined),
                           "days_served": served_days,
                           "days_with_ground_truth": evidence(joined),
                           "model": scored["model"], "baselines": scored["baselines"]}
    if scored["baselines"] and scored["best_baseline"] is not None:
        out["best_baseline"] = scored["best_baseline"]
        out["beats_baseline"] = scored["beats_baseline"]
    if CENSORED in joined.columns:  # accuracy with and without the censored rows
        cens = joined[CENSORED].fillna(False).to_numpy(bool)
        keep = joined[~cens]
        out["censored"] = {"rows": int(cens.sum()), "without": _scored(
            model, keep["y"].to_numpy(float), keep["prediction"].to_numpy(float),
            baseline_frame(keep)) if len(keep) else None}
    return out


# ----------------------------------------------------------------- windows, slices


#: what the monitor's windows and its as-of cut follow (said in every report)
TIME_BASIS = ("target time: windows group predictions by their target time; a prediction "
              "counts at as_of from its forecast origin (target time minus the horizon), "
              "not from the wall-clock time it was served")


def origin(model: Model, rows: pd.DataFrame) -> pd.Series:
    """The logical time of each logged prediction: its forecast origin (target time
    minus the model's horizon), else, without a target time, the time it was served.
    A forecast served today for a day of 2016 belongs to 2016, so ``monitor --as-of
    2016-...`` and the daily loop see it (the wall-clock ``served_at`` would not)."""
    if rows.empty:
        return pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us]")
    target = pd.to_datetime(rows["target_time"])
    served = pd.to_datetime(rows["served_at"])
    return (target - duration(model.horizon, what="horizon")).where(target.notna(), served)


def when(rows: pd.DataFrame) -> pd.Series:
    """The time a row is judged at: its target time, else the time it was served."""
    return pd.to_datetime(rows["target_time"].where(rows["target_time"].notna(),
                                                    rows["served_at"]))


def evidence(rows: pd.DataFrame) -> int:
    """How much evidence some logged (or joined) rows are: their distinct target days,
    or the rows themselves for predictions without a target time. 133 items forecast
    for one day are one day of evidence, not 133.

    Example:
        >>> evidence(pd.DataFrame({"target_time": pd.to_datetime(
        ...     ["2016-07-01", "2016-07-01", "2016-07-02"])}))
        2
    """
    if rows.empty:
        return 0
    if "target_time" not in rows.columns or rows["target_time"].isna().all():
        return len(rows)
    t = pd.to_datetime(rows["target_time"])
    return int(t.dt.normalize().nunique()) + int(t.isna().sum())


def windows(model: Model, joined: pd.DataFrame, period: str = "W") -> list[dict[str, Any]]:
    """Metrics per time window of the target time (``period`` is a pandas period alias:
    ``'D'``, ``'W'`` (Monday to Sunday), ``'M'``), model and baselines on the same rows.

    Each row: ``window``, ``start``, ``end`` (inclusive days), ``rows``, ``model``,
    ``baselines``, ``best_baseline``, ``beats_baseline``.
    """
    if joined.empty:
        return []
    bl = baseline_frame(joined)
    key = when(joined).dt.to_period(period)
    out = []
    for p, idx in joined.groupby(key, sort=True).groups.items():
        g = joined.loc[idx]
        row: dict[str, Any] = {"window": str(p), "start": p.start_time.date().isoformat(),
                               "end": p.end_time.date().isoformat(), "rows": len(g)}
        row.update(_scored(model, g["y"].to_numpy(float), g["prediction"].to_numpy(float),
                           bl.loc[idx]))
        out.append(row)
    return out


def slice_values(model: Model, joined: pd.DataFrame, labels: Labels) -> pd.DataFrame:
    """The value of each declared slice for each joined row: a feature logged with the
    prediction, a column of the label source, or a derived class (``demand_class``,
    ``history``) from the ground-truth history."""
    out = pd.DataFrame(index=joined.index)
    feats = feature_frame(joined) if len(joined) else pd.DataFrame(index=joined.index)
    hist = labels.frame.dropna(subset=["actual"])
    for s in model.slices:
        if s in feats.columns:
            out[s] = feats[s]
        elif s in joined.columns:
            out[s] = joined[s]
        elif s == "demand_class" and model.task == "regression":
            classes = evaluation.demand_classes(hist.assign(actual=hist["actual"].astype(float)),
                                                "entity", "actual")
            out[s] = joined["entity"].map(classes).fillna("no_history")
        elif s == "history" and "target_time" in hist.columns:
            season = max((b.season for b in model.baselines), default=7)
            classes = evaluation.history_classes(hist, "entity", min_rows=8 * season)
            out[s] = joined["entity"].map(classes).fillna("short")
    return out


def slices(model: Model, joined: pd.DataFrame, labels: Labels) -> list[dict[str, Any]]:
    """Metrics per value of each declared slice, model and baselines on the same rows.

    Each row: ``slice``, ``value``, ``rows``, ``model``, ``baselines``,
    ``best_baseline``, ``beats_baseline``.
    """
    if joined.empty or not model.slices:
        return []
    values = slice_values(model, joined, labels)
    bl = baseline_frame(joined)
    out = []
    for s in values.columns:
        for v, idx in values.groupby(s, dropna=False, sort=True).groups.items():
            g = joined.loc[idx]
            row: dict[str, Any] = {"slice": s, "value": _plain(v), "rows": len(g)}
            row.update(_scored(model, g["y"].to_numpy(float),
                               g["prediction"].to_numpy(float), bl.loc[idx]))
            out.append(row)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


# ----------------------------------------------------------------------- variants


def variants(model: Model, labels: Labels, log: pd.DataFrame, *,
             resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
             ) -> dict[str, Any]:
    """Metrics per (version, variant) on the rows with ground truth, and comparisons.

    Comparisons, on the primary metric, challenger minus reference:

    * ``shadow``: the shadow version against the primary answers of the same requests
      (paired: the same rows, resampled together);
    * ``canary``: canary rows against the primary rows served over the same period;
    * ``ab``: variant ``b`` against variant ``a``.

    Each gives both values, the difference, a 95% bootstrap interval of the difference
    (``resamples`` resamples, fixed ``seed``), and whether the interval excludes zero.
    """
    if log.empty:
        return {"variants": [], "comparisons": []}
    per, joined_by = _per_variant(model, labels, log)
    comps: list[dict[str, Any]] = []
    primary = [v for k, v in joined_by.items() if k[1] == "primary"]
    ref_all = pd.concat(primary) if primary else None
    for (version, variant), ch in joined_by.items():
        if ch.empty:
            continue
        if variant == "shadow" and ref_all is not None:
            got = _shadow_comparison(model, labels, ref_all, version, ch, resamples, seed)
        elif variant in ("canary", "b"):
            got = _split_comparison(model, joined_by, version, variant, ch, resamples, seed)
        else:
            got = None
        if got is not None:
            comps.append(got)
    return {"variants": per, "comparisons": comps}


def _per_variant(model: Model, labels: Labels, log: pd.DataFrame
                 ) -> tuple[list[dict[str, Any]], dict[tuple[int, str], pd.DataFrame]]:
    """The metrics of each (version, variant) served, and its rows joined to the labels."""
    per: list[dict[str, Any]] = []
    joined_by: dict[tuple[int, str], pd.DataFrame] = {}
    for (version, variant), g in log.groupby(["version", "variant"], sort=True):
        joined, n_served = attach(model, labels, g)
        joined_by[(int(version), str(variant))] = joined
        row: dict[str, Any] = {"version": int(version), "variant": str(variant),
                               "rows_served": n_served, "rows_with_ground_truth": len(joined)}
        row["model"] = evaluation.score(model.metrics, joined["y"].to_numpy(float),
                                        joined["prediction"].to_numpy(float))
        per.append(row)
    return per, joined_by


def _shadow_comparison(model: Model, labels: Labels, ref_all: pd.DataFrame, version: int,
                       ch: pd.DataFrame, resamples: int, seed: int) -> dict[str, Any] | None:
    """The shadow version against the primary answers of the same requests (paired)."""
    pair_on = ["request_id", *labels.on]
    both = ch.merge(ref_all[[*pair_on, "prediction", "version"]], on=pair_on,
                    suffixes=("", "_ref"))
    if both.empty:
        return None
    ref_version = int(both["version_ref"].mode().iloc[0])
    return _compare(
        model, "shadow", (ref_version, "primary"), (version, "shadow"),
        both["y"].to_numpy(float), both["prediction_ref"].to_numpy(float),
        both["y"].to_numpy(float), both["prediction"].to_numpy(float),
        paired=True, resamples=resamples, seed=seed)


def _split_comparison(model: Model, joined_by: dict[tuple[int, str], pd.DataFrame],
                      version: int, variant: str, ch: pd.DataFrame, resamples: int,
                      seed: int) -> dict[str, Any] | None:
    """Canary rows against the primary rows served over the same period, or variant
    ``b`` against variant ``a`` (unpaired)."""
    ref_variant = "primary" if variant == "canary" else "a"
    refs = [v for k, v in joined_by.items() if k[1] == ref_variant and len(v)]
    if not refs:
        return None
    ref = pd.concat(refs)
    if variant == "canary":  # the primary rows served while the canary ran
        ref = ref[(ref["served_at"] >= ch["served_at"].min())
                  & (ref["served_at"] <= ch["served_at"].max())]
        if ref.empty:
            return None
    ref_version = int(ref["version"].mode().iloc[0])
    return _compare(
        model, "canary" if variant == "canary" else "ab",
        (ref_version, ref_variant), (version, variant),
        ref["y"].to_numpy(float), ref["prediction"].to_numpy(float),
        ch["y"].to_numpy(float), ch["prediction"].to_numpy(float),
        paired=False, resamples=resamples, seed=seed)


def _metric_of(model: Model, name: str) -> str | Metric:
    return next(m for m in model.metrics if (m.name if isinstance(m, Metric) else m) == name)


def _compare(model: Model, kind: str, ref: tuple[int, str], ch: tuple[int, str],
             y_ref: np.ndarray, p_ref: np.ndarray, y_ch: np.ndarray, p_ch: np.ndarray, *,
             paired: bool, resamples: int, seed: int) -> dict[str, Any]:
    name = model.primary_metric
    m = _metric_of(model, name)
    a = evaluation.score(model.metrics, y_ref, p_ref)
    b = evaluation.score(model.metrics, y_ch, p_ch)
    lo, hi = bootstrap_difference(m, y_ref, p_ref, y_ch, p_ch, paired=paired,
                                  resamples=resamples, seed=seed)
    diff = b[name] - a[name]
    significant = bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))
    way = evaluation.direction(model).get(name)
    better = None
    if significant:
        better = "challenger" if evaluation.better(name, b[name], a[name], way) \
            else "reference"
    how = (f"paired bootstrap over the same {len(y_ch)} requests" if paired else
           f"bootstrap of {len(y_ref)} reference and {len(y_ch)} challenger rows, "
           "resampled independently")
    note = (f"{name} {b[name]:.4g} vs {a[name]:.4g}: difference {diff:+.4g}, 95% interval "
            f"[{lo:+.4g}, {hi:+.4g}] ({how}, {resamples} resamples, seed {seed}); "
            + (f"the {better} is significantly better" if significant
               else "no significant difference"))
    return {"kind": kind, "metric": name, "paired": paired,
            "reference": {"version": ref[0], "variant": ref[1], "rows": len(y_ref)},
            "challenger": {"version": ch[0], "variant": ch[1], "rows": len(y_ch)},
            "reference_value": a[name], "challenger_value": b[name], "difference": diff,
            "differences": {k: b[k] - a[k] for k in a},
            "ci95": [lo, hi], "resamples": resamples, "seed": seed,
            "significant": significant, "better": better, "note": note}


def bootstrap_difference(metric: str | Metric, y_ref: np.ndarray, p_ref: np.ndarray,
                         y_ch: np.ndarray, p_ch: np.ndarray, *, paired: bool,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                         ) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``metric(challenger) - metric(reference)``.

    ``paired``: the two share their rows (``y_ref`` is ``y_ch``), and each resample draws
    the same rows for both.

    Example:
        >>> y = np.arange(50.0)
        >>> lo, hi = bootstrap_difference("mae", y, y + 1, y, y + 3, paired=True)
        >>> (round(lo, 6), round(hi, 6))
        (2.0, 2.0)
    """
    name = metric.name if isinstance(metric, Metric) else metric
    rng = np.random.default_rng(seed)
    n_a, n_b = len(y_ref), len(y_ch)
    if not n_a or not n_b:
        return float("nan"), float("nan")
    diffs = np.empty(resamples)
    for i in range(resamples):
        ia = rng.integers(0, n_a, n_a)
        ib = ia if paired else rng.integers(0, n_b, n_b)
        diffs[i] = (evaluation.score([metric], y_ch[ib], p_ch[ib])[name]
                    - evaluation.score([metric], y_ref[ia], p_ref[ia])[name])
    diffs = diffs[np.isfinite(diffs)]
    if not len(diffs):
        return float("nan"), float("nan")
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- CBPE


def cbpe(p: Sequence[float] | np.ndarray, threshold: float = 0.5,
         calibration: Calibration | None = None) -> dict[str, float]:
    """Expected binary-classification metrics from scores, assuming calibrated
    probabilities (confidence-based performance estimation, as NannyML's CBPE).

    A row is predicted positive when its score ``p`` reaches ``threshold``. Its
    probability of being positive is ``p`` itself, or ``calibration(p)`` when a
    calibration map is given (NannyML fits one on reference data with labels). The
    expected confusion matrix: TP = sum of the probabilities of the rows predicted
    positive, FP = sum of their complements, FN and TN likewise over the rows predicted
    negative. ROC AUC: the ROC curve down the sorted scores whose true/false positive
    rates are the cumulative sums of the probabilities and of their complements. Brier
    and log loss: their expectations ``mean(q (1 - q))`` and the mean binary entropy of
    the probabilities ``q``.

    Example:
        >>> round(cbpe([0.9, 0.9, 0.1, 0.1])["accuracy"], 3)
        0.9
    """
    s = np.asarray(p, dtype=float)
    s = np.clip(s[np.isfinite(s)], 0.0, 1.0)
    if not len(s):
        return dict.fromkeys(CBPE_METRICS, float("nan"))
    q = np.clip(calibration(s), 0.0, 1.0) if calibration is not None else s
    pos = s >= threshold
    tp, fp = float(q[pos].sum()), float((1 - q[pos]).sum())
    fn, tn = float(q[~pos].sum()), float((1 - q[~pos]).sum())
    return {
        "accuracy": (tp + tn) / len(q),
        "precision": tp / (tp + fp) if tp + fp > 0 else float("nan"),
        "recall": tp / (tp + fn) if tp + fn > 0 else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else float("nan"),
        "roc_auc": _expected_auc(s, q),
        "brier": float(np.mean(q * (1 - q))),
        "log_loss": float(np.mean(_entropy(q))),
    }


class Calibration:
    """A monotone map from scores to probabilities, fitted on labelled reference rows
    (isotonic regression, as NannyML's default calibrator).

    Example:
        >>> c = Calibration.fit(np.array([0, 0, 1, 1.0]), np.array([0.1, 0.2, 0.3, 0.4]))
        >>> c(np.array([0.15, 0.35])).tolist()
        [0.0, 1.0]
    """

    def __init__(self, model: Any, rows: int) -> None:
        self._model = model
        self.rows = rows

    @classmethod
    def fit(cls, y: np.ndarray, p: np.ndarray) -> Calibration:
        from sklearn.isotonic import IsotonicRegression

        ok = np.isfinite(y) & np.isfinite(p)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return cls(iso.fit(p[ok], y[ok]), int(ok.sum()))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict(np.asarray(p, dtype=float)), dtype=float)


def _entropy(q: np.ndarray) -> np.ndarray:
    c = np.clip(q, 1e-15, 1 - 1e-15)
    return -(c * np.log(c) + (1 - c) * np.log(1 - c))


def _expected_auc(s: np.ndarray, q: np.ndarray) -> float:
    order = np.argsort(-s, kind="stable")
    s, q = s[order], q[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # one point per distinct score
    tps, fps = np.cumsum(q)[last], np.cumsum(1 - q)[last]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return float("nan")
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.trapezoid(tpr, fpr))


def realised(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The metrics :func:`cbpe` estimates, computed on actual labels ``y`` (0/1)."""
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], np.clip(p[ok], 0.0, 1.0)
    if not len(y):
        return dict.fromkeys(CBPE_METRICS, float("nan"))
    pos = p >= threshold
    tp = float(np.sum(pos & (y == 1)))
    fp = float(np.sum(pos & (y == 0)))
    fn = float(np.sum(~pos & (y == 1)))
    tn = float(np.sum(~pos & (y == 0)))
    return {
        "accuracy": (tp + tn) / len(y),
        "precision": tp / (tp + fp) if tp + fp > 0 else float("nan"),
        "recall": tp / (tp + fn) if tp + fn > 0 else float("nan"),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else float("nan"),
        "roc_auc": evaluation.auc(y, p),
        "brier": evaluation.brier(y, p),
        "log_loss": evaluation.log_loss(y, p),
    }


def performance_estimate(model: Model, labels: Labels, log: pd.DataFrame, *,
                         period: str = "W", threshold: float = 0.5,
                         calibration: Calibration | None = None) -> dict[str, Any] | None:
    """CBPE for a binary model over the served rows of ``log``: on the rows still waiting
    for their label (``pending``), on the labelled rows next to the realised metrics (a
    check of the calibration assumption), and per window of the target time. None for
    other tasks or an empty log. Every figure is an estimate unless named ``realised``.
    With ``calibration`` (fitted on reference rows with labels) the scores are mapped
    to probabilities first; without it they are assumed calibrated.
    """
    if model.task != "binary" or log.empty:
        return None
    on = list(labels.on)
    served = latest_answers(log, labels).reset_index(drop=True)
    joined, _ = attach(model, labels, served)
    has = served[on].merge(labels.frame[on].drop_duplicates(), on=on, how="left",
                           indicator=True)["_merge"].eq("both").to_numpy()
    p_all = served["prediction"].to_numpy(float)
    out: dict[str, Any] = {
        "kind": "estimate", "method": "CBPE (confidence-based performance estimation)",
        "assumption": ("the scores, mapped by an isotonic calibration fitted on "
                       f"{calibration.rows} reference rows with labels, are calibrated"
                       if calibration is not None else
                       "the predicted scores are calibrated probabilities"),
        "calibrated_on": calibration.rows if calibration is not None else None,
        "threshold": threshold,
        "metrics": list(CBPE_METRICS),
        "pending": {"rows": int((~has).sum()),
                    "estimate": cbpe(p_all[~has], threshold, calibration)},
        "labelled": {"rows": len(joined),
                     "estimate": cbpe(joined["prediction"].to_numpy(float), threshold,
                                         calibration),
                     "realised": realised(joined["y"].to_numpy(float),
                                          joined["prediction"].to_numpy(float), threshold)
                     if len(joined) else None},
        "windows": [],
    }
    if "target_time" not in on and served["target_time"].isna().all():
        return out  # timeless rows: no windows of a target time
    key = when(served).dt.to_period(period)
    jkey = when(joined).dt.to_period(period)
    for per, idx in served.groupby(key, sort=True).groups.items():
        g = served.loc[idx]
        jg = joined[(jkey == per).to_numpy()]
        out["windows"].append({
            "window": str(per), "start": per.start_time.date().isoformat(),
            "end": per.end_time.date().isoformat(), "rows": len(g),
            "rows_with_ground_truth": len(jg),
            "estimate": cbpe(g["prediction"].to_numpy(float), threshold, calibration),
            "realised": realised(jg["y"].to_numpy(float), jg["prediction"].to_numpy(float),
                                 threshold) if len(jg) else None})
    return out
