"""The server's API description: the OpenAPI document (``/openapi.json``, one predict
schema per model, from the project's declarations) and a self-contained HTML page of the
endpoints (``/docs``: no CDN, works offline).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from tuesday.data import events
from tuesday.data.features import horizon
from tuesday.project import LoadedProject, Model
from tuesday.serve.endpoints.predict import BATCH_TYPES
from tuesday.serve.predictor import MAX_ROWS
from tuesday.serve.state import State

__all__ = ["EXPLAIN_PARAM", "EXPLANATION", "docs", "docs_page", "json_request", "ok_response",
           "openapi", "openapi_spec", "operation"]


async def openapi(state: State, _request: Request) -> Response:
    """GET /openapi.json."""
    return JSONResponse(openapi_spec(state.loaded, state.extensions))


async def docs(state: State, _request: Request) -> Response:
    """GET /docs."""
    return HTMLResponse(docs_page(openapi_spec(state.loaded, state.extensions)))


#: statuses every guarded route can answer, with their meaning
_ERRORS = {
    "400": "invalid request: not JSON, nested too deep, or a field of the wrong type",
    "401": "no API token, or an unknown one (only once the workspace has tokens)",
    "403": "the token's role is not allowed here",
    "413": "the body is larger than the server's limit (TUESDAY_MAX_BODY_MB)",
    "500": "a business rule failed, or a model file failed its integrity check "
           "(error 'rule_failed' or 'artifact_integrity')",
    "503": "overloaded or the prediction log is full (with Retry-After)",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _op(summary: str, role: str | None, ok: dict[str, Any], *, statuses: tuple[str, ...] = (),
        body: dict[str, Any] | None = None, params: tuple[str, ...] = ()) -> dict[str, Any]:
    """One operation: its role's security, its answers and every error it can give."""
    responses = dict(ok)
    for code in ("400", "401", "403", *statuses, "413", "500", "503"):
        if role is None and code in ("401", "403"):
            continue
        responses.setdefault(code, _error(_ERRORS.get(code) or _MORE[code]))
    op: dict[str, Any] = {"summary": summary + (f" (role {role!r})" if role else ""),
                          "security": [{"bearer": []}] if role else [],
                          "responses": responses}
    if role:
        op["x-role"] = role
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True,
                             "schema": _NAMES[p]} for p in params]
    if body is not None:
        op["requestBody"] = body
    return op


_MORE = {"404": "unknown model, source, version or entity, or no production version",
         "409": "a promotion gate failed, or the change conflicts with the current state",
         "422": "the rows failed their contract as a whole (e.g. a required column is "
                "missing)"}
_NAMES: dict[str, dict[str, Any]] = {}


def _json(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any] | None = None,
        media: str = "application/json") -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


_OBJ = {"type": "object"}
_VERSION = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}


