"""Broken LightGBM model files whose sha256 matches (written by a bad tool, registered
by mistake) never crash, hang or mislead the server: each is refused with an
``artifact_integrity`` error naming the version, the tree and what is wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from tests.conftest import RIDERSHIP
from tests.serve.model_corpus import corpus, point_production_at
from tuesday.errors import ArtifactCorrupt
from tuesday.release import registry
from tuesday.train import model_file, training, versions

ROOT = Path(__file__).resolve().parents[2]
MODEL = "ridership_14d"


def _model_text(ws) -> str:
    prod = registry.production(ws, MODEL)
    return ws.get_artifact(prod["manifest"]["artifact"]["sha256"]).decode()


def test_real_models_pass_the_check(served_ws) -> None:
    model_file.check_lightgbm_text(_model_text(served_ws))
    rng = np.random.default_rng(0)
    x = rng.random((300, 4))
    x[:, 3] = rng.integers(0, 12, 300)
    y = x[:, 0] + (x[:, 3] % 3)
    for params in ({"num_leaves": 8}, {"objective": "binary"}, {"linear_tree": True},
                   {"min_data_in_leaf": 1000}, {"objective": "multiclass", "num_class": 3}):
        target = y
        if params.get("objective") == "binary":
            target = (y > 1).astype(int)
        elif params.get("objective") == "multiclass":
            target = (y * 1.5).astype(int) % 3
        b = lgb.train({**params, "verbose": -1},
                      lgb.Dataset(x, target, categorical_feature=[3]), num_boost_round=4)
        model_file.check_lightgbm_text(b.model_to_string())


@pytest.mark.parametrize(("case", "needle"), [
    ("half", "tree"), ("cycle_tree0_sized", "tree 0: node 0 is reached twice"),
    ("num_leaves_huge_tree0_sized", "tree 0: num_leaves=1000000000 is outside"),
    ("child_out_of_range_tree0_sized", "tree 0: left_child[0]="),
    ("leaf_out_of_range_tree0_sized", "the tree has"),
    ("split_feature_short_tree0_sized", "tree 0: split_feature has"),
    ("tree_sizes_plus_one", "tree_sizes"),
    ("feature_out_of_range_tree0_sized", "is not a feature index"),
])
def test_each_defect_is_named(served_ws, case: str, needle: str) -> None:
    bad = corpus(_model_text(served_ws))[case]
    with pytest.raises(ArtifactCorrupt, match="is not a valid LightGBM model") as got:
        model_file.check_lightgbm_text(bad, what="Model 'm' version 3")
    assert needle in got.value.message and "Model 'm' version 3" in got.value.message
    assert got.value.status == 500 and got.value.kind == "artifact_integrity"


def test_no_corrupted_file_crashes_or_hangs_the_server(served_ws, tmp_path) -> None:
    """Every file of the corpus served in a fresh app, in a child process with a
    deadline: a segfault, an abort or an endless loop is a failure naming the case."""
    cases = {**corpus(_model_text(served_ws)), "original": _model_text(served_ws).encode()}
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.serve.model_corpus", str(served_ws.root),
         str(RIDERSHIP), str(folder)], cwd=ROOT, capture_output=True, text=True,
        timeout=900, check=False)
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    done = {d["case"]: d for d in lines if "case" in d}
    last = [d["start"] for d in lines if "start" in d][-1:]
    assert proc.returncode == 0, (f"the server process died with {proc.returncode} on "
                                  f"{last}: {proc.stderr[-3000:]}")
    assert set(done) == set(cases)
    want = done.pop("original")
    assert want["ready"] == 200 and want["predict"] == 200
    served = []
    for name, d in done.items():
        assert d["health"] == 200, name
        if d["ready"] == 200:  # a change prediction does not read (gains, counts): the
            served.append(name)  # same answers as the original file, to the last bit
            assert d["answer"]["prediction"] == want["answer"]["prediction"], (name, d)
            continue
        assert d["ready"] == 503, (name, d)
        assert "is not a valid LightGBM model" in d["reason"] or "could not be loaded" in \
            d["reason"], (name, d["reason"])
        assert "Model 'ridership_14d' version 1" in d["reason"], (name, d["reason"])
        assert d["predict"] == 500 and d["answer"]["error"] == "artifact_integrity", (name, d)
    assert all(n.startswith(("split_gain", "internal_", "leaf_count_empty")) for n in served), \
        served


def test_training_and_registration_refuse_a_broken_file(served_ws) -> None:
    v1 = registry.get_version(served_ws, MODEL, 1)
    bad = corpus(_model_text(served_ws))["cycle_tree0_sized"]
    digest = served_ws.put_artifact(bad)
    manifest = {**v1["manifest"], "artifact": {**v1["manifest"]["artifact"], "sha256": digest}}
    with pytest.raises(ArtifactCorrupt, match="node 0 is reached twice"):
        versions.register(served_ws, MODEL, run_id="bad", artifact=digest, manifest=manifest,
                          metrics=v1["metrics"], as_of=v1["created_at"])
    with pytest.raises(ArtifactCorrupt, match=r"version 1 .* tree 0"):
        training.load_model(served_ws, {**manifest, "version": 1})
    with pytest.raises(ArtifactCorrupt):
        training.load_booster(served_ws, digest)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, data: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_real_server_says_why_it_is_not_ready_and_stops_on_sigterm(served_ws) -> None:
    """A real server on 127.0.0.1 whose production file is cut at half: /ready says why,
    /health answers, promote of a broken version is a 500-class integrity error, and
    SIGTERM stops it."""
    text = _model_text(served_ws)
    v1 = registry.get_version(served_ws, MODEL, 1)
    good = v1["manifest"]["artifact"]["sha256"]
    v2 = versions.register(served_ws, MODEL, run_id="second", artifact=good,
                           manifest=v1["manifest"], metrics=v1["metrics"],
                           as_of=v1["created_at"])
    point_production_at(served_ws, MODEL, corpus(text)["half"])
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuesday.cli", "--project", str(RIDERSHIP), "--workspace",
         str(served_ws.root), "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TUESDAY_COMPILED": "off"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = _get(f"{base}/ready")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert status == 503 and "version 1" in body["models"][MODEL]
        assert _get(f"{base}/health")[0] == 200
        status, body = _get(f"{base}/v1/models/{MODEL}/predict",
                            json.dumps({"station": "Clark_Lake", "date": "2016-07-05"}).encode())
        assert status == 500 and body["error"] == "artifact_integrity"
        # a version registered by a bad tool with a broken file (pointing v2 at it)
        point_production_at(served_ws, MODEL, corpus(text)["cycle_tree0_sized"])
        registry_v = registry.get_version(served_ws, MODEL, v2)
        assert registry_v["stage"] == "candidate"
        status, body = _get(f"{base}/v1/models/{MODEL}/promote",
                            json.dumps({"version": 1}).encode())
        assert status == 500 and body["error"] == "artifact_integrity", body
        assert "tree 0" in body["message"]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode is not None
