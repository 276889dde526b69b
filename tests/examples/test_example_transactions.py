"""The transactions example end to end: synthetic card transactions, event features.

Ingest six weeks of history -> train (rolling backtest against the fraud-rate prior) ->
promote -> materialize (build the event state) -> serve: send the next day's events over
HTTP, score a transaction of a card-testing burst and check that the features it was
scored with equal the batch point-in-time computation on the same table.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tuesday.examples
from tuesday.data import events, online, tables
from tuesday.data.features import feature_frame, points_frame
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject, load_project
from tuesday.release import registry
from tuesday.serve.server import create_app
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

PROJECT = Path(tuesday.examples.__file__).parent / "transactions" / "project.py"
CUTOFF = pd.Timestamp("2024-02-14")  # history known up to here; the next day is served
SERVED = CUTOFF + pd.Timedelta(days=1)


def _client(app: Any) -> Any:
    from starlette.testclient import TestClient

    return TestClient(app)


class Trained:
    def __init__(self, ws: Workspace, loaded: LoadedProject, frames: dict[str, pd.DataFrame],
                 result: training.TrainResult) -> None:
        self.ws, self.loaded, self.frames, self.result = ws, loaded, frames, result


@pytest.fixture(scope="module")
def loaded() -> LoadedProject:
    return load_project(PROJECT)


@pytest.fixture(scope="module")
def trained(loaded: LoadedProject, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    ws = open_workspace(tmp_path_factory.mktemp("transactions") / "ws")
    frames = loaded.module.generate()
    as_of = CUTOFF.to_pydatetime()
    for name, frame in frames.items():
        history = frame[frame["ts"] <= CUTOFF]
        res = tables.ingest_frame(ws, loaded.project.source(name), history, as_of=as_of)
        assert res.report.quarantined == 0, res.report.summary()
    result = training.train(ws, loaded, "fraud", as_of)
    model = loaded.project.model("fraud")
    registry.promote(ws, model, result.version, as_of=as_of, actor="test")
    materialize(ws, loaded.project, model, as_of)
    return Trained(ws, loaded, frames, result)


def test_the_generator_is_synthetic_seeded_and_has_fraud_patterns(loaded) -> None:
    assert "SYNTHETIC" in (loaded.module.__doc__ or "")
    a, b = loaded.module.generate(cards=40, days=14), loaded.module.generate(cards=40, days=14)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    frames = loaded.module.generate()
    tx, labels = frames["transactions"], frames["fraud_labels"]
    assert (tx["txn_id"] == labels["txn_id"]).all()
    assert tx["txn_id"].is_unique
    assert 0.005 < labels["is_fraud"].mean() < 0.03
    assert (tx["recorded_at"] > tx["ts"]).all()  # recorded after it is scored
    fraud = tx[labels["is_fraud"].to_numpy() == 1]
    assert (fraud["amount"] < 4).mean() > 0.3  # card testing: small amounts...
    assert fraud.groupby("card_id").size().max() >= 4  # ...in bursts
    assert (fraud["ts"].dt.hour < 6).mean() > 0.3  # unusual hours


def test_the_model_beats_the_prior(trained: Trained) -> None:
    m = trained.result.metrics
    assert m["primary"] == "auc" and m["best_baseline"] == "prior"
    assert len(m["folds"]) == 3
    assert m["model"]["auc"] > 0.9
    for fold in m["folds"]:  # a constant per fold: AUC 0.5 within each
        assert fold["prior"]["auc"] == 0.5
        assert fold["model"]["auc"] > 0.85
    assert m["model"]["auc"] > m["baselines"]["prior"]["auc"] + 0.35
    assert m["model"]["brier"] < m["baselines"]["prior"]["brier"]


def _burst(trained: Trained) -> pd.Series:
    """A fraudulent transaction of the served day inside a card-testing burst."""
    tx, labels = trained.frames["transactions"], trained.frames["fraud_labels"]
    day = (tx["ts"] > CUTOFF) & (tx["ts"] <= SERVED) & (labels["is_fraud"] == 1)
    fraud = tx[day.to_numpy()]
    card = fraud["card_id"].value_counts().index[0]
    burst = fraud[fraud["card_id"] == card]
    assert len(burst) >= 5
    return burst.iloc[4]


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.copy()
    for col in ("ts", "recorded_at"):
        out[col] = out[col].map(lambda t: t.isoformat())
    return json.loads(out.to_json(orient="records"))


def _offline(ws: Workspace, loaded: LoadedProject, card: str, at: pd.Timestamp,
             amount: float, hour: int) -> pd.Series:
    """The batch point-in-time features of one request, on the tables as they are now."""
    project = loaded.project
    model = project.model("fraud")
    names = tables.sources_used(project, model)
    tabs = tables.read_tables(ws, project, names, {})
    pts = points_frame(model, pd.Series([card]), pd.Series([at]))
    req = pd.DataFrame({"amount": [amount], "hour": [hour]})
    return feature_frame(project, model, pts, tabs, request=req).iloc[0]


def test_events_over_http_then_score_with_the_offline_features(trained: Trained,
                                                               tmp_path: Path) -> None:
    import shutil

    ws = open_workspace(shutil.copytree(trained.ws.root, tmp_path / "ws"))
    loaded = trained.loaded
    target = _burst(trained)
    at, card = target["ts"], target["card_id"]
    tx = trained.frames["transactions"]
    before = tx[(tx["ts"] > CUTOFF) & (tx["ts"] < at)]
    with _client(create_app(ws.root, loaded.path)) as client:
        spec = client.get("/openapi.json").json()
        assert "/v1/events/transactions" in spec["paths"]
        # the day's events so far, in three batches, each applied at its last recording
        thirds = np.linspace(0, len(before), 4).astype(int)
        for part in (before.iloc[lo:hi] for lo, hi in itertools.pairwise(thirds)):
            body = {"rows": _json_rows(part), "as_of": part["recorded_at"].max().isoformat()}
            res = client.post("/v1/events/transactions", json=body)
            assert res.status_code == 200, res.text
            got = res.json()
            assert got["accepted"] == len(part)
            assert got["online"]["status"] == "updated"
            assert got["online"]["events"] == len(part)
        row = {"card_id": card, "ts": at.isoformat(), "amount": float(target["amount"]),
               "hour": int(at.hour)}
        scored = client.post("/v1/models/fraud/predict", json=row)
        assert scored.status_code == 200, scored.text
        body = scored.json()
        assert body["ts"] == at.isoformat() and body["model_version"] == 1
        # the scored transaction arrives afterwards; recorded after `at`, so scoring the
        # same request again gives the same answer
        own = tx[tx["txn_id"] == target["txn_id"]]
        res = client.post("/v1/events/transactions",
                          json={"rows": _json_rows(own),
                                "as_of": own["recorded_at"].max().isoformat()})
        assert res.status_code == 200, res.text
        again = client.post("/v1/models/fraud/predict", json=row)
        assert again.json()["prediction"] == body["prediction"]
        # a card never seen: no history, the declared defaults
        new = client.post("/v1/models/fraud/predict",
                          json={"card_id": "C99999", "ts": at.isoformat(), "amount": 20.0,
                                "hour": 15})
        assert new.status_code == 200, new.text
        # a usual purchase of a card never compromised, at about the same time
        labels = trained.frames["fraud_labels"]
        honest = set(labels.groupby("card_id")["is_fraud"].max().loc[lambda m: m == 0].index)
        usual = before[before["card_id"].isin(honest)].iloc[-1]
        other = client.post("/v1/models/fraud/predict", json={
            "card_id": usual["card_id"], "ts": at.isoformat(),
            "amount": float(usual["amount"]), "hour": int(at.hour)})
        assert other.status_code == 200, other.text
    assert body["prediction"] > 0.5 > other.json()["prediction"]

    # the features the server used (from the prediction log) are the batch values
    log = read_log(ws, "fraud")
    served = json.loads(log[log["entity"] == card]["features"].iloc[0])
    offline = _offline(ws, loaded, card, at, float(target["amount"]), int(at.hour))
    assert sorted(served) == sorted(offline.index)
    for name, value in served.items():
        want = float(offline[name])
        got = math.nan if value is None else float(value)
        assert (math.isnan(got) and math.isnan(want)) or math.isclose(
            got, want, rel_tol=1e-9, abs_tol=1e-12), (name, got, want)
    mine = before[before["card_id"] == card]
    known = mine[(mine["ts"] > at - pd.Timedelta(hours=1)) & (mine["recorded_at"] <= at)]
    assert served["amount_count_1h_lag_0d"] == len(known) >= 3  # the burst so far
    assert served["amount_sum_1h_lag_0d"] == pytest.approx(known["amount"].sum(), abs=1e-9)
    assert served["transactions_seconds_since_last"] == (
        at - before[before["card_id"] == card]["ts"].max()).total_seconds()
    # the served prediction is the production model applied to those features
    prod = registry.production(ws, "fraud")
    assert prod is not None
    fitted = training.load_model(ws, prod["manifest"])
    names = list(prod["manifest"]["features"])
    x = np.array([[np.nan if served[n] is None else served[n] for n in names]], dtype=float)
    assert float(fitted.predict(x, num_threads=1)[0]) == pytest.approx(body["prediction"],
                                                                      abs=1e-12)
    newest = log[log["entity"] == "C99999"]
    feats = json.loads(newest["features"].iloc[0])
    assert feats["amount_count_1h_lag_0d"] == 0
    assert feats["transactions_seconds_since_last"] == 30 * 24 * 3600
    assert feats["amount_mean_30d_lag_0d"] is None


def test_a_bad_event_is_quarantined_and_the_rest_applied(trained: Trained,
                                                         tmp_path: Path) -> None:
    import shutil

    ws = open_workspace(shutil.copytree(trained.ws.root, tmp_path / "ws"))
    tx = trained.frames["transactions"]
    rows = _json_rows(tx[tx["ts"] > CUTOFF].head(2))
    rows[1]["amount"] = -5  # below the contract's minimum
    del rows[0]["recorded_at"]  # filled with the arrival time
    with _client(create_app(ws.root, trained.loaded.path)) as client:
        res = client.post("/v1/events/transactions",
                          json={"rows": rows, "as_of": "2024-02-14T00:30:00"})
        assert res.status_code == 207, res.text
        body = res.json()
        assert (body["accepted"], body["quarantined"]) == (1, 1)
        assert body["online"] == {"status": "updated", "entities": 1, "events": 1}
        missing = client.post("/v1/events/nope", json={"rows": []})
        assert missing.status_code == 404
    table = tables.read_table(ws, trained.loaded.project.source("transactions")).to_pandas()
    assert table["recorded_at"].max() == pd.Timestamp("2024-02-14T00:30:00")
    conn = online.connect(ws)
    blob = online.SQLiteStore(conn).get("transactions", rows[0]["card_id"])
    conn.close()
    assert blob is not None
    state = events.View(blob)  # the accepted event is the newest of its card's record
    assert state.times[-1] == events.micros(rows[0]["ts"])
    assert state.avail[-1] == events.micros("2024-02-14T00:30:00")


def test_materialize_reports_the_event_state(trained: Trained) -> None:
    info = materialize(trained.ws, trained.loaded.project,
                              trained.loaded.project.model("fraud"), CUTOFF.to_pydatetime())
    state = info["events"]["transactions"]
    assert state["entities"] == 300
    assert state["events"] == int((trained.frames["transactions"]["ts"] <= CUTOFF).sum())
    assert info["targets"] == 0
    assert isinstance(datetime.fromisoformat(info["origin"]), datetime)
