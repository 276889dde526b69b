"""Online store and server: training/serving parity, predict, logging, metrics, docs."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.conftest import AS_OF
from tuesday.data import online, tables
from tuesday.data.features import feature_frame, points_frame
from tuesday.data.predictions import read_log
from tuesday.release import registry
from tuesday.serve.server import create_app
from tuesday.train import training, versions

LATER = datetime(2016, 7, 20)


def test_online_features_equal_offline_features_computed_later(served_ws, ridership,
                                                               tmp_path) -> None:
    """Vectors stored at the origin equal the training rows built 20 days later, when the
    tables hold rows the origin could not see."""
    files = ridership.module.example_files(tmp_path, since="2016-06-30", until="2016-07-20")
    for name, path in files.items():
        tables.ingest_file(served_ws, ridership.project.source(name), path, as_of=LATER)
    model = ridership.project.model("ridership_14d")
    ts = training.training_set(served_ws, ridership.project, model, LATER)
    store = online.open_store(served_ws)
    record = online.read(store, "ridership_14d", "Clark_Lake")
    store.close()
    assert len(record.vectors) == 14
    checked = 0
    for target, vector in record.vectors.items():
        row = ts.frame[ts.frame["date"] == pd.Timestamp(target)]
        assert len(row) == 1
        offline = row[list(record.names)].iloc[0].to_numpy(dtype=float)
        got = np.array([np.nan if v is None else v for v in vector], dtype=float)
        np.testing.assert_array_equal(got, offline)
        checked += 1
    assert checked == 14


def test_predict_single_and_batch_match_offline(served_ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    prod = registry.production(served_ws, "ridership_14d")
    booster = training.load_booster(served_ws, prod["artifact"])
    targets = pd.date_range("2016-07-01", "2016-07-14", freq="D")
    pts = points_frame(model, pd.Series(["Clark_Lake"] * 14), pd.Series(targets))
    tabs = tables.read_tables(served_ws, ridership.project,
                                tables.sources_used(ridership.project, model),
                                tables.versions_as_of(served_ws, ["ridership", "weather",
                                                                  "games"], AS_OF))
    x = feature_frame(ridership.project, model, pts, tabs)
    offline = booster.predict(x[list(prod["manifest"]["features"])], num_threads=1)
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        one = client.post("/v1/models/ridership_14d/predict",
                          json={"station": "Clark_Lake", "date": "2016-07-05"})
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["model_version"] == 1 and len(body["request_id"]) == 32
        assert body["prediction"] == pytest.approx(offline[4], abs=1e-12)
        many = client.post("/v1/models/ridership_14d/predict", json={"rows": [
            {"station": "Clark_Lake", "date": str(t.date())} for t in targets]})
        assert many.status_code == 200
        got = [p["prediction"] for p in many.json()["predictions"]]
        np.testing.assert_allclose(got, offline, atol=1e-12)
        metrics = client.get("/metrics").text
        assert ('tuesday_predictions_total{model="ridership_14d",variant="primary",'
                'version="1"} 15.0') in metrics
    # leaving the client shuts the app down, which flushes the log
    log = read_log(served_ws, "ridership_14d")
    assert len(log) == 15
    assert log["request_id"].nunique() == 2
    feats = json.loads(log["features"].iloc[0])
    assert list(feats) == prod["manifest"]["features"]
    baselines = json.loads(log["baselines"].iloc[0])
    assert set(baselines) == {"seasonal_naive", "seasonal_mean_4w"}
    # the seasonal naive forecast for 2016-07-05 is the value of 2016-06-21
    raw = ridership.module.example_frames()["ridership"]
    june21 = raw[(raw["station"] == "Clark_Lake") & (raw["date"] == "2016-06-21")]["rides"]
    assert baselines["seasonal_naive"] == pytest.approx(float(june21.iloc[0]))


def test_health_ready_docs(served_ws, ridership) -> None:
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").json() == {"ready": True, "models": {"ridership_14d": 1}}
        spec = client.get("/openapi.json").json()
        assert "/v1/models/ridership_14d/predict" in spec["paths"]
        assert "/v1/models/ridership_14d/predict" in client.get("/docs").text


def test_not_ready_without_production(ws_copy, ridership) -> None:
    with TestClient(create_app(ws_copy.root, ridership.path)) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        assert "no production version" in r.json()["models"]["ridership_14d"]
        r = client.post("/v1/models/ridership_14d/predict",
                        json={"station": "Clark_Lake", "date": "2016-07-05"})
        assert r.status_code == 404
        assert "tuesday promote ridership_14d" in r.json()["fix"]


def test_server_follows_promotion_and_rollback(served_ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    v1 = registry.get_version(served_ws, "ridership_14d", 1)
    v2 = versions.register(served_ws, "ridership_14d", run_id="second", artifact=v1["artifact"],
                           manifest=v1["manifest"], metrics=v1["metrics"], as_of=AS_OF)
    app = create_app(served_ws.root, ridership.path)
    state = app.state.tuesday
    row = {"station": "Clark_Lake", "date": "2016-07-05"}
    with TestClient(app) as client:
        assert client.post("/v1/models/ridership_14d/predict", json=row).json()[
            "model_version"] == 1
        registry.promote(served_ws, model, v2, as_of=AS_OF)
        state.predictor.routes["ridership_14d"].checked = -1e9  # as if the 1 s cache had expired
        assert client.post("/v1/models/ridership_14d/predict", json=row).json()[
            "model_version"] == v2
        registry.rollback(served_ws, "ridership_14d", as_of=AS_OF)
        state.predictor.routes["ridership_14d"].checked = -1e9
        assert client.post("/v1/models/ridership_14d/predict", json=row).json()[
            "model_version"] == 1


def test_ground_truth_endpoint_validates_and_versions(served_ws, ridership) -> None:
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        ok = client.post("/v1/ground-truth/ridership", json={"as_of": "2016-07-01", "rows": [
            {"station": "Clark_Lake", "date": "2016-07-01", "rides": 17.5}]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["accepted"] == 1 and ok.json()["table_version"] == 1
        bad = client.post("/v1/ground-truth/ridership", json={"rows": [
            {"station": "Clark_Lake", "date": "2016-07-02", "rides": -3},
            {"station": "Clark_Lake", "date": "2016-07-01", "rides": 17.5}]})
        assert bad.status_code == 207
        checks = {p["check"] for p in bad.json()["problems"]}
        assert checks == {"range", "existing_key"}
        assert bad.json()["quarantined"] == 2
