"""Training: point-in-time training set, learner, baselines, backtest, manifest.

``train`` reads every table at the newest version ingested at or before ``as_of``, builds
the training set with ``features.feature_frame``, runs the declared backtest for the model
and every baseline, fits the final model on the training window and registers it as a
``candidate`` in the registry. The same inputs give a byte-identical model file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tuesday import evaluation, registry, tables
from tuesday.errors import TuesdayError, ValidationFailed
from tuesday.features import ORIGIN, ROW, TARGET_TIME, feature_frame, horizon, points_frame
from tuesday.project import Baseline, Feature, LoadedProject, Model, Project, duration, lag
from tuesday.workspace import Workspace

DEFAULT_PARAMS: dict[str, Any] = {
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


# -------------------------------------------------------------------- baselines


def _season_lag(model: Model, b: Baseline) -> int:
    h = horizon(model) / pd.Timedelta(days=1)
    if b.kind == "naive":
        return max(1, math.ceil(h))
    return b.season * max(1, math.ceil(h / b.season))


def baseline_features(model: Model) -> tuple[Feature, ...]:
    """The lag features the declared baselines read (computed like any feature)."""
    out: list[Feature] = []
    for b in model.baselines:
        if b.kind in ("naive", "seasonal_naive"):
            out.append(lag(model.label_source, model.target, _season_lag(model, b)))
        elif b.kind == "seasonal_mean":
            first = _season_lag(model, b)
            out.extend(lag(model.label_source, model.target, first + k * b.season)
                       for k in range(b.seasons))
    return tuple(out)


def baseline_predict(model: Model, b: Baseline, frame: pd.DataFrame,
                     train_target: np.ndarray) -> np.ndarray:
    """Predictions of one baseline; where it has no history, the training mean."""
    fallback = float(np.nanmean(train_target)) if len(train_target) else 0.0
    if b.kind in ("mean", "prior"):
        return np.full(len(frame), fallback)
    if b.kind in ("naive", "seasonal_naive"):
        col = lag(model.label_source, model.target, _season_lag(model, b)).name
        p = frame[col].to_numpy(dtype=float)
    elif b.kind == "seasonal_mean":
        first = _season_lag(model, b)
        cols = [lag(model.label_source, model.target, first + k * b.season).name
                for k in range(b.seasons)]
        block = frame[cols].to_numpy(dtype=float)
        with np.errstate(all="ignore"):
            p = np.where(np.isnan(block).all(axis=1), np.nan, np.nanmean(block, axis=1))
    else:  # rule
        assert b.fn is not None
        p = np.asarray(b.fn(frame), dtype=float)
    return np.where(np.isnan(p), fallback, p)


# ---------------------------------------------------------------------- learner


def learner_params(model: Model) -> dict[str, Any]:
    params = {**DEFAULT_PARAMS, **dict(model.learner.params)}
    params["objective"] = params.get("objective") or (
        "binary" if model.task == "binary" else "regression")
    params["seed"] = model.seed
    return params


def fit(model: Model, x: pd.DataFrame, y: np.ndarray) -> lgb.Booster:
    """Fit the model's learner; deterministic for the same inputs."""
    params = learner_params(model)
    rounds = int(params.pop("num_boost_round"))
    data = lgb.Dataset(x, label=y, feature_name=list(x.columns), free_raw_data=True,
                       params={"verbosity": -1})
    return lgb.train(params, data, num_boost_round=rounds)


def predict(booster: lgb.Booster, x: pd.DataFrame, num_threads: int = 1) -> np.ndarray:
    return np.asarray(booster.predict(x, num_threads=num_threads), dtype=float)


# ------------------------------------------------------------------ training set


def sources_used(project: Project, model: Model) -> list[str]:
    names = {model.label_source}
    names.update(f.source for f in model.features if f.source)
    return sorted(names)


def read_tables(ws: Workspace, project: Project, names: list[str],
                versions: dict[str, int]) -> dict[str, pa.Table]:
    return {n: tables.read_table(ws, project.source(n), versions.get(n)) for n in names}


def training_set(ws: Workspace, project: Project, model: Model, as_of: datetime
                 ) -> TrainingSet:
    """Every label row known at ``as_of`` with its point-in-time features."""
    names = sources_used(project, model)
    versions = tables.versions_as_of(ws, names, as_of)
    if model.label_source not in versions:
        raise ValidationFailed(
            f"Model {model.name!r} has no labels: source {model.label_source!r} has no "
            f"version ingested at or before {as_of:%Y-%m-%d %H:%M}.",
            fix=f"Run `tuesday ingest {model.label_source} FILE` (or pass a later --as-of).")
    tabs = read_tables(ws, project, names, versions)
    label_src = project.source(model.label_source)
    labels = tabs[model.label_source].to_pandas()
    labels = labels[labels[model.target].notna()]
    for col, values in model.where.items():
        labels = labels[labels[col].isin(list(values))]
    tcol = label_src.time
    if tcol is not None:
        known = label_src.available_at or tcol
        labels = labels[labels[known] <= pd.Timestamp(as_of)]
        labels = labels.sort_values([tcol, model.entity.key], kind="stable")
    else:
        labels = labels.sort_values(model.entity.key, kind="stable")
    labels = labels.reset_index(drop=True)
    if labels.empty:
        raise ValidationFailed(
            f"Model {model.name!r} has no label rows in {model.label_source!r} known at "
            f"{as_of:%Y-%m-%d} that match its `where` filter.",
            fix="Check the model's `where` and the ingested data.")
    pts = points_frame(model, labels[model.entity.key],
                       labels[tcol] if tcol else pd.Series(pd.Timestamp(as_of),
                                                           index=labels.index))
    feats = feature_frame(project, model, pts, tabs, extra=baseline_features(model))
    context = labels.drop(columns=[c for c in labels.columns if c in feats.columns])
    frame = pd.concat([context.reset_index(drop=True), feats], axis=1)
    if model.task == "binary":
        frame[model.target] = (labels[model.target] == model.positive).astype(float).to_numpy()
    return TrainingSet(frame, model.feature_names, model.target, tcol, versions)


