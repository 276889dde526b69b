"""Monitoring: drift of served features against the training reference, the real
accuracy of served predictions once ground truth has arrived (overall, per time window,
per slice, per deployment variant), an estimate of it before (CBPE, binary models), the
health of the data and of the service, and the alerts all of that calls for.

``monitor`` reads the prediction log, joins it to the label source on (entity, target
time), compares the served feature values with the reference sample stored at training
time, and writes a JSON and an HTML report (self-contained: no script, no network).
The computations live in :mod:`tuesday.watch.quality`, :mod:`tuesday.watch.health` and
:mod:`tuesday.watch.drift`.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tuesday.data.predictions import read_log
from tuesday.errors import NotFound, TuesdayError
from tuesday.project import LoadedProject, Model
from tuesday.release import registry
from tuesday.watch import alerts, anomalies, health, quality
from tuesday.watch import monitor_html as words
from tuesday.watch.drift import dataset_drift
from tuesday.watch.quality import live_quality
from tuesday.workspace import Workspace

__all__ = ["MIN_ROWS_FOR_DRIFT", "alerts_for", "latest_report", "live_quality", "monitor",
           "raise_alerts", "render_html"]

MIN_ROWS_FOR_DRIFT = 5
#: fewest distinct target days with ground truth (rows, without a time axis) before
#: quality raises an alert: a day of 133 items is one day of evidence
MIN_DAYS_FOR_QUALITY = 5
#: share of failed (5xx) requests above which the service alert is raised
MAX_ERROR_RATE = 0.01


def monitor(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime, *,
            period: str = "W", drift_methods: Mapping[str, str] | None = None,
            drift_thresholds: Mapping[str, float] | None = None,
            metrics_text: str | None = None, alert: bool = False,
            routes: Iterable[alerts.Route] | None = None,
            max_error_rate: float = MAX_ERROR_RATE, write: bool = True) -> dict[str, Any]:
    """Drift, quality, estimated quality, data and service health of a model up to
    ``as_of``; writes a JSON and an HTML report; optionally raises alerts.

    Args:
        ws: The workspace.
        loaded: The loaded project.
        model_name: The model to monitor; it needs a production version.
        as_of: Only predictions served and labels and ingests known by then count.
        period: Time windows of the quality table (pandas period alias: ``'D'``,
            ``'W'``, ``'M'``).
        drift_methods: Drift method per feature (``'psi'``, ``'ks'``, ...) instead of
            Evidently's automatic choice.
        drift_thresholds: Drift threshold per feature instead of the method's default.
        metrics_text: The server's Prometheus ``/metrics`` text, for service health.
        alert: Raise the alerts the report calls for (see :func:`alerts_for`).
        routes: Alert routes; by default ``Log()`` plus the model policy's routes.
        max_error_rate: Service error rate above which a critical alert is raised.
        write: Write the JSON and HTML reports under the workspace's ``reports/``.

    Returns:
        The report: ``status``, ``drift``, ``prediction_drift``, ``quality``,
        ``windows``, ``slices``, ``variants``, ``performance_estimate`` (binary models,
        every figure an estimate), ``data_health``, ``service_health``, ``problems``,
        ``alerts`` and the report paths.

    Example:
        >>> r = monitor(ws, loaded, "ridership_14d", datetime(2016, 7, 31))  # doctest: +SKIP
        >>> r["windows"][0]["model"]["wape"]  # doctest: +SKIP
        0.061
    """
    model = loaded.project.model(model_name)
    prod = _production(ws, model_name)
    log = read_log(ws, model_name)
    log = log[quality.origin(model, log) <= pd.Timestamp(as_of)] if len(log) else log
    # shadow answers were never returned: what users got is every other variant
    users = log[log["variant"] != "shadow"] if len(log) else log
    report: dict[str, Any] = {
        "model": model_name, "as_of": pd.Timestamp(as_of).isoformat(),
        "production_version": prod["version"], "predictions_logged": len(users),
        "task": model.task, "primary_metric": model.primary_metric, "period": period,
        "time_basis": quality.TIME_BASIS,
    }
    ref = pq.read_table(io.BytesIO(ws.get_artifact(
        prod["manifest"]["reference"]["sha256"]))).to_pandas()
    report.update(_drift(model, prod, ref, users, drift_methods, drift_thresholds))
    report.update(_accuracy(ws, loaded, model, prod, log, users, as_of, period))
    report["data_health"] = health.data_health(ws, loaded.project, as_of, _sources(model))
    report["service_health"] = health.service_health(metrics_text) \
        if metrics_text is not None else None
    report["status"] = _status(report)
    found = alerts_for(report, max_error_rate=max_error_rate)
    report["problems"] = [a["title"] for a in found]
    report["alerts"] = []
    if alert:
        raised = raise_alerts(ws, loaded, report, as_of, routes=routes,
                              max_error_rate=max_error_rate)
        report["alerts"] = [a.to_dict() for a in raised]
    if write:
        report.update(_write(ws, report, model_name, as_of))
    return report


def _production(ws: Workspace, model_name: str) -> dict[str, Any]:
    prod = registry.production(ws, model_name)
    if prod is None:
        raise NotFound(f"Model {model_name!r} has no production version to monitor.",
                       fix=f"Promote one with `tuesday promote {model_name} VERSION`.")
    return prod


def _accuracy(ws: Workspace, loaded: LoadedProject, model: Model, prod: dict[str, Any],
              log: pd.DataFrame, users: pd.DataFrame, as_of: datetime, period: str
              ) -> dict[str, Any]:
    """The report's ``quality``, ``windows``, ``slices``, ``variants`` and
    ``performance_estimate``: what users were served against the labels known by then
    (the variants from the whole log, shadow included)."""
    labels = quality.labels_as_of(ws, loaded, model.name, as_of)
    out: dict[str, Any] = {
        "quality": live_quality(ws, loaded, model.name, users, as_of, labels=labels)}
    joined = quality.attach(model, labels, users)[0] if len(users) else pd.DataFrame()
    out["windows"] = quality.windows(model, joined, period) if len(joined) else []
    lim = anomalies.limits(model, prod["metrics"]["model"].get(model.primary_metric),
                           prod["metrics"].get("daily"))
    days = anomalies.day_accuracy(model, joined, lim) if len(joined) else []
    out["day_limits"] = lim
    out["anomalies"] = [d for d in days if d["anomaly"]]
    out["slices"] = quality.slices(model, joined, labels) if len(joined) else []
    out["variants"] = quality.variants(model, labels, log)
    out["performance_estimate"] = quality.performance_estimate(
        model, labels, users, period=period,
        calibration=_calibration(ws, model, prod) if model.task == "binary" else None)
    return out


def _sources(model: Model) -> list[str]:
    """The label source, then the other sources of the model's features, by name."""
    return [model.label_source, *sorted({f.source for f in model.features
                                         if f.source and f.source != model.label_source})]


