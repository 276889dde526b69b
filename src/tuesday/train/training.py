"""Training: point-in-time training set, learner, baselines, backtest, manifest.

``train`` reads every table at the newest version ingested at or before ``as_of``, builds
the training set with ``features.feature_frame``, runs the declared backtest for the model
and every baseline, fits the final model on the training window and registers it as a
``candidate`` in the registry. The same inputs give a byte-identical model file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import platform
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tuesday.data import inputs, tables
from tuesday.data.censoring import CENSORED, censored_rows, impute
from tuesday.data.features import (
    ORIGIN,
    ROW,
    TARGET_TIME,
    baseline_features,
    feature_frame,
    points_frame,
)
from tuesday.errors import ArtifactCorrupt, TuesdayError, ValidationFailed
from tuesday.project import Backtest, Baseline, LoadedProject, Metric, Model, Project, duration
from tuesday.train import baselines, evaluation, learners, model_file, versions
from tuesday.train.contributions import backtest_losses
from tuesday.train.executor import run as run_work
from tuesday.workspace import Workspace

PACKAGES = ("tuesday", "lightgbm", "numpy", "pandas", "pyarrow", "duckdb", "deltalake",
            "scikit-learn", "holidays")
REFERENCE_ROWS = 5000
REFERENCE_PERIOD = pd.Timedelta(days=365)


@dataclass(frozen=True)
class TrainingSet:
    """Features, target and context columns for every label row known at ``as_of``."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    target: str
    time: str | None
    versions: dict[str, int]


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    version: int
    artifact: str
    metrics: dict[str, Any]
    manifest: dict[str, Any]


# ---------------------------------------------------------------------- learner


def learner_params(model: Model) -> dict[str, Any]:
    """The parameters the learner is fitted with (recorded in the manifest)."""
    if model.learner.kind == "lightgbm":
        return learners.lightgbm_params(model.learner, model.task, model.seed,
                                        grouped=_group_column(model) is not None)
    params = {k: v for k, v in dict(model.learner.params).items()}
    if model.learner.estimator is not None:
        params["estimator"] = repr(model.learner.estimator)
    return {**params, "seed": model.seed}


def fit(model: Model, x: pd.DataFrame, y: np.ndarray,
        frame: pd.DataFrame | None = None) -> learners.Fitted:
    """Fit the model's learner; deterministic for the same inputs. Category features
    are coded by the values of ``x`` (recorded on the result). For a ranking model with
    request groups, ``frame`` (the rows of ``x``) says which rows are one request."""
    group = group_sizes(model, frame) if frame is not None else None
    return learners.fit(model.learner, model.task, x, y, seed=model.seed,
                        categorical=category_features(model), group=group)


def category_features(model: Model) -> tuple[str, ...]:
    return tuple(f.name for f in model.features if f.dtype == "category")


def _group_column(model: Model) -> str | None:
    return model.slate.group if model.task == "ranking" and model.slate is not None else None


def group_sizes(model: Model, frame: pd.DataFrame) -> np.ndarray | None:
    """For a ranking model with request groups: the length of each run of consecutive
    rows of one request (the training set keeps a request's rows together)."""
    col = _group_column(model)
    if col is None:
        return None
    g = frame[col].to_numpy()
    if not len(g):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return np.diff(np.r_[starts, len(g)])


def predict(fitted: Any, x: pd.DataFrame, num_threads: int = 1) -> np.ndarray:
    """Predict with a fitted learner (or a LightGBM booster)."""
    if isinstance(fitted, learners.Fitted):
        return fitted.predict(fitted.encode(x), num_threads=num_threads)
    return np.asarray(fitted.predict(x, num_threads=num_threads), dtype=float)


# kept for callers of the first API



def baseline_predict(model: Model, b: Baseline, frame: pd.DataFrame,
                     train_target: np.ndarray, *, fill: bool = True) -> np.ndarray:
    return baselines.predict(model, b, frame, train_target, fill=fill)


# ------------------------------------------------------------------ training set


