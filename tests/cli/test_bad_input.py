"""Bad input gets a clear error and loses nothing.

The rule of the project: a user's mistake (a bad project file, a bad command line, a bad
input file, a bad HTTP request) gets an error that names the thing, the expectation, what
was received and how to fix it; no Python traceback reaches the user and the server never
answers 500 for a bad request. Nothing the user sent is lost: rows that fail their
contract are quarantined with their reasons.

Each test states the clear-error behaviour. A case that misbehaves today is kept and
marked ``xfail(strict=True)`` with what happens now, so fixing it turns the test green
(and strict makes the fix visible).

The HTTP tests run against a private copy of the session's trained ridership workspace,
promoted and materialized.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from tuesday.cli import main
from tuesday.data.materialize import materialize
from tuesday.serve.server import MAX_ROWS, create_app

EXAMPLE = Path(__file__).resolve().parents[2] / "src/tuesday/examples/ridership/project.py"
MODEL = "ridership_14d"
PREDICT = f"/v1/models/{MODEL}/predict"
TRUTH = "/v1/ground-truth/ridership"
ENTITY = "Clark_Lake"


# ------------------------------------------------------------------------ helpers


def _squash(text: str) -> str:
    """Text without whitespace: rich wraps long messages at 80 columns."""
    return re.sub(r"\s+", "", text)


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def assert_cli_error(result: Result, code: int, *needles: str) -> None:
    """A clean CLI failure: the exit code, an ``error:`` paragraph naming ``needles`` on
    stderr, and no traceback (an uncaught exception is a traceback for a real user)."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"uncaught {type(exc).__name__}: {exc} (a user sees a traceback)\n{result.output}")
    assert "Traceback" not in result.output
    assert result.exit_code == code, f"exit {result.exit_code}, expected {code}:\n{result.output}"
    assert "error:" in result.stderr.lower(), result.output
    err = _squash(result.stderr)
    for needle in needles:
        assert _squash(needle) in err, f"{needle!r} not in:\n{result.stderr}"


def assert_http_error(r: Any, status: int, *needles: str) -> dict[str, Any]:
    """A clean HTTP failure: the status, a JSON body with ``error`` and ``message``, the
    ``needles`` named in the message."""
    assert r.status_code != 500, r.text
    assert r.status_code == status, f"{r.status_code}, expected {status}: {r.text}"
    body = r.json()
    assert isinstance(body, dict) and {"error", "message"} <= body.keys(), body
    for needle in needles:
        assert needle in body["message"], f"{needle!r} not in {body['message']!r}"
    return body


TINY = '''
import sys

from tuesday.project import (Backtest, Baseline, Column, Contract, CrossValidation, Entity,
                             Feature, Model, Project, Source, calendar, lag, window)

station = Entity("station")
ridership = Source(
    "ridership",
    Contract((Column("station", "str", nullable=False), Column("date", "date", nullable=False),
              Column("rides", {rides_dtype!r}, nullable=False, min=0){more_columns}),
             unique=("station", "date")),
    time="date", entity=station)
{before}
model = Model(name="m", entity={entity}, label_source="ridership", target="rides",
              horizon="14d", features={features}, baselines={baselines}{model_kw})
project = Project("tiny", sources={sources}, models={models})
{after}
'''


def tiny_project(folder: Path, name: str = "project.py", *, rides_dtype: str = "float",
                 more_columns: str = "", before: str = "", entity: str = "station",
                 features: str = '(lag("ridership", "rides", "14d"),)',
                 baselines: str = '(Baseline("naive", "naive"),)', model_kw: str = "",
                 sources: str = "(ridership,)", models: str = "(model,)",
                 after: str = "") -> Path:
    """A small valid project file; each keyword swaps in one piece of (bad) source."""
    path = folder / name
    path.write_text(TINY.format(
        rides_dtype=rides_dtype, more_columns=more_columns, before=before, entity=entity,
        features=features, baselines=baselines,
        model_kw=f", {model_kw}" if model_kw else "", sources=sources, models=models,
        after=after))
    return path


