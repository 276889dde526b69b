"""The churn example end to end: real data, binary target, no time axis.

Ingest -> train (5-fold CV against the class-rate prior) -> promote -> materialize ->
predict through the real app, and the same training through the CLI.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tuesday.examples
from tuesday.cli import main
from tuesday.data import tables
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject, load_project
from tuesday.release import registry
from tuesday.serve.server import create_app
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

PROJECT = Path(tuesday.examples.__file__).parent / "churn" / "project.py"
INGESTED = datetime(2024, 1, 1)
TRAINED = datetime(2024, 1, 2)
SERVED = datetime(2024, 1, 3)

# Pinned with the example's fixed seed: pooled out-of-fold predictions of the 5 folds.
MODEL_METRICS = {"auc": 0.9231, "log_loss": 0.1715, "brier": 0.0351}
# The prior predicts each fold's training churn rate (565 or 566 of 4,000). Within a fold
# its AUC is exactly 0.5; pooled over folds with slightly different constants it is not.
PRIOR_METRICS = {"auc": 0.4990, "log_loss": 0.4075, "brier": 0.1214}


def _client(app: Any) -> Any:
    from starlette.testclient import TestClient

    return TestClient(app)


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}


class Trained:
    def __init__(self, ws: Workspace, loaded: LoadedProject, files: dict[str, Path],
                 ingests: dict[str, tables.IngestResult],
                 result: training.TrainResult) -> None:
        self.ws = ws
        self.loaded = loaded
        self.files = files
        self.ingests = ingests
        self.result = result


@pytest.fixture(scope="module")
def loaded() -> LoadedProject:
    return load_project(PROJECT)


@pytest.fixture(scope="module")
def frames(loaded: LoadedProject) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = loaded.module.example_frames()
    return out


@pytest.fixture(scope="module")
def trained(loaded: LoadedProject, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("churn")
    files = loaded.module.example_files(root / "data")
    ws = open_workspace(root / "ws")
    ingests = {name: tables.ingest_file(ws, loaded.project.source(name), path, as_of=INGESTED)
               for name, path in files.items()}
    result = training.train(ws, loaded, "churn", TRAINED)
    model = loaded.project.model("churn")
    registry.promote(ws, model, result.version, as_of=SERVED, actor="test")
    materialize(ws, loaded.project, model, SERVED)
    return Trained(ws, loaded, files, ingests, result)


def test_example_frames_are_the_real_data(frames: dict[str, pd.DataFrame]) -> None:
    customers, labels = frames["customers"], frames["churn_labels"]
    assert len(customers) == len(labels) == 5000
    assert customers.shape[1] == 20  # customer_id + the 19 attributes
    assert customers["customer_id"].iloc[0] == "C00001"
    assert customers["customer_id"].iloc[-1] == "C05000"
    assert customers["customer_id"].is_unique
    assert (labels["customer_id"] == customers["customer_id"]).all()
    assert labels["churn"].value_counts().to_dict() == {"no": 4293, "yes": 707}
    assert set(customers["international_plan"]) == {0, 1}
    assert set(customers["area_code"]) == {408, 415, 510}
    first = customers.iloc[0]  # the first row of mlc_churn
    assert (first["state"], first["account_length"], first["area_code"]) == ("KS", 128, 415)
    assert (first["international_plan"], first["voice_mail_plan"]) == (0, 1)


def test_the_real_data_meets_the_contracts(trained: Trained) -> None:
    for name, res in trained.ingests.items():
        assert res.report.received == 5000, name
        assert res.report.accepted == 5000, res.report.summary()
        assert res.report.quarantined == 0
        assert res.version is not None


def test_train_pins_cross_validated_metrics(trained: Trained) -> None:
    m = trained.result.metrics
    assert m["primary"] == "auc"
    assert m["rows"] == 5000
    assert m["train_rows"] == 5000
    assert _rounded(m["model"]) == MODEL_METRICS
    assert _rounded(m["baselines"]["prior"]) == PRIOR_METRICS
    assert m["best_baseline"] == "prior"
    assert m["model"]["auc"] > m["baselines"]["prior"]["auc"] + 0.35
    assert len(m["folds"]) == 5
    for fold in m["folds"]:
        assert fold["cutoff"] is None
        assert (fold["train_rows"], fold["test_rows"]) == (4000, 1000)
        assert fold["prior"]["auc"] == 0.5
        assert fold["model"]["auc"] > 0.88
    manifest = trained.result.manifest
    assert manifest["task"] == "binary"
    assert manifest["features"] == [f.name for f in trained.loaded.project.model("churn")
                                    .features]


def test_train_reports_the_international_plan_slice(trained: Trained) -> None:
    rows = {r["value"]: r for r in trained.result.metrics["slices"]
            if r["slice"] == "international_plan"}
    assert sorted(rows) == [0, 1]
    assert rows[0]["rows"] == 4527
    assert rows[1]["rows"] == 473
    for r in rows.values():
        assert r["model"]["auc"] > 0.85
        assert r["model"]["brier"] < r["prior"]["brier"]


def test_predict_one_and_many_customers(trained: Trained,
                                        frames: dict[str, pd.DataFrame]) -> None:
    ws, loaded = trained.ws, trained.loaded
    app = create_app(ws.root, loaded.path)
    with _client(app) as client:
        assert client.get("/ready").json() == {"ready": True, "models": {"churn": 1}}
        one = client.post("/v1/models/churn/predict", json={"customer_id": "C00001"})
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["customer_id"] == "C00001"
        assert body["model_version"] == trained.result.version
        assert 0.0 < body["prediction"] < 1.0

        ids = ["C00001", "C00011", "C00042", "C04999"]
        many = client.post("/v1/models/churn/predict",
                           json={"rows": [{"customer_id": c} for c in ids]})
        assert many.status_code == 200, many.text
        preds = many.json()["predictions"]
        assert [p["customer_id"] for p in preds] == ids
        assert preds[0]["prediction"] == body["prediction"]

    # the served score is the model applied to the customer's row of the raw data
    booster = training.load_booster(ws, trained.result.artifact)
    names = trained.result.manifest["features"]
    customers = frames["customers"].set_index("customer_id")
    x = customers.loc[ids, names].to_numpy(dtype=float)
    expected = training.predict(booster, pd.DataFrame(x, columns=names))
    np.testing.assert_allclose([p["prediction"] for p in preds], expected, rtol=1e-12)
    # C00011 churned and is scored high; C00001 stayed and is scored low
    labels = frames["churn_labels"].set_index("customer_id")["churn"]
    assert (labels["C00011"], labels["C00001"]) == ("yes", "no")
    assert preds[1]["prediction"] > 0.5 > preds[0]["prediction"]

    # the lifespan flushed the prediction log on shutdown
    log = read_log(ws, "churn")
    assert len(log) >= 5
    assert set(ids) <= set(log["entity"])


def test_unknown_customer_is_a_404_naming_it(trained: Trained) -> None:
    app = create_app(trained.ws.root, trained.loaded.path)
    with _client(app) as client:
        res = client.post("/v1/models/churn/predict", json={"customer_id": "C99999"})
    assert res.status_code == 404
    body = res.json()
    assert body["error"] == "not_found"
    assert "C99999" in body["message"]
    assert "materialize churn" in body["fix"]


def test_cli_train_prints_json_metrics(loaded: LoadedProject, tmp_path: Path) -> None:
    files = loaded.module.example_files(tmp_path / "data")
    ws_dir = tmp_path / "ws"
    runner = CliRunner()
    base = ["--project", str(PROJECT), "--workspace", str(ws_dir)]
    for name, path in files.items():
        res = runner.invoke(main, [*base, "ingest", name, str(path), "--as-of",
                                   INGESTED.isoformat(), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["accepted"] == 5000
    res = runner.invoke(main, [*base, "train", "churn", "--as-of", TRAINED.isoformat(),
                               "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["model"] == "churn"
    assert data["version"] == 1
    metrics = data["metrics"]
    assert _rounded(metrics["model"]) == MODEL_METRICS
    assert _rounded(metrics["baselines"]["prior"]) == PRIOR_METRICS
    assert metrics["best_baseline"] == "prior"
    assert metrics["lift"] > 0.8


def test_new_customer_without_label_is_scored_and_monitored(
        trained: Trained, frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    """A customer who has no churn label yet (the ones worth scoring) gets a score once
    materialized; ground truth arriving later is joined back by monitoring."""
    import shutil

    from tuesday.watch import monitoring

    ws = open_workspace(shutil.copytree(trained.ws.root, tmp_path / "ws"))
    loaded = trained.loaded
    new = frames["customers"].iloc[[0]].assign(customer_id="C05001")
    tables.ingest_frame(ws, loaded.project.source("customers"), new, as_of=SERVED)
    materialize(ws, loaded.project, loaded.project.model("churn"), SERVED)
    with _client(create_app(ws.root, loaded.path)) as client:
        res = client.post("/v1/models/churn/predict", json={"customer_id": "C05001"})
        assert res.status_code == 200, res.text
        first = client.post("/v1/models/churn/predict", json={"customer_id": "C00001"})
    assert res.json()["prediction"] == first.json()["prediction"]  # same attributes
    tables.ingest_frame(ws, loaded.project.source("churn_labels"),
                        pd.DataFrame({"customer_id": ["C05001"], "churn": ["yes"]}),
                        as_of=SERVED)
    report = monitoring.monitor(ws, loaded, "churn", datetime.now())
    served = set(read_log(ws, "churn")["entity"])
    assert "C05001" in served
    # every served customer now has a label: the 5,000 labelled ones and C05001
    assert report["quality"]["rows_with_ground_truth"] == len(served)
    assert report["status"] in ("ok", "degraded", "drift")
