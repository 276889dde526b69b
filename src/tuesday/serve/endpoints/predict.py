"""Predict endpoints: one row or many rows (``POST /v1/models/NAME/predict``, answered
straight on ASGI) and a streamed batch of any size (``POST /v1/models/NAME/batch``,
NDJSON or CSV in, NDJSON out). Both answer through ``State.predictor``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import IO, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from tuesday.errors import TuesdayError
from tuesday.serve import rules
from tuesday.serve.handling import admit, crash_response, failure, parse_json
from tuesday.serve.predictor import Predictor, parse_rows
from tuesday.serve.state import State

__all__ = ["BATCH_CHUNK", "BATCH_TYPES", "batch", "csv_row", "explain_flag", "predict",
           "score_chunk"]

#: rows scored at once by the batch endpoint (one NDJSON chunk of the answer)
BATCH_CHUNK = 2_000
#: content types the batch endpoint takes
BATCH_TYPES = ("application/x-ndjson", "application/jsonl", "text/csv")
#: bytes of a batch body held in memory before it is spooled to disk
SPOOL_MEMORY = 8 << 20


async def predict(state: State, scope: Scope, receive: Receive, send: Send,
                  name: str) -> None:
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
        admit(state, True, "predict", authorization)
        parts = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nothing to answer
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = parse_json(parts[0] if len(parts) == 1 else b"".join(parts))
        explain = False
        if scope["query_string"] or (type(body) is dict and "explain" in body):
            explain = explain_flag(scope["query_string"], body)
        rows, many = parse_rows(body)
        out = state.predictor.predict(name, rows, explain=True) if explain else \
            state.predictor.predict(name, rows)
        if not many:
            out.update(out.pop("predictions")[0])
        body = orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY)
    except (TuesdayError, rules.RuleError) as exc:
        response = failure(state, exc, name)
    except Exception as exc:
        response = crash_response(exc)
    finally:
        state.inflight -= 1
    if response is not None:
        await response(scope, receive, send)
        state.metrics.observe("predict", response.status_code, time.perf_counter() - started)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    state.metrics.observe("predict", 200, time.perf_counter() - started)


#: the values the spec lists for ?explain= (exactly these: the spec is the contract)
_TRUE = ("1", "true")
_FALSE = ("0", "false")


def explain_flag(query: bytes, body: Any) -> bool:
    """Whether a predict request asks for explanations: ``?explain=1`` (or ``true``), or
    ``"explain": true`` in the body, which is taken out of it (so that a single-row body
    keeps only the row's fields)."""
    asked = False
    for k, v in urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if k != "explain":
            continue
        if v not in _TRUE + _FALSE:
            raise TuesdayError(f"The query parameter 'explain' must be 1 or 0 (true or false); "
                               f"got {v!r:.40}.", fix="Call .../predict?explain=1.")
        asked = v in _TRUE
    if isinstance(body, dict) and "explain" in body:
        flag = body.pop("explain")
        if not isinstance(flag, bool):
            raise TuesdayError(f"'explain' must be true or false; got {flag!r:.40}.",
                               fix='Send {"explain": true, "rows": [...]}.')
        asked = asked or flag
    return asked


async def batch(state: State, request: Request, _actor: str | None) -> Response:
    """Rows as NDJSON (one object per line) or CSV with a header, any size; answers
    NDJSON, one line per row, in chunks, so neither side holds the whole file."""
    name = request.path_params["model"]
    explain = explain_flag(request.scope["query_string"], None)
    state.predictor.route(name)  # unknown model or no production version: fail up front
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in BATCH_TYPES:
        raise TuesdayError(f"The batch endpoint takes NDJSON or CSV; got content type "
                           f"{kind or 'none'!r}.",
                           fix="Send Content-Type: application/x-ndjson (one JSON object "
                               "per line) or text/csv (with a header row).")
    model = state.loaded.project.model(name)
    numeric = {f.name for f in model.features if f.kind == "request"}
    # the whole body is spooled first (to disk beyond SPOOL_MEMORY): a streaming response
    # listens for the client's disconnect and would consume the request's messages
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 (closed by _lines)
    async for part in request.stream():
        spool.write(part)
    if not spool.tell():
        spool.close()
        raise TuesdayError("The batch body is empty.",
                           fix="Send NDJSON (one JSON object per line) or CSV with a header.")
    spool.seek(0)
    rows = _batch_rows(_lines(spool), kind, numeric)
    return StreamingResponse(_answer_chunks(state.predictor, name, rows, explain),
                             media_type="application/x-ndjson")


def _lines(spool: IO[bytes]) -> Iterator[str]:
    """The spooled body's lines, without line ends; closes the spool when done."""
    try:
        for raw in spool:
            yield raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
    finally:
        spool.close()


def _batch_rows(lines: Iterable[str], kind: str, numeric: set[str]) -> Iterator[dict[str, Any]]:
    """The request rows of a batch body's lines (blank lines skipped); a line that is not
    a row becomes ``{"_error": ...}``, answered with that error."""
    header: list[str] | None = None
    for ln in lines:
        if not ln.strip():
            continue
        if kind == "text/csv":
            try:
                values = next(csv.reader([ln]))
            except csv.Error as exc:  # e.g. a carriage return inside the line
                yield {"_error": f"line is not valid CSV: {exc}"}
                continue
            if header is None:
                header = values
                continue
            yield csv_row(header, values, numeric)
            continue
        try:
            row = json.loads(ln)
        except json.JSONDecodeError as exc:
            row = {"_error": f"line is not valid JSON: {exc}"}
        if not isinstance(row, dict):
            row = {"_error": f"line is not a JSON object: {ln[:80]!r}"}
        yield row


async def _answer_chunks(predictor: Predictor, name: str, rows: Iterator[dict[str, Any]],
                         explain: bool = False) -> AsyncIterator[bytes]:
    """The NDJSON answers of ``rows``, ``BATCH_CHUNK`` rows at a time, with a pause for
    the event loop between chunks."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= BATCH_CHUNK:
            yield score_chunk(predictor, name, chunk, explain=explain)
            chunk = []
            await asyncio.sleep(0)
    if chunk:
        yield score_chunk(predictor, name, chunk, explain=explain)


def score_chunk(predictor: Predictor, name: str, chunk: list[dict[str, Any]], *,
                explain: bool = False) -> bytes:
    """NDJSON answers of one chunk of batch rows: each row's answer or its error (with
    its ``explanation`` when asked)."""
    try:
        body = predictor.predict(name, chunk, partial=True, slate=False, explain=explain)
        answers = body["predictions"]
    except TuesdayError as exc:  # e.g. the log is full: say so on every row
        answers = [{"prediction": None, "error": exc.message} for _ in chunk]
    for row, ans in zip(chunk, answers, strict=True):
        if "_error" in row:
            ans["error"] = row["_error"]
    return "".join(json.dumps(a) + "\n" for a in answers).encode()


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
