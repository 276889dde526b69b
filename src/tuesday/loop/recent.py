"""Monitoring over the policy's recent windows, as the daily loop sees a model.

Not everything ever served: drift of the features served in the last ``drift_window``
against those served in the ``drift_reference`` before, and accuracy on the predictions
whose target lies in the last ``quality_window``, joined to the ground truth known at
``as_of``. A shock therefore shows within days instead of being diluted by a year of
normal traffic. :func:`recent_monitor` returns the full report; :func:`monitor_summary`
the short form a tick records.

Example:
    >>> report = recent_monitor(ws, loaded, "ridership_14d",
    ...                         datetime(2016, 7, 1))  # doctest: +SKIP
    >>> report["status"]  # doctest: +SKIP
    'ok'
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pandas as pd

from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject, Model, duration
from tuesday.project.policy import Policy
from tuesday.release import registry
from tuesday.train import evaluation
from tuesday.watch import anomalies, monitoring, quality
from tuesday.watch.drift import dataset_drift
from tuesday.workspace import Workspace


def policy_for(model: Model) -> Policy:
    """The policy the loop runs a model with: its declared one, or the default."""
    return model.policy if model.policy is not None else Policy()


def recent_monitor(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime,
                   policy: Policy | None = None, *, write: bool = False) -> dict[str, Any]:
    """Drift and accuracy of a model over the policy's recent windows, up to ``as_of``.

    Drift is a change detector: the features served in ``(as_of - drift_window, as_of]``
    against those served in the ``drift_reference`` before (Evidently's methods and
    thresholds, as ``monitor``). Comparing two recent windows rather than a window with
    a whole training year keeps the seasons (a January fortnight against a year of
    temperatures) from reading as drift; ``tuesday monitor`` compares with the training
    reference.

    Quality: predictions whose target lies in ``(as_of - quality_window, as_of]``,
    joined to the ground truth known at ``as_of``, against the baselines logged with
    them: ``quality`` over every version served (what users got), ``production_quality``
    over the production version's own predictions (what a retrain decision judges).
    Either is degraded when it loses to its best baseline, or when its primary metric is
    worse than the production version's backtest by more than ``max_degradation``.

    With ``write`` the report is also written as JSON and HTML under ``reports/``.
    """
    model = loaded.project.model(model_name)
    pol = policy or policy_for(model)
    prod = registry.production(ws, model_name)
    t = pd.Timestamp(as_of)
    report: dict[str, Any] = {"model": model_name, "as_of": t.isoformat(),
                              "time_basis": quality.TIME_BASIS,
                              "production_version": prod["version"] if prod else None,
                              "predictions_logged": 0, "drift": None, "quality": None,
                              "production_quality": None, "expected": None}
    if prod is None:
        report["status"] = "no_production"
        return report
    metric = model.primary_metric
    report["expected"] = {"metric": metric, "backtest": prod["metrics"]["model"][metric]}
    logged = read_log(ws, model_name)
    at = quality.origin(model, logged)  # the forecast origin, not the wall clock
    if len(logged):
        keep = (at <= t) & (logged["variant"] != "shadow")
        logged, at = logged[keep], at[keep]
    dwin = duration(pol.drift_window, what="drift_window")
    rwin = duration(pol.drift_reference, what="drift_reference")
    recent = logged[at > t - dwin]
    before = logged[(at > t - dwin - rwin) & (at <= t - dwin)]
    report["predictions_logged"] = len(recent)
    report["drift"] = _drift(model, prod, recent, before)
    when = logged["target_time"].where(logged["target_time"].notna(), logged["served_at"])
    qwin = duration(pol.quality_window, what="quality_window")
    window = logged[(when > t - qwin) & (when <= t)]
    report["days"], report["anomaly"] = [], None
    if len(window):
        labels = quality.labels_as_of(ws, loaded, model_name, as_of)
        report["quality"], report["production_quality"] = _window_quality(
            ws, loaded, model_name, as_of, window, prod["version"], report["expected"], pol,
            labels)
        report["days"], report["anomaly"] = _day_checks(model, prod, window, labels)
    report["status"] = _status(report)
    if write:
        _write_monitor_report(ws, report, model_name, t)
    return report


def _window_quality(ws: Workspace, loaded: LoadedProject, model_name: str,
                    as_of: datetime, window: pd.DataFrame, version: int,
                    expected: dict[str, Any], pol: Policy, labels: quality.Labels
                    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Quality over the logged predictions of ``window`` (every version served) and
    over those of the production ``version``, each judged degraded or not."""
    metric = expected["metric"]
    # the same computation as ``monitor``, over the window
    served = _judge(monitoring.live_quality(ws, loaded, model_name, window, as_of,
                                            labels=labels), expected, pol, metric)
    ours = window[window["version"] == version]
    if not len(ours):
        return served, None
    return served, _judge(monitoring.live_quality(ws, loaded, model_name, ours, as_of,
                                                  labels=labels), expected, pol, metric)


