"""HTTP server: predict (one row, many rows, or a streamed batch), events, ground truth,
admin (promote, rollback, deployments), health, metrics, OpenAPI.

The predict path lives in ``tuesday.predictor`` (shared with batch scoring). This module
adds what a server needs around it:

* role tokens (``tuesday.auth``): ``predict`` for predict/events/ground truth, ``read``
  for listings and metrics, ``admin`` for promote, rollback and deployments;
* load shedding: beyond ``max_inflight`` requests at once, or when the prediction log is
  full, the answer is 503 with ``Retry-After`` instead of a growing queue;
* the prediction log is written by a background task every ``flush_seconds`` and
  flushed on shutdown, so a graceful stop loses nothing;
* every error is JSON with ``error``, ``message`` and ``fix`` and the right status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tuesday.data import events, tables
from tuesday.data.features import horizon
from tuesday.data.predictions import PREDICTIONS, read_log
from tuesday.errors import TuesdayError
from tuesday.project import LoadedProject, load_project, parse_time
from tuesday.release import registry
from tuesday.serve import auth, compiled, rules
from tuesday.serve.predictor import (
    LOG_MAX_ROWS,
    MAX_ROWS,
    Overloaded,
    PredictionLog,
    Predictor,
    parse_rows,
    wall_clock,
)
from tuesday.workspace import Workspace, open_workspace

__all__ = ["MAX_ROWS", "PREDICTIONS", "create_app", "read_log"]

log = logging.getLogger(__name__)

MAX_INFLIGHT = 256
BATCH_CHUNK = 2_000
TOKENS_TTL = 1.0


class RuleFailed(TuesdayError):
    status = 500
    exit_code = 1
    kind = "rule_failed"


class State:
    def __init__(self, ws: Workspace, loaded: LoadedProject, *, log_max_rows: int,
                 max_inflight: int, log_predictions: bool = True,
                 compile_models: bool = True) -> None:
        self.ws = ws
        self.loaded = loaded
        self.predictor = Predictor(ws, loaded,
                                   log_rows=PredictionLog(ws, max_rows=log_max_rows),
                                   log_predictions=log_predictions,
                                   compile_models=compile_models)
        self.log = self.predictor.log
        self.max_inflight = max_inflight
        self.inflight = 0
        self._tokens: dict[str, tuple[str, str]] = {}
        self._tokens_at = -1e9
        self.metrics = CollectorRegistry()
        self.requests = Counter("tuesday_requests", "HTTP requests",
                                ["endpoint", "status"], registry=self.metrics)
        self.predictions = Counter("tuesday_predictions", "Rows predicted",
                                   ["model", "version", "variant"], registry=self.metrics)
        self.latency = Histogram("tuesday_request_seconds", "Request latency",
                                 ["endpoint"], registry=self.metrics,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1))
        self.shed = Counter("tuesday_shed", "Requests refused with 503 under overload",
                            ["reason"], registry=self.metrics)
        self.log_pending = Gauge("tuesday_log_pending_rows",
                                 "Prediction log rows waiting to be written",
                                 registry=self.metrics)
        self.log_pending.set_function(lambda: len(self.log))
        self.compiled = Gauge("tuesday_model_compiled",
                              "1 when the version answers through its compiled trees",
                              ["model", "version"], registry=self.metrics)
        self._counted: dict[tuple[str, int, str], int] = {}
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count a request and its latency (the labelled metric children are looked up
        once per endpoint and status: ``labels()`` takes a lock and builds a key)."""
        key = (endpoint, str(status))
        got = self._children.get(key)
        if got is None:
            got = self._children[key] = (self.requests.labels(endpoint, key[1]),
                                         self.latency.labels(endpoint))
        got[0].inc()
        got[1].observe(seconds)

    def tokens(self) -> dict[str, tuple[str, str]]:
        now = time.monotonic()
        if now - self._tokens_at > TOKENS_TTL:
            self._tokens = auth.active(self.ws)
            self._tokens_at = now
        return self._tokens

    def count_served(self) -> None:
        for (name, version), lm in list(self.predictor.versions.items()):
            self.compiled.labels(name, str(version)).set(int(lm.compiled is not None))
        for k, n in self.predictor.served.items():
            done = self._counted.get(k, 0)
            if n > done:
                self.predictions.labels(k[0], str(k[1]), k[2]).inc(n - done)
                self._counted[k] = n


