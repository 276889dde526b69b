"""Monitoring: drift of served features against the training reference, and the real
accuracy of served predictions once ground truth has arrived.

``monitor`` reads the prediction log, joins it to the label source on (entity, target
time), compares the served feature values with the reference sample stored at training
time, and writes a JSON and an HTML report.
"""

from __future__ import annotations

import html
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tuesday import evaluation, registry, tables
from tuesday.drift import dataset_drift
from tuesday.errors import NotFound
from tuesday.project import LoadedProject
from tuesday.serving import read_log
from tuesday.workspace import Workspace

MIN_ROWS_FOR_DRIFT = 5


def monitor(ws: Workspace, loaded: LoadedProject, model_name: str,
            as_of: datetime) -> dict[str, Any]:
    """Drift and quality of a model's served predictions up to ``as_of``; writes reports."""
    project = loaded.project
    model = project.model(model_name)
    prod = registry.production(ws, model_name)
    if prod is None:
        raise NotFound(f"Model {model_name!r} has no production version to monitor.",
                       fix=f"Promote one with `tuesday promote {model_name} VERSION`.")
    log = read_log(ws, model_name)
    log = log[log["served_at"] <= pd.Timestamp(as_of)] if len(log) else log
    report: dict[str, Any] = {
        "model": model_name, "as_of": pd.Timestamp(as_of).isoformat(),
        "production_version": prod["version"], "predictions_logged": len(log),
    }
    ref = pq.read_table(io.BytesIO(ws.get_artifact(
        prod["manifest"]["reference"]["sha256"]))).to_pandas()
    # calendar and holiday values are fixed by the date: their "drift" is the season
    deterministic = {f.name for f in model.features if f.kind in ("calendar", "holiday")}
    features = [f for f in prod["manifest"]["features"] if f not in deterministic]
    if len(log) >= MIN_ROWS_FOR_DRIFT:
        served = pd.DataFrame([json.loads(s) for s in log["features"]])
        cols = [c for c in features if c in served.columns
                and served[c].notna().sum() >= MIN_ROWS_FOR_DRIFT and ref[c].notna().any()]
        drift = dataset_drift(ref[cols], served[cols].astype(float), columns=cols)
        report["drift"] = drift.to_dict()
        pred_drift = dataset_drift(ref[[model.target]].rename(columns={model.target: "y"}),
                                   log[["prediction"]].rename(columns={"prediction": "y"}),
                                   columns=["y"])
        report["prediction_drift"] = pred_drift.to_dict()["columns"][0]
    else:
        report["drift"] = None
        report["prediction_drift"] = None
    report["quality"] = _quality(ws, loaded, model_name, log, as_of)
    report["status"] = _status(report)
    stamp = pd.Timestamp(as_of).strftime("%Y%m%dT%H%M%S")
    base = ws.reports / f"monitor-{model_name}-{stamp}"
    json_path = base.with_suffix(".json")
    html_path = base.with_suffix(".html")
    json_path.write_text(json.dumps(report, indent=2, default=str))
    html_path.write_text(render_html(report))
    report["report_json"] = str(json_path)
    report["report_html"] = str(html_path)
    return report