def training_set(ws: Workspace, project: Project, model: Model, as_of: datetime
                 ) -> TrainingSet:
    """Every label row known at ``as_of`` with its point-in-time features."""
    versions, tabs = inputs.model_tables(ws, project, model, as_of)
    label_src = project.source(model.label_source)
    labels = tabs[model.label_source].to_pandas()
    labels = labels[labels[model.target].notna()]
    for col, values in model.where.items():
        labels = labels[labels[col].isin(list(values))]
    tcol = label_src.time
    if tcol is not None:
        known = label_src.available_at or tcol
        labels = labels[labels[known] <= pd.Timestamp(as_of)]
        span = _label_span(model)
        if span is not None and len(labels):
            # with a sliding window, older labels are never used: the cost of a daily
            # retrain stays flat as history grows
            labels = labels[labels[tcol] > labels[tcol].max() - span]
        group = _group_column(model)
        # a request's candidates stay together (ranking objectives read runs of rows)
        labels = labels.sort_values([tcol, group, model.entity.key] if group else
                                    [tcol, model.entity.key], kind="stable")
    else:
        group = _group_column(model)
        labels = labels.sort_values([group, model.entity.key] if group else
                                    model.entity.key, kind="stable")
    labels = labels.reset_index(drop=True)
    if labels.empty:
        raise ValidationFailed(
            f"Model {model.name!r} has no label rows in {model.label_source!r} known at "
            f"{as_of:%Y-%m-%d} that match its `where` filter.",
            fix="Check the model's `where` and the ingested data.")
    pts = points_frame(model, labels[model.entity.key],
                       labels[tcol] if tcol else pd.Series(pd.Timestamp(as_of),
                                                           index=labels.index))
    # request-time inputs (an amount being scored) are columns of the label rows
    feats = feature_frame(project, model, pts, tabs, extra=baseline_features(model),
                          request=labels)
    context = labels.drop(columns=[c for c in labels.columns if c in feats.columns])
    frame = pd.concat([context.reset_index(drop=True), feats], axis=1)
    if model.censored is not None:
        frame[CENSORED] = censored_rows(project, model, labels, tabs)
    if model.task == "binary":
        frame[model.target] = (labels[model.target] == model.positive).astype(float).to_numpy()
    if tcol is not None and model.task != "ranking":
        frame = baselines.add_recursive(model, frame, model.entity.key, tcol)
    return TrainingSet(frame, model.feature_names, model.target, tcol, versions)


def _label_span(model: Model) -> pd.Timedelta | None:
    """How far back from the newest label the training window and every backtest fold's
    window reach (None: all history)."""
    if not model.window:
        return None
    span = duration(model.window, what="window") + duration(model.horizon, what="horizon")
    if isinstance(model.evaluation, Backtest):
        span += model.evaluation.folds * duration(model.evaluation.step, what="step")
    return span


# ------------------------------------------------------------------------ train


@dataclass(frozen=True)
class FoldTask:
    """Everything one backtest fold needs: a pure, picklable unit of work."""

    model: Model
    number: int
    cutoff: str | None
    train: pd.DataFrame
    test: pd.DataFrame
    features: tuple[str, ...]
    target: str
    time: str | None


