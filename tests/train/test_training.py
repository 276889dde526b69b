"""Training on the real ridership data: pinned metrics, reproducibility, manifest, baselines
checked against a direct pandas computation."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import AS_OF
from tuesday.data import tables
from tuesday.errors import TuesdayError
from tuesday.release import registry
from tuesday.train import training
from tuesday.workspace import open_workspace


def test_pinned_backtest_metrics(trained_ws, ridership) -> None:
    v = registry.get_version(trained_ws, "ridership_14d", 1)
    m = v["metrics"]
    assert m["rows"] == 26 * 28
    assert m["primary"] == "rmse"
    assert m["model"]["rmse"] == pytest.approx(1.0341, abs=1e-4)
    assert m["model"]["mase"] == pytest.approx(0.5868, abs=1e-4)
    assert m["baselines"]["seasonal_naive"]["rmse"] == pytest.approx(3.6281, abs=1e-4)
    assert m["baselines"]["seasonal_mean_4w"]["rmse"] == pytest.approx(2.8259, abs=1e-4)
    assert m["best_baseline"] == "seasonal_mean_4w"
    assert m["lift"] > 0.3
    assert {s["slice"] for s in m["slices"]} == {"day_of_week", "holiday_is_holiday"}
    assert len(m["folds"]) == 26


def test_seasonal_naive_matches_pandas(trained_ws, ridership) -> None:
    """The baseline's backtest RMSE equals a direct shift of the raw series by 14 days."""
    v = registry.get_version(trained_ws, "ridership_14d", 1)
    preds = pq.read_table(io.BytesIO(trained_ws.get_artifact(
        v["manifest"]["backtest_predictions"]["sha256"]))).to_pandas()
    raw = ridership.module.example_frames()["ridership"]
    cl = raw[raw["station"] == "Clark_Lake"].set_index("date")["rides"]
    shifted = cl.shift(14, freq="D").reindex(preds["date"]).to_numpy()
    np.testing.assert_allclose(preds["seasonal_naive"].to_numpy(), shifted, atol=1e-12)
    rmse = float(np.sqrt(np.mean((preds["rides"].to_numpy() - shifted) ** 2)))
    assert rmse == pytest.approx(v["metrics"]["baselines"]["seasonal_naive"]["rmse"], abs=1e-12)


def test_same_inputs_give_byte_identical_model(trained_ws, ridership, ridership_files,
                                               tmp_path) -> None:
    ws2 = open_workspace(tmp_path / "again")
    for name, path in ridership_files.items():
        tables.ingest_file(ws2, ridership.project.source(name), path, as_of=AS_OF)
    res = training.train(ws2, ridership, "ridership_14d", AS_OF)
    first = registry.get_version(trained_ws, "ridership_14d", 1)
    assert res.artifact == first["artifact"]
    assert trained_ws.get_artifact(first["artifact"]) == ws2.get_artifact(res.artifact)
    # the same data gives the same table fingerprints
    assert res.manifest["tables"] == first["manifest"]["tables"]


def test_manifest_records_lineage(trained_ws) -> None:
    man = registry.get_version(trained_ws, "ridership_14d", 1)["manifest"]
    assert set(man["tables"]) == {"ridership", "weather", "games"}
    assert all(len(t["fingerprint"]) == 64 for t in man["tables"].values())
    assert man["seed"] == 7 and man["params"]["seed"] == 7
    assert man["params"]["deterministic"] is True
    assert man["packages"]["lightgbm"]
    assert man["artifact"]["format"] == "lightgbm-text"
    assert len(man["code"]["project_sha256"]) == 64
    assert man["features"][0] == "rides_lag_14d"


def test_training_as_of_before_any_data_is_refused(trained_ws, ridership) -> None:
    with pytest.raises(TuesdayError, match="has no version ingested at or before 2000-01-01"):
        training.train(trained_ws, ridership, "ridership_14d", pd.Timestamp("2000-01-01"))


def test_tampered_artifact_is_refused(ws_copy) -> None:
    digest = registry.get_version(ws_copy, "ridership_14d", 1)["artifact"]
    path = ws_copy.artifact_path(digest)
    path.write_bytes(path.read_bytes().replace(b"tree", b"TREE", 1))
    with pytest.raises(TuesdayError, match="was modified"):
        training.load_booster(ws_copy, digest)
