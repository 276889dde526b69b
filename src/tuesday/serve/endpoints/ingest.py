"""Ingest endpoints: ground truth (``POST /v1/ground-truth/SOURCE``: rows validated by
the source's contract and versioned) and events (``POST /v1/events/SOURCE``: ingested,
then applied to each entity's online state). Both answer 207 when rows were quarantined.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tuesday.data import derived, events, tables
from tuesday.project import parse_time
from tuesday.serve.handling import json_body
from tuesday.serve.predictor import parse_rows, wall_clock
from tuesday.serve.state import State

__all__ = ["ground_truth", "post_events", "rows_request"]


async def rows_request(state: State, request: Request) -> tuple[Any, pd.DataFrame, datetime]:
    """The source, rows and logical time of a ground-truth or events request."""
    source = state.loaded.project.source(request.path_params["source"])
    body = await json_body(request)
    rows, _ = parse_rows(body)
    as_of = wall_clock()
    if isinstance(body, dict) and "as_of" in body:
        as_of = parse_time(body["as_of"], what="'as_of'").to_pydatetime()
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=source.contract.names)
    return source, frame, as_of


async def ground_truth(state: State, request: Request, _actor: str | None) -> Response:
    """POST /v1/ground-truth/SOURCE: ingest the rows as a new version of the source."""
    source, frame, as_of = await rows_request(state, request)
    result = await asyncio.to_thread(tables.ingest_frame, state.ws, source, frame,
                                     as_of=as_of, file="http")
    made = await asyncio.to_thread(derived.after_ingest, state.ws, state.loaded.project,
                                   source.name)
    status = 200 if result.report.quarantined == 0 else 207
    body = result.to_dict()
    if made:
        body["derived"] = [m.to_dict() for m in made]
    return JSONResponse(body, status_code=status)


async def post_events(state: State, request: Request, _actor: str | None) -> Response:
    """POST /v1/events/SOURCE: ingest the events and update the entities' online state."""
    source, frame, as_of = await rows_request(state, request)
    result = await asyncio.to_thread(events.apply, state.ws, state.loaded.project, source,
                                     frame, as_of)
    status = 200 if result.ingest.report.quarantined == 0 else 207
    return JSONResponse(result.to_dict(), status_code=status)