def run_fold(task: FoldTask) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit on the fold's training rows; predict its test rows with the model and every
    baseline; add derived slices from the training history. Pure: same task, same
    result, whichever executor runs it."""
    model = task.model
    train_rows, y = fit_rows(model, task.train, task.target)
    fitted = fit(model, train_rows[list(task.features)], y, train_rows)
    part = task.test.copy()
    part["fold"] = task.number
    part["model"] = predict(fitted, part[list(task.features)], num_threads=2)
    for b in model.baselines:
        part[b.name] = baselines.predict(model, b, part, y)
    losses = backtest_losses(fitted, part, task.features, task.target,
                             [b.name for b in model.baselines])
    if losses is not None:  # the rows the report explains, by the model that scored them
        part = pd.concat([part, losses], axis=1)
    key = model.entity.key
    if "demand_class" in model.slices:
        classes = evaluation.demand_classes(task.train, key, task.target)
        part["demand_class"] = part[key].map(classes).fillna("no_history").to_numpy()
    if "history" in model.slices:
        season = max((b.season for b in model.baselines), default=7)
        hist = evaluation.history_classes(task.train, key, min_rows=8 * season)
        part["history"] = part[key].map(hist).fillna("short").to_numpy()
    scale = _mase_scale(model, train_rows, task.time, task.target)
    names = ["model", *(b.name for b in model.baselines)]
    row = {"fold": task.number, "cutoff": task.cutoff,
           "train_rows": len(task.train), "test_rows": len(part), "mase_scale": scale,
           **{n: evaluation.score_rows(model, part, task.target, n, scale=scale)
              for n in names}}
    part["_scale"] = scale if scale is not None else np.nan
    return part, row


def _mase_scale(model: Model, train: pd.DataFrame, time_col: str | None,
                target: str) -> float | None:
    if "mase" not in model.metric_names:
        return None
    season = next((b.season for b in model.baselines if b.kind in
                   ("seasonal_naive", "seasonal_mean")), 1)
    return evaluation.seasonal_scale(train, model.entity.key, time_col, target, season)


def fit_rows(model: Model, train: pd.DataFrame, target: str
             ) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a fit uses and their targets: censored rows left out or imputed as the
    model declares (all rows, as they are, without a declaration)."""
    c = model.censored
    if c is None or CENSORED not in train.columns or c.action == "keep":
        return train, train[target].to_numpy(dtype=float)
    if c.action == "impute":
        return train, impute(model, train, target, model.entity.key)
    kept = train[~train[CENSORED].to_numpy(bool)]
    return kept, kept[target].to_numpy(dtype=float)


def _without_censored(model: Model, allp: pd.DataFrame, target: str, names: list[str],
                      scale: float | None) -> dict[str, Any] | None:
    """The backtest's metrics on the test rows that are not censored, beside how many
    were."""
    if model.censored is None or CENSORED not in allp.columns:
        return None
    cens = allp[CENSORED].to_numpy(bool)
    keep = ~cens
    actual = allp[target].to_numpy(dtype=float)
    scores = {n: evaluation.score(model.metrics, actual[keep],
                                  allp[n].to_numpy(float)[keep], scale=scale)
              for n in names} if keep.any() else {}
    return {"action": model.censored.action, "rows": int(cens.sum()),
            "share": round(float(cens.mean()), 4) if len(cens) else 0.0,
            "without": {"model": scores.get("model", {}),
                        "baselines": {n: scores.get(n, {}) for n in names[1:]}}}


def run_backtest(model: Model, ts: TrainingSet, *, executor: str = "local",
                 progress: Any = None) -> dict[str, Any]:
    """Backtest the model and every baseline on the same folds; per-slice metrics.
    ``progress("fold", done, total)`` is called as folds finish."""
    frame = ts.frame
    tasks = [
        FoldTask(model, fold.number,
                 fold.cutoff.isoformat() if fold.cutoff is not None else None,
                 frame.loc[fold.train], frame.loc[fold.test], ts.features, ts.target, ts.time)
        for fold in evaluation.folds(model, frame, ts.time, ts.target)
        if fold.train.any() and fold.test.any()]
    if not tasks:
        raise ValidationFailed(
            f"Model {model.name!r}: no backtest fold has both training and test rows "
            f"({len(frame)} label rows).",
            fix="Ingest more history, or declare fewer folds / a shorter step.")
    if progress is not None:
        progress("fold", 0, len(tasks))
    results = run_work(run_fold, tasks, executor=executor,
                       on_done=None if progress is None else lambda k, n: progress("fold", k, n))
    allp = pd.concat([r[0] for r in results], ignore_index=True)
    fold_rows = [r[1] for r in results]
    names = ["model", *(b.name for b in model.baselines)]
    scales = [r["mase_scale"] for r in fold_rows if r["mase_scale"]]
    scale = float(np.mean(scales)) if scales else None
    overall = {n: evaluation.score_rows(model, allp, ts.target, n, scale=scale)
               for n in names}
    primary = model.primary_metric
    way = evaluation.direction(model)[primary]
    best = evaluation.verdict(primary, overall["model"][primary],
                              {b.name: overall[b.name][primary] for b in model.baselines},
                              way).best_baseline or model.baselines[0].name
    return {
        "primary": primary,
        "direction": way,
        "model": overall["model"],
        "baselines": {b.name: overall[b.name] for b in model.baselines},
        "best_baseline": best,
        "lift": evaluation.lift(primary, overall["model"][primary], overall[best][primary],
                                way),
        "folds": fold_rows,
        "slices": evaluation.slice_table(model, allp, ts.target, names, scale=scale),
        "daily": daily_profile(model, allp, ts.target, ts.time),
        "rows": len(allp),
        **({"censored": cens} if (cens := _without_censored(
            model, allp, ts.target, names, scale)) is not None else {}),
        "predictions": allp.drop(columns=["_scale"]),
    }