def _write(ws: Workspace, report: dict[str, Any], model_name: str, as_of: datetime
           ) -> dict[str, str]:
    """Write the report as JSON and HTML under the workspace's ``reports/``; their paths."""
    stamp = pd.Timestamp(as_of).strftime("%Y%m%dT%H%M%S")
    base = ws.reports / f"monitor-{model_name}-{stamp}"
    json_path = base.with_suffix(".json")
    html_path = base.with_suffix(".html")
    json_path.write_text(json.dumps(_clean(report), indent=2, default=str))
    html_path.write_text(render_html(report))
    return {"report_json": str(json_path), "report_html": str(html_path)}


def _drift(model: Model, prod: dict[str, Any], ref: pd.DataFrame, log: pd.DataFrame,
           methods: Mapping[str, str] | None, thresholds: Mapping[str, float] | None
           ) -> dict[str, Any]:
    # calendar and holiday values are fixed by the date: their "drift" is the season;
    # declared seasonal features (weather) do not vote either
    deterministic = anomalies.not_voting(model)
    features = [f for f in prod["manifest"]["features"] if f not in deterministic]
    methods, thresholds = dict(methods or {}), dict(thresholds or {})
    unknown = sorted((set(methods) | set(thresholds)) - set(prod["manifest"]["features"]))
    if unknown:
        raise TuesdayError(
            f"Drift options name {unknown}, which are not features of model "
            f"{model.name!r} version {prod['version']}.",
            fix=f"Use feature names of the model: {', '.join(prod['manifest']['features'])}.")
    if len(log) < MIN_ROWS_FOR_DRIFT:
        return {"drift": None, "prediction_drift": None}
    served = quality.feature_frame(log.reset_index(drop=True))
    cols = [c for c in features if c in served.columns and c in ref.columns
            and served[c].notna().sum() >= MIN_ROWS_FOR_DRIFT and ref[c].notna().any()]
    if not cols:
        return {"drift": None, "prediction_drift": None}
    drift = dataset_drift(ref[cols], served[cols].astype(float), columns=cols,
                          methods={k: v for k, v in methods.items() if k in cols},
                          thresholds={k: v for k, v in thresholds.items() if k in cols})
    out = drift.to_dict()
    keys = set(anomalies.watch_of(model).key)
    out["key"] = [{"feature": c["column"], "drifted": bool(c["drifted"]),
                   "method": c["method"], "statistic": c["statistic"]}
                  for c in out["columns"] if c["column"] in keys]
    out["overrides"] = {"methods": methods, "thresholds": thresholds,
                        "not_compared": sorted((set(methods) | set(thresholds)) - set(cols))}
    pred = dataset_drift(ref[[model.target]].rename(columns={model.target: "y"}),
                         log[["prediction"]].rename(columns={"prediction": "y"}),
                         columns=["y"])
    return {"drift": out, "prediction_drift": pred.to_dict()["columns"][0]}


