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

from tests.cli.test_bad_input import (  # noqa: F401  (fixtures)
    ENTITY,
    EXAMPLE,
    MODEL,
    PREDICT,
    assert_cli_error,
    assert_http_error,
    cli,
    client,
    demo_ws,
    target,
    ws,
)
from tuesday.errors import TuesdayError
from tuesday.project import parse_time

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
    with pytest.raises(TuesdayError, match="ISO 8601, e.g. 2016-08-09") as err:
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
    assert r.status_code in (400, 422), r.text
    assert value in r.text and "ISO" in r.text, r.text


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