def with_folds(model: Model, folds: int | None) -> Model:
    """The model with ``folds`` backtest folds instead of those declared (None: as
    declared); a clear error when it is not a whole number >= 1 or the model is not
    evaluated by a backtest."""
    if folds is None:
        return model
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise TuesdayError(f"--folds must be a whole number >= 1. Got {folds!r}.",
                           fix="Pass e.g. --folds 4.")
    if not isinstance(model.evaluation, Backtest):
        raise TuesdayError(f"--folds applies to a Backtest; model {model.name!r} uses "
                           f"{type(model.evaluation).__name__}.", fix="Drop --folds.")
    return dataclasses.replace(model, evaluation=dataclasses.replace(model.evaluation,
                                                                     folds=folds))


def daily_profile(model: Model, preds: pd.DataFrame, target: str,
                  time_col: str | None) -> dict[str, Any] | None:
    """How the backtest's days went, for the monitor's absolute accuracy limits: the
    model's primary metric on each target day's rows (its median, 99th percentile and
    worst) and each day's forecast total over the actual total (1st and 99th
    percentiles). None without a time axis or for a classifier."""
    if time_col is None or model.task != "regression" or preds.empty:
        return None
    primary = model.primary_metric
    metric = next(m for m in model.metrics
                  if (m.name if isinstance(m, Metric) else m) == primary)
    day = pd.to_datetime(preds[time_col]).dt.normalize()
    values, ratios = [], []
    for _d, g in preds.groupby(day, sort=True):
        y, p = g[target].to_numpy(float), g["model"].to_numpy(float)
        v = evaluation.score([metric], y, p)[primary]
        if np.isfinite(v):
            values.append(abs(v) if evaluation.direction(model)[primary] == "zero" else v)
        if np.nansum(np.abs(y)) > 0:
            ratios.append(float(np.nansum(p) / np.nansum(y)))
    if not values:
        return None
    arr, r = np.array(values), np.array(ratios) if ratios else np.array([np.nan])
    return {"days": len(values), "metric": primary,
            "median": float(np.median(arr)), "q99": float(np.quantile(arr, 0.99)),
            "max": float(arr.max()),
            "total_ratio_q01": float(np.nanquantile(r, 0.01)) if ratios else None,
            "total_ratio_q99": float(np.nanquantile(r, 0.99)) if ratios else None}


