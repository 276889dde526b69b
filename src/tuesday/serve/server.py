"""HTTP server: predict (one row, many rows, or a streamed batch), events, ground truth,
admin (promote, rollback, deployments), health, metrics, OpenAPI.

The predict path lives in ``tuesday.serve.predictor`` (shared with batch scoring), the
endpoints in ``tuesday.serve.endpoints`` (one module per group of routes), what they do
around their own work in ``tuesday.serve.handling``. This module builds the app:

* the route table, with the role token each route needs (``tuesday.serve.auth``):
  ``predict`` for predict/events/ground truth, ``read`` for listings and metrics,
  ``admin`` for promote, rollback and deployments;
* load shedding: beyond ``max_inflight`` requests at once, or when the prediction log is
  full, the answer is 503 with ``Retry-After`` instead of a growing queue;
* every answered row is in this process's spool before the answer is sent; the
  prediction log is written from it by a background task every ``flush_seconds`` and
  flushed on shutdown, and a process that starts commits the spools of dead ones, so
  neither a stop nor a kill loses an answered row;
* every error is JSON with ``error``, ``message`` and ``fix`` and the right status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from tuesday.data import upkeep
from tuesday.data.predictions import PREDICTIONS, read_log
from tuesday.project import LoadedProject, load_project
from tuesday.serve import compiled
from tuesday.serve.endpoints import admin, docs, ingest, predict, rank, status
from tuesday.serve.handling import (
    BodyTooLarge,
    body_limits,
    crash_response,
    endpoint,
    error_response,
    limited_receive,
)
from tuesday.serve.prediction_log import LOG_MAX_ROWS, PredictionLog
from tuesday.serve.predictor import MAX_ROWS, Predictor
from tuesday.serve.state import MAX_INFLIGHT, TIDY_SECONDS, Metrics, State, Tokens
from tuesday.workspace import open_workspace

__all__ = ["MAX_ROWS", "PREDICTIONS", "App", "Extension", "app_from_env", "create_app",
           "read_log"]

_log = logging.getLogger(__name__)

#: the nice value of the prediction log's writer thread
LOG_WRITER_NICE = 10


class App:
    """The server's ASGI app. ``POST /v1/models/NAME/predict`` is answered by the
    predict endpoint directly; everything else (and the lifespan) goes to the Starlette
    app of the other endpoints, ``inner``. ``state`` is the Starlette app's state (its
    ``tuesday`` is the ``State`` of the endpoints)."""

    def __init__(self, inner: Starlette, tuesday: State, *,
                 limits: tuple[int, int] | None = None) -> None:
        self.inner = inner
        self.tuesday = tuesday
        self.state = inner.state
        #: request body limits in bytes: every endpoint but batch, and batch
        self.max_body, self.max_batch = limits or body_limits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            limit = self.max_batch if path.endswith("/batch") else self.max_body
            try:
                receive = limited_receive(scope["headers"], receive, limit)
            except BodyTooLarge as exc:  # announced too large: answered unread
                response = error_response(exc)
                response.headers["connection"] = "close"
                await response(scope, receive, send)
                return
            if (scope["method"] == "POST" and path.startswith("/v1/models/")
                    and path.endswith("/predict")):
                name = path[len("/v1/models/"):-len("/predict")]
                if name and "/" not in name:
                    await predict.predict(self.tuesday, scope, receive, send, name)
                    return
        await self.inner(scope, receive, send)


#: seconds between commits of the prediction log to its Delta table: every answered row is
#: already in the spool on disk, so a longer interval loses nothing and costs fewer
#: commits (about 4 ms of CPU each) and fewer small files
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class Extension:
    """Routes a stage above serve adds to the app (the dashboard, ``tuesday.report.
    dashboard``): ``routes(state)`` builds them, ``paths(loaded)`` gives their OpenAPI
    path items, which ``/openapi.json`` and ``/docs`` list with the server's own."""

    routes: Callable[[State], list[BaseRoute]]
    paths: Callable[[LoadedProject], dict[str, Any]]


