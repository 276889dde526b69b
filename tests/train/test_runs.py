"""Runs: reproduce gives a byte-identical model; compare lists differences; the process
executor gives the same backtest as the local one."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.conftest import AS_OF
from tuesday.cli import main
from tuesday.project import Backtest, load_project
from tuesday.release import registry
from tuesday.train import runs, training
from tuesday.workspace import Workspace, open_workspace


@pytest.fixture()
def short_ws(short_trained_ws: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the workspace whose version 2 has a 3-fold backtest."""
    shutil.copytree(short_trained_ws.root, tmp_path / "ws")
    return open_workspace(tmp_path / "ws")


def test_reproduce_is_identical(short_ws: Workspace, short_project: Path) -> None:
    run_id = registry.get_version(short_ws, "ridership_14d", 2)["run_id"]
    r = CliRunner().invoke(main, ["--project", str(short_project), "--workspace",
                                  str(short_ws.root), "reproduce", run_id[:10], "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["identical"] and out["same_artifact"] and out["differences"] == []
    # nothing was registered
    assert [v["version"] for v in registry.versions(short_ws, "ridership_14d")] == [1, 2]


def test_reproduce_reports_a_changed_model(short_ws: Workspace, short_project: Path,
                                           tmp_path: Path) -> None:
    """A project whose learner changed no longer reproduces the run, and says why."""
    changed = tmp_path / "project.py"
    changed.write_text(short_project.read_text().replace("seed=7,", "seed=8,"))
    run_id = registry.get_version(short_ws, "ridership_14d", 2)["run_id"]
    r = CliRunner().invoke(main, ["--project", str(changed), "--workspace", str(short_ws.root),
                                  "reproduce", run_id, "--json"])
    assert r.exit_code == 5, r.output
    out = json.loads(r.stdout)
    assert not out["identical"]
    assert any("project_sha256" in d for d in out["differences"])
    assert any("model file" in d for d in out["differences"])


def test_compare_two_runs(short_ws: Workspace, short_project: Path) -> None:
    short = load_project(short_project)
    model = replace(short.project.model("ridership_14d"), window="730d")
    res = training.train(short_ws, replace(short, project=replace(
        short.project, models=(model,))), "ridership_14d", AS_OF)
    v2 = registry.get_version(short_ws, "ridership_14d", 2)
    out = runs.compare(short_ws, v2["run_id"], res.run_id)
    fields = {d["field"]: d for d in out["differences"]}
    assert not out["same_artifact"]
    assert "metrics.model.rmse" in fields
    d = fields["metrics.model.rmse"]
    assert d["delta"] == d["b"] - d["a"]
    assert fields["metrics.train_rows"]["b"] < fields["metrics.train_rows"]["a"]
    assert not any(f.startswith("tables.") for f in fields)  # same data
    listed = runs.list_runs(short_ws, "ridership_14d")
    assert [r["version"] for r in listed] == [1, 2, 3]


def test_process_executor_gives_the_local_result(trained_ws, ridership) -> None:
    model = replace(ridership.project.model("ridership_14d"),
                    evaluation=Backtest(folds=3, step="28d"))
    ts = training.training_set(trained_ws, ridership.project, model, AS_OF)
    local = training.run_backtest(model, ts, executor="local")
    pool = training.run_backtest(model, ts, executor="process")
    pd.testing.assert_frame_equal(local.pop("predictions"), pool.pop("predictions"))
    assert local == pool
    assert np.isfinite(local["model"]["rmse"])


def test_runs_can_be_logged_to_mlflow(ws_copy, tmp_path) -> None:
    import mlflow

    from tuesday.train import tracking

    v1 = registry.get_version(ws_copy, "ridership_14d", 1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_id = tracking.log_run(ws_copy, v1["run_id"], uri)
    got = mlflow.tracking.MlflowClient(tracking_uri=uri).get_run(mlflow_id)
    assert got.data.metrics["backtest.model.rmse"] == v1["metrics"]["model"]["rmse"]
    assert got.data.metrics["backtest.seasonal_naive.rmse"] == \
        v1["metrics"]["baselines"]["seasonal_naive"]["rmse"]
    assert got.data.tags["tuesday.run_id"] == v1["run_id"]
    assert got.data.params["seed"] == "7"
    names = {a.path for a in mlflow.tracking.MlflowClient(tracking_uri=uri)
             .list_artifacts(mlflow_id)}
    assert names == {"manifest.json", "metrics.json", "model.txt"}


def test_fewer_folds_on_the_command_line_equal_fewer_folds_declared(
        short_trained_ws: Workspace, ridership, tmp_path: Path) -> None:
    """`tuesday train --folds 3` on the 26-fold project gives the run the 3-fold project
    gives (the same model file and metrics), records the override, and reproduces."""
    shutil.copytree(short_trained_ws.root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    r = CliRunner().invoke(main, ["--project", str(ridership.path), "--workspace",
                                  str(ws.root), "train", "ridership_14d", "--as-of",
                                  AS_OF.isoformat(), "--folds", "3", "--json"])
    assert r.exit_code == 0, r.output
    got = registry.get_version(ws, "ridership_14d", json.loads(r.stdout)["version"])
    declared = registry.get_version(ws, "ridership_14d", 2)  # by the 3-fold project
    assert got["artifact"] == declared["artifact"]
    assert got["metrics"]["model"] == declared["metrics"]["model"]
    assert len(got["metrics"]["folds"]) == 3
    assert got["manifest"]["folds"] == 3 and got["manifest"]["folds_override"] is True
    assert runs.reproduce(ws, ridership, got["run_id"])["identical"]
    bad = CliRunner().invoke(main, ["--project", str(ridership.path), "--workspace",
                                    str(ws.root), "train", "ridership_14d", "--folds", "0"])
    assert bad.exit_code == 2 and "--folds" in bad.output