def train(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime,
          *, progress: Any = None, executor: str = "local",
          register: bool = True, folds: int | None = None) -> TrainResult:
    """Build the training set, backtest, fit on the window, register as candidate.

    ``folds`` overrides the number of backtest folds the model declares (fewer: faster,
    and rougher gates); the manifest records it, so ``reproduce`` uses it too. The model
    file does not depend on it (the final fit uses the whole window).

    ``progress(message)`` is told each step, ``progress("fold", done, total)`` each
    backtest fold done (see :mod:`tuesday.cli.progress`). With ``register=False``
    nothing is written to the registry (``reproduce`` uses it);
    artifacts are content-addressed, so storing them again changes nothing.
    """
    project = loaded.project
    model = with_folds(project.model(model_name), folds)
    started = time.perf_counter()
    step = progress or (lambda _msg: None)
    step("building the point-in-time training set")
    ts = training_set(ws, project, model, as_of)
    step(f"backtesting ({model.evaluation.folds} folds, model and baselines)")
    bt = run_backtest(model, ts, executor=executor, progress=progress)
    backtest_preds = bt.pop("predictions")
    step("fitting the final model")
    final = _training_window(model, ts, as_of)
    rows, y = fit_rows(model, ts.frame.loc[final], ts.target)
    x = rows[list(ts.features)]
    fit_started = time.perf_counter()
    fitted = fit(model, x, y, rows)
    fit_seconds = time.perf_counter() - fit_started
    model_bytes = fitted.dumps()
    if fitted.format == "lightgbm-text":  # never store a file LightGBM cannot read back
        model_file.check_lightgbm_text(model_bytes, what=f"The new model of {model.name!r}")
    artifact = ws.put_artifact(model_bytes)
    cost = _cost(fitted, x, fit_seconds, len(model_bytes))
    stored = {
        "categories": fitted.categories,
        "artifact": {"format": fitted.format, "sha256": artifact, "bytes": len(model_bytes)},
        "reference": {"format": "parquet",
                      "sha256": ws.put_artifact(_reference_bytes(ts.frame.loc[final], ts,
                                                                 model))},
        "backtest_predictions": {"format": "parquet",
                                 "sha256": ws.put_artifact(_parquet_bytes(backtest_preds))},
    }
    run_id = uuid.uuid4().hex
    metrics = {**bt, "train_rows": len(rows),
               "train_seconds": round(time.perf_counter() - started, 3), "cost": cost,
               "importance": fitted.importance()}
    manifest = _manifest(ws, loaded, model, ts, as_of, run_id, stored)
    if not register:
        return TrainResult(run_id, 0, artifact, metrics, manifest)
    version = versions.register(ws, model.name, run_id=run_id, artifact=artifact,
                                manifest=manifest, metrics=metrics, as_of=as_of)
    manifest["version"] = version
    return TrainResult(run_id, version, artifact, metrics, manifest)


def _training_window(model: Model, ts: TrainingSet, as_of: datetime) -> np.ndarray:
    """Which rows of the training set the final model is fitted on: those within the
    model's ``window`` before ``as_of`` (every row without a window or a time column)."""
    if ts.time is None or not model.window:
        return np.ones(len(ts.frame), bool)
    win = duration(model.window, what=f"window of model {model.name!r}")
    return (ts.frame[ts.time] > pd.Timestamp(as_of) - win).to_numpy()