def create_app(workspace: str | Path, project: str | Path, *, flush_seconds: float = FLUSH_SECONDS,
               max_inflight: int = MAX_INFLIGHT, log_max_rows: int = LOG_MAX_ROWS,
               log_predictions: bool = True, compile_models: bool | None = None,
               tidy_seconds: float = TIDY_SECONDS, max_body_mb: float | None = None,
               max_batch_mb: float | None = None,
               extensions: Sequence[Extension] = ()) -> App:
    """The ASGI app for one workspace and project.

    ``log_predictions=False`` turns the prediction log off: answers are the same, but
    nothing is written to ``_predictions``, so monitoring, live baselines and replay have
    nothing to read for this server. Meant for benchmarks (``bench/serving.py`` measures
    what the log costs) or a deployment that logs elsewhere; the default is on.

    ``compile_models`` (default: on unless ``TUESDAY_COMPILED=off``) compiles each
    LightGBM version served to C in the background and answers with it once it is
    checked bit-identical to LightGBM (``tuesday.serve.compiled``); the answers do not
    change.

    Every ``tidy_seconds`` the server compacts the prediction log's small files and
    vacuums the replaced ones (``tuesday.data.upkeep``).
    ``max_body_mb`` (default ``TUESDAY_MAX_BODY_MB``, else 64) limits the body of every
    request but a batch, ``max_batch_mb`` (``TUESDAY_MAX_BATCH_MB``, else 2048) a batch's:
    beyond it the answer is 413, without reading the rest.

    ``extensions`` add routes from the stages above serve (see ``Extension``).
    """
    limits = body_limits(max_body_mb, max_batch_mb)
    ws = open_workspace(workspace)
    loaded = load_project(project)
    predictor = Predictor(ws, loaded, log_rows=PredictionLog(ws, max_rows=log_max_rows),
                          log_predictions=log_predictions,
                          compile_models=compiled.enabled() if compile_models is None
                          else compile_models)
    # the log is written by a thread of its own at a lower scheduling priority: on a busy
    # core its bursts (a Delta commit every flush) yield to the requests instead of
    # sharing the core with them half and half
    writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tuesday-log",
                                                   initializer=_lower_priority)
    state = State(ws, loaded, predictor, Metrics(predictor), Tokens(ws), writer,
                  flush_seconds, max_inflight, tidy_seconds, tuple(extensions))
    table: list[BaseRoute] = [*routes(state)]
    for ext in extensions:
        table += ext.routes(state)
    app = Starlette(routes=table, lifespan=functools.partial(_lifespan, state))
    app.state.tuesday = state
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _method_not_allowed)
    app.add_exception_handler(Exception, _crash)
    return App(app, state, limits=limits)


