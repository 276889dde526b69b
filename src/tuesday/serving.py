"""HTTP server: predict (one or many rows), ground truth, health, metrics, OpenAPI.

The predict path: online features (one SQLite lookup per entity) plus request-time
features -> production model -> response with prediction, model version and request id
-> prediction log. The log is buffered in memory and appended to the Delta table
``_predictions`` in batches by a background task, and flushed on shutdown.

The server follows the registry: it re-reads which version is in production at most
once a second, so ``tuesday promote`` and ``tuesday rollback`` take effect without a
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tuesday import events, online, registry, tables
from tuesday.baselines import ONLINE as ONLINE_BASELINES
from tuesday.errors import NotFound, TuesdayError
from tuesday.features import horizon
from tuesday.project import LoadedProject, Model, load_project, parse_time
from tuesday.training import baseline_features, baseline_predict, load_model
from tuesday.workspace import Workspace, open_workspace

PREDICTIONS = "_predictions"
LOG_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("model", pa.string()), ("version", pa.int64()),
    ("entity", pa.string()), ("target_time", pa.timestamp("us")),
    ("served_at", pa.timestamp("us")), ("prediction", pa.float64()),
    ("baselines", pa.string()), ("features", pa.string()),
])
MAX_ROWS = 10_000
REGISTRY_TTL = 1.0


@dataclass
class Loaded:
    """A production model ready to predict."""

    model: Model
    version: int
    booster: Any
    names: tuple[str, ...]
    checked: float


class PredictionLog:
    """Buffered, batched appends of served predictions to a Delta table."""

    def __init__(self, ws: Workspace, flush_rows: int = 2000) -> None:
        self.ws = ws
        self.rows: list[dict[str, Any]] = []
        self.flush_rows = flush_rows
        self.written = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)

    def flush(self) -> int:
        if not self.rows:
            return 0
        batch, self.rows = self.rows, []
        table = pa.Table.from_pylist(batch, schema=LOG_SCHEMA)
        write_deltalake(str(self.ws.table_path(PREDICTIONS)), table, mode="append")
        self.written += len(batch)
        return len(batch)


class State:
    def __init__(self, ws: Workspace, loaded: LoadedProject) -> None:
        self.ws = ws
        self.loaded = loaded
        self.models: dict[str, Loaded] = {}
        self.conn = online.connect(ws)
        self.log = PredictionLog(ws)
        self.metrics = CollectorRegistry()
        self.requests = Counter("tuesday_requests", "HTTP requests",
                                ["endpoint", "status"], registry=self.metrics)
        self.predictions = Counter("tuesday_predictions", "Rows predicted",
                                   ["model", "version"], registry=self.metrics)
        self.latency = Histogram("tuesday_request_seconds", "Request latency",
                                 ["endpoint"], registry=self.metrics,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1))

    def production(self, name: str) -> Loaded:
        model = self.loaded.project.model(name)
        now = time.monotonic()
        cur = self.models.get(name)
        if cur is not None and now - cur.checked < REGISTRY_TTL:
            return cur
        prod = registry.production(self.ws, name)
        if prod is None:
            raise NotFound(f"Model {name!r} has no production version.",
                           fix=f"Promote one with `tuesday promote {name} VERSION`.")
        if cur is None or cur.version != prod["version"]:
            booster = load_model(self.ws, prod["manifest"])
            names = tuple(prod["manifest"]["features"])
            cur = Loaded(model, int(prod["version"]), booster, names, now)
            self.models[name] = cur
        cur.checked = now
        return cur


def _error(exc: TuesdayError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TuesdayError(f"The request body is not valid JSON: {exc}.",
                           fix='Send JSON such as {"rows": [{...}]}.') from exc


def _rows(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if isinstance(body, dict) and "rows" in body:
        rows = body["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TuesdayError("'rows' must be a list of JSON objects; got "
                               f"{type(rows).__name__}.",
                               fix='Send {"rows": [{"station": "...", "date": "..."}]}.')
        if len(rows) > MAX_ROWS:
            raise TuesdayError(f"A request may hold at most {MAX_ROWS} rows; got {len(rows)}.",
                               fix="Split the batch.")
        return rows, True
    if isinstance(body, dict):
        return [body], False
    raise TuesdayError(f"The request body must be a JSON object; got {type(body).__name__}.",
                       fix='Send {"rows": [{...}]} or a single row object.')


def _is_key(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, str | int):
        return False
    try:
        str(v).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(str(v).strip())


def _is_number(v: Any) -> bool:
    """None (missing, the declared default applies) or a finite int/float, not a bool."""
    if v is None:
        return True
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(float(v))


def predict_rows(state: State, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Predict rows with the production version; log them; return the response body."""
    lm = state.production(name)
    model = lm.model
    key = model.entity.key
    label = state.loaded.project.source(model.label_source)
    tcol = label.time
    h = horizon(model)
    names = lm.names
    extra = [f.name for f in baseline_features(model)]
    request_feats = [f.name for f in model.features if f.kind == "request"]
    live = events.plan(state.loaded.project, model)  # event features, at request time
    problems: list[str] = []
    missing: list[str] = []
    vectors: list[list[float]] = []
    extras: list[dict[str, float | None]] = []
    meta_rows: list[tuple[str, pd.Timestamp | None]] = []
    for i, row in enumerate(rows):
        entity = row.get(key)
        if not _is_key(entity):
            problems.append(f"row {i}: field {key!r} (the entity key) must be a string or "
                            f"whole number; got {entity!r}.")
            continue
        target: pd.Timestamp | None = None
        if h > pd.Timedelta(0):
            raw_t = row.get(tcol or "")
            try:
                target = parse_time(raw_t, what=f"row {i}: field {tcol!r}")
            except TuesdayError:
                problems.append(f"row {i}: field {tcol!r} must be the target date as an ISO "
                                f"string like '2016-07-10'; got {raw_t!r}.")
                continue
        elif live.features:  # the time to compute event features at; now when not given
            raw_t = row.get(tcol or "")
            try:
                target = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)) if raw_t is None \
                    else parse_time(raw_t, what=f"row {i}: field {tcol!r}")
            except TuesdayError:
                problems.append(f"row {i}: field {tcol!r} must be the time to score at as an "
                                f"ISO string like '2024-03-01T12:00'; got {raw_t!r}.")
                continue
        bad = [f for f in request_feats if not _is_number(row.get(f))]
        for f in bad:
            problems.append(f"row {i}: request feature {f!r} must be a number; got "
                            f"{row.get(f)!r}.")
        if bad:
            continue
        record = online.lookup(state.conn, name, str(entity)) if live.vectors \
            else online.NO_VECTORS
        if record is None:
            missing.append(f"{key}={entity!r} (unknown entity)")
            continue
        vec = record.vector(online.target_key(target) if h > pd.Timedelta(0) else "")
        if vec is None:
            known = sorted(record.vectors)
            missing.append(f"{key}={entity!r} at {tcol}={online.target_key(target)!r} (the "
                           f"online store holds {known[0][:10]} to {known[-1][:10]}, origin "
                           f"{record.origin[:10]})")
            continue
        by_name = dict(zip(record.names, vec, strict=True))
        if live.features:
            by_name.update(live.values(state.conn, str(entity), target))
        for f in request_feats:
            by_name[f] = row.get(f)
        vectors.append([np.nan if (v := by_name.get(n)) is None else float(v) for n in names])
        extras.append({n: by_name.get(n) for n in extra})
        meta_rows.append((str(entity), target))
    if problems:
        raise TuesdayError(f"{len(problems)} problem(s) in the request: " + " ".join(problems),
                           fix="Fix the listed fields and send the request again.",
                           details=problems + missing)
    if missing:
        raise NotFound(f"Model {name!r} has no online features for "
                       f"{len(missing)} row(s): " + "; ".join(missing) + ".",
                       fix=f"Check the keys and dates; after ingesting newer data run "
                           f"`tuesday materialize {name}`.", details=missing)
    if not meta_rows:
        return {"model": name, "model_version": lm.version, "request_id": uuid.uuid4().hex,
                "predictions": []}
    x = np.asarray(vectors, dtype=float).reshape(len(vectors), len(names))
    preds = lm.booster.predict(x, num_threads=1)
    frame = pd.DataFrame(extras) if extra else pd.DataFrame(index=range(len(preds)))
    bl = {b.name: baseline_predict(model, b, frame, np.array([np.nan]))
          for b in model.baselines if b.kind in ONLINE_BASELINES}
    request_id = uuid.uuid4().hex
    served = datetime.now(UTC).replace(tzinfo=None)
    log_rows = []
    out = []
    for i, (entity, target) in enumerate(meta_rows):
        p = float(preds[i])
        out.append({key: entity, **({tcol: online.target_key(target)} if target is not None
                                   else {}), "prediction": p})
        log_rows.append({
            "request_id": request_id, "model": name, "version": lm.version, "entity": entity,
            "target_time": target.to_pydatetime() if target is not None else None,
            "served_at": served, "prediction": p,
            "baselines": json.dumps({k: float(v[i]) for k, v in bl.items()}),
            "features": json.dumps(dict(zip(names, [None if np.isnan(v) else v
                                                    for v in x[i].tolist()], strict=True))),
        })
    state.log.add(log_rows)
    state.predictions.labels(name, str(lm.version)).inc(len(out))
    return {"model": name, "model_version": lm.version, "request_id": request_id,
            "predictions": out}


