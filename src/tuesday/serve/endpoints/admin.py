"""Registry endpoints: the model versions (``GET /v1/models``, and one model's with their
metrics and audit, ``GET /v1/models/NAME/versions``, role ``read``) and the
admin changes of a model's serving (role ``admin``): promote, rollback, and its
deployment (``GET`` with role ``read``, ``PUT`` to change mode, version and percent).
Each change is refreshed in the predictor at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tuesday.errors import TuesdayError
from tuesday.release import registry
from tuesday.serve.handling import StrictJSONResponse as JSONResponse
from tuesday.serve.handling import json_body
from tuesday.serve.predictor import wall_clock
from tuesday.serve.state import State
from tuesday.serve.timing import served_latency
from tuesday.train.training import check_artifact

__all__ = ["admin_body", "get_deployment", "model_versions", "models", "promote",
           "put_deployment", "rollback", "version_of", "versions_payload"]


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


async def models(state: State, _request: Request, _actor: str | None) -> Response:
    """GET /v1/models: every registered version of every model."""
    return JSONResponse({"models": [{k: _plain(v) for k, v in r.items()}
                                    for r in registry.versions(state.ws)]})


async def model_versions(state: State, request: Request, _actor: str | None) -> Response:
    """GET /v1/models/NAME/versions: see ``versions_payload``."""
    model = state.loaded.project.model(request.path_params["model"])
    return JSONResponse(await asyncio.to_thread(versions_payload, state, model.name))


def versions_payload(state: State, name: str) -> dict[str, Any]:
    """A model's versions, newest first, each against its best baseline
    (``registry.version_summaries``); the newest version against production on the
    primary metric and per slice; the audit of every stage change; the deployment and
    its history."""
    ws = state.ws
    model = state.loaded.project.model(name)
    summaries = registry.version_summaries(ws, name)
    prod = registry.production(ws, name)
    newest = None
    if summaries and (prod is None or summaries[0]["version"] != prod["version"]):
        row = registry.get_version(ws, name, summaries[0]["version"])
        newest = {"version": row["version"],
                  "versus_production": registry.versus_production(model, row, prod),
                  "slices": registry.slice_changes(model, row["metrics"], prod)}
    return {"model": name, "production_version": prod["version"] if prod else None,
            "versions": [{k: _plain(v) for k, v in s.items()} for s in summaries],
            "newest_versus_production": newest,
            "audit": [{k: _plain(v) for k, v in a.items()} for a in registry.audit(ws, name)],
            "deployment": {k: _plain(v) for k, v in registry.deployment(ws, name).items()},
            "deployments": [{k: _plain(v) for k, v in d.items()}
                            for d in registry.deployment_history(ws, name)]}


async def admin_body(request: Request) -> dict[str, Any]:
    """The JSON object of an admin request (an empty body is ``{}``)."""
    raw = await request.body()
    body = await json_body(request) if raw.strip() else {}
    if not isinstance(body, dict):
        raise TuesdayError("The request body must be a JSON object.",
                           fix='Send for example {"version": 2, "reason": "..."}.')
    return body


#: the largest version number (a signed 64-bit integer in the registry)
MAX_VERSION = 2**63 - 1


def reason_of(body: dict[str, Any]) -> str:
    """The body's ``reason``: a string, or empty when not given."""
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise TuesdayError(f"'reason' must be a string; got {reason!r:.60}.",
                           fix='Send {"reason": "why"}.')
    return reason or ""


def version_of(body: dict[str, Any]) -> int:
    """The body's ``version``, a positive whole number that fits in 63 bits."""
    v = body.get("version")
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**64:  # JSON 2.0 is 2
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_VERSION:
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:40] + "..."
        raise TuesdayError(f"'version' must be a whole number from 1 to {MAX_VERSION}; got "
                           f"{shown}.", fix='Send {"version": 2}.')
    return v


async def promote(state: State, request: Request, actor: str | None) -> Response:
    """POST /v1/models/NAME/promote: make a version production (through its gates)."""
    body = await admin_body(request)
    model = state.loaded.project.model(request.path_params["model"])
    reason = body.get("override_reason")
    if reason is not None and not isinstance(reason, str):
        raise TuesdayError(f"'override_reason' must be a string; got {reason!r:.60}.",
                           fix='Send {"version": 2, "override_reason": "why it ships"}.')
    version = version_of(body)
    await asyncio.to_thread(_check_artifact, state, model.name, version)
    res = await asyncio.to_thread(registry.promote, state.ws, model, version,
                                  as_of=wall_clock(), actor=actor or "http",
                                  override_reason=reason,
                                  timer=served_latency(state.ws, state.loaded))
    state.predictor.refresh(model.name)
    return JSONResponse(res)


def _check_artifact(state: State, name: str, version: int) -> None:
    """A broken model file is never promoted (``ArtifactCorrupt``, a 500-class answer)."""
    check_artifact(state.ws, registry.get_version(state.ws, name, version)["manifest"])


async def rollback(state: State, request: Request, actor: str | None) -> Response:
    """POST /v1/models/NAME/rollback: production goes back to the previous version."""
    body = await admin_body(request)
    name = state.loaded.project.model(request.path_params["model"]).name
    res = await asyncio.to_thread(registry.rollback, state.ws, name, as_of=wall_clock(),
                                  actor=actor or "http",
                                  reason=reason_of(body) or "rollback")
    state.predictor.refresh(name)
    return JSONResponse(res)


async def get_deployment(state: State, request: Request, _actor: str | None) -> Response:
    """GET /v1/models/NAME/deployment: the model's deployment."""
    name = state.loaded.project.model(request.path_params["model"]).name
    return JSONResponse({k: _plain(v)
                         for k, v in registry.deployment(state.ws, name).items()})


async def put_deployment(state: State, request: Request, actor: str | None) -> Response:
    """PUT /v1/models/NAME/deployment: change the mode, challenger version or percent."""
    body = await admin_body(request)
    name = state.loaded.project.model(request.path_params["model"]).name
    mode = body.get("mode")
    version = body.get("version")
    pct = body.get("percent")
    if version is not None:
        version = version_of(body)
    if pct is not None and (isinstance(pct, bool) or not isinstance(pct, int | float)):
        raise TuesdayError(f"'percent' must be a number; got {pct!r}.",
                           fix='Send {"mode": "canary", "version": 2, "percent": 10}.')
    res = registry.deploy(state.ws, name, str(mode), version, percent=pct, as_of=wall_clock(),
                          actor=actor or "http", reason=reason_of(body))
    state.predictor.refresh(name)
    return JSONResponse({k: _plain(v) for k, v in res.items()})