def _targets(ws: Path) -> list[str]:
    """The target dates the online store holds for the entity (ISO dates)."""
    with contextlib.closing(sqlite3.connect(ws / "online.sqlite")) as conn:
        payload = conn.execute("SELECT payload FROM online_features WHERE model = ? AND "
                               "entity = ?", (MODEL, ENTITY)).fetchone()[0]
    return sorted(k[:10] for k in json.loads(payload)["vectors"])


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def demo_ws(trained_ws: Any, ridership: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's trained ridership workspace, promoted and materialized."""
    from tests.conftest import AS_OF
    from tuesday.release import registry
    from tuesday.workspace import open_workspace

    path = tmp_path_factory.mktemp("served") / "ws"
    shutil.copytree(trained_ws.root, path)
    served = open_workspace(path)
    model = ridership.project.model(MODEL)
    registry.promote(served, model, 1, as_of=AS_OF)
    materialize(served, ridership.project, model, AS_OF)
    return path


@pytest.fixture()
def ws(demo_ws: Path, tmp_path: Path) -> Path:
    """A private copy of the demo workspace."""
    dst = tmp_path / "ws"
    shutil.copytree(demo_ws, dst)
    return dst


@pytest.fixture()
def client(ws: Path) -> Iterator[TestClient]:
    with TestClient(create_app(ws, EXAMPLE), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def target(ws: Path) -> str:
    """A target date the server can answer for."""
    return _targets(ws)[0]


@pytest.fixture()
def request_feature_client(ws: Path, tmp_path: Path) -> Iterator[TestClient]:
    """The demo model with a request-time feature ``temp_forecast`` declared."""
    path = tmp_path / "with_request.py"
    path.write_text(
        "import dataclasses\n"
        "from tuesday.examples.ridership.project import clark_lake, games, ridership, "
        "weather\n"
        "from tuesday.project import Project, request\n"
        "m = dataclasses.replace(clark_lake, features=clark_lake.features + "
        "(request('temp_forecast'),))\n"
        "project = Project('ridership', sources=(ridership, weather, games), models=(m,))\n")
    with TestClient(create_app(ws, path), raise_server_exceptions=False) as c:
        yield c


# ====================================================================== CLI: project


def test_missing_project_file(tmp_path: Path) -> None:
    r = cli("--project", tmp_path / "nope.py", "--workspace", tmp_path / "ws",
            "quarantine", "ridership")
    assert_cli_error(r, 2, "nope.py", "does not exist", "--project")


def test_project_with_syntax_error(tmp_path: Path) -> None:
    p = tmp_path / "project.py"
    p.write_text("project = Project(\n")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "project.py", "SyntaxError")


def test_project_whose_import_fails(tmp_path: Path) -> None:
    p = tmp_path / "project.py"
    p.write_text("import no_such_module_for_tuesday\n")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "project.py", "ModuleNotFoundError", "no_such_module_for_tuesday")


def test_project_module_without_project(tmp_path: Path) -> None:
    p = tmp_path / "project.py"
    p.write_text("x = 1\n")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "project = Project(", "NoneType")


def test_project_that_is_not_a_python_file(tmp_path: Path) -> None:
    p = tmp_path / "project.txt"
    p.write_text("hello\n")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "project.txt", "not a Python module")


def test_invalid_declarations_are_all_listed_in_one_message(tmp_path: Path) -> None:
    p = tiny_project(
        tmp_path, more_columns=', Column("note", "txt")',
        features='(lag("ridership", "rides", "7d"), lag("nosuch", "rides", "14d"))',
        baselines="()")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    count = re.search(r"has(\d+)problem\(s\)", _squash(r.stderr))
    assert count and int(count.group(1)) >= 4, r.stderr
    assert_cli_error(r, 2, "'tiny'",
                     "dtype 'txt'",                        # bad dtype
                     "declares no baseline",              # no baseline
                     "Use a lag of at least 14d",         # lag shorter than the horizon
                     "reads source 'nosuch', which is not declared")  # unknown source
    assert "fix:" in r.stderr


def test_bad_duration_in_a_helper_is_listed_with_the_other_problems(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, more_columns=', Column("note", "txt")',
                     features='(lag("ridership", "rides", "7"),)', baselines="()")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "project.py", "'7'", "dtype 'txt'", "declares no baseline")


