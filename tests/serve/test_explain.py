"""Explained predictions through a real server on 127.0.0.1: ``"explain": true`` or
``?explain=1`` answers each row with its contributions, expected value and sentence;
the numbers add up to the prediction and equal LightGBM's own TreeSHAP; an unexplained
answer carries none; a logged answer explains again to the same numbers."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator

import lightgbm as lgb
import numpy as np
import pytest

from tests.conftest import AS_OF
from tests.serve.live import call, live_server
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_request
from tuesday.project import LoadedProject
from tuesday.release import registry
from tuesday.serve.explaining import explain_logged
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

MODEL = "ridership_14d"
ROW = {"station": "Clark_Lake", "date": "2016-07-05"}


@pytest.fixture(scope="module")
def ws(trained_ws: Workspace, ridership: LoadedProject,
       tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    dst = tmp_path_factory.mktemp("explain") / "ws"
    shutil.copytree(trained_ws.root, dst)
    w = open_workspace(dst)
    model = ridership.project.model(MODEL)
    registry.promote(w, model, 1, as_of=AS_OF)
    materialize(w, ridership.project, model, AS_OF)
    return w


@pytest.fixture(scope="module")
def server(ws: Workspace) -> Iterator[str]:
    with live_server(ws.root) as (base, _proc):
        yield base


@pytest.fixture(scope="module")
def booster(ws: Workspace) -> lgb.Booster:
    return training.load_booster(ws, registry.production(ws, MODEL)["artifact"])


def _check_against_lightgbm(answer: dict, booster: lgb.Booster) -> None:
    """Contributions + expected = raw score = prediction (identity link), and each
    contribution is LightGBM's own ``pred_contrib`` for the same feature values."""
    e = answer["explanation"]
    names = booster.feature_name()
    assert set(e["contributions"]) == set(names)
    x = np.array([[np.nan if e["contributions"][f]["value"] is None
                   else e["contributions"][f]["value"] for f in names]])
    oracle = booster.predict(x, pred_contrib=True, num_threads=1)[0]
    for j, f in enumerate(names):
        assert e["contributions"][f]["raw"] == pytest.approx(oracle[j], abs=1e-9)
        assert e["contributions"][f]["shift"] == e["contributions"][f]["raw"]  # identity
    assert e["expected_raw"] == pytest.approx(oracle[-1], abs=1e-9)
    total = e["expected_raw"] + sum(c["raw"] for c in e["contributions"].values())
    assert total == pytest.approx(answer["prediction"], abs=1e-9)
    assert e["prediction"] == pytest.approx(answer["prediction"], abs=1e-12)
    shifts = [abs(c["shift"]) for c in e["contributions"].values()]
    assert shifts == sorted(shifts, reverse=True)  # the largest part first


def test_explain_true_answers_contributions_that_add_up_to_the_prediction(
        server: str, booster: lgb.Booster) -> None:
    status, body = call(f"{server}/v1/models/{MODEL}/predict", {**ROW, "explain": True})
    assert status == 200, body
    assert "explain" not in body  # taken out of the row, not echoed as a field
    _check_against_lightgbm(body, booster)
    e = body["explanation"]
    assert e["link"] == "identity"
    assert e["sentence"].startswith(f"Forecast {_short(body['prediction'])} rides for "
                                    "Clark_Lake on Tue 05 Jul 2016, ")
    assert e["baseline"]["name"] in ("seasonal_naive", "seasonal_mean_4w")
    assert "Raised mostly by" in e["sentence"] or "Held back by" in e["sentence"]
    top = next(iter(e["contributions"].values()))
    assert top["text"] in e["sentence"]


def _short(v: float) -> str:
    from tuesday.train.explanations import number
    return number(v)


