"""What the dashboard shows, as JSON-able payloads: the same dicts the JSON endpoints
answer and the pages render, so a page never shows a figure the API does not give.

``Board`` holds the server's state and a short cache of the monitor (the prediction log
and the labels are read whole; a page opened twice in a row reads them once).
"""

from __future__ import annotations

import io
import threading
import time
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from tuesday import encoding
from tuesday.data.predictions import read_log, read_recent
from tuesday.errors import NotFound
from tuesday.project import Model, parse_time
from tuesday.release import registry
from tuesday.report.evaluation import evaluation_report
from tuesday.serve.endpoints.admin import versions_payload
from tuesday.serve.explaining import explain_logged
from tuesday.serve.predictor import Predictor, wall_clock
from tuesday.serve.state import State
from tuesday.watch import alerts, quality
from tuesday.watch.drift_windows import drift_over_time
from tuesday.watch.monitoring import monitor

__all__ = ["MONITOR_TTL", "RECENT_WINDOWS", "Board", "health_light"]

#: seconds a model's monitor payload is kept before it is computed again
MONITOR_TTL = 30.0
#: time windows of served accuracy the overview shows
RECENT_WINDOWS = 8


class Board:
    """The dashboard's payloads for one server app."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._monitors: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._explain_lock = threading.Lock()
        self._predictor: Predictor | None = None

    @property
    def ws(self) -> Any:
        return self.state.ws

    def model(self, name: str) -> Model:
        return self.state.loaded.project.model(name)

    # ------------------------------------------------------------------- per model

    def versions(self, name: str) -> dict[str, Any]:
        """``GET /v1/models/NAME/versions`` (``versions_payload``)."""
        return encoding.plain(versions_payload(self.state, self.model(name).name))

    def report(self, name: str, version: int | None = None) -> dict[str, Any]:
        """``GET /v1/models/NAME/report``: the evaluation report of ``version`` (default:
        production, else the newest version)."""
        model = self.model(name)
        if version is None:
            prod = registry.production(self.ws, model.name)
            found = registry.version_summaries(self.ws, model.name)
            if prod is None and not found:
                raise NotFound(f"Model {model.name!r} has no version yet.",
                               fix=f"Train one with `tuesday train {model.name}`.")
            version = int(prod["version"]) if prod else int(found[0]["version"])
        return encoding.plain(evaluation_report(self.ws, self.state.loaded, model.name,
                                                version))

    def monitor(self, name: str, as_of: str | None = None) -> dict[str, Any]:
        """``GET /v1/models/NAME/monitor``: the monitor report up to ``as_of`` (default:
        now) without writing files or raising alerts, plus drift per feature over time,
        the model's open alerts and its health light."""
        model = self.model(name)
        at = wall_clock() if as_of is None else parse_time(
            as_of, what="'as_of'").to_pydatetime()
        key = (model.name, "now" if as_of is None else f"at {as_of}")
        now = time.monotonic()
        with self._lock:
            got = self._monitors.get(key)
        if got is None or now - got[0] > MONITOR_TTL:
            got = (now, self._compute_monitor(model, at))
            with self._lock:
                self._monitors[key] = got
        out = dict(got[1])
        open_alerts = [a.to_dict() for a in alerts.list_alerts(self.ws, model=model.name)
                       if a.status != "resolved"]
        out["open_alerts"] = encoding.plain(open_alerts)
        out["health"] = health_light(out, open_alerts)
        return out

    def _compute_monitor(self, model: Model, at: datetime) -> dict[str, Any]:
        prod = registry.production(self.ws, model.name)
        if prod is None:
            return {"model": model.name, "production_version": None, "status": "no_production",
                    "windows": [], "drift_over_time": None, "as_of": at.isoformat()}
        report = monitor(self.ws, self.state.loaded, model.name, at, write=False)
        log = read_log(self.ws, model.name)
        if len(log):
            log = log[(log["variant"] != "shadow")
                      & (quality.origin(model, log) <= pd.Timestamp(at))]
        ref = pq.read_table(io.BytesIO(self.ws.get_artifact(
            prod["manifest"]["reference"]["sha256"]))).to_pandas()
        report["drift_over_time"] = drift_over_time(model, prod, ref, log,
                                                    report.get("period", "W"))
        return encoding.plain(report)

    def explain_request(self, request_id: str, entity: str | None = None) -> dict[str, Any]:
        """``GET /v1/requests/ID/explain``: a logged answer explained again."""
        return encoding.plain(explain_logged(self.ws, self.state.loaded, request_id,
                                             entity=entity))

    def explain(self, name: str, *, entity: str, at: str | None = None) -> dict[str, Any]:
        """``GET /v1/models/NAME/explain``: the production version's answer for
        ``entity`` at ``at`` (computed, not logged)."""
        model = self.model(name)
        tcol = self.state.loaded.project.source(model.label_source).time
        row: dict[str, Any] = {model.entity.key: entity}
        if at is not None and tcol:
            row[tcol] = at
        with self._explain_lock:  # one online-store connection, one caller at a time
            if self._predictor is None:
                self._predictor = Predictor(self.ws, self.state.loaded, log_predictions=False)
            body = self._predictor.predict(model.name, [row], explain=True)
        answer = body["predictions"][0]
        return encoding.plain({
            "model": model.name, "model_version": answer.get("model_version",
                                                             body["model_version"]),
            "entity": str(entity), "key": model.entity.key,
            "target_time": answer.get(tcol) if tcol else None,
            "prediction": answer["prediction"], "explanation": answer["explanation"]})

    def recent_requests(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest logged answers of a model (for the explain page to pick from)."""
        log = read_recent(self.ws, name, limit)
        return encoding.plain([{"request_id": r.request_id, "entity": r.entity,
                                "target_time": r.target_time, "served_at": r.served_at,
                                "prediction": r.prediction} for r in log.itertuples()])

    # ------------------------------------------------------------------------ all

    def alerts(self, model: str | None = None, status: str | None = None) -> dict[str, Any]:
        """``GET /v1/alerts``: alerts, newest first, optionally of one model and status."""
        if model is not None:
            model = self.model(model).name
        found = alerts.list_alerts(self.ws, status=status, model=model)
        return encoding.plain({"alerts": [a.to_dict() for a in reversed(found)]})

    def acknowledge(self, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
        """``POST /v1/alerts/ID/acknowledge``."""
        done = alerts.acknowledge(self.ws, alert_id, actor=actor, note=note,
                                  as_of=wall_clock())
        return encoding.plain(done.to_dict())

    def overview(self) -> dict[str, Any]:
        """One row per model: production version and stage, newest version and when it
        was trained, the health light, and served accuracy against the best baseline
        over the last ``RECENT_WINDOWS`` windows (all from the endpoints above)."""
        rows = []
        for m in self.state.loaded.project.models:
            v = self.versions(m.name)
            mon = self.monitor(m.name)
            newest = v["versions"][0] if v["versions"] else None
            windows = mon.get("windows", [])
            recent = windows[-RECENT_WINDOWS:]
            metric = mon.get("primary_metric") or m.primary_metric
            rows.append({
                "model": m.name, "target": m.target, "entity": m.entity.key,
                "production_version": v["production_version"],
                "newest_version": newest["version"] if newest else None,
                "newest_stage": newest["stage"] if newest else None,
                "last_trained": newest["created_at"] if newest else None,
                "deployment": v["deployment"]["mode"], "health": mon["health"],
                "metric": metric, "recent_first": len(windows) - len(recent),
                "recent": [{"start": w["start"], "rows": w["rows"],
                            "model": (w.get("model") or {}).get(metric),
                            "best_baseline": w.get("best_baseline"),
                            "baseline": ((w.get("baselines") or {}).get(
                                w.get("best_baseline") or "") or {}).get(metric)}
                           for w in recent],
                "open_alerts": len(mon["open_alerts"])})
        return {"models": rows}


def health_light(report: dict[str, Any], open_alerts: list[dict[str, Any]]) -> dict[str, str]:
    """The model's health light: ``color`` (green, amber, red or grey) and ``text``.

    Red: served accuracy is worse than the best baseline, or a critical alert is open.
    Amber: features drifted, or a warning is open. Grey: no production version, or no
    traffic yet. Green otherwise.
    """
    status = report.get("status")
    critical = [a for a in open_alerts if a.get("severity") == "critical"]
    warnings = [a for a in open_alerts if a.get("severity") != "critical"]
    if status == "no_production":
        return {"color": "grey", "text": "no production version"}
    if status == "degraded":
        return {"color": "red", "text": "served accuracy is worse than a simple baseline"}
    if critical:
        return {"color": "red", "text": f"critical alert: {critical[-1]['title']}"}
    if status == "no_traffic":
        return {"color": "grey", "text": "no predictions served yet"}
    if status == "drift":
        return {"color": "amber", "text": "input data drifted from the training data"}
    if warnings:
        return {"color": "amber", "text": f"{len(warnings)} open warning(s): "
                                          f"{warnings[-1]['title']}"}
    q = report.get("quality") or {}
    if q.get("beats_baseline"):
        return {"color": "green", "text": "beats its best baseline on served predictions"}
    return {"color": "green", "text": "no problem found (no ground truth yet to judge "
                                      "accuracy)"}
