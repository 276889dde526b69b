"""What every endpoint of the server does around its own work: admission (load shedding
beyond the in-flight limit, the role token), reading a JSON body, and the JSON error
answer of a failure (``error``, ``message`` and ``fix``, with the right status).

``endpoint`` wraps a handler ``fn(state, request, actor)`` into a Starlette endpoint that
does all of that and counts the request in the metrics.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive

from tuesday import encoding
from tuesday.errors import Overloaded, TuesdayError
from tuesday.serve import auth, rules
from tuesday.serve.state import State

__all__ = ["MAX_DEPTH", "BodyTooLarge", "Handler", "RuleFailed", "admit", "body_limits",
           "crash_response", "endpoint", "error_response", "failure", "json_body",
           "limited_receive", "parse_json"]

log = logging.getLogger(__name__)

#: an endpoint's own work: the app state, the request and the caller's token name
Handler = Callable[[State, Request, str | None], Awaitable[Response]]


class RuleFailed(TuesdayError):
    """A business rule of the project raised while answering."""

    status = 500
    exit_code = 1
    kind = "rule_failed"


class StrictJSONResponse(JSONResponse):
    """A JSON answer through tuesday's one encoder: NaN and infinities as null (the
    plain ``JSONResponse`` fails on them, which would be a 500)."""

    def render(self, content: Any) -> bytes:
        return encoding.dumps(content).encode("utf-8")


def error_response(exc: TuesdayError) -> JSONResponse:
    """The JSON answer of one of tuesday's errors (with ``Retry-After`` when overloaded)."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else None
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


def crash_response(exc: Exception) -> JSONResponse:
    """500 for an exception that is a bug in tuesday, not a mistake of the caller."""
    log.error("unexpected error", exc_info=exc)
    return JSONResponse({"error": "internal", "message": f"{type(exc).__name__}: {exc}",
                         "fix": "This is a bug in tuesday; please report it."},
                        status_code=500)


_LONG_INT = re.compile(rb"\d{20}")
#: how deep arrays and objects may nest in a request body (a predict body needs 3)
MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
#: request body limits in MB: everything but batch, and batch (streamed to disk)
MAX_BODY_MB = 64.0
MAX_BATCH_MB = 2048.0


class BodyTooLarge(TuesdayError):
    """A request body beyond the server's limit (answered before the rest is read)."""

    status = 413
    exit_code = 2
    kind = "body_too_large"


def body_limits(max_body_mb: float | None = None, max_batch_mb: float | None = None
                ) -> tuple[int, int]:
    """The body limits in bytes: the arguments, else ``TUESDAY_MAX_BODY_MB`` and
    ``TUESDAY_MAX_BATCH_MB``, else ``MAX_BODY_MB`` and ``MAX_BATCH_MB``."""
    out = []
    for given, env, default in ((max_body_mb, "TUESDAY_MAX_BODY_MB", MAX_BODY_MB),
                                (max_batch_mb, "TUESDAY_MAX_BATCH_MB", MAX_BATCH_MB)):
        value: Any = given if given is not None else os.environ.get(env, default)
        try:
            mb = float(value)
        except ValueError:
            mb = -1.0
        if not mb > 0 or mb != mb or mb == float("inf"):
            raise TuesdayError(f"{env} must be a positive number of megabytes; got "
                               f"{value!r}.", fix=f"Set {env}=64, or leave it unset.")
        out.append(int(mb * (1 << 20)))
    return out[0], out[1]


def _too_large(limit: int, got: int | None = None) -> BodyTooLarge:
    mb = limit / (1 << 20)
    return BodyTooLarge(
        f"The request body is larger than the server's limit of {mb:g} MB"
        + (f" ({got} bytes announced)." if got is not None else "."),
        fix="Send fewer rows per request (or the batch endpoint for big files), or start "
            "the server with a larger limit (`tuesday serve --max-body-mb N`, "
            "TUESDAY_MAX_BODY_MB / TUESDAY_MAX_BATCH_MB).")