#: fewest labelled reference rows (with both classes) to fit CBPE's calibration on
MIN_ROWS_FOR_CALIBRATION = 100


def _calibration(ws: Workspace, model: Model, prod: dict[str, Any]
                 ) -> quality.Calibration | None:
    """Isotonic calibration of the production version's scores, fitted on its backtest
    (out-of-sample) predictions, as NannyML fits CBPE's calibrator on reference data."""
    art = prod["manifest"].get("backtest_predictions")
    if not art:
        return None
    bt = pq.read_table(io.BytesIO(ws.get_artifact(art["sha256"])),
                       columns=[model.target, "model"]).to_pandas()
    y = bt[model.target].to_numpy(dtype=float)  # training encodes the positive as 1.0
    if len(bt) < MIN_ROWS_FOR_CALIBRATION or len(np.unique(y[np.isfinite(y)])) < 2:
        return None
    return quality.Calibration.fit(y, bt["model"].to_numpy(dtype=float))


def _status(report: dict[str, Any]) -> str:
    if not report["predictions_logged"]:
        return "no_traffic"
    q = report.get("quality")
    if q and q.get("beats_baseline") is False:
        return "degraded"
    if _recent_anomaly(report) is not None:
        return "anomaly"
    if report.get("drift") and report["drift"]["dataset_drifted"]:
        return "drift"
    return "ok"


#: a day of accuracy anomaly this recent (before as_of) sets the report's status
ANOMALY_DAYS = 7


def _recent_anomaly(report: dict[str, Any]) -> dict[str, Any] | None:
    """The newest anomalous target day within ``ANOMALY_DAYS`` before ``as_of``."""
    found = report.get("anomalies") or []
    if not found:
        return None
    newest = found[-1]
    age = (pd.Timestamp(report["as_of"]).normalize() - pd.Timestamp(newest["date"])).days
    return newest if age <= ANOMALY_DAYS else None


# ------------------------------------------------------------------------- alerts


def alerts_for(report: dict[str, Any], *, max_error_rate: float = MAX_ERROR_RATE
               ) -> list[dict[str, Any]]:
    """The alerts a monitor report calls for, as ``raise_alert`` keyword arguments.

    Dataset drift and prediction drift are warnings; quality worse than the best baseline
    (on at least ``MIN_DAYS_FOR_QUALITY`` distinct target days) is critical; a stale or
    unusually small or large delivery of a source is a warning; a service error rate above
    ``max_error_rate`` is critical; a challenger significantly worse than its reference
    (shadow, canary, B) is a warning.

    Example:
        >>> alerts_for({"model": "m", "drift": None, "quality": None})
        []
    """
    name = report["model"]
    return [_alert(name, *a) for a in (
        *_drift_alerts(report), *_quality_alerts(report), *_anomaly_alerts(report),
        *_variant_alerts(report),
        *_data_alerts(report), *_service_alerts(report, max_error_rate))]


#: an alert a report calls for: kind, severity, title, subject, details
_Found = tuple[str, str, str, str, dict[str, Any]]


def _alert(name: str, kind: str, severity: str, title: str, subject: str,
           details: dict[str, Any]) -> dict[str, Any]:
    return {"model": name, "kind": kind, "severity": severity, "title": title,
            "subject": subject, "details": details,
            "dedup_key": f"{name}/monitor/{kind}/{subject}"}