def openapi_spec(loaded: LoadedProject, extensions: Sequence[Any] = ()) -> dict[str, Any]:
    """The OpenAPI document of the server: every route with the role it needs, its request
    and answer schemas and every status it can answer; one predict schema per model; the
    paths of the ``extensions`` (``tuesday.serve.server.Extension``) after the server's."""
    project = loaded.project
    _NAMES["model"] = {"type": "string", "enum": [m.name for m in project.models]}
    paths: dict[str, Any] = {}
    for m in project.models:
        if m.task == "ranking":
            paths.update(_rank_paths(m))
            continue
        paths[f"/v1/models/{m.name}/predict"] = _predict_path(loaded, m)
        batch_op = _op(
            f"Score a file of rows of {m.name} (NDJSON or CSV, any size); NDJSON answers, "
            "one line per row (with ?explain=1, each with its explanation)", "predict",
            {"200": _ok("one JSON answer per line, in order", {"type": "string"},
                        "application/x-ndjson")},
            statuses=("404",), body={"required": True, "content": {
                t: {"schema": {"type": "string", "minLength": 1}} for t in BATCH_TYPES}})
        batch_op["parameters"] = [EXPLAIN_PARAM]
        paths[f"/v1/models/{m.name}/batch"] = {"post": batch_op}
    paths.update(_admin_paths())
    paths.update(_ingest_paths(project))
    paths["/v1/models"] = {"get": _op("Every registered version of every model", "read",
                                      {"200": _ok("model versions", _OBJ)})}
    paths["/metrics"] = {"get": _op("Prometheus metrics", "read", {"200": _ok(
        "metrics in Prometheus' text format", {"type": "string"}, "text/plain")})}
    paths["/health"] = {"get": _public("liveness", {"200": _ok("the process answers", _OBJ)})}
    paths["/ready"] = {"get": _public("production models loaded", {
        "200": _ok("every model has its production version loaded", _OBJ),
        "503": _ok("not ready: the reason per model", _OBJ)})}
    paths["/openapi.json"] = {"get": _public("this document", {"200": _ok("OpenAPI", _OBJ)})}
    paths["/docs"] = {"get": _public("the endpoints as an HTML page", {
        "200": _ok("HTML", {"type": "string"}, "text/html")})}
    for ext in extensions:
        paths.update(ext.paths(loaded))
    for item in paths.values():  # a GET also takes the dashboard's cookie
        get = item.get("get")
        if get and get.get("security") == [{"bearer": []}]:
            get["security"] = [{"bearer": []}, {"cookie": []}]
    return {"openapi": "3.1.0",
            "info": {"title": f"tuesday: {project.name}", "version": "1"},
            "paths": paths,
            "components": {"securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `tuesday token create NAME --role ROLE` (predict, "
                               "read or admin; admin may call every route). Needed once the "
                               "workspace has a token."},
                "cookie": {
                    "type": "apiKey", "in": "cookie", "name": "tuesday_token",
                    "description": "The dashboard's cookie: a token entered once on /ui/login "
                                   "(HttpOnly, SameSite=Strict). Taken on GET requests "
                                   "instead of the Bearer header."}},
                "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                                      "properties": {"error": {"type": "string"},
                                                     "message": {"type": "string"},
                                                     "fix": {"type": "string"},
                                                     "details": {}}}}}}


def _admin_paths() -> dict[str, Any]:
    """Promote, rollback and the deployment (read and change)."""
    paths: dict[str, Any] = {}
    base = "/v1/models/{model}"
    paths[f"{base}/promote"] = {"post": _op(
        "Make a version production through its gates", "admin",
        {"200": _ok("the version is production", _OBJ)}, statuses=("404", "409"),
        params=("model",), body=_json({"type": "object", "required": ["version"],
                                       "properties": {"version": _VERSION, "override_reason":
                                                      {"type": ["string", "null"]}}}))}
    paths[f"{base}/rollback"] = {"post": _op(
        "Production goes back to the previous version", "admin",
        {"200": _ok("rolled back", _OBJ)}, statuses=("404", "409"), params=("model",),
        body=_json({"type": "object", "properties": {"reason": {"type": ["string", "null"]}}},
                   required=False))}
    paths[f"{base}/versions"] = {"get": _op(
        "The model's versions (newest first, each against its best baseline), the newest "
        "against production, the audit of stage changes, the deployment and its history",
        "read", {"200": _ok("versions, audit and deployments", _OBJ)}, statuses=("404",),
        params=("model",))}
    paths[f"{base}/deployment"] = {
        "get": _op("The model's deployment (mode, challenger version, percent)", "read",
                   {"200": _ok("the deployment", _OBJ)}, statuses=("404",),
                   params=("model",)),
        "put": _op("Change the deployment", "admin", {"200": _ok("the new deployment", _OBJ)},
                   statuses=("404", "409"), params=("model",), body=_json({"anyOf": [
                       {"type": "object", "required": ["mode"], "properties": {
                           "mode": {"const": "single"}, "reason": {"type": ["string", "null"]}}},
                       {"type": "object", "required": ["mode", "version"], "properties": {
                           "mode": {"enum": ["shadow", "canary", "ab"]},
                           "version": _VERSION, "percent": {"type": "number",
                                                            "exclusiveMinimum": 0,
                                                            "exclusiveMaximum": 100},
                           "reason": {"type": ["string", "null"]}}}]}))}
    return paths


