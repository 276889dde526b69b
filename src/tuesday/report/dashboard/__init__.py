"""The dashboard: pages for business readers at ``/ui/``, served by ``tuesday serve`` in
the same process as the API, with the same role tokens (a ``read`` token entered once on
``/ui/login`` and kept in an HttpOnly cookie; open when the workspace has no token).

What a reader can answer on its pages, without a terminal:

* the models overview (``/ui/``): each model's stage and version, when it was last
  trained, a health light, and served accuracy against the best baseline over the last
  weeks;
* one model (``/ui/models/NAME``): served accuracy over time, the backtest against the
  baselines per fold and per slice, the entities that lose most to the baseline and the
  days it lost most (explained), drift per feature per week, deployment variants with
  their intervals, alerts (an admin acknowledges them), versions side by side and the
  audit of stage changes;
* explain (``/ui/models/NAME/explain``): one prediction, by entity and time or by a
  request id of the prediction log, in a sentence and a waterfall of its reasons.

The pages are server-rendered HTML with inline SVG (:mod:`tuesday.charts`); nothing is
fetched from another host. Every figure comes from the payload a JSON endpoint answers
(:mod:`tuesday.report.dashboard.api`; :class:`~tuesday.report.dashboard.board.Board`
computes them once for both), and says which in its ``data-src`` and ``data-path``.

The dashboard sits in the report stage, above serve: it adds its routes to the server's
app through a ``tuesday.serve.server.Extension``. :func:`create_app` and
:func:`app_from_env` build the server with it (``tuesday serve`` uses the latter).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from tuesday.report.dashboard import api, openapi, pages
from tuesday.report.dashboard.board import Board
from tuesday.serve import server
from tuesday.serve.state import State

__all__ = ["EXTENSION", "app_from_env", "create_app"]


def _routes(state: State) -> list[BaseRoute]:
    board = Board(state)
    return [*api.routes(state, board), *pages.routes(state, board)]


#: the dashboard's routes and OpenAPI paths, for ``tuesday.serve.server.create_app``
EXTENSION = server.Extension(routes=_routes, paths=openapi.paths)


def create_app(workspace: str | Path, project: str | Path, *,
               extensions: Sequence[server.Extension] = (), **options: Any) -> server.App:
    """The server app with the dashboard (the options of ``tuesday.serve.server.
    create_app``)."""
    return server.create_app(workspace, project, extensions=(EXTENSION, *extensions),
                             **options)


def app_from_env() -> server.App:
    """``tuesday.serve.server.app_from_env`` with the dashboard: the factory ``tuesday
    serve`` gives uvicorn."""
    return server.app_from_env(extensions=(EXTENSION,))