def _error(exc: TuesdayError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def _json_body(request: Request) -> Any:
    return _loads(await request.body())


_LONG_INT = re.compile(rb"\d{20}")


def _loads(raw: bytes) -> Any:
    """A request body's JSON: orjson (a tenth of the time), else the standard parser,
    which also takes what orjson refuses (NaN, lone surrogates in strings) so that such
    values reach the checks that name the field, and keeps integers beyond 64 bits exact
    (orjson reads them as floats)."""
    if not _LONG_INT.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TuesdayError(f"The request body is not valid JSON: {exc}.",
                           fix='Send JSON such as {"rows": [{...}]}.') from exc


LOG_WRITER_NICE = 10


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: nice is per thread, and
    threads it starts, such as the Delta writer's, inherit it). Elsewhere nothing."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOG_WRITER_NICE)


def crash_response(exc: Exception) -> JSONResponse:
    """500 for an exception that is a bug in tuesday, not a mistake of the caller."""
    log.error("unexpected error", exc_info=exc)
    return JSONResponse({"error": "internal", "message": f"{type(exc).__name__}: {exc}",
                         "fix": "This is a bug in tuesday; please report it."},
                        status_code=500)


class _ByPathParam:
    """An ASGI endpoint for Starlette's router (which takes an object that is not a
    function as an ASGI app): ``fn(scope, receive, send, model)``."""

    def __init__(self, fn: Callable[..., Awaitable[None]]) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fn(scope, receive, send, scope["path_params"]["model"])


class App:
    """The server's ASGI app. ``POST /v1/models/NAME/predict`` is answered by the
    predict handler directly; everything else (and the lifespan) goes to the Starlette
    app of the other endpoints, ``inner``. ``state`` is the Starlette app's state."""

    def __init__(self, inner: Starlette, predict: Callable[..., Awaitable[None]]) -> None:
        self.inner = inner
        self.predict = predict
        self.state = inner.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith("/v1/models/") and path.endswith("/predict"):
                name = path[len("/v1/models/"):-len("/predict")]
                if name and "/" not in name:
                    await self.predict(scope, receive, send, name)
                    return
        await self.inner(scope, receive, send)


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def create_app(workspace: str | Path, project: str | Path, *, flush_seconds: float = 0.5,
               max_inflight: int = MAX_INFLIGHT, log_max_rows: int = LOG_MAX_ROWS,
               log_predictions: bool = True, compile_models: bool | None = None
               ) -> App:
    """The ASGI app for one workspace and project.

    ``log_predictions=False`` turns the prediction log off: answers are the same, but
    nothing is written to ``_predictions``, so monitoring, live baselines and replay have
    nothing to read for this server. Meant for benchmarks (``bench/serving.py`` measures
    what the log costs) or a deployment that logs elsewhere; the default is on.

    ``compile_models`` (default: on unless ``TUESDAY_COMPILED=off``) compiles each
    LightGBM version served to C in the background and answers with it once it is
    checked bit-identical to LightGBM (``tuesday.compiled``); the answers do not change.
    """
    ws = open_workspace(workspace)
    loaded = load_project(project)
    state = State(ws, loaded, log_max_rows=log_max_rows, max_inflight=max_inflight,
                  log_predictions=log_predictions,
                  compile_models=compiled.enabled() if compile_models is None
                  else compile_models)
    predictor = state.predictor

    # the log is written by a thread of its own at a lower scheduling priority: on a busy
    # core its bursts (a Delta commit every flush) yield to the requests instead of
    # sharing the core with them half and half
    writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tuesday-log",
                                                   initializer=_lower_priority)

    async def flusher() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(flush_seconds)
            state.count_served()
            if len(state.log):
                try:
                    await loop.run_in_executor(writer, state.log.flush)
                except Exception:  # kept in the buffer; logged by the log itself
                    await asyncio.sleep(flush_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(flusher())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            writer.shutdown(wait=True)
            state.log.flush()
            predictor.close()

    Handler = Callable[[Request, str | None], Awaitable[Response]]

    def failure(exc: Exception, model: str | None) -> Response:
        """The JSON error answer of an exception raised by an endpoint (re-raised when
        it is not one of tuesday's: the app's crash handler answers 500)."""
        if isinstance(exc, Overloaded):
            if "log" in exc.message:
                state.shed.labels("log_full").inc()
            return _error(exc)
        if isinstance(exc, rules.RuleError):
            return _error(RuleFailed(
                f"Business rule {exc.rule!r} of model {model!r} failed on row {exc.row}: "
                f"{type(exc.exc).__name__}: {exc.exc}.",
                fix="Fix the rule function in the project module."))
        if isinstance(exc, TuesdayError):
            return _error(exc)
        raise exc

    def admit(shed: bool, role: str | None, authorization: str | None) -> str | None:
        """Refuse beyond the in-flight limit and check the token; the actor's name."""
        if shed and state.inflight > state.max_inflight:
            state.shed.labels("inflight").inc()
            raise Overloaded(f"The server is handling {state.inflight - 1} requests "
                             f"(the limit is {state.max_inflight}).")
        tokens = state.tokens() if role else None
        return auth.check(tokens, authorization, role) if role and tokens else None

    def endpoint(name: str, role: str | None, fn: Handler, *, shed: bool = False) -> Any:
        async def handler(request: Request) -> Response:
            started = time.perf_counter()
            state.inflight += 1
            try:
                actor = admit(shed, role, request.headers.get("authorization"))
                response = await fn(request, actor)
            except (TuesdayError, rules.RuleError) as exc:
                response = failure(exc, request.path_params.get("model"))
            finally:
                state.inflight -= 1
            state.observe(name, response.status_code, time.perf_counter() - started)
            return response
        return handler

    async def fast_predict(scope: Scope, receive: Receive, send: Send, name: str) -> None:
        """POST /v1/models/NAME/predict straight on ASGI: the same checks, answers and
        errors as the other endpoints, without the router and request/response objects
        (a third of a bare Starlette endpoint's cost, on the path that carries the
        traffic)."""
        started = time.perf_counter()
        state.inflight += 1
        response: Response | None = None
        try:
            authorization = None
            for k, v in scope["headers"]:
                if k == b"authorization":  # the first one, as Starlette reads it
                    authorization = v.decode("latin-1")
                    break
            admit(True, "predict", authorization)
            parts = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left: nothing to answer
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            rows, many = parse_rows(_loads(parts[0] if len(parts) == 1 else b"".join(parts)))
            out = predictor.predict(name, rows)
            if not many:
                out.update(out.pop("predictions")[0])
            body = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)
        except (TuesdayError, rules.RuleError) as exc:
            response = failure(exc, name)
        except Exception as exc:
            response = crash_response(exc)
        finally:
            state.inflight -= 1
        if response is not None:
            await response(scope, receive, send)
            state.observe("predict", response.status_code, time.perf_counter() - started)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        state.observe("predict", 200, time.perf_counter() - started)

    async def batch(request: Request, _actor: str | None) -> Response:
        """Rows as NDJSON (one object per line) or CSV with a header, any size; answers
        NDJSON, one line per row, in chunks, so neither side holds the whole file."""
        name = request.path_params["model"]
        predictor.route(name)  # unknown model or no production version: fail up front
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind not in ("application/x-ndjson", "application/jsonl", "text/csv"):
            raise TuesdayError(f"The batch endpoint takes NDJSON or CSV; got content type "
                               f"{kind or 'none'!r}.",
                               fix="Send Content-Type: application/x-ndjson (one JSON object "
                                   "per line) or text/csv (with a header row).")
        model = loaded.project.model(name)

        # the whole body is spooled first (to disk beyond 8 MB): a streaming response
        # listens for the client's disconnect and would consume the request's messages
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (closed by lines())
        async for part in request.stream():
            spool.write(part)
        spool.seek(0)

        async def lines() -> AsyncIterator[str]:
            try:
                for raw in spool:
                    yield raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
            finally:
                spool.close()

        async def out() -> AsyncIterator[bytes]:
            chunk: list[dict[str, Any]] = []
            header: list[str] | None = None
            numeric = {f.name for f in model.features if f.kind == "request"}
            async for ln in lines():
                if not ln.strip():
                    continue
                if kind == "text/csv":
                    values = next(csv.reader([ln]))
                    if header is None:
                        header = values
                        continue
                    row: Any = csv_row(header, values, numeric)
                else:
                    try:
                        row = json.loads(ln)
                    except json.JSONDecodeError as exc:
                        row = {"_error": f"line is not valid JSON: {exc}"}
                    if not isinstance(row, dict):
                        row = {"_error": f"line is not a JSON object: {ln[:80]!r}"}
                chunk.append(row)
                if len(chunk) >= BATCH_CHUNK:
                    yield score_chunk(name, chunk)
                    chunk = []
                    await asyncio.sleep(0)
            if chunk:
                yield score_chunk(name, chunk)

        return StreamingResponse(out(), media_type="application/x-ndjson")

    def score_chunk(name: str, chunk: list[dict[str, Any]]) -> bytes:
        try:
            body = predictor.predict(name, chunk, partial=True, slate=False)
            answers = body["predictions"]
        except TuesdayError as exc:  # e.g. the log is full: say so on every row
            answers = [{"prediction": None, "error": exc.message} for _ in chunk]
        for row, ans in zip(chunk, answers, strict=True):
            if "_error" in row:
                ans["error"] = row["_error"]
        return "".join(json.dumps(a) + "\n" for a in answers).encode()

    async def rows_request(request: Request) -> tuple[Any, pd.DataFrame, datetime]:
        """The source, rows and logical time of a ground-truth or events request."""
        source = loaded.project.source(request.path_params["source"])
        body = await _json_body(request)
        rows, _ = parse_rows(body)
        as_of = wall_clock()
        if isinstance(body, dict) and "as_of" in body:
            as_of = parse_time(body["as_of"], what="'as_of'").to_pydatetime()
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=source.contract.names)
        return source, frame, as_of

    async def ground_truth(request: Request, _actor: str | None) -> Response:
        source, frame, as_of = await rows_request(request)
        result = await asyncio.to_thread(tables.ingest_frame, ws, source, frame, as_of=as_of,
                                         file="http")
        status = 200 if result.report.quarantined == 0 else 207
        return JSONResponse(result.to_dict(), status_code=status)

    async def post_events(request: Request, _actor: str | None) -> Response:
        source, frame, as_of = await rows_request(request)
        result = await asyncio.to_thread(events.apply, ws, loaded.project, source, frame, as_of)
        status = 200 if result.ingest.report.quarantined == 0 else 207
        return JSONResponse(result.to_dict(), status_code=status)

    async def models(_request: Request, _actor: str | None) -> Response:
        return JSONResponse({"models": [{k: _plain(v) for k, v in r.items()}
                                        for r in registry.versions(ws)]})

    async def admin_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = await _json_body(request) if raw.strip() else {}
        if not isinstance(body, dict):
            raise TuesdayError("The request body must be a JSON object.",
                               fix='Send for example {"version": 2, "reason": "..."}.')
        return body

    def version_of(body: dict[str, Any]) -> int:
        v = body.get("version")
        if isinstance(v, bool) or not isinstance(v, int):
            raise TuesdayError(f"'version' must be a whole number; got {v!r}.",
                               fix='Send {"version": 2}.')
        return v

    async def promote(request: Request, actor: str | None) -> Response:
        body = await admin_body(request)
        model = loaded.project.model(request.path_params["model"])
        reason = body.get("override_reason")
        res = await asyncio.to_thread(registry.promote, ws, model, version_of(body),
                                      as_of=wall_clock(), actor=actor or "http",
                                      override_reason=reason)
        predictor.refresh(model.name)
        return JSONResponse(res)

    async def rollback(request: Request, actor: str | None) -> Response:
        body = await admin_body(request)
        name = loaded.project.model(request.path_params["model"]).name
        res = await asyncio.to_thread(registry.rollback, ws, name, as_of=wall_clock(),
                                      actor=actor or "http",
                                      reason=str(body.get("reason") or "rollback"))
        predictor.refresh(name)
        return JSONResponse(res)

    async def get_deployment(request: Request, _actor: str | None) -> Response:
        name = loaded.project.model(request.path_params["model"]).name
        return JSONResponse({k: _plain(v) for k, v in registry.deployment(ws, name).items()})

    async def put_deployment(request: Request, actor: str | None) -> Response:
        body = await admin_body(request)
        name = loaded.project.model(request.path_params["model"]).name
        mode = body.get("mode")
        version = body.get("version")
        pct = body.get("percent")
        if version is not None:
            version = version_of(body)
        if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int | float)):
            raise TuesdayError(f"'percent' must be a number; got {pct!r}.",
                               fix='Send {"mode": "canary", "version": 2, "percent": 10}.')
        res = registry.deploy(ws, name, str(mode), version, percent=pct, as_of=wall_clock(),
                              actor=actor or "http", reason=str(body.get("reason") or ""))
        predictor.refresh(name)
        return JSONResponse({k: _plain(v) for k, v in res.items()})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_request: Request) -> Response:
        status: dict[str, int | str] = {}
        for m in loaded.project.models:
            try:
                status[m.name] = predictor.route(m.name).production.version
            except TuesdayError as exc:
                status[m.name] = exc.message
        ok = all(isinstance(v, int) for v in status.values())
        return JSONResponse({"ready": ok, "models": status}, status_code=200 if ok else 503)

    async def metrics(_request: Request, _actor: str | None) -> Response:
        state.count_served()
        return Response(generate_latest(state.metrics), media_type=CONTENT_TYPE_LATEST)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(openapi_spec(loaded))

    async def docs(_request: Request) -> Response:
        return HTMLResponse(docs_page(openapi_spec(loaded)))

    m = "/v1/models/{model}"
    routes = [
        # answered by ``App`` before the router; listed for the 405 of other methods
        Route(f"{m}/predict", _ByPathParam(fast_predict), methods=["POST"]),
        Route(f"{m}/batch", endpoint("batch", "predict", batch, shed=True), methods=["POST"]),
        Route(f"{m}/promote", endpoint("promote", "admin", promote), methods=["POST"]),
        Route(f"{m}/rollback", endpoint("rollback", "admin", rollback), methods=["POST"]),
        Route(f"{m}/deployment", endpoint("deployment", "read", get_deployment),
              methods=["GET"]),
        Route(f"{m}/deployment", endpoint("deploy", "admin", put_deployment),
              methods=["PUT"]),
        Route("/v1/ground-truth/{source}",
              endpoint("ground_truth", "predict", ground_truth, shed=True), methods=["POST"]),
        Route("/v1/events/{source}", endpoint("events", "predict", post_events, shed=True),
              methods=["POST"]),
        Route("/v1/models", endpoint("models", "read", models), methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", endpoint("metrics", "read", metrics), methods=["GET"]),
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
        return crash_response(exc)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, method_not_allowed)
    app.add_exception_handler(Exception, crash)
    return App(app, fast_predict)


def csv_row(header: list[str], values: list[str], numeric: set[str]) -> dict[str, Any]:
    """A CSV line as a request row: empty cells are missing, request features numbers."""
    if len(values) != len(header):
        return {"_error": f"the line has {len(values)} fields; the header has {len(header)}"}
    row: dict[str, Any] = {}
    for k, v in zip(header, values, strict=True):
        if v == "":
            row[k] = None
        elif k in numeric:
            try:
                row[k] = float(v)
            except ValueError:
                row[k] = v  # reported by the predictor as not a number
        else:
            row[k] = v
    return row


def app_from_env() -> App:
    """App factory for ``uvicorn --factory`` and ``tuesday serve --workers N``: each
    worker process builds its own app (and loads its models after it started).

    ``TUESDAY_PREDICTION_LOG=off`` (or ``0``, ``false``, ``no``) turns the prediction
    log off (see ``create_app``); anything else, or unset, leaves it on.
    """
    log_on = os.environ.get("TUESDAY_PREDICTION_LOG", "on").strip().lower() not in (
        "off", "0", "false", "no")
    return create_app(os.environ["TUESDAY_WORKSPACE"], os.environ["TUESDAY_PROJECT"],
                      log_predictions=log_on)


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