def test_bad_lag_on_a_feature_is_listed_with_the_other_problems(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, features='(Feature("x", "lag", "ridership", "rides", '
                     'lag="abc"),)', model_kw='task="regr"')
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "'abc'", "task must be one of")


def test_bad_window_length_is_caught_at_load(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, features='(Feature("x", "window", "ridership", "rides", '
                     'lag="14d", window="abc"),)')
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "'abc'", "'x'")


WRONG_TYPES = {
    "folds_is_a_string": {"model_kw": 'evaluation=Backtest(folds="3")'},
    "evaluation_is_none": {"model_kw": "evaluation=None"},
    "feature_is_a_string": {"features": '("rides_lag_14d",)'},
    "baseline_is_a_string": {"baselines": '("naive",)'},
    "entity_is_a_string": {"entity": '"station"'},
    "sources_not_a_tuple": {"sources": "ridership"},
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_declaration_of_the_wrong_type_is_a_clear_error(tmp_path: Path, case: str) -> None:
    p = tiny_project(tmp_path, **WRONG_TYPES[case])
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "'tiny'")


def test_slices_given_as_a_string(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, model_kw='slices="day_of_week"')
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "'day_of_week'")
    assert "slice 'd'" not in r.stderr


def test_duplicate_model_names(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, models="(model, model)")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "'m'", "more than once")


def test_duplicate_contract_columns(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, more_columns=', Column("rides", "int")')
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "'rides'", "more than once")


def test_project_path_is_a_folder(tmp_path: Path) -> None:
    r = cli("--project", tmp_path, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2)
    assert not re.search(r"does\s+not\s+exist", r.stderr), r.stderr
    assert re.search(r"folder|director|not\s+a\s+file", r.stderr), r.stderr


def test_project_module_that_calls_sys_exit(tmp_path: Path) -> None:
    p = tiny_project(tmp_path, after="sys.exit(0)")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership")
    assert_cli_error(r, 2, "project.py")


# ================================================================ CLI: names, times


def test_unknown_source_name(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("station,date,rides\nA,2016-07-01,1\n")
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "nosuch", f)
    assert r.exit_code in (2, 3)
    assert_cli_error(r, r.exit_code, "'nosuch'", "ridership, weather, games")


def test_unknown_model_name(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "train", "nosuch")
    assert r.exit_code in (2, 3)
    assert_cli_error(r, r.exit_code, "'nosuch'", "ridership_14d")


def test_unknown_source_exits_not_found(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "quarantine", "nosuch")
    assert_cli_error(r, 3, "'nosuch'")


def test_unknown_model_exits_not_found(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "promote", "nosuch", "1")
    assert_cli_error(r, 3, "'nosuch'")


def test_models_of_an_unknown_model(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "models", "nosuch")
    assert_cli_error(r, 3, "'nosuch'")


@pytest.mark.parametrize("value", ["garbage", "", "2016-13-45", "NaT"])
def test_as_of_garbage(tmp_path: Path, value: str) -> None:
    f = tmp_path / "x.csv"
    f.write_text("station,date,rides\nClark_Lake,2016-07-01,1\n")
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership", f,
            "--as-of", value)
    assert_cli_error(r, 2, "--as-of", repr(value))
    assert not (tmp_path / "ws" / "tables" / "ridership").exists()  # nothing written


def test_version_that_is_not_a_number(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "promote", MODEL, "abc")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "'abc' is not a valid integer" in r.stderr


def test_negative_limit(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "quarantine", "ridership",
            "--limit", "-1")
    assert_cli_error(r, 2, "--limit")


# ===================================================================== CLI: ingest


def test_nonexistent_input_file(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership",
            tmp_path / "nope.csv")
    assert_cli_error(r, 2, "nope.csv", "does not exist")


def test_empty_input_file(tmp_path: Path) -> None:
    f = tmp_path / "empty.csv"
    f.write_text("")
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership", f)
    assert_cli_error(r, 2, "empty.csv", "is empty")


def test_garbage_input_file(tmp_path: Path) -> None:
    f = tmp_path / "garbage.csv"
    f.write_bytes(bytes(range(256)) * 8)
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership", f)
    assert_cli_error(r, 2, "garbage.csv", "could not be read as csv")


