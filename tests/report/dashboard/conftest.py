"""One served ridership workspace (six weeks of service, see ``served.py``) and one real
``tuesday serve`` on it for the dashboard's tests, with a token of each role."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.report.dashboard.served import ARTIFACTS, served_workspace
from tests.serve.live import live_server
from tuesday.project import LoadedProject
from tuesday.serve import auth
from tuesday.workspace import Workspace


@pytest.fixture(scope="package")
def board_ws(short_trained_ws: Workspace, ridership: LoadedProject,
             tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return served_workspace(short_trained_ws, ridership, tmp_path_factory.mktemp("board"))


@pytest.fixture(scope="package")
def tokens(board_ws: Workspace) -> dict[str, str]:
    """A token of each role (so the dashboard asks for one)."""
    at = datetime(2016, 8, 25)
    return {role: auth.create(board_ws, f"{role}-person", role, as_of=at)
            for role in ("read", "admin", "predict")}


@pytest.fixture(scope="package")
def server(board_ws: Workspace, tokens: dict[str, str]) -> Iterator[str]:
    with live_server(board_ws.root) as (base, _proc):
        yield base


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the folder of the dashboard's screenshots when the browser tests wrote any."""
    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"dashboard screenshots ({len(shots)}): {ARTIFACTS}")
