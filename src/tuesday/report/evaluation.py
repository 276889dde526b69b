"""Evaluation report: what a business owner needs to sit with a model version and
challenge it ("what happens with this product in this store?").

Everything comes from what training stored: the version's metrics (overall, per fold,
per slice, best baseline, lift), its manifest (sizes, digests) and two artifacts, the
backtest predictions (every backtest row with its actual, the model's prediction and one
column per baseline) and the model file (feature importance). Nothing is re-trained and
nothing reads the wall clock, so the same version always gives the same report.

This module builds the report: ``evaluation_report`` returns a JSON-able dict, one
builder per section (headline, folds, slices, over time, calibration, residuals,
importance, entities, and the highlights drawn from them). ``render_evaluation_html``
(from :mod:`tuesday.report.evaluation_html`, re-exported here) turns it into one
self-contained page; ``write_evaluation_report`` writes both under the workspace's
``reports/``. ``EvaluationReport`` shows the same page inline in a notebook.

Example:
    >>> EvaluationReport({"model": "m", "version": 1})._repr_html_()[:36]
    '<div class="tuesday-report">\\n<style>'
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tuesday.charts import finite
from tuesday.project import LoadedProject, Model, Project
from tuesday.release import registry
from tuesday.report.evaluation_html import (
    MAX_ENTITY_ROWS,
    fmt,
    render_evaluation_body,
    render_evaluation_html,
)
from tuesday.train import evaluation, training
from tuesday.train.contributions import (
    EXPECTED_COLUMN,
    Contributions,
    contribution_column,
    link_of,
)
from tuesday.train.explanations import explanation_dict
from tuesday.workspace import Workspace

__all__ = ["CALIBRATION_BINS", "HISTOGRAM_BINS", "MAX_ENTITY_ROWS", "EvaluationReport",
           "evaluation_report", "render_evaluation_body", "render_evaluation_html",
           "write_evaluation_report"]

HISTOGRAM_BINS = 30
CALIBRATION_BINS = 10
#: backtest rows where the model lost most to the best baseline, explained in the report
MAX_LOSSES = 5
#: per-entity error measures that can be computed group by group
_GROUP_ERRORS = ("rmse", "mae", "wape", "brier", "log_loss")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class EvaluationReport:
    """An evaluation report for notebooks: the dict of ``evaluation_report``, shown as
    the report's HTML when it is the last expression of a cell.

    Example:
        >>> r = EvaluationReport({"model": "demand", "version": 3})
        >>> "demand" in r._repr_html_()
        True
    """

    data: dict[str, Any]

    def _repr_html_(self) -> str:
        return render_evaluation_body(self.data)


# ------------------------------------------------------------------------ build


def evaluation_report(ws: Workspace, project: Project | LoadedProject, model_name: str,
                      version: int) -> dict[str, Any]:
    """The evaluation report of one model version, as a JSON-able dict.

    Sections: ``headline`` (model against its best baseline on the primary metric, lift,
    training rows and seconds, model size), ``overall``, ``folds`` (each metric of the
    model and every baseline per backtest fold), ``slices``, ``over_time`` (actual,
    model and best baseline summed per day over entities; None without a time axis or
    for classifiers), ``calibration`` (predicted decile against the observed rate for
    classifiers, or the observed mean for regressions without a time axis), ``residuals``
    (histogram of predicted - actual, and per fold), ``importance`` (normalised LightGBM
    gain) and ``entities`` (model error against the best baseline's, per entity, the
    entities that lose most to the baseline first).

    Args:
        ws: The workspace holding the version.
        project: The project (or loaded project) declaring the model.
        model_name: The model's name.
        version: The registered version number.

    Raises:
        NotFound: the model or the version does not exist, or an artifact is missing.

    Example:
        >>> report = evaluation_report(ws, loaded, "ridership_14d", 1)  # doctest: +SKIP
        >>> report["headline"]["lift"]  # doctest: +SKIP
        0.65
    """
    proj = project.project if isinstance(project, LoadedProject) else project
    model = proj.model(model_name)
    row = registry.get_version(ws, model_name, version)
    manifest, metrics = row["manifest"], row["metrics"]
    preds = pq.read_table(io.BytesIO(ws.get_artifact(
        manifest["backtest_predictions"]["sha256"]))).to_pandas()

    primary = str(metrics["primary"])
    way = _direction(primary, metrics.get("direction"))
    best = str(metrics["best_baseline"])
    baselines = list(metrics["baselines"])
    task = str(manifest.get("task", model.task))
    key = str(manifest.get("entity", model.entity.key))
    target = model.target
    time_col = _time_column(proj, model, preds)

    report: dict[str, Any] = {
        "kind": "evaluation",
        "model": model_name,
        "version": int(version),
        "stage": row.get("stage"),
        "run_id": manifest.get("run_id"),
        "as_of": manifest.get("as_of"),
        "task": task,
        "horizon": manifest.get("horizon"),
        "target": target,
        "entity": key,
        "time": time_col,
        "primary": primary,
        "direction": way,
        "metrics": list(metrics["model"]),
        "baselines": baselines,
        "best_baseline": best,
    }
    report["headline"] = _headline(manifest, metrics, primary, way, best, preds, key)
    report["overall"] = {"model": metrics["model"], "baselines": metrics["baselines"]}
    report["censored"] = metrics.get("censored")
    report["folds"] = _folds(metrics, preds, primary, way, time_col)
    report["slices"] = _slices(metrics, primary, way)
    report["over_time"] = (_over_time(preds, time_col, key, target, best)
                           if task != "binary" and time_col is not None else None)
    report["calibration"] = (_calibration(preds, target, task)
                             if task == "binary" or time_col is None else None)
    report["residuals"] = _residuals(preds, target, best)
    report["importance"] = _importance(ws, manifest, metrics)
    report["entities"] = _entities(preds, key, target, task, primary, best)
    report["losses"] = _losses(ws, manifest, model, preds, key, time_col, best)
    report["headline"]["highlights"] = _highlights(report)
    return _clean(report)


def write_evaluation_report(ws: Workspace, project: Project | LoadedProject,
                            model_name: str, version: int) -> tuple[Path, Path]:
    """Write ``evaluation-MODEL-vVERSION.json`` and ``.html`` under ``ws.reports``.

    The names depend only on the model and version, so writing again replaces them.

    Returns:
        The JSON path and the HTML path.

    Example:
        >>> json_path, html_path = write_evaluation_report(
        ...     ws, loaded, "ridership_14d", 1)  # doctest: +SKIP
    """
    report = evaluation_report(ws, project, model_name, version)
    base = ws.reports / f"evaluation-{model_name}-v{int(version)}"
    json_path = base.with_suffix(".json")
    html_path = base.with_suffix(".html")
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False))
    html_path.write_text(render_evaluation_html(report))
    return json_path, html_path


def _direction(metric: str, stored: Any) -> str:
    if isinstance(stored, str) and stored in ("higher", "lower", "zero"):
        return stored
    if metric in evaluation.HIGHER_IS_BETTER or metric.startswith("precision_at_"):
        return "higher"
    return "zero" if metric in evaluation.ABSOLUTE else "lower"


def _verdict(metric: str, way: str, model: dict[str, Any],
             baselines: dict[str, dict[str, Any]]) -> evaluation.Verdict:
    """The shared rule (``evaluation.verdict``): the model against the best baseline on
    the same rows."""
    def number(v: Any) -> float:
        return float(v) if finite(v) else float("nan")

    values = {b: number(v.get(metric)) for b, v in baselines.items()}
    return evaluation.verdict(metric, number(model.get(metric)), values, way)


def _judged(metric: str, way: str, model: dict[str, Any],
            baselines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A fold's or slice's verdict fields: its own best baseline, the lift over it and
    whether the model beats it."""
    v = _verdict(metric, way, model, baselines)
    return {"best_baseline": v.best_baseline, "lift": v.lift, "beats_baseline": v.beats}


