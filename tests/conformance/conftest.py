"""The conformance suite: the same tests on every backend combination.

``profile`` is the one parametrised fixture: it sets ``TUESDAY_METADATA_URL``,
``TUESDAY_ONLINE_URL`` and ``TUESDAY_STORAGE_URL`` to a fresh database, key prefix and
bucket prefix of the session's servers, so every workspace the test opens (in its own
process or in the processes it starts) is on that combination. The test modules here
import the tests of their stage's modules unchanged and run them under each profile; the
embedded profile is those modules themselves. A new backend is one more entry in
``PROFILES`` (and one more server fixture in tests/conftest.py).

Every test here is marked ``production``: ``.ci/run`` runs them after the default suite.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuesday import storage
from tuesday.storage import ENV
from tuesday.workspace import Workspace, copy_metadata, open_workspace

#: each profile: (metadata, online, storage) backends; "" is the embedded one. The full
#: production combination, and each server alone beside the embedded others.
PROFILES = {
    "postgresql-redis-s3": ("postgresql", "redis", "s3"),
    "postgresql": ("postgresql", "", ""),
    "redis": ("", "redis", ""),
    "s3": ("", "", "s3"),
}
_SERVERS = {"postgresql": "postgres_server", "redis": "redis_server", "s3": "s3_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.production)


@pytest.fixture(params=list(PROFILES), autouse=True)
def profile(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Iterator[dict[str, str]]:
    """The locations of this test's workspaces, set in the environment."""
    yield from on_profile(request.param, request, monkeypatch, tmp_path)


def on_profile(name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> Iterator[dict[str, str]]:
    """Set the environment to fresh locations of profile ``name`` for one test."""
    meta, online, store = PROFILES[name]
    locs = {"metadata": "", "online": "", "storage": ""}
    if meta:
        locs["metadata"] = request.getfixturevalue(_SERVERS[meta]).database()
    if online:
        locs["online"] = request.getfixturevalue(_SERVERS[online]).url()
    if store:
        locs["storage"] = request.getfixturevalue(_SERVERS[store]).url()
    for kind, var in ENV.items():
        if locs[kind]:
            monkeypatch.setenv(var, locs[kind])
        else:
            monkeypatch.delenv(var, raising=False)
    yield locs
    if store:  # the test wrote nothing to local disk that belongs in the bucket
        assert not list(tmp_path.glob("**/tables/*/_delta_log/*.json"))
        assert not list(tmp_path.glob("**/artifacts/sha256/*/*"))


def moved(root: Path, locs: dict[str, str]) -> Workspace:
    """The embedded workspace in ``root`` (a private copy) moved onto the profile: its
    metadata rows copied to the database, its tables, quarantine and artifacts to the
    bucket. The online store is not copied: materialize fills it."""
    embedded = Workspace(root)
    if locs["metadata"]:
        copy_metadata(embedded, locs["metadata"])
    if locs["storage"]:
        storage.copy_tree(embedded.storage, storage.Storage.of(locs["storage"], root),
                          "tables", "quarantine", "artifacts")
        for top in ("tables", "quarantine", "artifacts"):  # nothing is read from there now
            shutil.rmtree(root / top)
    return open_workspace(root)


@pytest.fixture()
def ws_copy(trained_ws: Workspace, tmp_path: Path, profile: dict[str, str]) -> Workspace:
    """A private copy of the trained workspace, on the profile."""
    dst = tmp_path / "ws"
    shutil.copytree(trained_ws.root, dst)
    return moved(dst, profile)


@pytest.fixture()
def meta_ws(ws_copy: Workspace) -> Workspace:
    return ws_copy