def _drift_alerts(report: dict[str, Any]) -> list[_Found]:
    out: list[_Found] = []
    d = report.get("drift")
    if d and d["dataset_drifted"]:
        cols = [c["column"] for c in d["columns"] if c["drifted"]]
        out.append(("drift", "warning", f"{len(cols)} of {len(d['columns'])} features drifted "
                    f"({', '.join(cols)})", "features",
                    {"share_drifted": d["share_drifted"], "drifted": cols}))
    for k in (d or {}).get("key", []):
        if k["drifted"]:
            out.append(("drift", "warning", f"key feature {k['feature']!r} drifted "
                        f"({k['method']} {k['statistic']:.4g})", f"key/{k['feature']}", k))
    pdrift = report.get("prediction_drift")
    if pdrift and pdrift.get("drifted"):
        out.append(("drift", "warning", f"the predictions drifted ({pdrift['method']} "
                    f"{pdrift['statistic']:.4g}, threshold {pdrift['threshold']:.4g})",
                    "prediction", {k: pdrift[k] for k in ("method", "statistic", "threshold")}))
    return out


def _anomaly_alerts(report: dict[str, Any]) -> list[_Found]:
    a = _recent_anomaly(report)
    if a is None:
        return []
    return [("anomaly", "critical", f"the served forecasts for {a['date']} are far off on "
             f"{a['rows']} rows of ground truth: {a['why']}", a["date"], a)]


def _quality_alerts(report: dict[str, Any]) -> list[_Found]:
    q = report.get("quality") or {}
    days = q.get("days_with_ground_truth", q.get("rows_with_ground_truth", 0))
    if q.get("beats_baseline") is not False or days < MIN_DAYS_FOR_QUALITY:
        return []
    m, best = report.get("primary_metric") or next(iter(q["model"])), q["best_baseline"]
    return [("quality", "critical", f"{m} {q['model'][m]:.4g} is worse than baseline "
             f"{best!r} ({q['baselines'][best][m]:.4g}) on {q['rows_with_ground_truth']} "
             f"rows ({days} target days) with ground truth", "baseline",
             {"metric": m, "model": q["model"][m], "baseline": best,
              "baseline_value": q["baselines"][best][m],
              "rows": q["rows_with_ground_truth"], "days": days})]


def _variant_alerts(report: dict[str, Any]) -> list[_Found]:
    out: list[_Found] = []
    for c in (report.get("variants") or {}).get("comparisons", []):
        if c["significant"] and c["better"] == "reference":
            ch = c["challenger"]
            out.append(("variant", "warning", f"{c['kind']} v{ch['version']} ({ch['variant']}) "
                        f"is significantly worse than v{c['reference']['version']}: "
                        f"{c['note']}", f"{c['kind']}/{ch['version']}", {k: c[k] for k in (
                            "metric", "reference_value", "challenger_value", "difference",
                            "ci95")}))
    return out


def _data_alerts(report: dict[str, Any]) -> list[_Found]:
    out: list[_Found] = []
    for h in report.get("data_health") or []:
        v, f = h.get("volume") or {}, h.get("freshness") or {}
        if v.get("ok") is False:
            out.append(("data", "warning", f"source {h['source']!r}: the latest ingest "
                        f"received {v['received']} rows, {v['ratio']:.2f}x the recent median",
                        f"{h['source']}/volume", v))
        if f.get("ok") is False:
            out.append(("data", "warning", f"source {h['source']!r} is stale: newest "
                        f"{f['column'] or 'ingest'} {f['newest']} is {f['age_hours']:.1f} h "
                        f"old (allowed {f['within']})", f"{h['source']}/freshness", f))
        if not h.get("ingests"):
            out.append(("data", "warning", f"source {h['source']!r} has no ingest",
                        f"{h['source']}/missing", {}))
    return out


def _service_alerts(report: dict[str, Any], max_error_rate: float) -> list[_Found]:
    s = report.get("service_health")
    if not (s and s.get("error_rate") is not None and s["error_rate"] > max_error_rate):
        return []
    return [("service", "critical", f"{s['error_rate']:.1%} of {s['requests']} requests "
             f"failed (5xx; allowed {max_error_rate:.1%})", "errors",
             {k: s[k] for k in ("requests", "errors", "error_rate")})]