def _time_column(project: Project, model: Model, preds: pd.DataFrame) -> str | None:
    try:
        tcol = project.source(model.label_source).time
    except Exception:  # the source was renamed since training: no time axis to show
        return None
    if tcol is None or tcol not in preds.columns:
        return None
    return tcol


def _headline(manifest: dict[str, Any], metrics: dict[str, Any], primary: str, way: str,
              best: str, preds: pd.DataFrame, key: str) -> dict[str, Any]:
    v = _verdict(primary, way, metrics["model"], metrics["baselines"])
    best = v.best_baseline or best
    mine = metrics["model"].get(primary)
    theirs = metrics["baselines"][best].get(primary)
    lift, beats = v.lift, v.beats
    art = manifest.get("artifact", {})
    cost = metrics.get("cost") or {}
    if lift is None:
        verdict = (f"The model's {primary} ({fmt(mine)}) cannot be compared with its best "
                   f"baseline {best!r} ({fmt(theirs)}).")
    else:
        verdict = (f"On {primary} ({_WAY_TEXT[way]}) the model scores {fmt(mine)} against "
                   f"{fmt(theirs)} for its best baseline, {best!r}: "
                   f"{'better' if beats else 'worse'} by {abs(lift):.1%}.")
    return {
        "primary": primary,
        "direction": way,
        "model": mine,
        "best_baseline": best,
        "baseline": theirs,
        "lift": lift,
        "beats_baseline": beats,
        "verdict": verdict,
        "train_rows": metrics.get("train_rows"),
        "backtest_rows": metrics.get("rows", len(preds)),
        "train_seconds": metrics.get("train_seconds"),
        "model_bytes": art.get("bytes"),
        "model_format": art.get("format"),
        "predict_us_per_row": cost.get("predict_us_per_row"),
        "features": len(manifest.get("features", [])),
        "folds": len(metrics.get("folds", [])),
        "entities": int(preds[key].nunique()) if key in preds.columns else None,
    }