def test_garbage_parquet_file(tmp_path: Path) -> None:
    f = tmp_path / "data.parquet"
    f.write_text("station,date,rides\n")
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership", f)
    assert_cli_error(r, 2, "data.parquet", "could not be read as parquet")


def test_wrong_suffix(tmp_path: Path) -> None:
    f = tmp_path / "data.json"
    f.write_text('[{"station": "A"}]')
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership", f)
    assert_cli_error(r, 2, "data.json", "'.json'", ".csv or .parquet")


def test_file_with_wrong_columns_is_refused_once(tmp_path: Path) -> None:
    p = tiny_project(tmp_path)
    f = tmp_path / "wrong.csv"
    f.write_text("foo,bar\n" + "1,2\n" * 50)
    r = cli("--project", p, "--workspace", tmp_path / "ws", "ingest", "ridership", f)
    assert_cli_error(r, 7, "missing required column(s) 'station' (str), 'date' (date), "
                           "'rides' (float)", "its columns are 'foo', 'bar'")
    q = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "ridership",
            "--json")
    assert q.exit_code == 0 and json.loads(q.stdout)["total"] == 0  # nothing quarantined


def test_file_whose_rows_all_fail_exits_validation_failed(tmp_path: Path) -> None:
    p = tiny_project(tmp_path)
    f = tmp_path / "bad.csv"
    f.write_text("station,date,rides\nA,not-a-date,-1\n")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "ingest", "ridership", f)
    assert_cli_error(r, 7, "bad.csv")


def test_ragged_csv_row_loses_nothing(tmp_path: Path) -> None:
    p = tiny_project(tmp_path)
    f = tmp_path / "shifted.csv"
    f.write_text("station,date,rides\nNOTE,Clark_Lake,2016-07-01,1\n")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "ingest", "ridership", f,
            "--json")
    assert "Traceback" not in r.output
    assert r.exit_code != 0 or json.loads(r.stdout)["quarantined"] == 1, r.output


def test_input_path_is_a_folder(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership",
            tmp_path)
    assert_cli_error(r, 2)
    assert not re.search(r"does\s+not\s+exist", r.stderr), r.stderr
    assert re.search(r"folder|director|not\s+a\s+file", r.stderr), r.stderr


# =================================================================== CLI: lifecycle


def test_train_with_no_data_ingested(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "train", MODEL,
            "--as-of", "2016-06-30")
    assert_cli_error(r, 7, "no labels", "'ridership'", "tuesday ingest ridership")


def test_materialize_with_no_data_ingested(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "materialize", MODEL)
    assert_cli_error(r, 7, "'ridership'", "tuesday ingest ridership")


def test_rollback_with_no_history(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "rollback", MODEL)
    assert_cli_error(r, 5, "no earlier production version")


def test_monitor_with_no_production_version(tmp_path: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "monitor", MODEL)
    assert_cli_error(r, 3, "no production version", "tuesday promote")


def test_promote_a_nonexistent_version(ws: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", ws, "promote", MODEL, "99")
    assert_cli_error(r, 3, "no version 99", "versions: 1")


def test_rollback_with_only_one_production_version(ws: Path) -> None:
    r = cli("--project", EXAMPLE, "--workspace", ws, "rollback", MODEL)
    assert_cli_error(r, 5, "no earlier production version")


def test_workspace_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("hi")
    r = cli("--project", EXAMPLE, "--workspace", f, "quarantine", "ridership")
    assert_cli_error(r, 2, "afile", "cannot be created")


def test_workspace_with_a_corrupt_meta_database(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "meta.sqlite").write_text("this is not a database")
    r = cli("--project", EXAMPLE, "--workspace", ws, "quarantine", "ridership")
    assert_cli_error(r, 2, "meta.sqlite")


def test_serve_on_an_impossible_port(ws: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tuesday.cli", "--project", str(EXAMPLE), "--workspace",
         str(ws), "serve", "--port", "70000"], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stderr, out.stderr[-800:]
    assert out.returncode == 2 and "--port" in out.stderr, out.stderr[-800:]


# ====================================================================== HTTP: predict


def test_predict_sanity(client: TestClient, target: str) -> None:
    r = client.post(PREDICT, json={"station": ENTITY, "date": target})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] >= 1