def _day_checks(model: Model, prod: dict[str, Any], window: pd.DataFrame,
                labels: quality.Labels
                ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Each target day of the window with ground truth against the production
    version's own backtest (``anomalies.day_accuracy``), and the newest such day when it
    breaks a limit (None otherwise): what was served, whatever the baselines did."""
    joined = quality.attach(model, labels, window)[0]
    lim = anomalies.limits(model, prod["metrics"]["model"].get(model.primary_metric),
                           prod["metrics"].get("daily"))
    days = anomalies.day_accuracy(model, joined, lim)
    newest = days[-1] if days else None
    return days, newest if newest is not None and newest["anomaly"] else None


def _write_monitor_report(ws: Workspace, report: dict[str, Any], model_name: str,
                          t: pd.Timestamp) -> None:
    """Write the report as JSON and HTML under ``reports/``; add their paths to it."""
    stamp = t.strftime("%Y%m%dT%H%M%S")
    base = ws.reports / f"loop-{model_name}-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    base.with_suffix(".html").write_text(monitoring.render_html(report))
    report["report_json"] = str(base.with_suffix(".json"))
    report["report_html"] = str(base.with_suffix(".html"))


def _drift(model: Model, prod: dict[str, Any], recent: pd.DataFrame,
           before: pd.DataFrame) -> dict[str, Any] | None:
    """Drift of the recent served features against those served before: the dataset
    share over the features that vote (not calendar, holiday or declared seasonal
    ones, whose columns are reported apart as ``seasonal``), and each key feature on
    its own (``key``: its test and, per entity, its index)."""
    n = monitoring.MIN_ROWS_FOR_DRIFT
    if len(recent) < n or len(before) < 2 * n:
        return None
    fixed = {f.name for f in model.features if f.kind in ("calendar", "holiday")}
    seasonal = set(anomalies.watch_of(model).seasonal)
    cur = pd.DataFrame([json.loads(s) for s in recent["features"]])
    ref = pd.DataFrame([json.loads(s) for s in before["features"]])
    usable = [c for c in prod["manifest"]["features"] if c not in fixed
              and c in cur.columns and c in ref.columns
              and cur[c].notna().sum() >= n and ref[c].notna().sum() >= n]
    cols = [c for c in usable if c not in seasonal]
    if not cols:
        return None
    out = dataset_drift(ref[cols].astype(float), cur[cols].astype(float),
                        columns=cols).to_dict()
    aside = [c for c in usable if c in seasonal]
    out["seasonal"] = dataset_drift(ref[aside].astype(float), cur[aside].astype(float),
                                    columns=aside).to_dict()["columns"] if aside else []
    out["key"] = anomalies.key_drift(
        model, ref.assign(entity=before["entity"].to_numpy()),
        cur.assign(entity=recent["entity"].to_numpy()), out["columns"])
    return out


def _judge(q: dict[str, Any] | None, expected: dict[str, Any], pol: Policy,
           metric: str) -> dict[str, Any] | None:
    """Add ``degraded`` (and why) to a quality dict from ``monitoring.live_quality``."""
    if q is None:
        return None
    q = dict(q)
    q["degraded"] = False
    if q.get("days_with_ground_truth", 0) < pol.min_days \
            or q.get("rows_with_ground_truth", 0) < pol.min_rows or not q.get("model"):
        return q
    live = q["model"][metric]
    why = []
    if q.get("beats_baseline") is False:
        best = q["best_baseline"]
        why.append(f"worse than baseline {best!r} ({metric} {live:.4g} vs "
                   f"{q['baselines'][best][metric]:.4g})")
    lost = -evaluation.lift(metric, live, expected["backtest"])
    if lost > pol.max_degradation:
        why.append(f"{metric} {live:.4g} is {lost:.0%} worse than the backtest's "
                   f"{expected['backtest']:.4g}")
    q["degraded"] = bool(why)
    q["why"] = "; ".join(why)
    return q


def _status(report: dict[str, Any]) -> str:
    if not report["predictions_logged"] and not report.get("quality"):
        return "no_traffic"
    if (report.get("quality") or {}).get("degraded"):
        return "degraded"
    if report.get("anomaly"):
        return "anomaly"
    if report.get("drift") and report["drift"]["dataset_drifted"]:
        return "drift"
    return "ok"


def monitor_summary(report: dict[str, Any], metric: str) -> dict[str, Any]:
    """The short form of a :func:`recent_monitor` report that a tick records: status,
    drift (share and columns), and quality and production quality against the best
    baseline."""
    d = report.get("drift")
    out: dict[str, Any] = {
        "status": report["status"], "predictions": report.get("predictions_logged", 0),
        "drifted": bool(d and d["dataset_drifted"]),
        "drift_share": d["share_drifted"] if d else None,
        "drifted_columns": [c["column"] for c in d["columns"] if c["drifted"]] if d else [],
        "key_drifted": [k["feature"] for k in (d or {}).get("key", []) if k["drifted"]],
        "key": (d or {}).get("key", []),
        "expected": report.get("expected"),
        "anomaly": report.get("anomaly"),
    }
    for name in ("quality", "production_quality"):
        q = report.get(name) or {}
        s: dict[str, Any] = {"rows": q.get("rows_with_ground_truth", 0),
                             "rows_served": q.get("rows_served", 0),
                             "days": q.get("days_with_ground_truth", 0),
                             "days_served": q.get("days_served", 0),
                             "degraded": bool(q.get("degraded")), "why": q.get("why")}
        if q.get("model"):
            best = q.get("best_baseline")
            s.update(metric=metric, model=q["model"], best_baseline=best,
                     baseline=q["baselines"].get(best) if best else None,
                     beats_baseline=q.get("beats_baseline"))
        out[name] = s
    for k in ("report_json", "report_html"):
        if k in report:
            out[k] = report[k]
    return out
