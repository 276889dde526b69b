"""The OpenAPI path items of the dashboard's JSON endpoints (added to the server's
``/openapi.json`` through its extension)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tuesday.data.features import horizon
from tuesday.project import LoadedProject, Model
from tuesday.serve.endpoints.docs import EXPLANATION, json_request, ok_response, operation

__all__ = ["paths"]

_OBJ = {"type": "object"}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


_ANSWER = {"type": "object", "properties": {"prediction": {"type": ["number", "null"]},
                                            "explanation": EXPLANATION}}


def _explain_op(loaded: LoadedProject, m: Model) -> dict[str, Any]:
    """One model's explain: the entity, and the target date when it has a horizon."""
    op = operation(f"Explain the production version of {m.name}'s answer for one "
                   f"{m.entity.key} (computed, not logged)", "read",
                   {"200": ok_response("the prediction and its explanation", _ANSWER)},
                   statuses=("404",))
    op["parameters"] = [{"name": "entity", "in": "query", "required": True,
                         "description": f"the {m.entity.key}",
                         "schema": {"type": "string", "pattern": "\\S"}}]
    tcol = loaded.project.source(m.label_source).time
    if horizon(m) > pd.Timedelta(0) and tcol:
        op["parameters"].append({"name": "at", "in": "query", "required": True,
                                 "description": f"the target {tcol}, up to {m.horizon} ahead",
                                 "schema": {"type": "string", "format": "date"}})
    elif tcol:
        op["parameters"].append({"name": "at", "in": "query", "required": False,
                                 "description": "the time to score at (default: now)",
                                 "schema": {"type": "string", "format": "date-time"}})
    return op


def paths(loaded: LoadedProject) -> dict[str, Any]:
    """Report, monitor, explain, alerts and acknowledge."""
    base = "/v1/models/{model}"
    out: dict[str, Any] = {}
    report = operation(
        "The evaluation report of a version (default: production, else the newest): "
        "backtest against the baselines per fold and per slice, entities, and the rows "
        "that lost most to the baseline, explained", "read",
        {"200": ok_response("the evaluation report", _OBJ)}, statuses=("404",),
        params=("model",))
    report["parameters"].append(_query("version", "the version (default: production)",
                                       {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}))
    out[f"{base}/report"] = {"get": report}
    mon = operation(
        "The monitor report up to as_of (default: now): drift (overall and per feature "
        "per week), served accuracy against the baselines over time and per slice, "
        "deployment variants with intervals, data health, open alerts and the health "
        "light", "read", {"200": ok_response("the monitor report", _OBJ)},
        statuses=("404",), params=("model",))
    mon["parameters"].append(_query("as_of", "ISO 8601 time (default: now)",
                                    {"type": "string", "format": "date-time",
                                     "pattern": "^(19|20)[0-9][0-9]-"}))
    out[f"{base}/monitor"] = {"get": mon}
    for m in loaded.project.models:
        out[f"/v1/models/{m.name}/explain"] = {"get": _explain_op(loaded, m)}
    logged = operation(
        "Explain a logged answer again, from the features and the version the prediction "
        "log recorded", "read",
        {"200": ok_response("the logged prediction and its explanation", _ANSWER)},
        statuses=("404",))
    logged["parameters"] = [{"name": "request_id", "in": "path", "required": True,
                             "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}}]
    out["/v1/requests/{request_id}/explain"] = {"get": logged}
    al = operation("Alerts, newest first", "read",
                   {"200": ok_response("the alerts", _OBJ)}, statuses=("404",))
    al["parameters"] = [
        _query("model", "only this model's",
               {"type": "string", "enum": [m.name for m in loaded.project.models]}),
        _query("status", "only alerts with this status",
               {"enum": ["open", "acknowledged", "resolved"]})]
    out["/v1/alerts"] = {"get": al}
    ack = operation("Acknowledge an alert: further occurrences notify nobody", "admin",
                    {"200": ok_response("the acknowledged alert", _OBJ)},
                    statuses=("404", "409"),
                    body=json_request({"type": "object", "properties": {
                        "note": {"type": ["string", "null"]}}}, required=False))
    ack["parameters"] = [{"name": "alert", "in": "path", "required": True,
                          "schema": {"type": "integer", "minimum": 1,
                                     "maximum": 2**63 - 1}}]
    out["/v1/alerts/{alert}/acknowledge"] = {"post": ack}
    return out