_WAY_TEXT = {"lower": "lower is better", "higher": "higher is better",
             "zero": "closer to zero is better"}


def _folds(metrics: dict[str, Any], preds: pd.DataFrame, primary: str, way: str,
           time_col: str | None) -> list[dict[str, Any]]:
    periods: dict[int, tuple[str, str]] = {}
    if time_col is not None and "fold" in preds.columns:
        t = pd.to_datetime(preds[time_col])
        for fold, g in t.groupby(preds["fold"]):
            periods[int(fold)] = (_day(g.min()), _day(g.max()))
    out = []
    for f in metrics.get("folds", []):
        number = int(f["fold"])
        bl = {b: f.get(b, {}) for b in metrics["baselines"]}
        first, last = periods.get(number, (None, None))
        out.append({
            "fold": number, "cutoff": f.get("cutoff"), "first": first, "last": last,
            "train_rows": f.get("train_rows"), "test_rows": f.get("test_rows"),
            "model": f["model"], "baselines": bl,
            **_judged(primary, way, f["model"], bl),
        })
    return out


def _slices(metrics: dict[str, Any], primary: str, way: str) -> list[dict[str, Any]]:
    out = []
    for s in metrics.get("slices", []):
        bl = {b: s.get(b, {}) for b in metrics["baselines"]}
        out.append({
            "slice": s["slice"], "value": s["value"], "label": _slice_label(s),
            "rows": s.get("rows"), "model": s["model"], "baselines": bl,
            **_judged(primary, way, s["model"], bl),
        })
    return out


def _slice_label(s: dict[str, Any]) -> str:
    value = s["value"]
    if value is None:
        return "(missing)"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if str(s["slice"]).endswith("day_of_week") and isinstance(value, int) \
            and 0 <= value < len(_DAY_NAMES):
        return _DAY_NAMES[value]
    return str(value)


def _over_time(preds: pd.DataFrame, time_col: str, key: str, target: str,
               best: str) -> dict[str, Any]:
    """Actual, model and best baseline summed over entities, per day."""
    day = pd.to_datetime(preds[time_col]).dt.floor("D")
    frame = pd.DataFrame({"day": day, "actual": preds[target].astype(float),
                          "model": preds["model"].astype(float),
                          "baseline": preds[best].astype(float)})
    daily = frame.groupby("day", sort=True).sum(min_count=1)
    starts = []
    if "fold" in preds.columns:
        for fold, first in day.groupby(preds["fold"]).min().items():
            starts.append({"fold": int(fold), "date": _day(first)})
    return {
        "aggregate": "sum",
        "entities": int(preds[key].nunique()) if key in preds.columns else None,
        "baseline": best,
        "date": [_day(d) for d in daily.index],
        "actual": daily["actual"].tolist(),
        "model": daily["model"].tolist(),
        "best_baseline": daily["baseline"].tolist(),
        "fold_starts": starts,
    }