def _manifest(ws: Workspace, loaded: LoadedProject, model: Model, ts: TrainingSet,
              as_of: datetime, run_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    """Everything a run was made from (data versions, code, packages, platform) and the
    artifacts it stored (``stored``: model file, drift reference, backtest predictions)."""
    return {
        "model": model.name,
        "run_id": run_id,
        "as_of": pd.Timestamp(as_of).isoformat(),
        "task": model.task,
        "horizon": model.horizon,
        "entity": model.entity.key,
        "features": list(ts.features),
        "categories": {k: list(v) for k, v in stored.get("categories", {}).items()},
        "seed": model.seed,
        "folds": getattr(model.evaluation, "folds", None),
        "folds_override": model.evaluation != loaded.project.model(model.name).evaluation,
        "params": learner_params(model),
        "tables": {n: {"version": v, "fingerprint": _fingerprint(ws, n, v)}
                   for n, v in ts.versions.items()},
        "code": {"tuesday": _version("tuesday"), "project_sha256": _sha(loaded.path)},
        "packages": {p: _version(p) for p in PACKAGES},
        "platform": {"python": platform.python_version(), "machine": platform.machine(),
                     "system": platform.system()},
        "learner": model.learner.kind,
        "artifact": stored["artifact"],
        "reference": stored["reference"],
        "backtest_predictions": stored["backtest_predictions"],
    }


def _cost(fitted: learners.Fitted, x: pd.DataFrame, fit_seconds: float,
          size: int) -> dict[str, float]:
    """What the model costs: fit seconds, file size, and predict microseconds per row
    (one row at a time, the serving case, median of a few rows)."""
    rows = fitted.encode(x.iloc[:50])
    times = []
    for r in rows:
        t0 = time.perf_counter()
        fitted.predict(r.reshape(1, -1), num_threads=1)
        times.append(time.perf_counter() - t0)
    return {"fit_seconds": round(fit_seconds, 3), "model_bytes": float(size),
            "predict_us_per_row": round(float(np.median(times)) * 1e6, 1) if times else 0.0}


def load_model(ws: Workspace, manifest: dict[str, Any]) -> learners.Fitted:
    """Load a version's model from its artifact; the sha256 must match the manifest, and
    a LightGBM file must pass ``model_file.check_lightgbm_text`` (``ArtifactCorrupt``)."""
    art = manifest["artifact"]
    what = artifact_name(manifest)
    data = ws.get_artifact(art["sha256"])
    try:
        fitted = learners.loads(art["format"], data, what=what)
        cats = {str(k): tuple(v) for k, v in (manifest.get("categories") or {}).items()}
        return replace(fitted, categories=cats) if cats else fitted
    except TuesdayError:
        raise
    except Exception as exc:  # a hash-matching but unreadable file: say so
        raise ArtifactCorrupt(f"{what} could not be loaded as {art['format']}: {exc}.",
                              fix="Retrain the model.") from exc


def check_artifact(ws: Workspace, manifest: dict[str, Any]) -> None:
    """Check a version's model file without loading it: its sha256, and for LightGBM its
    structure (``ArtifactCorrupt`` otherwise)."""
    art = manifest["artifact"]
    data = ws.get_artifact(art["sha256"])
    if art["format"] == "lightgbm-text":
        model_file.check_lightgbm_text(data, what=artifact_name(manifest))


def artifact_name(manifest: dict[str, Any]) -> str:
    """How errors name a version's model file: model, version and artifact."""
    art = manifest.get("artifact") or {}
    who = f"Model {manifest['model']!r}" if manifest.get("model") else "The model"
    version = f" version {manifest['version']}" if manifest.get("version") else ""
    return f"{who}{version} (artifact {str(art.get('sha256', '?'))[:12]})"


def _reference_bytes(frame: pd.DataFrame, ts: TrainingSet, model: Model) -> bytes:
    """The drift reference: the most recent year of the training window (all of it for
    timeless data), at most ``REFERENCE_ROWS`` rows."""
    cols = [*ts.features, ts.target]
    ref = frame[cols]
    if ts.time is not None and len(frame):
        recent = frame[ts.time] > frame[ts.time].max() - REFERENCE_PERIOD
        ref = ref[recent.to_numpy()]
    if len(ref) > REFERENCE_ROWS:
        ref = ref.sample(REFERENCE_ROWS, random_state=model.seed).sort_index()
    return _parquet_bytes(ref.reset_index(drop=True))


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    clean = frame.drop(columns=[c for c in (ROW, ORIGIN, TARGET_TIME) if c in frame.columns])
    pq.write_table(pa.Table.from_pandas(clean, preserve_index=False), sink)
    return sink.getvalue()


def _fingerprint(ws: Workspace, name: str, version: int) -> str | None:
    for row in tables.list_versions(ws, name):
        if row["version"] == version:
            return str(row["fingerprint"])
    return None


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_booster(ws: Workspace, digest: str) -> lgb.Booster:
    """Load a LightGBM model file from its artifact (sha256 and structure checked)."""
    data = ws.get_artifact(digest)
    what = f"The model file {digest[:12]}"
    model_file.check_lightgbm_text(data, what=what)
    try:
        return lgb.Booster(model_str=data.decode())
    except Exception as exc:  # corrupted but hash-matching files are a bug upstream
        raise ArtifactCorrupt(f"{what} is not a LightGBM model: {exc}.",
                              fix="Retrain the model.") from exc


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)