def raise_alerts(ws: Workspace, loaded: LoadedProject, report: dict[str, Any],
                 as_of: datetime, *, routes: Iterable[alerts.Route] | None = None,
                 max_error_rate: float = MAX_ERROR_RATE) -> list[alerts.Alert]:
    """Raise (and de-duplicate) the alerts of :func:`alerts_for` on ``routes``: by default
    a ``Log()`` route plus the routes of the model's ``Policy`` when it declares one."""
    if routes is None:
        model = loaded.project.model(report["model"])
        routes = (alerts.Log(), *(model.policy.routes if model.policy is not None else ()))
    routes = tuple(routes)
    return [alerts.raise_alert(ws, as_of=as_of, routes=routes, **a)
            for a in alerts_for(report, max_error_rate=max_error_rate)]


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and not isinstance(value, str | bytes):
        try:
            return _clean(item())
        except (TypeError, ValueError):
            return value
    return value


# --------------------------------------------------------------------------- HTML

_CSS = ("body{font-family:sans-serif;max-width:72em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:.25em .6em;text-align:right}th{background:#f3f3f3}th.l,td.l{text-align:left}"
        ".bad{color:#b00;font-weight:bold}.ok{color:#070}.warn{color:#a66300;"
        "font-weight:bold}.est{background:#fff6d6;"
        "border:1px dashed #c90;padding:.1em .4em}.note{color:#555;font-size:.9em}")


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no network) for a monitor report; the loop's
    recent-window report renders through it too (sections it lacks are left out)."""
    e = html.escape
    word, css, sentence = words.headline(report)
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>Monitor {e(report['model'])}</title>", f"<style>{_CSS}</style>",
        f"<h1>Model {e(report['model'])} &mdash; <span class={css}>{e(word)}</span></h1>",
        f"<p>{e(sentence)}</p>" if sentence else "",
        f"<p>As of {words.when(report['as_of'])}; production version "
        f"{report['production_version']}; {report['predictions_logged']} predictions logged."
        "</p>",
        words.accuracy_chart(report),
    ]
    if report.get("problems"):
        parts.append("<h2>Problems</h2><ul>" + "".join(
            f"<li class=bad>{e(p)}</li>" for p in report["problems"]) + "</ul>")
    parts += _quality_html(report)
    parts += _anomalies_html(report)
    parts += _windows_html(report.get("windows"), "Quality over time",
                           "window", lambda r: f"{r['start']} to {r['end']}")
    parts += _windows_html(report.get("slices"), "Quality per slice", "slice",
                           words.slice_label)
    parts += _variants_html(report.get("variants"))
    parts += _estimate_html(report.get("performance_estimate"))
    parts += _drift_html(report)
    parts += _data_html(report.get("data_health"))
    parts += _service_html(report.get("service_health"))
    if report.get("alerts"):
        parts.append("<h2>Alerts raised</h2>" + _table(
            ["id", "severity", "kind", "title", "status", "count"],
            [[str(a["id"]), e(a["severity"]), e(a["kind"]), e(a["title"]), e(a["status"]),
              str(a["count"])] for a in report["alerts"]], left=(3,)))
    return "\n".join(parts)


def _table(head: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    """An HTML table; cells are HTML already (escaped by the caller)."""
    def cell(tag: str, i: int, v: str) -> str:
        return f"<{tag}{' class=l' if i in left else ''}>{v}</{tag}>"
    out = ["<table><tr>" + "".join(cell("th", i, h) for i, h in enumerate(head)) + "</tr>"]
    out += ["<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows]
    return "".join(out) + "</table>"


def _quality_html(report: dict[str, Any]) -> list[str]:
    e = html.escape
    q = report.get("quality")
    if not (q and q.get("rows_with_ground_truth")):
        return ["<h2>Accuracy</h2><p>No ground truth has arrived yet for the served "
                "predictions.</p>"]
    metrics = list(q["model"])
    rows = [[e(n)] + [_num(v.get(m)) for m in metrics]
            for n, v in [("model", q["model"]), *q["baselines"].items()]]
    return [f"<h2>Accuracy on ground truth ({q['rows_with_ground_truth']} of "
            f"{q.get('rows_served', '?')} served rows)</h2>",
            _table(["predictor", *map(e, metrics)], rows)]


def _anomalies_html(report: dict[str, Any]) -> list[str]:
    """The target days whose accuracy broke the limits of the model's own backtest."""
    e = html.escape
    found, lim = report.get("anomalies"), report.get("day_limits")
    if not found or not lim:
        return []
    return [f"<h2>Days far off the model's own backtest</h2><p class=note>A day is "
            f"flagged when its {e(lim['metric'])} is above {_num(lim['error'])} (the "
            f"backtest's {_num(lim['backtest'])} times the allowed ratio, or its worst "
            f"days) or its forecast total is beyond {_num(lim['total_low'])}x to "
            f"{_num(lim['total_high'])}x the actual total, whatever the baselines did.</p>",
            _table(["day", "rows", e(lim["metric"]), "forecast total", "actual total",
                    "why"],
                   [[e(d["date"]), str(d["rows"]), _num(d["value"]),
                     _num(d["forecast_total"]), _num(d["actual_total"]), e(d["why"])]
                    for d in found], left=(0, 5))]


