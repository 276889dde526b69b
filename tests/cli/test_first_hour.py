"""What a new user meets in the first hour: no silent wrong answers.

Dates are ISO 8601 only, a command that needs a project says where it looked and creates
nothing, a batch that cannot be answered fails, JSON is strict, the server says what it
serves, and the plan says when a candidate is worse than production.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.cli import test_bad_input as _bad
from tests.cli.test_bad_input import (
    ENTITY,
    EXAMPLE,
    MODEL,
    PREDICT,
    assert_cli_error,
    assert_http_error,
    cli,
)
from tuesday.errors import TuesdayError
from tuesday.project import parse_time

# the served ridership workspace and its client, shared with the bad-input tests
demo_ws, ws, client, target = _bad.demo_ws, _bad.ws, _bad.client, _bad.target

NOT_ISO = ["08/09/2016", "28/08/2016", "01/09/2016", "now", "2016-08-20';--", "20160809",
           "9 Aug 2016", "2016-8-9"]


# ====================================================================== dates


@pytest.mark.parametrize("value,expected", [
    ("2016-08-09", "2016-08-09T00:00:00"), ("2016-08-09T06:00", "2016-08-09T06:00:00"),
    ("2016-08-09T06:00Z", "2016-08-09T06:00:00"),
    ("2016-08-09T08:00:30+02:00", "2016-08-09T06:00:30")])
def test_iso_8601_times_are_read(value: str, expected: str) -> None:
    assert parse_time(value).isoformat() == expected


@pytest.mark.parametrize("value", NOT_ISO)
def test_a_time_that_is_not_iso_8601_is_refused(value: str) -> None:
    with pytest.raises(TuesdayError, match=r"ISO 8601, e\.g\. 2016-08-09") as err:
        parse_time(value, what="--as-of")
    assert "--as-of" in err.value.message and repr(value) in err.value.message


@pytest.mark.parametrize("value", ["08/09/2016", "now"])
def test_cli_as_of_that_is_not_iso_is_refused(tmp_path: Path, value: str) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "materialize", MODEL,
            "--as-of", value)
    assert_cli_error(r, 2, "--as-of", repr(value), "ISO 8601, e.g. 2016-08-09")


def test_replay_start_that_is_not_iso_is_refused(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "replay", MODEL,
            "--start", "01/06/2015", "--end", "2015-07-01")
    assert_cli_error(r, 2, "--start", "'01/06/2015'", "ISO 8601")


@pytest.mark.parametrize("value", ["01/09/2016", "now", "2016-08-20';--"])
def test_predict_date_that_is_not_iso_is_refused(client: TestClient, value: str) -> None:
    r = client.post(PREDICT, json={"station": ENTITY, "date": value})
    body = assert_http_error(r, 400, "'date'", repr(value), "ISO 8601, e.g. 2016-08-09")
    assert body


@pytest.mark.parametrize("value", ["01/09/2016", "now"])
def test_ground_truth_date_that_is_not_iso_is_refused(client: TestClient, value: str) -> None:
    r = client.post("/v1/ground-truth/ridership",
                    json={"rows": [{"station": ENTITY, "date": value, "rides": 10.0}]})
    assert r.status_code != 500, r.text
    body = r.json()  # the row is quarantined with its reason, never read another way
    assert body["accepted"] == 0 and body["quarantined"] == 1, body
    assert "ISO 8601, e.g. 2016-08-09" in body["problems"][0]["message"], body
    assert body["problems"][0]["examples"][0]["value"] == value


# ====================================================================== no project


@pytest.mark.parametrize("args", [["models"], ["runs", "list"], ["alerts", "list"],
                                  ["token", "list"], ["quarantine", "ridership"]])
def test_a_command_without_a_project_fails_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUESDAY_PROJECT", raising=False)
    monkeypatch.delenv("TUESDAY_WORKSPACE", raising=False)
    r = cli(*args)
    assert_cli_error(r, 2, str(tmp_path / "project.py"), "$TUESDAY_PROJECT")
    assert list(tmp_path.iterdir()) == []


def test_the_missing_project_names_the_environment_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUESDAY_PROJECT", str(tmp_path / "elsewhere.py"))
    monkeypatch.delenv("TUESDAY_WORKSPACE", raising=False)
    r = cli("models")
    assert_cli_error(r, 2, "elsewhere.py", "$TUESDAY_PROJECT=")
    assert list(tmp_path.iterdir()) == []


# ====================================================================== missing features


def _null_features(ws: Path, target: str, keep: tuple[str, ...] = ()) -> list[str]:
    """Set the entity's stored features for ``target`` to null, except ``keep``; the
    names nulled."""
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(ws / "online.sqlite")) as conn:
        payload = json.loads(conn.execute(
            "SELECT payload FROM online_features WHERE model = ? AND entity = ?",
            (MODEL, ENTITY)).fetchone()[0])
        key = next(k for k in payload["vectors"] if k.startswith(target))
        payload["vectors"][key] = [v if n in keep else None
                                   for n, v in zip(payload["names"], payload["vectors"][key],
                                                   strict=True)]
        conn.execute("UPDATE online_features SET payload = ? WHERE model = ? AND entity = ?",
                     (json.dumps(payload), MODEL, ENTITY))
        conn.commit()
    return [n for n in payload["names"] if n not in keep]


def _flagging_project(tmp_path: Path) -> Path:
    path = tmp_path / "flagging.py"
    path.write_text(
        "import dataclasses\n"
        "from tuesday.examples.ridership.project import clark_lake, games, ridership, "
        "weather\n"
        "from tuesday.project import Project\n"
        "m = dataclasses.replace(clark_lake, missing_features='flag')\n"
        "project = Project('ridership', sources=(ridership, weather, games), models=(m,))\n")
    return path


def test_a_row_with_missing_features_is_refused_by_default(ws: Path, target: str) -> None:
    from tuesday.serve.server import create_app

    nulled = _null_features(ws, target)
    with TestClient(create_app(ws, EXAMPLE), raise_server_exceptions=False) as c:
        r = c.post(PREDICT, json={"station": ENTITY, "date": target})
        body = assert_http_error(r, 422, "missing", ENTITY, nulled[0])
        assert "missing_features='flag'" in body["fix"]
        ok = c.post(PREDICT, json={"rows": [{"station": ENTITY, "date": target}]})
        assert ok.status_code == 422, ok.text
        metrics = c.get("/metrics").text
    assert ('tuesday_missing_features_rows_total{model="ridership_14d",outcome="refused"} 2.0'
            in metrics), metrics
    from tuesday.data.predictions import read_log
    from tuesday.workspace import open_workspace
    assert len(read_log(open_workspace(ws), MODEL)) == 0  # nothing answered, nothing logged


def test_a_model_that_flags_answers_with_the_missing_names_and_null_baselines(
        ws: Path, target: str, tmp_path: Path) -> None:
    from tuesday.data.predictions import read_log
    from tuesday.serve.server import create_app
    from tuesday.workspace import open_workspace

    nulled = _null_features(ws, target)
    with TestClient(create_app(ws, _flagging_project(tmp_path)),
                    raise_server_exceptions=False) as c:
        r = c.post(PREDICT, json={"rows": [{"station": ENTITY, "date": target}]})
        assert r.status_code == 200, r.text
        answer = r.json()["predictions"][0]
        assert set(answer["missing_features"]) <= set(nulled) and answer["missing_features"]
        metrics = c.get("/metrics").text
    assert ('tuesday_missing_features_rows_total{model="ridership_14d",outcome="flagged"} 1.0'
            in metrics), metrics
    log = read_log(open_workspace(ws), MODEL)
    baselines = json.loads(log["baselines"].iloc[0])
    assert baselines and all(v is None for v in baselines.values()), baselines


def test_a_complete_row_has_no_flag(ws: Path, target: str, tmp_path: Path) -> None:
    from tuesday.serve.server import create_app

    with TestClient(create_app(ws, _flagging_project(tmp_path)),
                    raise_server_exceptions=False) as c:
        r = c.post(PREDICT, json={"rows": [{"station": ENTITY, "date": target}]})
    assert r.status_code == 200 and "missing_features" not in r.json()["predictions"][0]


def test_missing_features_must_be_refuse_or_flag(tmp_path: Path) -> None:
    from tests.cli.test_bad_input import tiny_project

    path = tiny_project(tmp_path, model_kw="missing_features='ignore'")
    r = cli("--project", path, "--workspace", tmp_path / "ws", "models", "m")
    assert_cli_error(r, 2, "missing_features", "refuse, flag", "'ignore'")


# ====================================================================== batch files


def test_a_batch_file_without_the_date_column_fails_naming_it(ws: Path, tmp_path: Path
                                                               ) -> None:
    f = tmp_path / "rows.csv"
    f.write_text(f"station\n{ENTITY}\n{ENTITY}\n")
    r = cli("--project", EXAMPLE, "--workspace", ws, "predict", MODEL, "--input", f,
            "--output", tmp_path / "out.csv")
    assert_cli_error(r, 2, "'date'", "rows.csv")


def test_a_batch_where_no_row_can_be_answered_exits_non_zero(ws: Path, tmp_path: Path
                                                              ) -> None:
    f = tmp_path / "rows.csv"
    f.write_text(f"station,date\n{ENTITY},1999-01-01\n{ENTITY},1999-01-02\n")
    r = cli("--project", EXAMPLE, "--workspace", ws, "predict", MODEL, "--input", f,
            "--output", tmp_path / "out.csv")
    assert_cli_error(r, 7, "None of the 2 rows", "1999-01-01")


def test_a_batch_where_some_rows_fail_says_how_many(ws: Path, tmp_path: Path,
                                                    target: str) -> None:
    f = tmp_path / "rows.csv"
    f.write_text(f"station,date\n{ENTITY},{target}\n{ENTITY},1999-01-02\n")
    r = cli("--project", EXAMPLE, "--workspace", ws, "predict", MODEL, "--input", f,
            "--output", tmp_path / "out.csv")
    assert r.exit_code == 0, r.output
    assert "1 of 2 rows could not be answered" in r.stderr.replace("\n", " ")


# ====================================================================== monitor time


def test_monitor_windows_follow_the_target_time_not_the_wall_clock(ws: Path) -> None:
    """Served today (wall clock) for days of 2016: monitor --as-of 2016 still sees them."""
    from tests.cli.test_bad_input import _targets
    from tests.conftest import AS_OF
    from tuesday.loop.recent import recent_monitor
    from tuesday.project import load_project
    from tuesday.serve.server import create_app
    from tuesday.watch.monitoring import monitor
    from tuesday.workspace import open_workspace

    targets = _targets(ws)
    with TestClient(create_app(ws, EXAMPLE), raise_server_exceptions=False) as c:
        r = c.post(PREDICT, json={"rows": [{"station": ENTITY, "date": t} for t in targets]})
        assert r.status_code == 200, r.text
    w, loaded = open_workspace(ws), load_project(EXAMPLE)
    report = monitor(w, loaded, MODEL, AS_OF, write=False)
    assert report["predictions_logged"] == len(targets)
    assert "target time" in report["time_basis"]
    recent = recent_monitor(w, loaded, MODEL, AS_OF)
    assert recent["predictions_logged"] > 0 and recent["status"] != "no_traffic"
    r2 = cli("--project", EXAMPLE, "--workspace", ws, "monitor", MODEL, "--as-of",
             AS_OF.date().isoformat())
    assert r2.exit_code == 0, r2.output
    assert f"{len(targets)} predictions logged" in r2.output and "target time" in r2.output


# ====================================================================== serve


def _line_within(proc: Any, seconds: float) -> str:
    """The first line the process prints, waited for with a deadline."""
    import selectors
    import time

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sel.select(timeout=end - time.monotonic()):
            return str(proc.stdout.readline())
        if proc.poll() is not None:
            break
    raise AssertionError(f"no line within {seconds} s (exit {proc.poll()})")


def test_serve_says_where_it_listens_and_a_taken_port_is_one_clear_line(ws: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    base = [sys.executable, "-m", "tuesday.cli", "--project", str(EXAMPLE),
            "--workspace", str(ws), "serve"]
    proc = subprocess.Popen([*base, "--port", "0", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(_line_within(proc, 120))
        assert info["status"] == "ready" and info["url"].startswith("http://127.0.0.1:")
        assert info["docs"] == info["url"] + "/docs"
        assert info["models"] == {MODEL: 1} and info["tokens_required"] is False
        with urllib.request.urlopen(info["url"] + "/health", timeout=10) as r:
            assert r.status == 200
        port = info["url"].rsplit(":", 1)[1]
        taken = subprocess.run([*base, "--port", port], capture_output=True, text=True,
                               timeout=120)
        assert taken.returncode == 2, taken.stderr
        assert "Traceback" not in taken.stderr and f"127.0.0.1:{port}" in taken.stderr
        assert "--port" in taken.stderr
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


# ====================================================================== strict JSON


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"bare {name} in JSON output")
    return json.loads(text, parse_constant=refuse)


def test_the_encoder_writes_nan_and_infinity_as_null() -> None:
    import numpy as np

    from tuesday.encoding import dumps

    got = _strict(dumps({"a": float("nan"), "b": [np.float64("inf"), np.int64(3)],
                         "c": np.array([1.5, np.nan]), "d": {"e": -float("inf")}}))
    assert got == {"a": None, "b": [None, 3], "c": [1.5, None], "d": {"e": None}}


def test_monitor_json_is_strict(ws: Path, target: str) -> None:
    """No ground truth yet: the accuracy figures are unknown, printed as null."""
    from tests.conftest import AS_OF
    from tuesday.serve.server import create_app

    with TestClient(create_app(ws, EXAMPLE), raise_server_exceptions=False) as c:
        assert c.post(PREDICT, json={"station": ENTITY, "date": target}).status_code == 200
    r = cli("--project", EXAMPLE, "--workspace", ws, "monitor", MODEL, "--as-of",
            AS_OF.date().isoformat(), "--json")
    assert r.exit_code == 0, r.output
    assert "NaN" not in r.stdout
    _strict(r.stdout)


def test_the_server_lists_models_with_unknown_metrics_as_null(client: TestClient) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200, r.text
    assert _strict(r.text)["models"]


# ====================================================================== every command


def test_every_command_has_json_and_takes_the_global_options_after_its_name() -> None:
    import click

    from tuesday.cli import main

    def leaves(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        out = []
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                out += leaves(cmd, (*path, name))
            else:
                opts = {o for p in cmd.params for o in p.opts}
                assert "--json" in opts, f"tuesday {' '.join((*path, name))} has no --json"
                assert "--workspace" in opts and "--project" in opts, (path, name)
                out.append((*path, name))
        return out

    assert len(leaves(main)) > 20


def test_the_workspace_after_the_command_name_is_used(tmp_path: Path) -> None:
    before = cli("--project", EXAMPLE, "--workspace", tmp_path / "a", "token", "create",
                 "shop", "--role", "predict", "--json")
    after = cli("token", "create", "shop", "--role", "predict", "--json",
                "--project", EXAMPLE, "--workspace", tmp_path / "b")
    assert before.exit_code == 0 and after.exit_code == 0, after.output
    assert _strict(after.stdout)["name"] == "shop"
    for ws_dir in ("a", "b"):
        listed = cli("token", "list", "--json", "--workspace", tmp_path / ws_dir,
                     "--project", EXAMPLE)
        assert [t["name"] for t in _strict(listed.stdout)] == ["shop"]


def test_runs_help_does_not_list_reproduce_as_its_subcommand() -> None:
    r = cli("runs", "--help")
    names = [line.split()[0] for line in r.output.split("Commands:")[1].splitlines()
             if line.strip()]
    assert names == ["compare", "list"]
    assert "tuesday reproduce RUN" in r.output


def test_the_example_command_writes_a_project_and_its_data(tmp_path: Path) -> None:
    r = cli("example", "churn", tmp_path / "ex", "--json")
    assert r.exit_code == 0, r.output
    out = _strict(r.stdout)
    assert Path(out["project"]).read_text().count("Project(") >= 1
    assert all(Path(p).stat().st_size > 0 for p in out["files"].values())
    nope = cli("example", "nosuch", tmp_path / "ex2")
    assert_cli_error(nope, 3, "'nosuch'", "ridership")
