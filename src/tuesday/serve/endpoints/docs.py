"""The server's API description: the OpenAPI document (``/openapi.json``, one predict
schema per model, from the project's declarations) and a self-contained HTML page of the
endpoints (``/docs``: no CDN, works offline).
"""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from tuesday.data import events
from tuesday.data.features import horizon
from tuesday.project import LoadedProject, Model
from tuesday.serve.state import State

__all__ = ["docs", "docs_page", "openapi", "openapi_spec"]


async def openapi(state: State, _request: Request) -> Response:
    """GET /openapi.json."""
    return JSONResponse(openapi_spec(state.loaded))


async def docs(state: State, _request: Request) -> Response:
    """GET /docs."""
    return HTMLResponse(docs_page(openapi_spec(state.loaded)))


def openapi_spec(loaded: LoadedProject) -> dict[str, Any]:
    """The OpenAPI document of the server, with one predict schema per model."""
    paths: dict[str, Any] = {}
    for m in loaded.project.models:
        paths[f"/v1/models/{m.name}/predict"] = _predict_path(loaded, m)
    for s in loaded.project.sources:
        paths[f"/v1/ground-truth/{s.name}"] = {"post": {
            "summary": f"Ingest rows of {s.name} (validated by its contract)",
            "responses": {"200": {"description": "all rows accepted"},
                          "207": {"description": "some rows quarantined"}}}}
        if events.spec(loaded.project, s.name) is not None:
            paths[f"/v1/events/{s.name}"] = {"post": {
                "summary": f"Apply events of {s.name}: ingest (validated by its contract), "
                           "then update the online state of each entity",
                "responses": {"200": {"description": "all events accepted and applied"},
                              "207": {"description": "some events quarantined"}}}}
    for p, summary in (("/health", "liveness"), ("/ready", "production models loaded"),
                       ("/metrics", "Prometheus metrics"), ("/v1/models", "model versions")):
        paths[p] = {"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}}
    return {"openapi": "3.1.0",
            "info": {"title": f"tuesday: {loaded.project.name}", "version": "1"},
            "paths": paths}


def _predict_path(loaded: LoadedProject, m: Model) -> dict[str, Any]:
    """The OpenAPI path item of one model's predict endpoint."""
    label = loaded.project.source(m.label_source)
    props: dict[str, Any] = {m.entity.key: {"type": "string"}}
    required = [m.entity.key]
    if horizon(m) > pd.Timedelta(0) and label.time:
        props[label.time] = {"type": "string", "format": "date",
                             "description": f"target date, up to {m.horizon} ahead"}
        required.append(label.time)
    for f in m.features:
        if f.kind == "request":
            props[f.name] = {"type": "number"}
    row = {"type": "object", "properties": props, "required": required}
    return {"post": {
        "summary": f"Predict {m.target} with the production version of {m.name}",
        "requestBody": {"content": {"application/json": {"schema": {"oneOf": [
            row, {"type": "object", "properties": {"rows": {"type": "array",
                                                            "items": row}}}]}}}},
        "responses": {"200": {"description": "predictions with model_version and "
                                             "request_id"},
                      "404": {"description": "unknown model, entity or date"},
                      "422": {"description": "invalid request"}}}}


def docs_page(spec: dict[str, Any]) -> str:
    """A self-contained HTML page listing the endpoints (no CDN, works offline)."""
    items = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
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