def _windows_html(rows: list[dict[str, Any]] | None, title: str, what: str,
                  label: Any) -> list[str]:
    e = html.escape
    if not rows:
        return []
    metrics = list(rows[0]["model"])
    bls = sorted({b for r in rows for b in r["baselines"]})
    primary = metrics[0]
    head = [what, "rows", *(f"model {e(m)}" for m in metrics),
            *(f"{e(b)} {e(primary)}" for b in bls), "beats best baseline"]
    body = []
    for r in rows:
        beats = r.get("beats_baseline")
        body.append([e(str(label(r))), str(r["rows"]),
                     *(_num(r["model"].get(m)) for m in metrics),
                     *(_num(r["baselines"].get(b, {}).get(primary)) for b in bls),
                     "&ndash;" if beats is None else
                     ("<span class=ok>yes</span>" if beats else "<span class=bad>no</span>")])
    return [f"<h2>{e(title)}</h2><p class=note>Model and baselines on the same rows "
            f"(the baselines logged with each prediction); the best baseline by "
            f"{e(primary)}.</p>", _table(head, body)]


def _variants_html(v: dict[str, Any] | None) -> list[str]:
    e = html.escape
    if not v or not v.get("variants"):
        return []
    metrics = list(v["variants"][0]["model"])
    out = ["<h2>Deployment variants</h2>", _table(
        ["version", "variant", "rows served", "rows with ground truth", *map(e, metrics)],
        [[f"v{r['version']}", e(r["variant"]), str(r["rows_served"]),
          str(r["rows_with_ground_truth"]), *(_num(r["model"][m]) for m in metrics)]
         for r in v["variants"]], left=(0, 1))]
    if v.get("comparisons"):
        out.append("<h3>Comparisons (challenger minus reference)</h3>" + _table(
            ["comparison", "metric", "reference", "challenger", "difference", "95% interval",
             "significant", "note"],
            [[f"{e(c['kind'])}: v{c['challenger']['version']} {e(c['challenger']['variant'])}"
              f" vs v{c['reference']['version']} {e(c['reference']['variant'])}",
              e(c["metric"]), _num(c["reference_value"]), _num(c["challenger_value"]),
              _num(c["difference"]), f"[{_num(c['ci95'][0])}, {_num(c['ci95'][1])}]",
              (f"<span class=bad>yes, {e(c['better'])} better</span>"
               if c["significant"] else "no"), e(c["note"])]
             for c in v["comparisons"]], left=(0, 1, 7)))
    return out


def _estimate_html(est: dict[str, Any] | None) -> list[str]:
    e = html.escape
    if not est:
        return []
    ms = est["metrics"]
    lab = est["labelled"]
    rows = [[e(m) + " <span class=est>estimate</span>", _num(est["pending"]["estimate"][m]),
             _num(lab["estimate"][m]), _num((lab["realised"] or {}).get(m))] for m in ms]
    out = ["<h2>Estimated performance <span class=est>estimate</span></h2>",
           f"<p class=note>{e(est['method'])}: expected metrics at threshold "
           f"{est['threshold']} assuming {e(est['assumption'])}. These are estimates, not "
           "measurements; the last column is measured on the rows whose labels arrived "
           "and checks the assumption.</p>",
           _table(["metric", f"estimate, {est['pending']['rows']} rows awaiting labels",
                   f"estimate, {lab['rows']} labelled rows",
                   f"realised, {lab['rows']} labelled rows"], rows)]
    if est.get("windows"):
        out.append(_table(
            ["window", "rows", "estimated accuracy", "estimated roc_auc", "with labels",
             "realised accuracy", "realised roc_auc"],
            [[f"{w['start']} to {w['end']}", str(w["rows"]),
              _num(w["estimate"]["accuracy"]), _num(w["estimate"]["roc_auc"]),
              str(w["rows_with_ground_truth"]),
              _num((w["realised"] or {}).get("accuracy")),
              _num((w["realised"] or {}).get("roc_auc"))] for w in est["windows"]]))
    return out