def create_app(workspace: str | Path, project: str | Path, *,
               flush_seconds: float = 0.5) -> Starlette:
    """The ASGI app for one workspace and project."""
    ws = open_workspace(workspace)
    loaded = load_project(project)
    state = State(ws, loaded)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(flush_seconds)
            if state.log.rows:
                await asyncio.to_thread(state.log.flush)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(flusher())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            state.log.flush()
            state.conn.close()

    def timed(endpoint: str, fn: Any) -> Any:
        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await fn(request)
            except TuesdayError as exc:
                response = _error(exc)
            state.requests.labels(endpoint, str(response.status_code)).inc()
            state.latency.labels(endpoint).observe(time.perf_counter() - started)
            return response
        return handler

    async def predict(request: Request) -> Response:
        rows, many = _rows(await _json_body(request))
        body = predict_rows(state, request.path_params["model"], rows)
        if not many:
            single = body.pop("predictions")[0]
            body.update(single)
        return JSONResponse(body)

    async def rows_request(request: Request) -> tuple[Any, pd.DataFrame, datetime]:
        """The source, rows and logical time of a ground-truth or events request."""
        source = loaded.project.source(request.path_params["source"])
        body = await _json_body(request)
        rows, _ = _rows(body)
        as_of = datetime.now(UTC).replace(tzinfo=None)
        if isinstance(body, dict) and "as_of" in body:
            as_of = parse_time(body["as_of"], what="'as_of'").to_pydatetime()
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=source.contract.names)
        return source, frame, as_of

    async def ground_truth(request: Request) -> Response:
        source, frame, as_of = await rows_request(request)
        result = await asyncio.to_thread(tables.ingest_frame, ws, source, frame, as_of=as_of,
                                         file="http")
        status = 200 if result.report.quarantined == 0 else 207
        return JSONResponse(result.to_dict(), status_code=status)

    async def post_events(request: Request) -> Response:
        source, frame, as_of = await rows_request(request)
        result = await asyncio.to_thread(events.apply, ws, loaded.project, source, frame, as_of)
        status = 200 if result.ingest.report.quarantined == 0 else 207
        return JSONResponse(result.to_dict(), status_code=status)

    async def models(_request: Request) -> Response:
        return JSONResponse({"models": [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
            for r in registry.versions(ws)]})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> Response:
        status: dict[str, int | str] = {}
        for m in loaded.project.models:
            try:
                status[m.name] = state.production(m.name).version
            except TuesdayError as exc:
                status[m.name] = exc.message
        ok = all(isinstance(v, int) for v in status.values())
        return JSONResponse({"ready": ok, "models": status}, status_code=200 if ok else 503)

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(openapi_spec(loaded))

    async def docs(_request: Request) -> Response:
        return HTMLResponse(docs_page(openapi_spec(loaded)))

    routes = [
        Route("/v1/models/{model}/predict", timed("predict", predict), methods=["POST"]),
        Route("/v1/ground-truth/{source}", timed("ground_truth", ground_truth),
              methods=["POST"]),
        Route("/v1/events/{source}", timed("events", post_events), methods=["POST"]),
        Route("/v1/models", timed("models", models), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.tuesday = state

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not_found",
                             "message": f"There is no endpoint at {request.url.path!r}.",
                             "fix": "See /docs for the endpoints."}, status_code=404)

    async def method_not_allowed(_request: Request, _exc: Exception) -> Response:
        return JSONResponse({"error": "method_not_allowed",
                             "message": "This endpoint does not take that HTTP method.",
                             "fix": "See /docs for the endpoints and methods."},
                            status_code=405)

    async def crash(_request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "internal", "message": f"{type(exc).__name__}: {exc}",
                             "fix": "This is a bug in tuesday; please report it."},
                            status_code=500)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, method_not_allowed)
    app.add_exception_handler(Exception, crash)
    return app


