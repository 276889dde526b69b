"""Evaluation report: what a business owner needs to sit with a model version and
challenge it ("what happens with this product in this store?").

Everything comes from what training stored: the version's metrics (overall, per fold,
per slice, best baseline, lift), its manifest (sizes, digests) and two artifacts, the
backtest predictions (every backtest row with its actual, the model's prediction and one
column per baseline) and the model file (feature importance). Nothing is re-trained and
nothing reads the wall clock, so the same version always gives the same report.

``evaluation_report`` returns a JSON-able dict; ``render_evaluation_html`` turns it into
one self-contained page (inline CSS and SVG charts, no network, readable without
JavaScript; a few lines of inline script only make tables sortable);
``write_evaluation_report`` writes both under the workspace's ``reports/``.
``EvaluationReport`` shows the same page inline in a notebook.

Example:
    >>> EvaluationReport({"model": "m", "version": 1})._repr_html_()[:36]
    '<div class="tuesday-report">\\n<style>'
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tuesday.project import LoadedProject, Model, Project
from tuesday.release import registry
from tuesday.train import evaluation, training
from tuesday.workspace import Workspace

#: entity rows shown in the HTML table (the JSON keeps them all)
MAX_ENTITY_ROWS = 500
HISTOGRAM_BINS = 30
CALIBRATION_BINS = 10
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
    report["folds"] = _folds(metrics, preds, primary, way, best, time_col)
    report["slices"] = _slices(metrics, primary, way, best)
    report["over_time"] = (_over_time(preds, time_col, key, target, best)
                           if task != "binary" and time_col is not None else None)
    report["calibration"] = (_calibration(preds, target, task)
                             if task == "binary" or time_col is None else None)
    report["residuals"] = _residuals(preds, target, best)
    report["importance"] = _importance(ws, manifest, metrics)
    report["entities"] = _entities(preds, key, target, task, primary, best)
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


def _lift(metric: str, way: str, model: Any, baseline: Any) -> float | None:
    if not _finite(model) or not _finite(baseline):
        return None
    value = evaluation.lift(metric, float(model), float(baseline), way)
    return value if math.isfinite(value) else None


def _beats(metric: str, way: str, model: Any, baseline: Any) -> bool | None:
    if not _finite(model) or not _finite(baseline):
        return None
    return bool(evaluation.better(metric, float(model), float(baseline), way))


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
    mine = metrics["model"].get(primary)
    theirs = metrics["baselines"][best].get(primary)
    lift = _lift(primary, way, mine, theirs)
    beats = _beats(primary, way, mine, theirs)
    art = manifest.get("artifact", {})
    cost = metrics.get("cost") or {}
    if lift is None:
        verdict = (f"The model's {primary} ({_fmt(mine)}) cannot be compared with its best "
                   f"baseline {best!r} ({_fmt(theirs)}).")
    else:
        verdict = (f"On {primary} ({_WAY_TEXT[way]}) the model scores {_fmt(mine)} against "
                   f"{_fmt(theirs)} for its best baseline, {best!r}: "
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
           best: str, time_col: str | None) -> list[dict[str, Any]]:
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
            "lift": _lift(primary, way, f["model"].get(primary), bl[best].get(primary)),
            "beats_baseline": _beats(primary, way, f["model"].get(primary),
                                     bl[best].get(primary)),
        })
    return out


def _slices(metrics: dict[str, Any], primary: str, way: str,
            best: str) -> list[dict[str, Any]]:
    out = []
    for s in metrics.get("slices", []):
        bl = {b: s.get(b, {}) for b in metrics["baselines"]}
        out.append({
            "slice": s["slice"], "value": s["value"], "label": _slice_label(s),
            "rows": s.get("rows"), "model": s["model"], "baselines": bl,
            "lift": _lift(primary, way, s["model"].get(primary), bl[best].get(primary)),
            "beats_baseline": _beats(primary, way, s["model"].get(primary),
                                     bl[best].get(primary)),
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
            r[k] = float(r[k]) if _finite(r[k]) else None
        r["rows"] = int(r["rows"])
    return {"key": key, "metric": metric, "baseline": best, "count": len(rows),
            "losing": int((table["difference"] > 0).sum()),
            "rows": rows}


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
        out.append(f"The model beats {best!r} in {won} of {len(folds)} backtest folds.")
    lost = [s for s in report["slices"] if s["beats_baseline"] is False]
    if lost:
        names = ", ".join(f"{s['slice']}={s['label']}" for s in lost[:5])
        more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        out.append(f"It loses to {best!r} on {len(lost)} slice(s): {names}{more}.")
    elif report["slices"]:
        out.append(f"It beats {best!r} on every slice.")
    ents = report["entities"]
    if ents and ents["count"] > 1:
        out.append(f"{ents['losing']} of {ents['count']} {ents['key']} values have a larger "
                   f"{ents['metric']} with the model than with {best!r}.")
    cal = report["calibration"]
    if cal and cal.get("mean_abs_gap") is not None and report["task"] == "binary":
        out.append(f"Predicted probabilities are off from the observed rate by "
                   f"{cal['mean_abs_gap']:.3f} on average over the ten deciles.")
    imp = report["importance"]
    if imp and imp["features"]:
        top = imp["features"][0]
        out.append(f"The most important feature is {top['feature']!r} "
                   f"({top['share']:.0%} of the gain).")
    return out


# ------------------------------------------------------------------------ render

_CSS = """
.tuesday-report{font-family:system-ui,sans-serif;max-width:72em;margin:1em auto;color:#222}
.tuesday-report table{border-collapse:collapse;margin:.5em 0 1em}
.tuesday-report td,.tuesday-report th{border:1px solid #ccc;padding:.2em .55em;
text-align:right;vertical-align:top}
.tuesday-report th{background:#f3f3f3}
.tuesday-report th.l,.tuesday-report td.l{text-align:left}
.tuesday-report .bad{color:#b00;font-weight:bold}
.tuesday-report .ok{color:#070}
.tuesday-report .note{color:#555;font-size:.9em}
.tuesday-report .bar{display:inline-block;height:.8em;background:#4c78a8}
.tuesday-report svg{max-width:100%;height:auto;font-size:11px}
.tuesday-report table.sortable th{cursor:pointer}
.tuesday-report dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
.tuesday-report dt{font-weight:bold}.tuesday-report dd{margin:0}
"""

# Click a header to sort by that column; without JavaScript the tables stay as written.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (t) {
  if (t.dataset.bound) return; t.dataset.bound = "1";
  t.querySelectorAll("thead th").forEach(function (h, i) {
    h.title = "click to sort";
    h.addEventListener("click", function () {
      var body = t.tBodies[0], rows = Array.from(body.rows);
      var dir = h.dataset.dir === "asc" ? -1 : 1; h.dataset.dir = dir > 0 ? "asc" : "desc";
      function key(r) { var c = r.cells[i]; return c.dataset.v !== undefined ?
        c.dataset.v : c.textContent; }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        if (isNaN(nx) !== isNaN(ny)) return isNaN(nx) ? 1 : -1;
        if (!isNaN(nx)) return dir * (nx - ny);
        return dir * x.localeCompare(y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_COLORS = {"actual": "#222222", "model": "#1f77b4", "baseline": "#d62728"}


def render_evaluation_html(report: dict[str, Any]) -> str:
    """One self-contained HTML page for an evaluation report: inline CSS and SVG, no
    network, readable without JavaScript (inline script only sorts tables).

    Example:
        >>> page = render_evaluation_html({"model": "demand", "version": 2})
        >>> page.startswith("<!doctype html>") and "http" not in page
        True
    """
    e = html.escape
    title = f"Evaluation of {report.get('model', '?')} version {report.get('version', '?')}"
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{e(title)}</title>\n</head>\n<body>\n"
            f"{render_evaluation_body(report)}\n</body>\n</html>\n")


def render_evaluation_body(report: dict[str, Any]) -> str:
    """The report as an HTML fragment (its own scoped style), for notebooks and pages."""
    parts = [f'<div class="tuesday-report">\n<style>{_CSS}</style>',
             f'<h1>Evaluation of {_esc(report.get("model", "?"))} '
             f'&mdash; version {_esc(report.get("version", "?"))}</h1>']
    sections = (_html_headline, _html_folds, _html_slices, _html_over_time,
                _html_calibration, _html_residuals, _html_importance, _html_entities)
    for section in sections:
        try:
            parts.append(section(report))
        except (KeyError, TypeError, IndexError):  # a partial dict: show what there is
            continue
    parts.append(f"<script>{_SORT_JS}</script>\n</div>")
    return "\n".join(p for p in parts if p)


def _html_headline(r: dict[str, Any]) -> str:
    h = r["headline"]
    cls = "ok" if h["beats_baseline"] else "bad"
    lift = f"{h['lift']:+.1%}" if h["lift"] is not None else "&ndash;"
    facts = [
        ("Stage", _esc(r.get("stage"))),
        ("Trained as of", _esc(r.get("as_of"))),
        ("Task", f"{_esc(r['task'])}, target {_esc(r['target'])}, per {_esc(r['entity'])}"
                 + (f", horizon {_esc(r['horizon'])}" if r.get("horizon") else "")),
        (f"{_esc(h['primary'])} of the model", _fmt(h["model"])),
        (f"{_esc(h['primary'])} of {_esc(h['best_baseline'])}", _fmt(h["baseline"])),
        ("Lift over the best baseline", f"<span class={cls}>{lift}</span>"),
        ("Training rows", _int(h["train_rows"])),
        ("Backtest rows", f"{_int(h['backtest_rows'])} in {h['folds']} folds"),
        ("Entities", _int(h.get("entities"))),
        ("Train seconds", _fmt(h["train_seconds"])),
        ("Model size", _bytes(h["model_bytes"])
         + (f", {_esc(h['model_format'])} format" if h.get("model_format") else "")),
        ("Features", _int(h["features"])),
    ]
    if h.get("predict_us_per_row") is not None:
        facts.append(("Predict time", f"{_fmt(h['predict_us_per_row'])} µs per row"))
    facts.append(("Run", _esc(r.get("run_id"))))
    out = [f"<p class={cls}><b>{_esc(h['verdict'])}</b></p>"]
    if h.get("highlights"):
        out.append("<ul>" + "".join(f"<li>{_esc(s)}</li>" for s in h["highlights"])
                   + "</ul>")
    out.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    metrics = r["metrics"]
    out.append("<h2>Backtest metrics, all folds together</h2><table><thead><tr>"
               "<th class=l>predictor</th>"
               + "".join(f"<th>{_esc(m)}</th>" for m in metrics) + "</tr></thead><tbody>")
    rows = [("model", r["overall"]["model"]), *r["overall"]["baselines"].items()]
    for name, vals in rows:
        mark = " (best baseline)" if name == r["best_baseline"] else ""
        out.append(f"<tr><th class=l>{_esc(name)}{mark}</th>"
                   + "".join(f"<td>{_fmt(vals.get(m))}</td>" for m in metrics) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _compare_table(rows: list[dict[str, Any]], r: dict[str, Any], lead: list[str],
                   lead_cells: Any) -> str:
    """Rows with the primary metric of the model and every baseline, and the lift."""
    p = r["primary"]
    heads = [*lead, f"model {p}", *(f"{b} {p}" for b in r["baselines"]),
             f"lift vs {r['best_baseline']}"]
    out = ["<table class=sortable><thead><tr>"
           + "".join(f"<th>{_esc(x)}</th>" for x in heads) + "</tr></thead><tbody>"]
    for row in rows:
        cls = {True: " class=ok", False: " class=bad"}.get(row["beats_baseline"], "")
        lift = row["lift"]
        out.append("<tr>" + lead_cells(row)
                   + _num_td(row["model"].get(p))
                   + "".join(_num_td(row["baselines"][b].get(p)) for b in r["baselines"])
                   + f"<td{cls} data-v=\"{_v(lift)}\">"
                   + (f"{lift:+.1%}" if lift is not None else "&ndash;") + "</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_folds(r: dict[str, Any]) -> str:
    folds = r["folds"]
    if not folds:
        return ""
    timed = any(f.get("first") for f in folds)
    lead = ["fold", *(["test days"] if timed else []), "test rows"]

    def cells(f: dict[str, Any]) -> str:
        period = f"<td class=l>{_esc(f['first'])} to {_esc(f['last'])}</td>" if timed else ""
        return f"<td>{f['fold']}</td>{period}{_num_td(f['test_rows'])}"

    return (f"<h2>{_esc(r['primary'])} per backtest fold</h2>"
            "<p class=note>Each fold trains on what was known before its cutoff and is "
            "judged on the rows after it. Every metric of every fold is in the JSON.</p>"
            + _compare_table(folds, r, lead, cells))


def _html_slices(r: dict[str, Any]) -> str:
    slices = r["slices"]
    if not slices:
        return ""
    out = [f"<h2>{_esc(r['primary'])} per slice</h2>"]
    for name in dict.fromkeys(s["slice"] for s in slices):
        rows = [s for s in slices if s["slice"] == name]
        out.append(f"<h3>{_esc(name)}</h3>")
        out.append(_compare_table(
            rows, r, [str(name), "rows"],
            lambda s: f"<td class=l>{_esc(s['label'])}</td>{_num_td(s['rows'])}"))
    return "\n".join(out)


def _html_over_time(r: dict[str, Any]) -> str:
    ot = r.get("over_time")
    if not ot or not ot["date"]:
        return ""
    days = pd.to_datetime(pd.Series(ot["date"]))
    x = ((days - days.iloc[0]) / pd.Timedelta(days=1)).tolist()
    ticks = _date_ticks(days)
    vlines = [(float((pd.Timestamp(s["date"]) - days.iloc[0]) / pd.Timedelta(days=1)),
               f"f{s['fold']}") for s in ot["fold_starts"]]
    agg = (f"summed over {ot['entities']} {r['entity']} values" if (ot["entities"] or 0) > 1
           else "one series")
    chart = _line_chart(
        x, [("actual", ot["actual"], _COLORS["actual"], ""),
            ("model", ot["model"], _COLORS["model"], ""),
            (ot["baseline"], ot["best_baseline"], _COLORS["baseline"], "4 3")],
        x_ticks=ticks, vlines=vlines, y_label=str(r["target"]),
        title=f"Actual and predicted {r['target']} per day over the backtest")
    return (f"<h2>Actual vs predicted over time</h2><p class=note>{_esc(r['target'])} per "
            f"day, {_esc(agg)}, over the {len(ot['date'])} backtest days; the dashed red "
            f"line is the best baseline, {_esc(ot['baseline'])}; dotted lines mark where "
            "each fold starts.</p>\n" + chart)


def _html_calibration(r: dict[str, Any]) -> str:
    cal = r.get("calibration")
    if not cal or not cal["bins"]:
        return ""
    binary = r["task"] == "binary"
    head = ("Calibration: predicted probability against the observed rate" if binary
            else "Actual vs predicted by predicted decile")
    out = [f"<h2>{head}</h2><p class=note>The {cal['rows']} backtest rows cut into ten "
           "equal groups by the model's prediction, lowest first. A well calibrated model "
           f"has the {'observed rate' if binary else 'mean actual'} close to the mean "
           "prediction in every group"
           + (f"; mean absolute gap {_fmt(cal['mean_abs_gap'])}." if cal["mean_abs_gap"]
              is not None else ".") + "</p>",
           "<table class=calibration><thead><tr><th>decile</th><th>rows</th>"
           "<th>predicted from</th><th>predicted to</th><th>mean predicted</th>"
           f"<th>{'observed rate' if binary else 'mean actual'}</th><th>gap</th></tr>"
           "</thead><tbody>"]
    for b in cal["bins"]:
        out.append(f"<tr><td>{b['decile']}</td>{_num_td(b['rows'])}"
                   f"{_num_td(b['predicted_min'])}{_num_td(b['predicted_max'])}"
                   f"{_num_td(b['predicted_mean'])}{_num_td(b['observed'])}"
                   f"{_num_td(b['observed'] - b['predicted_mean'])}</tr>")
    out.append("</tbody></table>")
    xs = [b["predicted_mean"] for b in cal["bins"]]
    ys = [b["observed"] for b in cal["bins"]]
    lo, hi = (0.0, 1.0) if binary else (min(*xs, *ys), max(*xs, *ys))
    out.append(_line_chart(
        xs, [("observed" if binary else "mean actual", ys, _COLORS["model"], "")],
        x_ticks=[(t, _tick(t)) for t in _nice_ticks(lo, hi)], vlines=[],
        y_label="observed rate" if binary else "mean actual", x_label="mean predicted",
        title=head, markers=True, x_range=(lo, hi), y_range=(lo, hi), diagonal=True))
    return "\n".join(out)


def _html_residuals(r: dict[str, Any]) -> str:
    res = r["residuals"]
    hist = res["histogram"]
    out = [f"<h2>Residuals</h2><p class=note>Residual = {_esc(res['definition'])}.</p>"]
    if hist["counts"]:
        out.append(_histogram(hist["edges"], hist["counts"],
                              title="Residuals of the model over the backtest"))
        if hist["below"] or hist["above"]:
            out.append(f"<p class=note>Outside the chart: {hist['below']} rows below "
                       f"{_fmt(hist['edges'][0])} and {hist['above']} above "
                       f"{_fmt(hist['edges'][-1])}.</p>")
    folds = res["by_fold"]
    if folds:
        best = r["best_baseline"]
        out.append("<h3>Residual by fold</h3><table class=sortable><thead><tr>"
                   "<th>fold</th><th>rows</th><th>mean (bias)</th><th>mean absolute</th>"
                   "<th>5%</th><th>median</th><th>95%</th>"
                   f"<th>{_esc(best)} mean</th><th>{_esc(best)} mean absolute</th>"
                   "</tr></thead><tbody>")
        keys = ("rows", "mean", "mean_abs", "p05", "median", "p95", "baseline_mean",
                "baseline_mean_abs")
        for f in folds:
            out.append(f"<tr><td>{_esc(f['fold'])}</td>"
                       + "".join(_num_td(f.get(k)) for k in keys) + "</tr>")
        out.append("</tbody><tfoot><tr><th>all</th>"
                   + "".join(_num_td(res["overall"].get(k)) for k in keys)
                   + "</tr></tfoot></table>")
    return "\n".join(out)


def _html_importance(r: dict[str, Any]) -> str:
    imp = r.get("importance")
    if not imp:
        return ("<h2>Feature importance</h2><p class=note>Not available for this model "
                "file.</p>")
    feats = imp["features"]
    top = max((f["share"] for f in feats), default=0.0) or 1.0
    out = [f"<h2>Feature importance</h2><p class=note>{_esc(imp['source'])}, as a share "
           "of the total.</p><table class=sortable><thead><tr><th class=l>feature</th>"
           "<th>share</th><th class=l>&nbsp;</th></tr></thead><tbody>"]
    for f in feats:
        width = 100.0 * f["share"] / top
        out.append(f"<tr><td class=l>{_esc(f['feature'])}</td>"
                   f"<td data-v=\"{_v(f['share'])}\">{f['share']:.1%}</td>"
                   f"<td class=l style=\"width:20em\"><span class=bar "
                   f"style=\"width:{width:.1f}%\"></span></td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_entities(r: dict[str, Any]) -> str:
    ents = r.get("entities")
    if not ents:
        return ""
    rows = ents["rows"]
    shown = rows[:MAX_ENTITY_ROWS]
    metric, best = ents["metric"], ents["baseline"]
    note = (f"Model {metric} against the {metric} of {best} for each {ents['key']}, "
            f"over its backtest rows; the {ents['key']} values where the model loses most "
            "to the baseline (largest excess error) come first. Click a header to sort.")
    if len(rows) > len(shown):
        note += f" Showing {len(shown)} of {len(rows)}; the JSON report lists them all."
    out = [f"<h2>Per {_esc(ents['key'])}</h2><p class=note>{_esc(note)}</p>",
           "<table class=\"sortable entities\"><thead><tr>"
           f"<th class=l>{_esc(ents['key'])}</th><th>rows</th><th>mean actual</th>"
           f"<th>mean predicted</th><th>model {_esc(metric)}</th>"
           f"<th>{_esc(best)} {_esc(metric)}</th><th>excess error</th>"
           "<th>lift</th></tr></thead><tbody>"]
    for e in shown:
        diff = e["difference"]
        cls = " class=bad" if diff is not None and diff > 0 else ""
        lift = e["lift"]
        out.append(f"<tr><td class=l>{_esc(e['entity'])}</td>{_num_td(e['rows'])}"
                   f"{_num_td(e['actual_mean'])}{_num_td(e['predicted_mean'])}"
                   f"{_num_td(e['model'])}{_num_td(e['baseline'])}"
                   f"<td{cls} data-v=\"{_v(diff)}\">{_fmt(diff)}</td>"
                   f"<td data-v=\"{_v(lift)}\">"
                   + (f"{lift:+.1%}" if lift is not None else "&ndash;") + "</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


# ------------------------------------------------------------------------- SVG

_W, _H = 900, 320
_ML, _MR, _MT, _MB = 60, 20, 30, 40


def _line_chart(x: Sequence[float], series: Sequence[tuple[str, Sequence[Any], str, str]],
                *, x_ticks: Sequence[tuple[float, str]], vlines: Sequence[tuple[float, str]],
                y_label: str, title: str, x_label: str = "", markers: bool = False,
                x_range: tuple[float, float] | None = None,
                y_range: tuple[float, float] | None = None, diagonal: bool = False) -> str:
    """An inline SVG line chart; ``series`` holds (name, values, colour, dash pattern).

    ``markers`` draws a dot on each point; ``diagonal`` the line y = x (calibration)."""
    values = [float(v) for _, vs, _, _ in series for v in vs if _finite(v)]
    if not x or not values:
        return ""
    ylo, yhi = y_range or (min(values), max(values))
    yt = _nice_ticks(ylo, yhi)
    ylo, yhi = min(ylo, yt[0]), max(yhi, yt[-1])
    xlo, xhi = x_range or (min(x), max(x))
    if xhi <= xlo:
        xlo, xhi = xlo - 1, xhi + 1
    if yhi <= ylo:
        ylo, yhi = ylo - 1, yhi + 1

    def sx(v: float) -> float:
        return _ML + (v - xlo) / (xhi - xlo) * (_W - _ML - _MR)

    def sy(v: float) -> float:
        return _H - _MB - (v - ylo) / (yhi - ylo) * (_H - _MT - _MB)

    out = [f'<svg viewBox="0 0 {_W} {_H}" '
           f'width="{_W}" height="{_H}" role="img" aria-label="{_esc(title)}">',
           f"<title>{_esc(title)}</title>",
           f'<rect x="{_ML}" y="{_MT}" width="{_W - _ML - _MR}" '
           f'height="{_H - _MT - _MB}" fill="none" stroke="#ccc"/>']
    for t in yt:
        out.append(f'<line x1="{_ML}" x2="{_W - _MR}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
                   f'stroke="#eee"/><text x="{_ML - 4}" y="{sy(t) + 4:.1f}" '
                   f'text-anchor="end">{_esc(_tick(t))}</text>')
    for t, label in x_ticks:
        if xlo <= t <= xhi:
            out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{_H - _MB}" '
                       f'y2="{_H - _MB + 4}" stroke="#555"/><text x="{sx(t):.1f}" '
                       f'y="{_H - _MB + 16}" text-anchor="middle">{_esc(label)}</text>')
    for t, label in vlines:
        if xlo <= t <= xhi:
            out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{_MT}" '
                       f'y2="{_H - _MB}" stroke="#aaa" stroke-dasharray="1 3"/>'
                       f'<text x="{sx(t) + 2:.1f}" y="{_MT + 10}" fill="#888">'
                       f"{_esc(label)}</text>")
    out.append(f'<text x="14" y="{(_H - _MB + _MT) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {(_H - _MB + _MT) / 2:.0f})">{_esc(y_label)}</text>')
    if x_label:
        out.append(f'<text x="{(_W + _ML) / 2:.0f}" y="{_H - 6}" text-anchor="middle">'
                   f"{_esc(x_label)}</text>")
    if diagonal:
        a, b = max(xlo, ylo), min(xhi, yhi)
        out.append(f'<line x1="{sx(a):.1f}" y1="{sy(a):.1f}" x2="{sx(b):.1f}" '
                   f'y2="{sy(b):.1f}" stroke="#999" stroke-dasharray="4 3"/>'
                   f'<line x1="{_W - _MR - 200}" x2="{_W - _MR - 176}" y1="{_MT - 12}" '
                   f'y2="{_MT - 12}" stroke="#999" stroke-dasharray="4 3"/>'
                   f'<text x="{_W - _MR - 172}" y="{_MT - 8}">perfectly calibrated</text>')
    for i, (name, vals, color, dash) in enumerate(series):
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        for seg in _segments(x, vals):
            pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in seg)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                       f'stroke-width="1.4"{dash_attr}/>')
            if markers:
                out.extend(f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="3" '
                           f'fill="{color}"/>' for a, b in seg)
        lx = _ML + 10 + i * 170
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{_MT - 12}" y2="{_MT - 12}" '
                   f'stroke="{color}" stroke-width="2"{dash_attr}/><text x="{lx + 28}" '
                   f'y="{_MT - 8}">{_esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _histogram(edges: Sequence[float], counts: Sequence[int], *, title: str) -> str:
    """An inline SVG histogram with a marker at zero."""
    if not counts:
        return ""
    lo, hi = float(edges[0]), float(edges[-1])
    top = float(max(max(counts), 1))
    yt = _nice_ticks(0.0, top)
    top = max(top, yt[-1])

    def sx(v: float) -> float:
        return _ML + (v - lo) / (hi - lo) * (_W - _ML - _MR)

    def sy(v: float) -> float:
        return _H - _MB - v / top * (_H - _MT - _MB)

    out = [f'<svg viewBox="0 0 {_W} {_H}" '
           f'width="{_W}" height="{_H}" role="img" aria-label="{_esc(title)}">',
           f"<title>{_esc(title)}</title>"]
    for t in yt:
        out.append(f'<line x1="{_ML}" x2="{_W - _MR}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" '
                   f'stroke="#eee"/><text x="{_ML - 4}" y="{sy(t) + 4:.1f}" '
                   f'text-anchor="end">{_esc(_tick(t))}</text>')
    for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True):
        out.append(f'<rect x="{sx(a):.1f}" y="{sy(c):.1f}" width="{max(sx(b) - sx(a) - 1, 1):.1f}" '
                   f'height="{sy(0) - sy(c):.1f}" fill="#4c78a8"><title>{_fmt(a)} to '
                   f"{_fmt(b)}: {int(c)} rows</title></rect>")
    for t in _nice_ticks(lo, hi):
        if lo <= t <= hi:
            out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{_H - _MB}" '
                       f'y2="{_H - _MB + 4}" stroke="#555"/><text x="{sx(t):.1f}" '
                       f'y="{_H - _MB + 16}" text-anchor="middle">{_esc(_tick(t))}</text>')
    if lo < 0 < hi:
        out.append(f'<line x1="{sx(0):.1f}" x2="{sx(0):.1f}" y1="{_MT}" y2="{_H - _MB}" '
                   f'stroke="#d62728" stroke-dasharray="4 3"/><text x="{sx(0) + 3:.1f}" '
                   f'y="{_MT + 10}" fill="#d62728">0</text>')
    out.append(f'<line x1="{_ML}" x2="{_W - _MR}" y1="{_H - _MB}" y2="{_H - _MB}" '
               f'stroke="#555"/>')
    out.append(f'<text x="{(_W + _ML) / 2:.0f}" y="{_H - 6}" text-anchor="middle">'
               "predicted - actual</text>")
    out.append(f'<text x="14" y="{(_H - _MB + _MT) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {(_H - _MB + _MT) / 2:.0f})">rows</text>')
    out.append("</svg>")
    return "\n".join(out)


def _segments(x: Sequence[float], vals: Sequence[Any]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive known points (a missing value breaks the line)."""
    out: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    for a, b in zip(x, vals, strict=True):
        if _finite(b):
            cur.append((float(a), float(b)))
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks: list[float] = []
    t = first
    while t < hi + step * 0.5 and len(ticks) < 50:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _date_ticks(days: pd.Series) -> list[tuple[float, str]]:
    first, last = days.iloc[0], days.iloc[-1]
    span = (last - first).days
    if span <= 62:
        freq, fmt = "7D", "%Y-%m-%d"
    elif span <= 2 * 366:
        freq, fmt = "MS", "%b %Y"
    else:
        freq, fmt = "YS", "%Y"
    cands = list(pd.date_range(first, last, freq=freq))
    every = max(1, math.ceil(len(cands) / 12))
    return [(float((t - first) / pd.Timedelta(days=1)), t.strftime(fmt))
            for t in cands[::every]]


# ---------------------------------------------------------------------- helpers


def _finite(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool) and math.isfinite(float(v))


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return _esc(v)


def _tick(v: float) -> str:
    return f"{v:.6g}"


def _int(v: Any) -> str:
    return f"{int(v):,}" if _finite(v) else "&ndash;"


def _bytes(v: Any) -> str:
    if not _finite(v):
        return "&ndash;"
    n = int(v)
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def _num_td(v: Any) -> str:
    return f'<td data-v="{_v(v)}">{_fmt(v)}</td>'


def _v(v: Any) -> str:
    return repr(float(v)) if _finite(v) else ""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


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
