"""Shared fixtures: a ridership workspace built once per test session from the real data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tuesday import servers
from tuesday.data import tables
from tuesday.data.materialize import materialize
from tuesday.project import LoadedProject, load_project
from tuesday.release import registry
from tuesday.train import training
from tuesday.workspace import Workspace, copy_metadata, open_workspace

# servers compile their models only in the tests that ask for it (tests/test_compiled.py),
# into a cache of this run's own
os.environ.setdefault("TUESDAY_COMPILED", "off")
os.environ.setdefault("TUESDAY_COMPILED_CACHE", tempfile.mkdtemp(prefix="tuesday-compiled-"))

RIDERSHIP = Path(__file__).resolve().parents[1] / "src/tuesday/examples/ridership/project.py"
PIZZA = RIDERSHIP.parents[1] / "pizza" / "project.py"
AS_OF = datetime(2016, 6, 30)


@pytest.fixture(scope="session")
def ridership() -> LoadedProject:
    return load_project(RIDERSHIP)


@pytest.fixture(scope="session")
def ridership_files(tmp_path_factory: pytest.TempPathFactory, ridership: LoadedProject
                    ) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ridership-files")
    return dict(ridership.module.example_files(folder, until="2016-06-30"))


@pytest.fixture(scope="session")
def trained_ws(tmp_path_factory: pytest.TempPathFactory, ridership: LoadedProject,
               ridership_files: dict[str, Path]) -> Workspace:
    """History ingested up to 2016-06-30 and version 1 of ridership_14d trained."""
    ws = open_workspace(tmp_path_factory.mktemp("ridership-ws"))
    for name, path in ridership_files.items():
        tables.ingest_file(ws, ridership.project.source(name), path, as_of=AS_OF)
    training.train(ws, ridership, "ridership_14d", AS_OF)
    return ws


@pytest.fixture(scope="session")
def short_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ridership example with a 3-fold backtest, for tests that train again (a
    reproduce, a comparison) and need not pay for the declared 26 folds."""
    text = RIDERSHIP.read_text()
    assert "Backtest(folds=26," in text
    path = tmp_path_factory.mktemp("short-project") / "project.py"
    path.write_text(text.replace("Backtest(folds=26,", "Backtest(folds=3,"))
    return path


@pytest.fixture(scope="session")
def short_trained_ws(tmp_path_factory: pytest.TempPathFactory, trained_ws: Workspace,
                     short_project: Path) -> Workspace:
    """``trained_ws`` with version 2 trained by ``short_project``."""
    dst = tmp_path_factory.mktemp("short-ws") / "ws"
    shutil.copytree(trained_ws.root, dst)
    ws = open_workspace(dst)
    training.train(ws, load_project(short_project), "ridership_14d", AS_OF)
    return ws


@pytest.fixture()
def ws_copy(trained_ws: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the trained workspace, for tests that change it."""
    dst = tmp_path / "ws"
    shutil.copytree(trained_ws.root, dst)
    return open_workspace(dst)


@pytest.fixture()
def served_ws(ws_copy: Workspace, ridership: LoadedProject) -> Workspace:
    """A private copy with version 1 promoted and its online features materialized."""
    model = ridership.project.model("ridership_14d")
    registry.promote(ws_copy, model, 1, as_of=AS_OF)
    materialize(ws_copy, ridership.project, model, AS_OF)
    return ws_copy


@pytest.fixture(scope="session")
def pizza() -> LoadedProject:
    """The pizza place: 91 items, daily units, many of them intermittent."""
    return load_project(PIZZA)


@pytest.fixture(scope="session")
def pizza_frames(pizza: LoadedProject) -> dict[str, object]:
    return dict(pizza.module.example_frames())
# ------------------------------------------------- real servers of the production profile
# Each starts on first use, once per test session, on a free loopback port in a temporary
# folder, and stops at the end (tuesday.servers). A test gets a fresh database, key prefix
# or bucket prefix of its own on the shared server.


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Postgres]:
    server = servers.start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Redis]:
    server = servers.start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.S3]:
    server = servers.start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


def on_postgres(ws: Workspace, server: servers.Postgres) -> Workspace:
    """``ws`` (a private copy) moved to a new PostgreSQL database; the folder records it,
    so worker processes that open the folder use PostgreSQL too."""
    url = server.database()
    copy_metadata(ws, url)
    return open_workspace(ws.root, metadata=url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.production)])
def meta_ws(request: pytest.FixtureRequest, ws_copy: Workspace) -> Workspace:
    """``ws_copy`` with its metadata on SQLite, or moved to PostgreSQL."""
    if request.param == "sqlite":
        return ws_copy
    return on_postgres(ws_copy, request.getfixturevalue("postgres_server"))