# ------------------------------------------------------------------------ train


def run_backtest(model: Model, ts: TrainingSet) -> dict[str, Any]:
    """Backtest the model and every baseline on the same folds; per-slice metrics."""
    frame = ts.frame
    y = frame[ts.target].to_numpy(dtype=float)
    x = frame[list(ts.features)]
    preds = []
    fold_rows = []
    for fold in evaluation.folds(model, frame, ts.time, ts.target):
        if not fold.train.any() or not fold.test.any():
            continue
        booster = fit(model, x[fold.train], y[fold.train])
        part = frame.loc[fold.test].copy()
        part["fold"] = fold.number
        part["model"] = predict(booster, x[fold.test], num_threads=2)
        for b in model.baselines:
            part[b.name] = baseline_predict(model, b, part, y[fold.train])
        preds.append(part)
        names = ["model", *(b.name for b in model.baselines)]
        fold_rows.append({"fold": fold.number,
                          "cutoff": fold.cutoff.isoformat() if fold.cutoff is not None else None,
                          "train_rows": int(fold.train.sum()), "test_rows": int(fold.test.sum()),
                          **{n: evaluation.score(model.metrics, part[ts.target].to_numpy(float),
                                                 part[n].to_numpy(float)) for n in names}})
    if not preds:
        raise ValidationFailed(
            f"Model {model.name!r}: no backtest fold has both training and test rows "
            f"({len(frame)} label rows).",
            fix="Ingest more history, or declare fewer folds / a shorter step.")
    allp = pd.concat(preds, ignore_index=True)
    names = ["model", *(b.name for b in model.baselines)]
    actual = allp[ts.target].to_numpy(dtype=float)
    overall = {n: evaluation.score(model.metrics, actual, allp[n].to_numpy(float))
               for n in names}
    primary = model.primary_metric
    best = None
    for b in model.baselines:
        v = overall[b.name][primary]
        if best is None or evaluation.better(primary, v, overall[best][primary]):
            best = b.name
    assert best is not None
    return {
        "primary": primary,
        "model": overall["model"],
        "baselines": {b.name: overall[b.name] for b in model.baselines},
        "best_baseline": best,
        "lift": evaluation.lift(primary, overall["model"][primary], overall[best][primary]),
        "folds": fold_rows,
        "slices": evaluation.slice_table(model, allp, ts.target, names),
        "rows": len(allp),
        "predictions": allp,
    }


def train(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime,
          *, progress: Any = None) -> TrainResult:
    """Build the training set, backtest, fit on the window, register as candidate."""
    project = loaded.project
    model = project.model(model_name)
    started = time.perf_counter()
    step = progress or (lambda _msg: None)
    step("building the point-in-time training set")
    ts = training_set(ws, project, model, as_of)
    step(f"backtesting ({model.evaluation.folds} folds, model and baselines)")
    bt = run_backtest(model, ts)
    backtest_preds = bt.pop("predictions")
    step("fitting the final model")
    frame = ts.frame
    final = np.ones(len(frame), bool)
    if ts.time is not None and model.window:
        win = duration(model.window, what=f"window of model {model.name!r}")
        final = (frame[ts.time] > pd.Timestamp(as_of) - win).to_numpy()
    y = frame[ts.target].to_numpy(dtype=float)
    booster = fit(model, frame.loc[final, list(ts.features)], y[final])
    model_bytes = booster.model_to_string(num_iteration=-1).encode()
    artifact = ws.put_artifact(model_bytes)
    reference = ws.put_artifact(_reference_bytes(frame.loc[final], ts, model))
    evaluation_file = ws.put_artifact(_parquet_bytes(backtest_preds))
    run_id = uuid.uuid4().hex
    metrics = {**bt, "train_rows": int(final.sum()),
               "train_seconds": round(time.perf_counter() - started, 3)}
    manifest = {
        "model": model.name,
        "run_id": run_id,
        "as_of": pd.Timestamp(as_of).isoformat(),
        "task": model.task,
        "horizon": model.horizon,
        "entity": model.entity.key,
        "features": list(ts.features),
        "seed": model.seed,
        "params": learner_params(model),
        "tables": {n: {"version": v, "fingerprint": _fingerprint(ws, n, v)}
                   for n, v in ts.versions.items()},
        "code": {"tuesday": _version("tuesday"), "project_sha256": _sha(loaded.path)},
        "packages": {p: _version(p) for p in PACKAGES},
        "platform": {"python": platform.python_version(), "machine": platform.machine(),
                     "system": platform.system()},
        "artifact": {"format": "lightgbm-text", "sha256": artifact,
                     "bytes": len(model_bytes)},
        "reference": {"format": "parquet", "sha256": reference},
        "backtest_predictions": {"format": "parquet", "sha256": evaluation_file},
    }
    version = registry.register(ws, model.name, run_id=run_id, artifact=artifact,
                                manifest=manifest, metrics=metrics, as_of=as_of)
    manifest["version"] = version
    return TrainResult(run_id, version, artifact, metrics, manifest)


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
    """Load a model file from its artifact, refusing one whose sha256 does not match."""
    data = ws.get_artifact(digest)
    try:
        return lgb.Booster(model_str=data.decode())
    except Exception as exc:  # corrupted but hash-matching files are a bug upstream
        raise TuesdayError(f"Artifact {digest[:12]} is not a LightGBM model: {exc}.",
                           fix="Retrain the model.") from exc


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)