@pytest.mark.parametrize("body", [b"not json", b"", b"\xff\xfe\x00", b'{"station": "Clark'])
def test_predict_body_not_json(client: TestClient, body: bytes) -> None:
    r = client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    assert_http_error(r, 400, "not valid JSON")


@pytest.mark.parametrize("body", ["[]", '[{"station": "Clark_Lake"}]', "42", '"x"', "null"])
def test_predict_body_not_an_object(client: TestClient, body: str) -> None:
    r = client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    assert_http_error(r, 400, "must be a JSON object")


@pytest.mark.parametrize("rows", ["x", {"a": 1}, None, [1, 2], [{"station": "A"}, "b"]])
def test_predict_rows_not_a_list_of_objects(client: TestClient, rows: Any) -> None:
    r = client.post(PREDICT, json={"rows": rows})
    assert_http_error(r, 400, "'rows' must be a list of JSON objects")


@pytest.mark.parametrize("value", ["missing", None, {"a": 1}, [ENTITY]])
def test_predict_row_without_the_entity_key(client: TestClient, target: str,
                                            value: Any) -> None:
    row: dict[str, Any] = {"date": target}
    if value != "missing":
        row["station"] = value
    r = client.post(PREDICT, json=row)
    assert_http_error(r, 400, "'station'", "entity key")


@pytest.mark.parametrize("value", ["missing", None, "garbage", "", True, [1], {"a": 1},
                                   "99999-01-01", 1e30])
def test_predict_row_with_missing_or_garbage_date(client: TestClient, value: Any) -> None:
    row: dict[str, Any] = {"station": ENTITY}
    if value != "missing":
        row["date"] = value
    r = client.post(PREDICT, json=row)
    assert_http_error(r, 400, "'date'", "target date")


def test_predict_date_given_as_a_number(client: TestClient) -> None:
    r = client.post(PREDICT, json={"station": ENTITY, "date": 12345})
    assert_http_error(r, 400, "'date'", "12345")


def test_predict_problems_of_many_rows_in_one_answer(client: TestClient) -> None:
    r = client.post(PREDICT, json={"rows": [{"date": "2016-08-12"},
                                            {"station": ENTITY, "date": "bad"}]})
    body = assert_http_error(r, 400, "2 problem(s)", "row 0", "row 1", "'bad'")
    assert len(body["details"]) == 2


@pytest.mark.parametrize("date", ["2030-01-01", "2001-01-01"])
def test_predict_date_outside_the_materialized_range(client: TestClient, ws: Path,
                                                     date: str) -> None:
    first, last = _targets(ws)[0], _targets(ws)[-1]
    body = assert_http_error(client.post(PREDICT, json={"station": ENTITY, "date": date}),
                             404, date, first, last)
    assert "tuesday materialize" in body["fix"]


def test_predict_unknown_entity(client: TestClient, target: str) -> None:
    body = assert_http_error(client.post(PREDICT, json={"station": "Nowhere", "date": target}),
                             404, "'Nowhere'")
    assert body["error"] == "not_found"


def test_predict_unknown_model(client: TestClient, target: str) -> None:
    r = client.post("/v1/models/nosuch/predict", json={"station": ENTITY, "date": target})
    assert r.status_code in (400, 404)
    assert_http_error(r, r.status_code, "'nosuch'", MODEL)


def test_predict_unknown_model_is_404(client: TestClient, target: str) -> None:
    r = client.post("/v1/models/nosuch/predict", json={"station": ENTITY, "date": target})
    assert assert_http_error(r, 404, "'nosuch'")["error"] == "not_found"


def test_predict_request_feature_of_the_wrong_type(request_feature_client: TestClient,
                                                   target: str) -> None:
    r = request_feature_client.post(PREDICT, json={"station": ENTITY, "date": target,
                                                   "temp_forecast": "hot"})
    assert_http_error(r, 400, "'temp_forecast'", "must be a number", "'hot'")


