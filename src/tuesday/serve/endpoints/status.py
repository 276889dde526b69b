"""Status endpoints: liveness (``/health``), readiness (``/ready``: every model of the
project has a production version loaded; 503 otherwise) and the Prometheus metrics
(``/metrics``, role ``read``).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tuesday.errors import TuesdayError
from tuesday.serve.state import State

__all__ = ["health", "metrics", "ready"]


async def health(_state: State, _request: Request) -> Response:
    """GET /health: the process answers."""
    return JSONResponse({"status": "ok"})


async def ready(state: State, _request: Request) -> Response:
    """GET /ready: the production version of each model, or why it has none."""
    status: dict[str, int | str] = {}
    for m in state.loaded.project.models:
        try:
            status[m.name] = state.predictor.route(m.name).production.version
        except TuesdayError as exc:
            status[m.name] = exc.message
    ok = all(isinstance(v, int) for v in status.values())
    return JSONResponse({"ready": ok, "models": status}, status_code=200 if ok else 503)


async def metrics(state: State, _request: Request, _actor: str | None) -> Response:
    """GET /metrics: the server's metrics in Prometheus' text format."""
    state.metrics.count_served()
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
