"""End to end: `tuesday demo --json` runs the loop against a real server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    out = subprocess.run(
        [sys.executable, "-m", "tuesday.cli", "--workspace", str(ws), "demo", "--json",
         "--days", "6"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["rows_received"] == s["rows_accepted"] + s["rows_quarantined"]
    assert s["rows_accepted"] > 120_000
    assert s["model_version"] == 1
    m = s["metrics"]
    assert m["model"]["rmse"] < 0.7 * m["baselines"]["seasonal_naive"]["rmse"]
    # 14 in one batch request, then one per simulated day
    assert s["predictions_served"] == 14 + 6
    mon = s["monitor"]
    assert mon["status"] in ("ok", "drift", "degraded")
    assert Path(mon["report"]).read_text().startswith("<!doctype html>")
    # the target 14 days after the first day was asked twice; the latest answer counts
    assert mon["rows_with_ground_truth"] == 19
    # every answered prediction is in the log, with its version and request id
    log = DeltaTable(str(ws / "tables" / "_predictions")).to_pyarrow_table().to_pandas()
    assert len(log) == 20
    assert set(log["version"]) == {1}
    assert log["request_id"].nunique() == 1 + 6
    feats = pd.DataFrame([json.loads(f) for f in log["features"]])
    assert "rides_lag_14d" in feats.columns and feats["rides_lag_14d"].notna().all()


@pytest.mark.slow
def test_demo_human_output(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The text summary (the default suite runs the demo once, with --json, above)."""
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("a second demo run; run with `python -m pytest -m slow`")
    out = subprocess.run(
        [sys.executable, "-m", "tuesday.cli", "--workspace", str(tmp_path / "ws"), "demo",
         "--days", "1"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "served 15 predictions over HTTP" in out.stderr  # the log line
    assert "baseline seasonal_naive: RMSE" in out.stdout  # the summary


@pytest.mark.production
def test_demo_runs_the_whole_loop_on_postgres_redis_and_s3(tmp_path: Path) -> None:
    """`tuesday demo --production`: the same loop on PostgreSQL, Redis and S3 servers it
    starts on loopback for the run, with the same model and the same answers counted."""
    out = subprocess.run(
        [sys.executable, "-m", "tuesday.cli", "--workspace", str(tmp_path / "ws"), "demo",
         "--production", "--json", "--days", "3"], capture_output=True, text=True,
        timeout=900)
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    loc = s["locations"]
    assert loc["metadata"].startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert loc["online"].startswith("redis://127.0.0.1:")
    assert loc["storage"].startswith("s3://tuesday/")
    assert s["rows_received"] == s["rows_accepted"] + s["rows_quarantined"]
    assert s["rows_accepted"] > 120_000 and s["model_version"] == 1
    assert s["predictions_served"] == 14 + 3
    assert s["monitor"]["rows_with_ground_truth"] == 16
    # nothing of the tables or artifacts was written to the local folder
    assert not list((tmp_path / "ws").glob("tables/*/_delta_log/*.json"))
    assert not list((tmp_path / "ws").glob("artifacts/sha256/*/*"))