def _ingest_paths(project: Any) -> dict[str, Any]:
    """Ground truth of every source and events of the sources that have them."""
    paths: dict[str, Any] = {}
    for src in project.sources:
        paths[f"/v1/ground-truth/{src.name}"] = {"post": _op(
            f"Ingest rows of {src.name} (validated by its contract)", "predict",
            {"200": _ok("all rows accepted", _OBJ), "207": _ok("some rows quarantined", _OBJ)},
            statuses=("404", "409", "422"), body=_json(_rows_body(src)))}
        if events.spec(project, src.name) is not None:
            paths[f"/v1/events/{src.name}"] = {"post": _op(
                f"Apply events of {src.name}: ingest (validated by its contract), then update "
                "the online state of each entity", "predict",
                {"200": _ok("all events accepted and applied", _OBJ),
                 "207": _ok("some events quarantined", _OBJ)},
                statuses=("404", "409", "422"), body=_json(_rows_body(src)))}
    return paths


def _public(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary + " (no token)", "security": [], "responses": responses}


_DTYPES = {"str": {"type": "string"}, "int": {"type": "integer"},
           "float": {"type": "number"}, "bool": {"type": "boolean"},
           "date": {"type": "string", "format": "date"},
           "timestamp": {"type": "string", "format": "date-time"}}


def _rows_body(src: Any) -> dict[str, Any]:
    """Rows of the source's contract (a row that breaks it is quarantined: 207)."""
    c = src.contract
    props = {}
    for col in c.columns:  # any value is taken: one that breaks the contract is quarantined
        props[col.name] = {"description": f"{col.dtype}{' or null' if col.nullable else ''} "
                                          f"(schema {_DTYPES.get(col.dtype)})"}
    required = [col.name for col in c.columns
                if not col.nullable or c.missing_columns != "fill"]
    return {"type": "object", "required": ["rows"], "properties": {
        "rows": {"type": "array", "items": {"type": "object", "properties": props,
                                            "required": required}},
        "as_of": {"type": "string", "format": "date-time", "pattern": "^(19|20)[0-9][0-9]-",
                  "description": "ISO 8601 time the rows were known (default: now)"}}}


def _predict_path(loaded: LoadedProject, m: Model) -> dict[str, Any]:
    """The OpenAPI path item of one model's predict endpoint."""
    label = loaded.project.source(m.label_source)
    props: dict[str, Any] = {m.entity.key: {"type": "string", "pattern": "\\S"}}
    required = [m.entity.key]
    if horizon(m) > pd.Timedelta(0) and label.time:
        props[label.time] = {"type": "string", "format": "date",
                             "description": f"target date, up to {m.horizon} ahead"}
        required.append(label.time)
    for f in m.features:
        if f.kind == "request":
            props[f.name] = {"type": ["number", "null"]}
    row = {"type": "object", "properties": {**props, "explain": {"type": "boolean"}},
           "required": required}
    item = {"type": "object", "properties": props, "required": required}
    answer = {"type": "object", "required": ["model", "model_version", "request_id"],
              "properties": {"model": {"type": "string"}, "model_version": {"type": "integer"},
                             "request_id": {"type": "string"},
                             "deployment": {"type": "string"},
                             "explanation": EXPLANATION,
                             "predictions": {"type": "array", "items": {
                                 "type": "object",
                                 "properties": {"explanation": EXPLANATION}}}}}
    op = _op(
        f"Predict {m.target} with the production version of {m.name}; with explain, "
        "each row's contributions, expected value and sentence", "predict",
        {"200": _ok("predictions with model_version and request_id", answer)},
        statuses=("404",), body=_json({"anyOf": [row, {
            "type": "object", "required": ["rows"],
            "properties": {"rows": {"type": "array", "items": item, "maxItems": MAX_ROWS},
                           "explain": {"type": "boolean"}}}]}))
    op["parameters"] = [EXPLAIN_PARAM]
    return {"post": op}


#: the ``explain`` query parameter of predict and batch
EXPLAIN_PARAM: dict[str, Any] = {
    "name": "explain", "in": "query", "required": False,
    "description": "1 (or true) to answer each row with its explanation",
    "schema": {"type": "string", "enum": ["1", "0", "true", "false"]}}

#: one row's explanation (``tuesday.serve.explaining``)
EXPLANATION: dict[str, Any] = {
    "type": "object",
    "description": "Why the model said this: contributions of each feature in the target's "
                   "units (shift) and in raw-score space (raw); expected_raw plus every raw "
                   "contribution is the raw score",
    "properties": {
        "sentence": {"type": "string"}, "prediction": {"type": "number"},
        "final": {"type": "number"}, "expected": {"type": "number"},
        "expected_raw": {"type": "number"},
        "link": {"enum": ["identity", "log", "logit"]},
        "baseline": {"type": ["object", "null"]},
        "contributions": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {
                "shift": {"type": "number"}, "raw": {"type": "number"},
                "value": {"type": ["number", "null"]}, "text": {"type": "string"}}}}}}