def _drift_html(report: dict[str, Any]) -> list[str]:
    e = html.escape
    d = report.get("drift")
    if not d:
        return [f"<h2>Feature drift</h2><p>Fewer than {MIN_ROWS_FOR_DRIFT} served rows; "
                "drift is not computed.</p>"]
    out = [f"<h2>Feature drift: {d['share_drifted']:.0%} of features drifted "
           f"({'dataset drift' if d['dataset_drifted'] else 'no dataset drift'})</h2>",
           _table(["feature", "test", "shown", "value", "drifted when", "drifted",
                   "reference rows", "current rows"],
                  [[e(c["column"]), e(c["method"]), words.drift_shown(c["method"]),
                    _num(c["statistic"]), words.drift_rule(c["method"], c["threshold"]),
                    "<span class=bad>yes</span>" if c["drifted"] else "no",
                    str(c["reference_rows"]), str(c["current_rows"])]
                   for c in d["columns"]])]
    p = report.get("prediction_drift")
    if p:
        out.append(f"<p>Prediction drift ({e(p['method'])}): "
                   f"{words.drift_shown(p['method'])} {_num(p['statistic'])}, drifted when "
                   f"{words.drift_rule(p['method'], p['threshold'])}, "
                   f"{'<span class=bad>drifted</span>' if p['drifted'] else 'no drift'}.</p>")
    return out


def _data_html(rows: list[dict[str, Any]] | None) -> list[str]:
    e = html.escape
    if not rows:
        return []
    body = []
    for h in rows:
        v, f, m = h.get("volume") or {}, h.get("freshness") or {}, h.get("missing") or {}
        worst = sorted((m.get("rates") or {}).items(), key=lambda kv: -kv[1])[:3]
        body.append([
            e(h["source"]), str(h["ingests"]),
            words.when((h.get("latest") or {}).get("as_of", "")), _num(v.get("received")),
            _num(v.get("median_recent")), _flag(_num(v.get("ratio")), v.get("ok")),
            words.when(f.get("newest")), _flag(words.age(f.get("age_hours")), f.get("ok")),
            e(str(f.get("within") or "not declared")),
            ", ".join(f"{e(c)} {r:.1%}" for c, r in worst if r > 0) or "none"])
    return ["<h2>Data health</h2>", _table(
        ["source", "ingests", "latest ingest", "rows received", "recent median", "ratio",
         "newest row", "age", "freshness allowed", "missing in latest ingest"],
        body, left=(0, 2, 6, 8, 9))]


def _service_html(s: dict[str, Any] | None) -> list[str]:
    e = html.escape
    if not s:
        return []
    key = next(k for k in s if k.startswith("p") and k.endswith("_seconds"))
    rows = [[e(r["endpoint"]), str(r["requests"]), str(r["errors"]),
             _pct(r["error_rate"]), str(r["client_errors"]), _num(r.get(key))]
            for r in s["endpoints"]]
    rows.append(["<b>all</b>", str(s["requests"]), str(s["errors"]), _pct(s["error_rate"]),
                 str(s["client_errors"]), _num(s.get(key))])
    return ["<h2>Service health</h2><p class=note>From the server's /metrics: counts "
            "since it started; errors are 5xx answers; the latency quantile is estimated "
            "from the histogram buckets.</p>",
            _table(["endpoint", "requests", "errors (5xx)", "error rate", "client errors (4xx)",
                    f"{key.split('_')[0]} latency (s)"], rows)]


def _flag(text: str, ok: bool | None) -> str:
    return text if ok is None else f"<span class={'ok' if ok else 'bad'}>{text}</span>"


def _pct(v: float | None) -> str:
    return "&ndash;" if v is None else f"{v:.2%}"


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def latest_report(ws: Workspace, model: str) -> Path | None:
    found = sorted(ws.reports.glob(f"monitor-{model}-*.json"))
    return found[-1] if found else None