def _calibration(preds: pd.DataFrame, target: str, task: str) -> dict[str, Any]:
    """Rows cut into ten equal-count groups by predicted value: what the model said
    against what happened (the rate of positives for a classifier)."""
    frame = pd.DataFrame({"p": preds["model"].astype(float),
                          "y": preds[target].astype(float)}).dropna()
    n = len(frame)
    bins: list[dict[str, Any]] = []
    if n:
        rank = frame["p"].rank(method="first").to_numpy()
        decile = np.minimum(((rank - 1) * CALIBRATION_BINS // n).astype(int),
                            CALIBRATION_BINS - 1)
        for d, g in frame.groupby(decile, sort=True):
            bins.append({"decile": int(d) + 1, "rows": len(g),
                         "predicted_min": float(g["p"].min()),
                         "predicted_max": float(g["p"].max()),
                         "predicted_mean": float(g["p"].mean()),
                         "observed": float(g["y"].mean())})
    gap = (sum(b["rows"] * abs(b["predicted_mean"] - b["observed"]) for b in bins) / n
           if n else None)
    return {"observed": "rate of positives" if task == "binary" else "mean actual",
            "rows": n, "bins": bins, "mean_abs_gap": gap}


def _residuals(preds: pd.DataFrame, target: str, best: str) -> dict[str, Any]:
    y = preds[target].to_numpy(dtype=float)
    err = preds["model"].to_numpy(dtype=float) - y
    berr = preds[best].to_numpy(dtype=float) - y
    ok = np.isfinite(err)
    e = err[ok]
    hist: dict[str, Any] = {"edges": [], "counts": [], "below": 0, "above": 0}
    if len(e):
        # the middle 99% sets the range, so one extreme day does not flatten the rest
        lo, hi = (float(v) for v in np.quantile(e, [0.005, 0.995]))
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(e, bins=HISTOGRAM_BINS, range=(lo, hi))
        hist = {"edges": edges.tolist(), "counts": counts.tolist(),
                "below": int((e < lo).sum()), "above": int((e > hi).sum())}
    by_fold = []
    if "fold" in preds.columns:
        fold = preds["fold"].to_numpy()
        for number in sorted(set(fold.tolist())):
            m = (fold == number) & ok
            by_fold.append({"fold": int(number), **_error_summary(err[m], berr[m])})
    return {"definition": "predicted - actual (positive: the model predicted too much)",
            "overall": _error_summary(err[ok], berr[ok]), "histogram": hist,
            "by_fold": by_fold}


def _error_summary(err: np.ndarray, berr: np.ndarray) -> dict[str, Any]:
    if not len(err):
        return {"rows": 0}
    p05, p50, p95 = (float(v) for v in np.quantile(err, [0.05, 0.5, 0.95]))
    b = berr[np.isfinite(berr)]
    return {"rows": len(err), "mean": float(np.mean(err)),
            "mean_abs": float(np.mean(np.abs(err))), "std": float(np.std(err)),
            "p05": p05, "median": p50, "p95": p95,
            "baseline_mean": float(np.mean(b)) if len(b) else None,
            "baseline_mean_abs": float(np.mean(np.abs(b))) if len(b) else None}


def _importance(ws: Workspace, manifest: dict[str, Any],
                metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Normalised gain of each feature from the LightGBM model file; for other learners
    the importance stored at training, if any."""
    art = manifest.get("artifact") or {}
    if art.get("format") == "lightgbm-text":
        booster = training.load_booster(ws, art["sha256"])
        raw = dict(zip(booster.feature_name(),
                       (float(g) for g in booster.feature_importance(importance_type="gain")),
                       strict=True))
        source = "LightGBM total gain of the splits on each feature"
    elif isinstance(metrics.get("importance"), dict) and metrics["importance"]:
        raw = {str(k): abs(float(v)) for k, v in metrics["importance"].items()}
        source = f"importance stored at training ({art.get('format', 'unknown format')})"
    else:
        return None
    total = sum(raw.values())
    rows: list[dict[str, Any]] = [
        {"feature": f, "gain": g, "share": g / total if total else 0.0}
        for f, g in raw.items()]
    rows.sort(key=lambda r: (-r["gain"], r["feature"]))
    return {"source": source, "features": rows}


def _entities(preds: pd.DataFrame, key: str, target: str, task: str, primary: str,
              best: str) -> dict[str, Any] | None:
    """Per entity: rows, model error and best-baseline error; the entities where the
    model loses most to the baseline (largest excess error) first."""
    if key not in preds.columns:
        return None
    metric = primary if primary in _GROUP_ERRORS else ("brier" if task == "binary"
                                                       else "rmse")
    if task != "binary" and metric in ("brier", "log_loss"):
        metric = "rmse"
    groups = preds[key]
    y = preds[target].astype(float)
    p = preds["model"].astype(float)
    by = groups.to_numpy()
    table = pd.DataFrame({
        "rows": groups.groupby(by, sort=False, dropna=False).size(),
        "actual_mean": y.groupby(by, sort=False, dropna=False).mean(),
        "predicted_mean": p.groupby(by, sort=False, dropna=False).mean(),
        "model": _group_error(metric, groups, y, p),
        "baseline": _group_error(metric, groups, y, preds[best].astype(float)),
    })
    table["difference"] = table["model"] - table["baseline"]
    table["lift"] = -table["difference"] / table["baseline"].where(table["baseline"] != 0)
    table.index.name = "entity"
    # the entities where the model loses most to the baseline first; unknown last
    table = table.reset_index().sort_values(["difference", "entity"],
                                            ascending=[False, True], na_position="last",
                                            kind="stable")
    rows = [{k: _plain(v) for k, v in r.items()} for r in table.to_dict("records")]
    for r in rows:
        for k in ("actual_mean", "predicted_mean", "model", "baseline", "difference", "lift"):
            r[k] = float(r[k]) if finite(r[k]) else None
        r["rows"] = int(r["rows"])
    return {"key": key, "metric": metric, "baseline": best, "count": len(rows),
            "losing": int((table["difference"] > 0).sum()),
            "rows": rows}


def _losses(ws: Workspace, manifest: dict[str, Any], model: Model, preds: pd.DataFrame,
            key: str, time_col: str | None, best: str) -> dict[str, Any] | None:
    """The backtest rows where the model's absolute error exceeds the best baseline's
    most, each explained by the contributions of the fold's own model (stored at
    training: the model that made that backtest prediction). None when the version was
    trained without them (before they were kept, or a learner with no exact method)."""
    if EXPECTED_COLUMN not in preds.columns:
        return None
    features = list(manifest.get("features", []))
    cols = [contribution_column(f) for f in features]
    if not all(c in preds.columns for c in cols):
        return None
    link = link_of(training.load_model(ws, manifest))
    y = preds[model.target].to_numpy(dtype=float)
    excess = (np.abs(preds["model"].to_numpy(dtype=float) - y)
              - np.abs(preds[best].to_numpy(dtype=float) - y))
    known = preds[EXPECTED_COLUMN].notna().to_numpy() & np.isfinite(excess) & (excess > 0)
    order = [int(i) for i in np.argsort(-np.where(known, excess, -np.inf), kind="stable")
             if known[i]][:MAX_LOSSES]
    rows = []
    for i in order:
        r = preds.iloc[i]
        values = r[cols].to_numpy(dtype=float)[None, :]
        expected = np.array([float(r[EXPECTED_COLUMN])])
        contrib = Contributions(tuple(features), values, expected,
                                expected + values.sum(axis=1), link,
                                pd.to_numeric(r[features], errors="coerce")
                                .to_numpy(dtype=float)[None, :])  # a category: NaN
        when = pd.Timestamp(r[time_col]) if time_col is not None else None
        e = explanation_dict(model, contrib, 0, baseline=(best, float(r[best])),
                             entity=str(r[key]) if key in preds.columns else None, when=when)
        rows.append({"entity": _plain(r[key]) if key in preds.columns else None,
                     "time": _day(when) if when is not None else None,
                     "fold": int(r["fold"]) if "fold" in preds.columns else None,
                     "actual": float(y[i]), "model": float(r["model"]),
                     "baseline": float(r[best]), "excess_error": float(excess[i]),
                     "explanation": e})
    return {"baseline": best, "error": "absolute error", "rows": rows,
            "explained_by": "each backtest fold's own model: the one that made the backtest "
                            "prediction, trained only on the days before its fold"}


def _group_error(metric: str, groups: pd.Series, y: pd.Series, p: pd.Series) -> pd.Series:
    """``metric`` per group, on the rows where actual and prediction are both known,
    computed from per-row sums (no Python loop over groups)."""
    ok = (y.notna() & p.notna()).to_numpy()
    yv, pv = y.to_numpy(dtype=float), p.to_numpy(dtype=float)
    if metric in ("rmse", "brier"):
        part = (pv - yv) ** 2
    elif metric in ("mae", "wape"):
        part = np.abs(pv - yv)
    else:  # log_loss
        q = np.clip(pv, 1e-15, 1 - 1e-15)
        part = -(yv * np.log(q) + (1 - yv) * np.log(1 - q))
    denom = np.abs(yv) if metric == "wape" else np.ones(len(yv))
    sums = pd.DataFrame({"num": np.where(ok, part, 0.0), "den": np.where(ok, denom, 0.0)}
                        ).groupby(groups.to_numpy(), sort=False, dropna=False).sum()
    with np.errstate(all="ignore"):
        value = sums["num"] / sums["den"].where(sums["den"] > 0)
    return np.sqrt(value) if metric == "rmse" else value


def _highlights(report: dict[str, Any]) -> list[str]:
    """A few plain sentences a business owner reads first."""
    out = []
    best = report["best_baseline"]
    folds = [f for f in report["folds"] if f["beats_baseline"] is not None]
    if folds:
        won = sum(1 for f in folds if f["beats_baseline"])
        out.append(f"The model beats the best baseline of each fold in {won} of "
                   f"{len(folds)} backtest folds.")
    lost = [s for s in report["slices"] if s["beats_baseline"] is False]
    if lost:
        names = ", ".join(f"{s['slice']}={s['label']} (to {s['best_baseline']!r})"
                          for s in lost[:5])
        more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        out.append(f"It loses to a baseline on {len(lost)} slice(s): {names}{more}.")
    elif report["slices"]:
        out.append("It beats every baseline on every slice.")
    ents = report["entities"]
    if ents and ents["count"] > 1:
        out.append(f"{ents['losing']} of {ents['count']} {ents['key']} values have a larger "
                   f"{ents['metric']} with the model than with {best!r}.")
    cal = report["calibration"]
    if cal and cal.get("mean_abs_gap") is not None and report["task"] == "binary":
        out.append(f"Predicted probabilities are off from the observed rate by "
                   f"{cal['mean_abs_gap']:.3f} on average over the ten deciles.")
    cens = report.get("censored")
    if cens and cens.get("without", {}).get("model"):
        p = report["primary"]
        out.append(f"{cens['rows']} test rows ({cens['share']:.1%}) are censored; without "
                   f"them the model's {p} is {cens['without']['model'].get(p):.4g} (with them: "
                   f"{report['overall']['model'].get(p):.4g}).")
    imp = report["importance"]
    if imp and imp["features"]:
        top = imp["features"][0]
        out.append(f"The most important feature is {top['feature']!r} "
                   f"({top['share']:.0%} of the gain).")
    return out


# ---------------------------------------------------------------------- helpers


def _day(t: Any) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _clean(obj: Any) -> Any:
    """JSON-able copy: numpy scalars to Python, NaN and infinities to None, times to
    ISO strings, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, datetime | date | pd.Timestamp):
        return pd.Timestamp(obj).isoformat()
    return obj