def test_predict_request_feature_given_as_a_boolean(request_feature_client: TestClient,
                                                    target: str) -> None:
    r = request_feature_client.post(PREDICT, json={"station": ENTITY, "date": target,
                                                   "temp_forecast": True})
    assert_http_error(r, 400, "'temp_forecast'", "must be a number")


def test_predict_too_many_rows(client: TestClient, target: str) -> None:
    rows = [{"station": ENTITY, "date": target}] * (MAX_ROWS + 1)
    assert_http_error(client.post(PREDICT, json={"rows": rows}), 400,
                      f"at most {MAX_ROWS}", str(MAX_ROWS + 1))


def test_predict_empty_batch(client: TestClient) -> None:
    r = client.post(PREDICT, json={"rows": []})
    assert r.status_code != 500, r.text
    if r.status_code == 200:
        assert r.json()["predictions"] == []
    else:
        assert_http_error(r, 400, "rows")


def test_predict_entity_with_a_lone_surrogate(client: TestClient, target: str) -> None:
    body = f'{{"station": "\\ud800", "date": "{target}"}}'.encode()
    r = client.post(PREDICT, content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 404), r.text
    assert_http_error(r, r.status_code, "station")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_predict_wrong_http_method(client: TestClient, method: str) -> None:
    r = client.request(method, PREDICT)
    assert assert_http_error(r, 405, "HTTP method")["error"] == "method_not_allowed"


def test_wrong_method_on_health(client: TestClient) -> None:
    assert_http_error(client.post("/health"), 405)


def test_unknown_path(client: TestClient) -> None:
    r = client.get("/v2/nothing/here")
    assert assert_http_error(r, 404)["error"] == "not_found"


def test_unknown_path_is_named(client: TestClient) -> None:
    assert_http_error(client.get("/v2/nothing/here"), 404, "/v2/nothing/here")


# ================================================================= HTTP: ground truth


def test_ground_truth_with_bad_rows_is_207_with_report_and_quarantine(
        client: TestClient, ws: Path) -> None:
    from tuesday.data import tables
    from tuesday.project import load_project
    from tuesday.workspace import open_workspace

    rows = [{"station": ENTITY, "date": "2016-09-01", "rides": -5},
            {"station": ENTITY, "date": "garbage", "rides": 3},
            {"station": ENTITY, "date": "2016-09-02", "rides": "abc"},
            {"station": ENTITY, "date": "2016-09-03", "rides": 3.5}]
    r = client.post(TRUTH, json={"as_of": "2016-09-04", "rows": rows})
    assert r.status_code == 207, r.text
    body = r.json()
    assert (body["received"], body["accepted"], body["quarantined"]) == (4, 1, 3)
    checks = {(p["check"], p["column"]) for p in body["problems"]}
    assert checks == {("range", "rides"), ("type", "date"), ("type", "rides")}
    src = load_project(EXAMPLE).project.source("ridership")
    q = tables.quarantine(open_workspace(ws), src)
    q = q[q["ingest_id"] == body["ingest_id"]]
    assert len(q) == 3 and q["reasons"].str.len().gt(0).all()
    assert any("garbage" in v for v in q["values"])  # original values kept


def test_ground_truth_with_missing_columns(client: TestClient) -> None:
    r = client.post(TRUTH, json={"rows": [{"foo": 1}]})
    assert_http_error(r, 422, "missing required column(s) 'station'")


def test_ground_truth_for_an_unknown_source(client: TestClient) -> None:
    r = client.post("/v1/ground-truth/nosuch", json={"rows": []})
    assert r.status_code in (400, 404)
    assert_http_error(r, r.status_code, "'nosuch'", "ridership, weather, games")


def test_ground_truth_for_an_unknown_source_is_404(client: TestClient) -> None:
    r = client.post("/v1/ground-truth/nosuch", json={"rows": []})
    assert assert_http_error(r, 404, "'nosuch'")["error"] == "not_found"


@pytest.mark.parametrize("body", [b"nope", b"[1, 2]"])
def test_ground_truth_body_not_a_json_object(client: TestClient, body: bytes) -> None:
    r = client.post(TRUTH, content=body, headers={"content-type": "application/json"})
    assert_http_error(r, 400)