def routes(state: State) -> list[Route]:
    """The route table: each path with its endpoint, metrics name, role and shedding
    (the routes of the extensions come after these)."""
    def guarded(name: str, role: str, fn: Callable[..., Awaitable[Response]],
                shed: bool = False) -> Callable[[Request], Awaitable[Response]]:
        return endpoint(state, name, role, fn, shed=shed)

    def public(fn: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
        return functools.partial(fn, state)  # no token, not counted

    m = "/v1/models/{model}"
    return [
        # answered by ``App`` before the router; listed for the 405 of other methods
        Route(f"{m}/predict", _ByPathParam(functools.partial(predict.predict, state)),
              methods=["POST"]),
        Route(f"{m}/batch", guarded("batch", "predict", predict.batch, shed=True),
              methods=["POST"]),
        Route(f"{m}/rank", guarded("rank", "predict", rank.rank, shed=True),
              methods=["POST"]),
        Route(f"{m}/rank/batch", guarded("rank_batch", "predict", rank.rank_batch,
                                         shed=True), methods=["POST"]),
        Route(f"{m}/feedback", guarded("feedback", "predict", rank.feedback, shed=True),
              methods=["POST"]),
        Route(f"{m}/promote", guarded("promote", "admin", admin.promote), methods=["POST"]),
        Route(f"{m}/rollback", guarded("rollback", "admin", admin.rollback),
              methods=["POST"]),
        Route(f"{m}/deployment", guarded("deployment", "read", admin.get_deployment),
              methods=["GET"]),
        Route(f"{m}/deployment", guarded("deploy", "admin", admin.put_deployment),
              methods=["PUT"]),
        Route(f"{m}/versions", guarded("versions", "read", admin.model_versions),
              methods=["GET"]),
        Route("/v1/ground-truth/{source}",
              guarded("ground_truth", "predict", ingest.ground_truth, shed=True),
              methods=["POST"]),
        Route("/v1/events/{source}", guarded("events", "predict", ingest.post_events,
                                             shed=True), methods=["POST"]),
        Route("/v1/models", guarded("models", "read", admin.models), methods=["GET"]),
        Route("/health", public(status.health), methods=["GET"]),
        Route("/ready", public(status.ready), methods=["GET"]),
        Route("/metrics", guarded("metrics", "read", status.metrics), methods=["GET"]),
        Route("/openapi.json", public(docs.openapi), methods=["GET"]),
        Route("/docs", public(docs.docs), methods=["GET"]),
    ]


class _ByPathParam:
    """An ASGI endpoint for Starlette's router (which takes an object that is not a
    function as an ASGI app): ``fn(scope, receive, send, model)``."""

    def __init__(self, fn: Callable[..., Awaitable[None]]) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.fn(scope, receive, send, scope["path_params"]["model"])


# ------------------------------------------------------------- lifespan and the log


@contextlib.asynccontextmanager
async def _lifespan(state: State, _app: Starlette) -> AsyncIterator[None]:
    """Commit the spools of dead processes first; write the prediction log in the
    background while the app runs; on shutdown, write what is left, close the log's
    spool and the predictor."""
    loop = asyncio.get_running_loop()
    if state.predictor.log_predictions:
        await loop.run_in_executor(state.writer, state.predictor.log.recover)
    task = asyncio.create_task(_flush_log(state))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        state.writer.shutdown(wait=True)
        state.predictor.log.close()
        state.predictor.close()


async def _flush_log(state: State) -> None:
    """Every ``flush_seconds``: the served counts into the metrics, the prediction log's
    waiting rows to its table (on the writer thread); every ``tidy_seconds``, on the same
    thread, the log's compaction and vacuum (``tuesday.data.upkeep``: skipped while
    another process of the workspace does it)."""
    loop = asyncio.get_running_loop()
    log = state.predictor.log
    tidied = loop.time()
    while True:
        await asyncio.sleep(state.flush_seconds)
        state.metrics.count_served()
        if len(log):
            try:
                await loop.run_in_executor(state.writer, log.flush)
            except Exception:  # kept in the buffer; logged by the log itself
                await asyncio.sleep(state.flush_seconds)
        if state.predictor.log_predictions and loop.time() - tidied >= state.tidy_seconds:
            tidied = loop.time()
            try:
                await loop.run_in_executor(state.writer, upkeep.tidy_workspace, state.ws)
            except Exception:  # tried again next time
                _log.exception("compacting the prediction log failed")


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: nice is per thread, and
    threads it starts, such as the Delta writer's, inherit it). Elsewhere nothing."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOG_WRITER_NICE)


# ------------------------------------------------------------------ error answers


async def _not_found(request: Request, _exc: Exception) -> Response:
    return JSONResponse({"error": "not_found",
                         "message": f"There is no endpoint at {request.url.path!r}.",
                         "fix": "See /docs for the endpoints."}, status_code=404)


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    """405 with ``Allow``: the methods of every route of the path (a path may have one
    route per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.path_regex.match(request.url.path):
            methods |= set(route.methods or ())
    allow = ", ".join(sorted(methods))
    return JSONResponse({"error": "method_not_allowed",
                         "message": "This endpoint does not take that HTTP method"
                                    + (f"; it takes {allow}." if allow else "."),
                         "fix": "See /docs for the endpoints and methods."},
                        status_code=405, headers={"Allow": allow} if allow else None)


async def _crash(_request: Request, exc: Exception) -> Response:
    return crash_response(exc)


def app_from_env(extensions: Sequence[Extension] = ()) -> App:
    """App factory for ``uvicorn --factory``: each worker process builds its own app (and
    loads its models after it started). ``tuesday serve`` uses the dashboard's factory,
    ``tuesday.report.dashboard.app_from_env``, which adds the dashboard's routes.

    ``TUESDAY_PREDICTION_LOG=off`` (or ``0``, ``false``, ``no``) turns the prediction
    log off (see ``create_app``); anything else, or unset, leaves it on.
    """
    log_on = os.environ.get("TUESDAY_PREDICTION_LOG", "on").strip().lower() not in (
        "off", "0", "false", "no")
    return create_app(os.environ["TUESDAY_WORKSPACE"], os.environ["TUESDAY_PROJECT"],
                      log_predictions=log_on, extensions=extensions)