def test_query_flag_explains_every_row_and_plain_requests_get_none(
        server: str, booster: lgb.Booster) -> None:
    rows = [{"station": "Clark_Lake", "date": f"2016-07-{d:02d}"} for d in (1, 2, 3)]
    status, body = call(f"{server}/v1/models/{MODEL}/predict?explain=1", {"rows": rows})
    assert status == 200, body
    assert len(body["predictions"]) == 3
    for a in body["predictions"]:
        _check_against_lightgbm(a, booster)
    status, plain = call(f"{server}/v1/models/{MODEL}/predict", {"rows": rows})
    assert status == 200
    assert all("explanation" not in a for a in plain["predictions"])
    assert [a["prediction"] for a in plain["predictions"]] == \
        [a["prediction"] for a in body["predictions"]]
    status, off = call(f"{server}/v1/models/{MODEL}/predict?explain=0", {**ROW,
                                                                        "explain": False})
    assert status == 200 and "explanation" not in off


@pytest.mark.parametrize(("query", "body", "named"), [
    ("?explain=maybe", ROW, "query parameter 'explain' must be 1 or 0"),
    ("", {**ROW, "explain": "yes"}, "'explain' must be true or false; got 'yes'"),
    ("", {"rows": [ROW], "explain": 1}, "'explain' must be true or false; got 1"),
])
def test_a_bad_explain_flag_is_a_400_naming_it(server: str, query: str, body: dict,
                                               named: str) -> None:
    status, err = call(f"{server}/v1/models/{MODEL}/predict{query}", body)
    assert status == 400, err
    assert named in err["message"] and err["fix"]


def test_batch_endpoint_explains_each_line(server: str, booster: lgb.Booster) -> None:
    lines = "\n".join(json.dumps({"station": "Clark_Lake", "date": f"2016-07-{d:02d}"})
                      for d in (6, 7)).encode()
    req = urllib.request.Request(f"{server}/v1/models/{MODEL}/batch?explain=true", data=lines,
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=60) as r:
        answers = [json.loads(ln) for ln in r.read().decode().splitlines()]
    assert len(answers) == 2
    for a in answers:
        _check_against_lightgbm(a, booster)


def test_a_logged_answer_explains_again_to_the_same_numbers(
        server: str, ws: Workspace, ridership: LoadedProject) -> None:
    status, body = call(f"{server}/v1/models/{MODEL}/predict", {**ROW, "explain": True})
    assert status == 200
    rid = body["request_id"]
    deadline = time.monotonic() + 60
    while read_request(ws, rid).empty:  # the server writes its log every half second
        assert time.monotonic() < deadline, "the answer never reached the prediction log"
        time.sleep(0.1)
    again = explain_logged(ws, ridership, rid)
    assert again["model_version"] == 1 and again["entity"] == "Clark_Lake"
    assert again["prediction"] == body["prediction"]
    e, f = again["explanation"], body["explanation"]
    assert f["sentence"] == e["sentence"]
    assert f["baseline"] == e["baseline"]
    for name, c in f["contributions"].items():
        assert e["contributions"][name]["raw"] == pytest.approx(c["raw"], abs=1e-12)


def test_an_unknown_request_id_is_not_found(ws: Workspace, ridership: LoadedProject) -> None:
    from tuesday.errors import NotFound, TuesdayError

    with pytest.raises(NotFound, match=r"No logged prediction has request id '0{32}'"):
        explain_logged(ws, ridership, "0" * 32)
    with pytest.raises(TuesdayError, match="A request id is 32 hexadecimal characters"):
        explain_logged(ws, ridership, "not-an-id")


def test_openapi_declares_the_explain_flag(server: str) -> None:
    _status, spec = call(f"{server}/openapi.json")
    op = spec["paths"][f"/v1/models/{MODEL}/predict"]["post"]
    assert any(p["name"] == "explain" and p["in"] == "query" for p in op["parameters"])
    row = op["requestBody"]["content"]["application/json"]["schema"]["anyOf"][0]
    assert row["properties"]["explain"] == {"type": "boolean"}
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert "explanation" in answer["properties"]
