"""The ``latency`` gate's measurement of the served path: a candidate version answers
real requests through a predictor (online features, business rules, the prediction log's
spool), timed one request at a time.

The release stage sits below the server, so ``tuesday.release.registry`` takes this as
a function (``served_latency(ws, loaded)``) from the command or endpoint that promotes.
The predictions it makes go to a spool in a temporary folder, never to the workspace's
prediction log.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tuesday.data import online
from tuesday.project import LoadedProject, Model
from tuesday.serve.inference import Loaded, SingleRow
from tuesday.serve.prediction_log import PredictionLog
from tuesday.serve.predictor import Predictor, Route
from tuesday.train.training import load_model
from tuesday.workspace import Workspace

__all__ = ["WARM_UP", "served_latency"]

#: requests answered before timing starts
WARM_UP = 50

#: what ``registry.check_gates`` calls: seconds per request and what was timed, or None
#: when the served path cannot be timed (nothing materialized)
Timer = Callable[[Model, dict[str, Any], int], tuple[np.ndarray, str] | None]


def served_latency(ws: Workspace, loaded: LoadedProject) -> Timer:
    """A timer of the served path of a version (``row`` from ``registry.get_version``)."""

    def timer(model: Model, row: dict[str, Any], n: int) -> tuple[np.ndarray, str] | None:
        requests = _requests(ws, loaded, model)
        if not requests:
            return None
        with tempfile.TemporaryDirectory(prefix="tuesday-latency-") as tmp:
            log = PredictionLog(Workspace(Path(tmp)))
            pred = Predictor(ws, loaded, log_rows=log)
            try:
                _pin(pred, model, row)
                for i in range(WARM_UP):
                    pred.predict(model.name, [requests[i % len(requests)]])
                took = np.empty(n)
                for i in range(n):
                    t0 = time.perf_counter()
                    pred.predict(model.name, [requests[i % len(requests)]])
                    took[i] = time.perf_counter() - t0
                    if len(log) > 5_000:
                        log.rows.clear()  # held in the spool only; nothing is committed
            finally:
                log.rows.clear()
                log.close()
                pred.close()
        return took, (f"the served path (online features, {len(model.rules)} rule(s), "
                      f"the prediction log's spool) over {len(requests)} real request(s)")

    return timer


def _pin(pred: Predictor, model: Model, row: dict[str, Any]) -> None:
    """Route the model's requests to ``row``'s version, whatever the registry says."""
    manifest = row["manifest"]
    fitted = load_model(pred.ws, manifest)
    lm = Loaded(int(row["version"]), fitted, tuple(manifest["features"]),
                SingleRow.of(fitted))
    pred.versions[(model.name, lm.version)] = lm
    pred.routes[model.name] = Route(model, lm, "single", None, 0.0, float("inf"))


def _requests(ws: Workspace, loaded: LoadedProject, model: Model,
              limit: int = 200) -> list[dict[str, Any]]:
    """Requests the online store can answer: entities with their materialized targets."""
    conn = online.connect(ws)
    try:
        records = online.records(conn, model.name, limit=limit)
    finally:
        conn.close()
    tcol = loaded.project.source(model.label_source).time
    key = model.entity.key
    out: list[dict[str, Any]] = []
    for rec in records:
        for target in sorted(rec.vectors)[:5]:
            req: dict[str, Any] = {key: rec.entity}
            if target and tcol:
                req[tcol] = target
            out.append(req)
    return out