@pytest.mark.parametrize("as_of", ["garbage", [1], True, "99999-01-01"])
def test_ground_truth_bad_as_of(client: TestClient, as_of: Any) -> None:
    row = {"station": ENTITY, "date": "2016-09-05", "rides": 3}
    assert_http_error(client.post(TRUTH, json={"as_of": as_of, "rows": [row]}), 400,
                      "'as_of'")


@pytest.mark.parametrize("as_of", ["", "NaT"])
def test_ground_truth_empty_as_of(client: TestClient, ws: Path, as_of: str) -> None:
    from deltalake import DeltaTable

    before = DeltaTable(str(ws / "tables" / "ridership")).version()
    row = {"station": ENTITY, "date": "2016-09-06", "rides": 3}
    r = client.post(TRUTH, json={"as_of": as_of, "rows": [row]})
    assert_http_error(r, 400, "'as_of'")
    assert DeltaTable(str(ws / "tables" / "ridership")).version() == before


def test_ground_truth_as_of_given_as_a_number(client: TestClient) -> None:
    row = {"station": ENTITY, "date": "2016-09-07", "rides": 3}
    assert_http_error(client.post(TRUTH, json={"as_of": 5, "rows": [row]}), 400, "'as_of'")


def test_ground_truth_infinite_value(client: TestClient) -> None:
    body = b'{"rows": [{"station": "Clark_Lake", "date": "2016-09-08", "rides": Infinity}]}'
    r = client.post(TRUTH, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 207, r.text
    assert r.json()["quarantined"] == 1


def test_ground_truth_huge_integer(client: TestClient) -> None:
    row = {"station": ENTITY, "date": "2016-09-09", "rides": 10**400}
    r = client.post(TRUTH, json={"rows": [row]})
    assert r.status_code in (207, 400), r.text


@pytest.mark.parametrize("bad", ["../../x", "/tmp/abs", "has space", "1st", ""])
def test_source_and_model_names_must_be_plain(tmp_path: Path, bad: str) -> None:
    p = tiny_project(tmp_path, after="import dataclasses\n"
                                     f"ridership = dataclasses.replace(ridership, name={bad!r})\n"
                                     f"model = dataclasses.replace(model, name={bad!r})\n"
                                     "project = dataclasses.replace(project, "
                                     "sources=(ridership,), models=(model,))")
    r = cli("--project", p, "--workspace", tmp_path / "ws", "quarantine", "x")
    assert_cli_error(r, 2, f"Source name {bad!r} must be a plain identifier",
                     f"Model name {bad!r} must be a plain identifier")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", ["../../x", "/tmp/abs", "a/b", ".."])
def test_workspace_refuses_table_paths_outside_it(tmp_path: Path, bad: str) -> None:
    from tuesday.errors import TuesdayError
    from tuesday.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws")
    for path in (ws.table_path, ws.quarantine_path):
        with pytest.raises(TuesdayError, match="not a plain name"):
            path(bad)
    assert ws.table_path("_predictions").name == "_predictions"


@pytest.mark.parametrize("command", [["promote", MODEL], ["plan", MODEL], ["report", MODEL],
                                     ["alerts", "ack"]])
def test_a_number_beyond_what_the_database_holds_is_a_usage_error(tmp_path: Path,
                                                                  command: list[str]) -> None:
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", *command,
            "99999999999999999999")
    assert r.exit_code == 2, r.output
    assert "is not in the range 1<=x<=9223372036854775807" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_file_separated_by_semicolons_or_tabs_is_refused_once_saying_so(
        tmp_path: Path, sep: str) -> None:
    """A European Excel export: semicolons and decimal commas. One clear refusal naming
    the separator, not a quarantine entry per row."""
    f = tmp_path / "rides.csv"
    f.write_text(sep.join(("station", "date", "rides")) + "\n"
                 + sep.join(("Clark_Lake", "2016-07-01", "12,5")) + "\n")
    r = cli("--project", EXAMPLE, "--workspace", tmp_path / "ws", "ingest", "ridership", f,
            "--as-of", "2016-07-02")
    assert_cli_error(r, 2, "header of one column", "comma-separated CSV", "decimal=','")
    assert not (tmp_path / "ws" / "quarantine").exists() or not any(
        (tmp_path / "ws" / "quarantine").rglob("*.parquet"))
