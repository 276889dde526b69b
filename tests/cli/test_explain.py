"""``tuesday explain`` (one prediction, text and --json, or a logged answer by request id)
and ``tuesday predict --explain`` (the explanation as columns of the output file)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tests.conftest import AS_OF
from tuesday.cli import main
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject
from tuesday.release import registry
from tuesday.serve.predictor import Predictor
from tuesday.workspace import Workspace, open_workspace

MODEL = "ridership_14d"


@pytest.fixture(scope="module")
def ws(trained_ws: Workspace, ridership: LoadedProject,
       tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    dst = tmp_path_factory.mktemp("cli-explain") / "ws"
    shutil.copytree(trained_ws.root, dst)
    w = open_workspace(dst)
    model = ridership.project.model(MODEL)
    registry.promote(w, model, 1, as_of=AS_OF)
    materialize(w, ridership.project, model, AS_OF)
    return w


def _cli(ws: Workspace, ridership: LoadedProject, *args: str):
    return CliRunner().invoke(main, ["--project", str(ridership.path), "--workspace",
                                     str(ws.root), *args])


def test_explain_prints_the_sentence_and_each_part(ws: Workspace,
                                                   ridership: LoadedProject) -> None:
    out = _cli(ws, ridership, "explain", MODEL, "--entity", "Clark_Lake", "--at",
               "2016-07-05", "--top", "3")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("Forecast ") and "Clark_Lake on Tue 05 Jul 2016" in lines[0]
    assert "ridership_14d version 1; expected value" in out.output
    parts = [ln for ln in lines if ln.startswith("  ")]
    assert len(parts) == 4 and "other features" in parts[-1]  # 3 listed, the rest summed


def test_explain_json_is_the_servers_explanation(ws: Workspace,
                                                 ridership: LoadedProject) -> None:
    out = _cli(ws, ridership, "explain", MODEL, "--entity", "Clark_Lake", "--at",
               "2016-07-05", "--json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    predictor = Predictor(ws, ridership, log_predictions=False)
    served = predictor.predict(MODEL, [{"station": "Clark_Lake", "date": "2016-07-05"}],
                               explain=True)["predictions"][0]
    predictor.close()
    assert got["prediction"] == served["prediction"]
    assert got["explanation"]["sentence"] == served["explanation"]["sentence"]
    assert got["explanation"]["contributions"] == served["explanation"]["contributions"]
    total = got["explanation"]["expected_raw"] + sum(
        c["raw"] for c in got["explanation"]["contributions"].values())
    assert total == pytest.approx(got["prediction"], abs=1e-9)


def test_explain_a_logged_answer_by_its_request_id(ws: Workspace,
                                                   ridership: LoadedProject) -> None:
    predictor = Predictor(ws, ridership)
    body = predictor.predict(MODEL, [{"station": "Clark_Lake", "date": "2016-07-08"}],
                             explain=True)
    predictor.log.flush()
    predictor.close()
    out = _cli(ws, ridership, "explain", MODEL, "--request-id", body["request_id"], "--json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.output)
    assert got["request_id"] == body["request_id"]
    assert got["explanation"]["sentence"] == body["predictions"][0]["explanation"]["sentence"]


def test_explain_without_entity_or_request_says_what_to_give(
        ws: Workspace, ridership: LoadedProject) -> None:
    out = _cli(ws, ridership, "explain", MODEL)
    assert out.exit_code == 2
    assert "Say which prediction to explain: --entity KEY" in out.output
    out = _cli(ws, ridership, "explain", MODEL, "--entity", "Nowhere", "--at", "2016-07-05")
    assert out.exit_code == 3 and "unknown entity" in out.output


def test_predict_explain_writes_the_explanation_as_columns(
        ws: Workspace, ridership: LoadedProject, tmp_path: Path) -> None:
    src = tmp_path / "rows.csv"
    pd.DataFrame({"station": ["Clark_Lake"] * 3 + ["Nowhere"],
                  "date": ["2016-07-01", "2016-07-02", "2016-07-03", "2016-07-03"]}
                 ).to_csv(src, index=False)
    dst = tmp_path / "answers.csv"
    logged = len(read_log(ws, MODEL))
    out = _cli(ws, ridership, "predict", MODEL, "--input", str(src), "--output", str(dst),
               "--explain")
    assert out.exit_code == 0, out.output
    got = pd.read_csv(dst)
    features = registry.production(ws, MODEL)["manifest"]["features"]
    assert [c for c in got.columns if c.startswith("contribution_")] == \
        [f"contribution_{f}" for f in features]
    ok = got[got["error"].isna()]
    assert len(ok) == 3 and ok["explanation"].str.startswith("Forecast ").all()
    total = ok["expected"] + ok[[f"contribution_{f}" for f in features]].sum(axis=1)
    assert (total - ok["prediction"]).abs().max() < 1e-9
    bad = got[got["error"].notna()]
    assert len(bad) == 1 and pd.isna(bad["explanation"].iloc[0])
    assert len(read_log(ws, MODEL)) == logged + 3  # explained rows are logged as usual