def openapi_spec(loaded: LoadedProject) -> dict[str, Any]:
    """The OpenAPI document of the server, with one predict schema per model."""
    paths: dict[str, Any] = {}
    for m in loaded.project.models:
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
        paths[f"/v1/models/{m.name}/predict"] = {"post": {
            "summary": f"Predict {m.target} with the production version of {m.name}",
            "requestBody": {"content": {"application/json": {"schema": {"oneOf": [
                row, {"type": "object", "properties": {"rows": {"type": "array",
                                                                "items": row}}}]}}}},
            "responses": {"200": {"description": "predictions with model_version and "
                                                 "request_id"},
                          "404": {"description": "unknown model, entity or date"},
                          "422": {"description": "invalid request"}}}}
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


def docs_page(spec: dict[str, Any]) -> str:
    """A self-contained HTML page listing the endpoints (no CDN, works offline)."""
    import html

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


def read_log(ws: Workspace, model: str | None = None) -> pd.DataFrame:
    """The prediction log as a frame (empty if nothing was served)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(str(ws.table_path(PREDICTIONS)))
    except TableNotFoundError:
        return LOG_SCHEMA.empty_table().to_pandas()
    frame = dt.to_pyarrow_table().to_pandas()
    return frame[frame["model"] == model].reset_index(drop=True) if model else frame
