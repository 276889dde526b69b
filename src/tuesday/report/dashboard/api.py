"""The JSON endpoints the dashboard's pages read, for scripts too (role ``read``, but
acknowledging an alert, ``admin``):

* ``GET /v1/models/NAME/report?version=N``: the evaluation report (default: production);
* ``GET /v1/models/NAME/monitor?as_of=T``: the monitor report with drift over time, open
  alerts and the health light;
* ``GET /v1/models/NAME/explain?entity=E&at=T``: the production version's explained
  answer for one entity and time (computed, not logged);
* ``GET /v1/requests/ID/explain``: a logged answer explained again;
* ``GET /v1/alerts?model=NAME&status=open``: alerts, newest first;
* ``POST /v1/alerts/ID/acknowledge`` with ``{"note": "..."}``.

``GET /v1/models`` and ``GET /v1/models/NAME/versions`` are the server's own
(``tuesday.serve.endpoints.admin``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tuesday.errors import TuesdayError
from tuesday.report.dashboard.board import Board
from tuesday.serve.endpoints.admin import admin_body
from tuesday.serve.handling import StrictJSONResponse as JSONResponse
from tuesday.serve.handling import endpoint
from tuesday.serve.state import State
from tuesday.watch.alerts import STATUSES

__all__ = ["int_param", "routes"]


def int_param(value: str | None, what: str, example: str) -> int | None:
    """A whole number from the query string (None when not given; an empty value is
    not a number)."""
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1 or n > 2**63 - 1:
        raise TuesdayError(f"{what} must be a whole number from 1; got {value!r:.40}.",
                           fix=f"Pass for example {example}.")
    return n


async def _report(board: Board, _state: State, request: Request, _actor: str | None
                  ) -> Response:
    version = int_param(request.query_params.get("version"), "'version'", "?version=2")
    return JSONResponse(await asyncio.to_thread(board.report, request.path_params["model"],
                                                version))


async def _monitor(board: Board, _state: State, request: Request, _actor: str | None
                   ) -> Response:
    return JSONResponse(await asyncio.to_thread(board.monitor, request.path_params["model"],
                                                request.query_params.get("as_of")))


async def _explain(board: Board, _state: State, request: Request, _actor: str | None
                   ) -> Response:
    q = request.query_params
    entity = q.get("entity")
    if not entity or not entity.strip():
        model = board.model(request.path_params["model"])
        raise TuesdayError(f"Say which prediction of {model.name!r} to explain: "
                           f"?entity={model.entity.key.upper()} (and &at=TIME).",
                           fix="Call .../explain?entity=KEY&at=2016-07-05, or "
                               "/v1/requests/ID/explain for a logged answer.")
    return JSONResponse(await asyncio.to_thread(
        functools.partial(board.explain, request.path_params["model"], entity=entity,
                          at=q.get("at"))))


async def _explain_request(board: Board, _state: State, request: Request,
                           _actor: str | None) -> Response:
    return JSONResponse(await asyncio.to_thread(
        board.explain_request, request.path_params["request_id"]))


async def _alerts(board: Board, _state: State, request: Request, _actor: str | None
                  ) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise TuesdayError(f"'status' must be one of {', '.join(STATUSES)}; got "
                           f"{status!r:.40}.", fix="Pass ?status=open.")
    return JSONResponse(await asyncio.to_thread(
        board.alerts, request.query_params.get("model"), status))


async def _acknowledge(board: Board, _state: State, request: Request, actor: str | None
                       ) -> Response:
    alert_id = int_param(request.path_params["alert"], "The alert id", "/v1/alerts/3/...")
    body = await admin_body(request)
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise TuesdayError(f"'note' must be a string; got {note!r:.60}.",
                           fix='Send {"note": "looking into it"}.')
    assert alert_id is not None
    return JSONResponse(await asyncio.to_thread(board.acknowledge, alert_id,
                                                actor or "http", note or ""))


def routes(state: State, board: Board) -> list[BaseRoute]:
    """The JSON routes, each with its role (``tuesday.serve.handling.endpoint``)."""
    def guarded(name: str, role: str, fn: Callable[..., Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        return endpoint(state, name, role, functools.partial(fn, board))

    m = "/v1/models/{model}"
    table: list[tuple[str, str, str, Any, str]] = [
        (f"{m}/report", "report", "read", _report, "GET"),
        (f"{m}/monitor", "monitor", "read", _monitor, "GET"),
        (f"{m}/explain", "explain", "read", _explain, "GET"),
        ("/v1/requests/{request_id}/explain", "explain_request", "read", _explain_request,
         "GET"),
        ("/v1/alerts", "alerts", "read", _alerts, "GET"),
        ("/v1/alerts/{alert}/acknowledge", "acknowledge", "admin", _acknowledge, "POST"),
    ]
    return [Route(path, guarded(name, role, fn), methods=[method])
            for path, name, role, fn, method in table]