#: for the OpenAPI paths of the server's extensions (``tuesday.serve.server.Extension``)
operation = _op
ok_response = _ok
json_request = _json


def _rank_paths(m: Model) -> dict[str, Any]:
    """The rank, batch rank and feedback endpoints of a ranking model."""
    key = m.entity.key
    sl = m.slate
    cand: dict[str, Any] = {"type": "object", "required": [key], "properties": {
        key: {"type": "string", "pattern": "\\S"},
        **{f.name: {"type": ["number", "null"]} for f in m.features if f.kind == "request"}}}
    body = {"type": "object", "properties": {
        "candidates": {"type": "array", "items": cand, "minItems": 1, "maxItems": MAX_ROWS,
                       "description": "the items to rank (default: the whole catalog, "
                                      f"source {sl.candidates if sl else None!r})"},
        "size": {"type": "integer", "minimum": 1,
                 "description": f"items in the slate (default {sl.size if sl else 10})"},
        **{f.name: {"type": ["number", "null"]} for f in m.features if f.kind == "request"}},
        "description": "the request's context (user fields, time); each candidate's own "
                       "fields override them"}
    slate = {"type": "object", "required": ["request_id", "slate"], "properties": {
        "model": {"type": "string"}, "model_version": {"type": "integer"},
        "request_id": {"type": "string"}, "explored": {"type": "boolean"},
        "slate": {"type": "array", "items": {"type": "object", "properties": {
            key: {"type": "string"}, "position": {"type": "integer"},
            "score": {"type": ["number", "null"]}, "propensity": {"type": "number"}}}},
        "dropped": {"type": "array", "items": _OBJ}, "unranked": {"type": "array",
                                                                  "items": _OBJ}}}
    base = f"/v1/models/{m.name}"
    reward = sl.reward if sl else "click"
    fb_row = {"type": "object", "required": ["request_id", key, "position"], "properties": {
        "request_id": {"type": "string"}, key: {"type": "string"},
        "position": {"type": "integer", "minimum": 1},
        reward: {"type": "number", "description": "default 1"}}}
    return {
        f"{base}/rank": {"post": _op(
            f"A slate of {m.name} for one request: the model, its rules and exploration; "
            "each shown item with its position and the probability of it there", "predict",
            {"200": _ok("the slate", slate)}, statuses=("404", "422"), body=_json(body))},
        f"{base}/rank/batch": {"post": _op(
            "Rank requests, one JSON object per line (NDJSON); one slate or error per "
            "line", "predict", {"200": _ok("NDJSON", {"type": "string"},
                                           "application/x-ndjson")},
            statuses=("404",), body={"required": True, "content": {
                "application/x-ndjson": {"schema": {"type": "string", "minLength": 1}}}})},
        f"{base}/feedback": {"post": _op(
            f"Clicks on served slates, into source {sl.feedback if sl else None!r}",
            "predict", {"200": _ok("the ingest", _OBJ), "207": _ok("some rows quarantined",
                                                                    _OBJ)},
            statuses=("404",), body=_json({"anyOf": [fb_row, {
                "type": "object", "required": ["rows"],
                "properties": {"rows": {"type": "array", "items": fb_row}}}]}))},
    }


def docs_page(spec: dict[str, Any]) -> str:
    """A self-contained HTML page listing the endpoints (no CDN, works offline)."""
    items = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict):
                continue
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            body = (f"<pre>{html.escape(json.dumps(schema.get('schema'), indent=1))}</pre>"
                    if schema else "")
            items.append(f"<li><code>{method.upper()} {html.escape(path)}</code> "
                         f"{html.escape(op.get('summary', ''))}{body}</li>")
    return ("<!doctype html><meta charset=utf-8><title>API</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "pre{background:#f4f4f4;padding:.5em}</style>"
            f"<h1>{html.escape(spec['info']['title'])}</h1>"
            "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a></p>"
            f"<ul>{''.join(items)}</ul>")