def limited_receive(headers: list[tuple[bytes, bytes]], receive: Receive, limit: int
                    ) -> Receive:
    """``receive`` that raises ``BodyTooLarge`` once more than ``limit`` bytes of body
    arrived; raised at once when the announced Content-Length is beyond it."""
    for k, v in headers:
        if k == b"content-length":
            try:
                announced = int(v)
            except ValueError:
                break
            if announced > limit:
                raise _too_large(limit, announced)
            break
    seen = 0

    async def guarded() -> Message:
        nonlocal seen
        message = await receive()
        body = message.get("body")
        if body:
            seen += len(body)
            if seen > limit:
                raise _too_large(limit)
        return message
    return guarded


def _check_depth(raw: bytes) -> None:
    """Refuse arrays and objects nested deeper than ``MAX_DEPTH`` (a deep body would
    exhaust the parsers' recursion)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    for text in (raw, None):
        if text is None:  # brackets in strings may have counted: count without strings
            text = _STRING.sub(b'""', raw)
        a = np.frombuffer(text, dtype=np.uint8)
        step = ((a == 91) | (a == 123)).astype(np.int32) - ((a == 93) | (a == 125))
        if int(np.cumsum(step).max(initial=0)) <= MAX_DEPTH:
            return
    raise TuesdayError(f"The request body nests arrays or objects deeper than "
                       f"{MAX_DEPTH} levels.",
                       fix='Send rows as flat objects, e.g. {"rows": [{"station": "A"}]}.')


def parse_json(raw: bytes) -> Any:
    """A request body's JSON: orjson (a tenth of the time), else the standard parser,
    which also takes what orjson refuses (NaN, lone surrogates in strings) so that such
    values reach the checks that name the field, and keeps integers beyond 64 bits exact
    (orjson reads them as floats). Nesting beyond ``MAX_DEPTH`` is refused."""
    _check_depth(raw)
    if not _LONG_INT.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw)
    except RecursionError:
        raise TuesdayError(f"The request body nests arrays or objects deeper than "
                           f"{MAX_DEPTH} levels.", fix="Send rows as flat objects.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TuesdayError(f"The request body is not valid JSON: {exc}.",
                           fix='Send JSON such as {"rows": [{...}]}.') from exc


async def json_body(request: Request) -> Any:
    """The request's body read as JSON (see ``parse_json``)."""
    return parse_json(await request.body())


def admit(state: State, shed: bool, role: str | None, authorization: str | None
          ) -> str | None:
    """Refuse beyond the in-flight limit (when ``shed``) and check the token for
    ``role``; the caller's token name (None without a role or without tokens)."""
    if shed and state.inflight > state.max_inflight:
        state.metrics.shed.labels("inflight").inc()
        raise Overloaded(f"The server is handling {state.inflight - 1} requests "
                         f"(the limit is {state.max_inflight}).")
    tokens = state.tokens.active() if role else None
    return auth.check(tokens, authorization, role) if role and tokens else None


def failure(state: State, exc: Exception, model: str | None) -> Response:
    """The JSON error answer of an exception raised by an endpoint (re-raised when
    it is not one of tuesday's: the app's crash handler answers 500)."""
    if isinstance(exc, Overloaded):
        if exc.reason != "overloaded":
            state.metrics.shed.labels(exc.reason).inc()
        return error_response(exc)
    if isinstance(exc, rules.RuleError):
        return error_response(RuleFailed(
            f"Business rule {exc.rule!r} of model {model!r} failed on row {exc.row}: "
            f"{type(exc.exc).__name__}: {exc.exc}.",
            fix="Fix the rule function in the project module."))
    if isinstance(exc, TuesdayError):
        return error_response(exc)
    raise exc


def endpoint(state: State, name: str, role: str | None, fn: Handler, *,
             shed: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that admits the request (see ``admit``), runs ``fn``, turns
    tuesday's errors into their JSON answers and counts the request as ``name``."""
    async def handler(request: Request) -> Response:
        started = time.perf_counter()
        state.inflight += 1
        try:
            authorization = request.headers.get("authorization")
            if authorization is None and request.method == "GET":  # a dashboard reader
                authorization = auth.cookie_bearer(request.cookies.get(auth.COOKIE))
            actor = admit(state, shed, role, authorization)
            response = await fn(state, request, actor)
        except (TuesdayError, rules.RuleError) as exc:
            response = failure(state, exc, request.path_params.get("model"))
        finally:
            state.inflight -= 1
        state.metrics.observe(name, response.status_code, time.perf_counter() - started)
        return response
    return handler