def _quality(ws: Workspace, loaded: LoadedProject, model_name: str, log: pd.DataFrame,
             as_of: datetime) -> dict[str, Any] | None:
    project = loaded.project
    model = project.model(model_name)
    if log.empty:
        return None
    label_src = project.source(model.label_source)
    versions = tables.versions_as_of(ws, [label_src.name], as_of)
    labels = tables.read_table(ws, label_src, versions.get(label_src.name)).to_pandas()
    key, tcol = model.entity.key, label_src.time
    labels = labels[[key, model.target, *([tcol] if tcol else [])]].rename(
        columns={key: "entity", model.target: "actual", **({tcol: "target_time"} if tcol
                                                              else {})})
    labels["entity"] = labels["entity"].astype(str)
    on = ["entity", "target_time"] if tcol else ["entity"]
    # the latest answer for each (entity, target) is the one that counts
    served = log.sort_values("served_at").drop_duplicates(on, keep="last")
    joined = served.merge(labels, on=on, how="inner")
    if joined.empty:
        return {"rows_with_ground_truth": 0, "rows_served": len(served)}
    if model.task == "binary":
        y = (joined["actual"] == model.positive).to_numpy(dtype=float)
    else:
        y = joined["actual"].to_numpy(dtype=float)
    out: dict[str, Any] = {
        "rows_served": len(served), "rows_with_ground_truth": len(joined),
        "model": evaluation.score(model.metrics, y, joined["prediction"].to_numpy(float)),
        "baselines": {},
    }
    bl = pd.DataFrame([json.loads(s) for s in joined["baselines"]])
    for name in bl.columns:
        out["baselines"][name] = evaluation.score(model.metrics, y, bl[name].to_numpy(float))
    primary = model.primary_metric
    if out["baselines"]:
        best = min(out["baselines"], key=lambda n: abs(out["baselines"][n][primary])
                   if primary in evaluation.ABSOLUTE else
                   (-out["baselines"][n][primary] if primary in evaluation.HIGHER_IS_BETTER
                    else out["baselines"][n][primary]))
        out["best_baseline"] = best
        out["beats_baseline"] = evaluation.better(primary, out["model"][primary],
                                                  out["baselines"][best][primary])
    return out


def _status(report: dict[str, Any]) -> str:
    if not report["predictions_logged"]:
        return "no_traffic"
    q = report.get("quality")
    if q and q.get("beats_baseline") is False:
        return "degraded"
    if report.get("drift") and report["drift"]["dataset_drifted"]:
        return "drift"
    return "ok"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no network) for the monitor report."""
    e = html.escape
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>Monitor {e(report['model'])}</title>",
        "<style>body{font-family:sans-serif;max-width:64em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;"
        "text-align:right}th{background:#f3f3f3}.bad{color:#b00;font-weight:bold}"
        ".ok{color:#070}</style>",
        f"<h1>Model {e(report['model'])} &mdash; "
        f"<span class={'ok' if report['status'] == 'ok' else 'bad'}>"
        f"{e(report['status'])}</span></h1>",
        f"<p>As of {e(report['as_of'])}; production version "
        f"{report['production_version']}; {report['predictions_logged']} predictions logged."
        "</p>",
    ]
    q = report.get("quality")
    if q and q.get("rows_with_ground_truth"):
        parts.append(f"<h2>Accuracy on ground truth ({q['rows_with_ground_truth']} rows)</h2>")
        metrics = list(q["model"])
        parts.append("<table><tr><th>predictor</th>"
                     + "".join(f"<th>{e(m)}</th>" for m in metrics) + "</tr>")
        for name, vals in [("model", q["model"]), *q["baselines"].items()]:
            parts.append(f"<tr><th>{e(name)}</th>"
                         + "".join(f"<td>{_num(vals[m])}</td>" for m in metrics) + "</tr>")
        parts.append("</table>")
    else:
        parts.append("<h2>Accuracy</h2><p>No ground truth has arrived yet for the served "
                     "predictions.</p>")
    d = report.get("drift")
    if d:
        parts.append(f"<h2>Feature drift: {d['share_drifted']:.0%} of features drifted "
                     f"({'dataset drift' if d['dataset_drifted'] else 'no dataset drift'})"
                     "</h2><table><tr><th>feature</th><th>method</th><th>statistic</th>"
                     "<th>threshold</th><th>drifted</th><th>reference rows</th>"
                     "<th>current rows</th></tr>")
        for c in d["columns"]:
            cls = " class=bad" if c["drifted"] else ""
            parts.append(f"<tr><th>{e(c['column'])}</th><td>{e(c['method'])}</td>"
                         f"<td>{_num(c['statistic'])}</td><td>{_num(c['threshold'])}</td>"
                         f"<td{cls}>{'yes' if c['drifted'] else 'no'}</td>"
                         f"<td>{c['reference_rows']}</td><td>{c['current_rows']}</td></tr>")
        parts.append("</table>")
    else:
        parts.append(f"<h2>Feature drift</h2><p>Fewer than {MIN_ROWS_FOR_DRIFT} served rows; "
                     "drift is not computed.</p>")
    return "\n".join(parts)


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "&ndash;"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def latest_report(ws: Workspace, model: str) -> Path | None:
    found = sorted(ws.reports.glob(f"monitor-{model}-*.json"))
    return found[-1] if found else None
