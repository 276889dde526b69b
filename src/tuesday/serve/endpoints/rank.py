"""Rank endpoints of ranking models: a slate for one request
(``POST /v1/models/NAME/rank``), slates for a stream of requests (``POST
/v1/models/NAME/rank/batch``, NDJSON in and out) and the clicks on served slates
(``POST /v1/models/NAME/feedback``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tuesday import encoding
from tuesday.data import tables
from tuesday.errors import TuesdayError
from tuesday.project import parse_time
from tuesday.serve.handling import json_body
from tuesday.serve.predictor import parse_rows, wall_clock
from tuesday.serve.ranker import Ranker
from tuesday.serve.state import State

__all__ = ["feedback", "rank", "rank_batch", "rank_lines", "ranker"]

#: request lines of a batch ranked between two pauses for the event loop
BATCH_CHUNK = 50


def ranker(state: State) -> Ranker:
    if state.ranker is None:
        state.ranker = Ranker(state.predictor)
    return state.ranker


def _json(content: Any, status: int = 200) -> Response:
    return Response(encoding.dumps(content), status_code=status,
                    media_type="application/json")


async def rank(state: State, request: Request, _actor: str | None) -> Response:
    """POST /v1/models/NAME/rank: the slate for one user and context."""
    body = await json_body(request)
    return _json(ranker(state).rank(request.path_params["model"], body))


async def rank_batch(state: State, request: Request, _actor: str | None) -> Response:
    """POST /v1/models/NAME/rank/batch: NDJSON, one rank request per line, answered
    with one slate (or one error) per line, in order."""
    name = request.path_params["model"]
    rk = ranker(state)
    rk.model(name)
    state.predictor.route(name)  # no production version: fail up front
    raw = await request.body()
    if not raw.strip():
        raise TuesdayError("The batch body is empty.",
                           fix="Send NDJSON: one rank request (a JSON object) per line.")
    lines = raw.decode("utf-8", errors="replace").splitlines()
    return StreamingResponse(_chunks(rk, name, lines), media_type="application/x-ndjson")


async def _chunks(rk: Ranker, name: str, lines: list[str]) -> AsyncIterator[bytes]:
    part: list[str] = []
    for n, out in enumerate(rank_lines(rk, name, lines)):
        part.append(out)
        if n % BATCH_CHUNK == BATCH_CHUNK - 1:
            yield "".join(part).encode()
            part = []
            await asyncio.sleep(0)
    if part:
        yield "".join(part).encode()


def rank_lines(rk: Ranker, name: str, lines: list[str]) -> Iterator[str]:
    """The NDJSON answer line of each request line (blank lines skipped); a line that
    cannot be ranked is answered with its error."""
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        try:
            body = json.loads(ln)
            answer = rk.rank(name, body)
        except json.JSONDecodeError as exc:
            answer = {"line": i + 1, "error": f"line is not valid JSON: {exc}"}
        except TuesdayError as exc:
            answer = {"line": i + 1, "error": exc.message}
        yield encoding.dumps(answer) + "\n"


async def feedback(state: State, request: Request, _actor: str | None) -> Response:
    """POST /v1/models/NAME/feedback: clicks on served slates (``request_id``, the
    entity key, ``position``, the reward column: 1 when absent; the time: now when
    absent), ingested as a version of the model's feedback source."""
    name = request.path_params["model"]
    model = ranker(state).model(name)
    assert model.slate is not None
    if model.slate.feedback is None:
        raise TuesdayError(f"Model {name!r} declares no feedback source.",
                           fix="Declare Slate(feedback=SOURCE) with the columns "
                               f"request_id, {model.entity.key}, position and "
                               f"{model.slate.reward}.")
    source = state.loaded.project.source(model.slate.feedback)
    body = await json_body(request)
    rows, _ = parse_rows(body)
    as_of = wall_clock()
    if isinstance(body, dict) and "as_of" in body:
        as_of = parse_time(body["as_of"], what="'as_of'").to_pydatetime()
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=source.contract.names)
    reward = model.slate.reward
    if reward not in frame.columns:
        frame[reward] = 1
    if source.time and source.time not in frame.columns:
        frame[source.time] = pd.Timestamp(as_of).isoformat()
    result = await asyncio.to_thread(tables.ingest_frame, state.ws, source, frame,
                                     as_of=as_of, file="http")
    status = 200 if result.report.quarantined == 0 else 207
    return JSONResponse(result.to_dict(), status_code=status)
