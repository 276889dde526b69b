"""Workspace locations by URL: defaults, environment, CLI flags, the record in the folder,
bad URLs, and the metadata schema version (upgraded in place, an unknown one refused)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuesday import meta, workspace
from tuesday.cli import main
from tuesday.errors import TuesdayError
from tuesday.storage import ENV, Locations
from tuesday.workspace import open_workspace


@pytest.fixture(autouse=True)
def _no_env(monkeypatch) -> None:
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)


def test_the_default_is_the_folder_and_records_nothing(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    assert ws.locations == Locations() and ws.locations.embedded
    assert ws.meta_url == f"sqlite:///{tmp_path / 'ws' / 'meta.sqlite'}"
    assert ws.online_url == "sqlite" and ws.storage_options is None
    assert ws.table_uri("ridership") == str(tmp_path / "ws" / "tables" / "ridership")
    assert not (tmp_path / "ws" / "locations.json").exists()


def test_locations_from_the_environment_are_recorded_in_the_folder(tmp_path: Path,
                                                                   monkeypatch) -> None:
    db = tmp_path / "elsewhere" / "meta.sqlite"
    db.parent.mkdir()
    monkeypatch.setenv("TUESDAY_METADATA_URL", f"sqlite:///{db}")
    monkeypatch.setenv("TUESDAY_STORAGE_URL", str(tmp_path / "data"))
    ws = open_workspace(tmp_path / "ws")
    assert db.exists() and ws.meta_url == f"sqlite:///{db}"
    assert ws.table_uri("x") == str(tmp_path / "data" / "tables" / "x")
    record = tmp_path / "ws" / "locations.json"
    assert json.loads(record.read_text())["metadata"] == f"sqlite:///{db}"
    assert record.stat().st_mode & 0o077 == 0  # URLs may hold passwords
    monkeypatch.delenv("TUESDAY_METADATA_URL")
    monkeypatch.delenv("TUESDAY_STORAGE_URL")
    again = open_workspace(tmp_path / "ws")  # the folder alone opens the same workspace
    assert again.locations == ws.locations
    given = open_workspace(tmp_path / "ws", metadata=f"sqlite:///{tmp_path / 'm2.sqlite'}")
    assert given.meta_url.endswith("m2.sqlite")  # an explicit location wins


@pytest.mark.parametrize(("kind", "value", "match"), [
    ("metadata", "mysql://me@db/x", "sqlite:///PATH or postgresql"),
    ("online", "memcached://cache:11211", "'sqlite' or a Redis URL"),
    ("online", "redis://cache:6379/0?ttl=soon", "positive duration like '30d'"),
    ("storage", "gs://bucket/ws", "a local folder or an S3 URL"),
    ("storage", "s3://Bad_Bucket/ws", "DNS-style bucket name"),
])
def test_bad_locations_are_refused_with_what_is_expected(tmp_path: Path, kind: str,
                                                         value: str, match: str) -> None:
    with pytest.raises(TuesdayError, match=match) as err:
        open_workspace(tmp_path / "ws", **{kind: value})
    assert err.value.fix and ENV[kind] in err.value.fix


def test_a_newer_schema_version_is_refused_and_an_old_workspace_upgraded(
        tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    path = tmp_path / "ws" / "meta.sqlite"
    with sqlite3.connect(path) as conn:  # a workspace from before the versioned schema
        conn.execute("DROP TABLE schema_version")
    workspace._ENGINES.pop(ws.meta_url).dispose()
    open_workspace(tmp_path / "ws")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == \
            [(meta.SCHEMA_VERSION,)]
        conn.execute("UPDATE schema_version SET version = 99")
    workspace._ENGINES.pop(ws.meta_url).dispose()
    with pytest.raises(TuesdayError, match=r"schema version 99, newer than the versions "
                                           r"this tuesday knows \(up to 1\)"):
        open_workspace(tmp_path / "ws")
    assert ws.meta_url not in workspace._ENGINES


def test_every_command_takes_the_location_flags(tmp_path: Path) -> None:
    db = tmp_path / "flags.sqlite"
    runner = CliRunner()
    before = runner.invoke(main, ["--workspace", str(tmp_path / "a"), "--metadata-url",
                                  f"sqlite:///{db}", "token", "list"])
    assert before.exit_code == 0, before.output
    assert db.exists()
    after = runner.invoke(main, ["token", "list", "--workspace", str(tmp_path / "b"),
                                 "--online-url", "nope://x"])
    assert after.exit_code != 0 and "'sqlite' or a Redis URL" in after.output
    serve_help = runner.invoke(main, ["serve", "--help"]).output
    assert all(f in serve_help for f in ("--metadata-url", "--online-url", "--storage-url"))
