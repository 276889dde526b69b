"""Release and serve: deployments (shadow, canary, A/B), business rules, role tokens,
load shedding, batch scoring, plan and gates, crash safety of a promotion."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from scipy import stats
from starlette.testclient import TestClient

from tests.conftest import AS_OF, RIDERSHIP
from tuesday import meta
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.errors import Conflict, GateFailed, TuesdayError
from tuesday.project import Gate, load_project, rules
from tuesday.release import registry
from tuesday.serve import auth
from tuesday.serve.batch import predict_file
from tuesday.serve.predictor import Predictor
from tuesday.serve.rules import apply as apply_rules
from tuesday.serve.server import create_app
from tuesday.train import versions
from tuesday.workspace import Workspace, open_workspace

T = datetime(2016, 7, 1)
STATIONS = ("Clark_Lake",)  # the station ridership_14d forecasts
DAY = "2016-07-03"


def _doubled(model_text: str) -> str:
    """The same trees with every leaf value doubled: predictions exactly 2x."""
    def scale(m: re.Match[str]) -> str:
        return "leaf_value=" + " ".join(repr(2 * float(v)) for v in m.group(1).split())
    text = re.sub(r"^leaf_value=(.*)$", scale, model_text, flags=re.M)
    # the byte sizes of the trees changed: drop them and LightGBM parses tree by tree
    return re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)


@pytest.fixture(scope="module")
def release_ws(trained_ws: Workspace, ridership, tmp_path_factory) -> Workspace:
    """Version 1 in production, version 2 (2x version 1's predictions) a candidate."""
    dst = tmp_path_factory.mktemp("release") / "ws"
    shutil.copytree(trained_ws.root, dst)
    ws = open_workspace(dst)
    model = ridership.project.model("ridership_14d")
    registry.promote(ws, model, 1, as_of=AS_OF)
    v1 = registry.get_version(ws, "ridership_14d", 1)
    text = ws.get_artifact(v1["manifest"]["artifact"]["sha256"]).decode()
    digest = ws.put_artifact(_doubled(text).encode())
    manifest = {**v1["manifest"], "artifact": {**v1["manifest"]["artifact"], "sha256": digest}}
    versions.register(ws, "ridership_14d", run_id="doubled", artifact=digest,
                      manifest=manifest, metrics=v1["metrics"], as_of=AS_OF)
    materialize(ws, ridership.project, model, AS_OF)
    return ws


@pytest.fixture()
def ws(release_ws: Workspace, tmp_path: Path) -> Workspace:
    dst = tmp_path / "ws"
    shutil.copytree(release_ws.root, dst)
    return open_workspace(dst)


def _rows(n_days: int = 14) -> list[dict[str, str]]:
    days = pd.date_range("2016-07-01", periods=n_days, freq="D")
    return [{"station": s, "date": str(d.date())} for s in STATIONS for d in days]


def _v1(ws: Workspace, ridership, rows) -> np.ndarray:
    p = Predictor(ws, ridership)
    try:
        return np.array([r["prediction"] for r in
                         p.predict("ridership_14d", rows)["predictions"]])
    finally:
        p.close()


# ------------------------------------------------------------------ deployments


def test_shadow_is_logged_and_never_returned(ws, ridership) -> None:
    rows = _rows(3)
    expected = _v1(ws, ridership, rows)
    registry.deploy(ws, "ridership_14d", "shadow", 2, as_of=T)
    with TestClient(create_app(ws.root, ridership.path)) as client:
        body = client.post("/v1/models/ridership_14d/predict", json={"rows": rows}).json()
        assert body["deployment"] == "shadow" and body["model_version"] == 1
        got = np.array([r["prediction"] for r in body["predictions"]])
        np.testing.assert_array_equal(got, expected)
        assert all("variant" not in r for r in body["predictions"])
    log = read_log(ws, "ridership_14d")
    mine = log[log["request_id"] == body["request_id"]]
    shadow = mine[mine["variant"] == "shadow"]
    primary = mine[mine["variant"] == "primary"]
    assert len(shadow) == len(primary) == len(rows)
    assert set(shadow["version"]) == {2} and set(primary["version"]) == {1}
    np.testing.assert_allclose(shadow["prediction"].to_numpy(), 2 * expected, rtol=1e-12)


def test_ab_split_is_sticky_and_near_the_percentage(ws, ridership) -> None:
    registry.deploy(ws, "ridership_14d", "ab", 2, percent=30, as_of=T)
    p = Predictor(ws, ridership)
    try:
        route = p.route("ridership_14d")
        entities = [f"e{i}" for i in range(20_000)]
        share = np.mean([route.variant_of(e, 0.0) == "b" for e in entities])
        # binomial tolerance: 5 standard deviations
        assert abs(share - 0.30) < 5 * np.sqrt(0.3 * 0.7 / len(entities))
        first = p.predict("ridership_14d", _rows(2))["predictions"]
        again = p.predict("ridership_14d", _rows(2))["predictions"]
    finally:
        p.close()
    assert [r["variant"] for r in first] == [r["variant"] for r in again]
    by_station: dict[str, set[str]] = {}
    for r in first:
        by_station.setdefault(r["station"], set()).add(r["variant"])
        assert r["model_version"] == (2 if r["variant"] == "b" else 1)
    assert all(len(v) == 1 for v in by_station.values())  # one variant per entity


def test_canary_share_within_tolerance(ws, ridership) -> None:
    registry.deploy(ws, "ridership_14d", "canary", 2, percent=20, as_of=T)
    p = Predictor(ws, ridership)
    n = 400
    try:
        versions = [p.predict("ridership_14d", [{"station": "Clark_Lake", "date": "2016-07-03"}])
                    ["predictions"][0]["model_version"] for _ in range(n)]
    finally:
        p.close()
    k = sum(v == 2 for v in versions)
    assert stats.binomtest(k, n, 0.2).pvalue > 1e-4, k


def test_deploy_refuses_bad_requests(ws, ridership) -> None:
    with pytest.raises(TuesdayError, match="mode must be one of"):
        registry.deploy(ws, "ridership_14d", "blue-green", 2, as_of=T)
    with pytest.raises(Conflict, match="only a candidate"):
        registry.deploy(ws, "ridership_14d", "canary", 1, as_of=T)
    with pytest.raises(TuesdayError, match="between 0 and 100"):
        registry.deploy(ws, "ridership_14d", "canary", 2, percent=150, as_of=T)
    with pytest.raises(TuesdayError, match="needs the challenger version"):
        registry.deploy(ws, "ridership_14d", "ab", None, as_of=T)


def test_promotion_ends_the_deployment(ws, ridership) -> None:
    registry.deploy(ws, "ridership_14d", "canary", 2, percent=10, as_of=T)
    registry.promote(ws, ridership.project.model("ridership_14d"), 2, as_of=T)
    dep = registry.deployment(ws, "ridership_14d")
    assert dep["mode"] == "single" and "ended" in dep["reason"]
    assert [d["mode"] for d in registry.deployment_history(ws, "ridership_14d")] == \
        ["canary", "single"]


# ------------------------------------------------------------------------ rules


def test_rules_floor_cap_round_filter_boost_function() -> None:
    rs = (rules.floor(0), rules.cap(20), rules.drop(lambda r: r.get("closed")),
          rules.boost(lambda r: r.get("new"), by=1.5),
          rules.rule(lambda r, p: None if r["sku"] == "x" else p, name="no_x"),
          rules.round_to(6))
    rows = [{"sku": "a"}, {"sku": "b", "closed": True}, {"sku": "c", "new": True},
            {"sku": "x"}, {"sku": "d"}]
    out = apply_rules(rs, rows, np.array([-3.0, 5.0, 7.0, 4.0, 100.0]),
                      np.random.default_rng(0))
    assert out.predictions[0] == 0.0
    assert np.isnan(out.predictions[1]) and out.dropped_by[1] == "drop"
    assert out.predictions[2] == 12.0  # 7 * 1.5 = 10.5 -> 2 packs of 6
    assert np.isnan(out.predictions[3]) and out.dropped_by[3] == "no_x"
    assert out.predictions[4] == 24.0  # capped at 20, then rounded up to whole packs
    assert out.propensity is None


def test_round_to_modes_and_exact_multiples() -> None:
    x = np.array([12.0, 12.000000001, 13.0, 15.0])
    rng = np.random.default_rng(0)
    assert apply_rules((rules.round_to(6),), [{}] * 4, x, rng).predictions.tolist() == \
        [12.0, 12.0, 18.0, 18.0]
    assert apply_rules((rules.round_to(6, "down"),), [{}] * 4, x, rng).predictions.tolist() \
        == [12.0, 12.0, 12.0, 12.0]
    assert apply_rules((rules.round_to(6, "nearest"),), [{}] * 4, x, rng
                       ).predictions.tolist() == [12.0, 12.0, 12.0, 18.0]


def test_epsilon_greedy_propensities_match_the_observed_policy() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.3])
    rng = np.random.default_rng(1)  # fixed: the outcome is deterministic
    n = 20_000
    firsts = np.zeros(4)
    for _ in range(n):
        out = apply_rules((rules.epsilon_greedy(0.2),), [{}] * 4, scores, rng)
        firsts[out.order[0]] += 1
    np.testing.assert_allclose(out.propensity, [0.05, 0.85, 0.05, 0.05])
    # observed first-place frequencies agree with the logged propensities
    chi = stats.chisquare(firsts, out.propensity * n)
    assert chi.pvalue > 1e-4, (firsts, chi)


def test_thompson_propensities_sum_to_one_and_favour_the_best() -> None:
    out = apply_rules((rules.thompson(10),), [{}] * 3, np.array([0.2, 0.8, 0.5]),
                      np.random.default_rng(1))
    assert out.explored and out.propensity.sum() == pytest.approx(1.0)
    assert out.propensity.argmax() == 1 and out.propensity.min() > 0


def test_rule_declarations_are_checked() -> None:
    problems = rules.check((rules.round_to(0), rules.boost(lambda r: True),
                            rules.epsilon_greedy(1.5), rules.thompson(1),
                            rules.epsilon_greedy(0.1), "floor"), "Model 'm'")
    text = " ".join(problems)
    for part in ("positive pack size", "exactly one of by=", "within [0, 1]",
                 "at most one exploration rule", "must be built with tuesday.project's rules"):
        assert part in text


def test_server_applies_rules_and_logs_raw_and_final(ws, ridership) -> None:
    rows = _rows(5)
    assert DAY in {r["date"] for r in rows}
    raw = _v1(ws, ridership, rows)
    model = ridership.project.model("ridership_14d")
    ruled = replace(model, rules=(rules.drop(lambda r: r["date"] == DAY,
                                             name="closed_station"),
                                  rules.round_to(0.5)))
    project = replace(ridership.project, models=(ruled,))
    p = Predictor(ws, replace(ridership, project=project))
    try:
        body = p.predict("ridership_14d", rows)
        p.log.flush()
    finally:
        p.close()
    for asked, r, x in zip(rows, body["predictions"], raw, strict=True):
        if asked["date"] == DAY:
            assert r["prediction"] is None and r["dropped_by"] == "closed_station"
        else:
            assert r["prediction"] == np.ceil(x / 0.5 - 1e-9) * 0.5
    log = read_log(ws, "ridership_14d")
    mine = log[log["request_id"] == body["request_id"]]
    np.testing.assert_allclose(mine["raw_prediction"].to_numpy(), raw)
    assert set(mine["dropped_by"].dropna()) == {"closed_station"}
    assert mine["prediction"].isna().sum() == 1


def _variant_project(folder: Path, change: str) -> Path:
    """A project file: the ridership project with ridership_14d changed by ``change``."""
    path = folder / "variant_project.py"
    path.write_text(f"""
import importlib.util
from dataclasses import replace

import tuesday.project
import tuesday.project

spec = importlib.util.spec_from_file_location("base_ridership", {str(RIDERSHIP)!r})
base = importlib.util.module_from_spec(spec)
spec.loader.exec_module(base)
m = replace(base.project.model("ridership_14d"), {change})
project = replace(base.project, models=(m,))
""")
    return path


def test_a_failing_rule_is_a_json_500_naming_the_rule(ws, tmp_path) -> None:
    proj = _variant_project(tmp_path, "rules=(tuesday.project.rule(lambda row, p: 1 / 0, "
                                      "name='broken'),)")
    with TestClient(create_app(ws.root, proj)) as client:
        r = client.post("/v1/models/ridership_14d/predict",
                        json={"station": "Clark_Lake", "date": "2016-07-03"})
    assert r.status_code == 500 and r.json()["error"] == "rule_failed"
    assert "'broken'" in r.json()["message"] and "ZeroDivisionError" in r.json()["message"]


# ------------------------------------------------------------------------- auth


def test_roles(ws, ridership) -> None:
    admin = auth.create(ws, "ops", "admin", as_of=T)
    pred = auth.create(ws, "shop", "predict", as_of=T)
    read = auth.create(ws, "analyst", "read", as_of=T)
    row = {"station": "Clark_Lake", "date": "2016-07-03"}
    url = "/v1/models/ridership_14d"
    with TestClient(create_app(ws.root, ridership.path)) as client:
        def h(t: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {t}"}

        none = client.post(f"{url}/predict", json=row)
        assert none.status_code == 401 and "Authorization" in none.json()["message"]
        assert client.post(f"{url}/predict", json=row, headers=h("nope")).status_code == 401
        assert client.post(f"{url}/predict", json=row, headers=h(pred)).status_code == 200
        assert client.post(f"{url}/predict", json=row, headers=h(admin)).status_code == 200
        denied = client.post(f"{url}/predict", json=row, headers=h(read))
        assert denied.status_code == 403 and "'analyst'" in denied.json()["message"]
        assert client.get("/v1/models", headers=h(read)).status_code == 200
        assert client.get("/v1/models", headers=h(pred)).status_code == 403
        assert client.post(f"{url}/promote", json={"version": 2},
                           headers=h(pred)).status_code == 403
        assert client.put(f"{url}/deployment", json={"mode": "shadow", "version": 2},
                          headers=h(read)).status_code == 403
        ok = client.put(f"{url}/deployment", json={"mode": "shadow", "version": 2},
                        headers=h(admin))
        assert ok.status_code == 200 and ok.json()["actor"] == "ops"
        assert client.get("/health").status_code == 200  # probes need no token
        bad = client.post(f"{url}/promote", json={"version": "two"}, headers=h(admin))
        assert bad.status_code == 400 and "whole number" in bad.json()["message"]
        promoted = client.post(f"{url}/promote", json={"version": 2}, headers=h(admin))
        assert promoted.status_code == 200, promoted.text
        assert registry.audit(ws, "ridership_14d")[-1]["actor"] == "ops"
        back = client.post(f"{url}/rollback", json={"reason": "test"}, headers=h(admin))
        assert back.status_code == 200 and back.json()["version"] == 1
    auth.revoke(ws, "shop", as_of=T)
    assert set(auth.active(ws).values()) == {("ops", "admin"), ("analyst", "read")}


# --------------------------------------------------------------- load shedding


def test_full_prediction_log_sheds_with_503_and_retry_after(ws, ridership) -> None:
    app = create_app(ws.root, ridership.path, log_max_rows=20, flush_seconds=3600)
    row = {"rows": _rows(8)}  # 8 rows per request
    with TestClient(app) as client:
        codes = [client.post("/v1/models/ridership_14d/predict", json=row) for _ in range(4)]
        assert [c.status_code for c in codes] == [200, 200, 503, 503]
        assert codes[2].headers["Retry-After"] == "1"
        assert codes[2].json()["error"] == "overloaded"
        assert "tuesday_shed_total{reason=\"log_full\"} 2.0" in client.get("/metrics").text
    # the refused requests were not answered, and nothing answered went unlogged
    assert len(read_log(ws, "ridership_14d")) == 16


def test_too_many_requests_in_flight_are_shed(ws, ridership) -> None:
    app = create_app(ws.root, ridership.path, max_inflight=0)
    with TestClient(app) as client:
        r = client.post("/v1/models/ridership_14d/predict",
                        json={"station": "Clark_Lake", "date": "2016-07-03"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"


# ---------------------------------------------------------------------- batch


def test_batch_file_csv_and_parquet_with_errors_per_row(ws, ridership, tmp_path) -> None:
    rows = [*_rows(14), {"station": "Nowhere", "date": DAY},
            {"station": "Clark_Lake", "date": "2017-01-01"},
            {"station": "Clark_Lake", "date": "not a date"}]
    expected = _v1(ws, ridership, rows[:-3])
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "in.csv", index=False)
    frame.to_parquet(tmp_path / "in.parquet")
    for src, dst in (("in.csv", "out.parquet"), ("in.parquet", "out.csv")):
        res = predict_file(ws, ridership, "ridership_14d", tmp_path / src, tmp_path / dst,
                           chunk_rows=25)
        assert (res.rows, res.predicted, res.errors) == (len(rows), len(rows) - 3, 3)
        out = pq.read_table(tmp_path / dst).to_pandas() if dst.endswith("parquet") \
            else pd.read_csv(tmp_path / dst)
        assert list(out["station"]) == [r["station"] for r in rows]
        np.testing.assert_allclose(out["prediction"][:-3].to_numpy(float), expected,
                                   rtol=1e-12)
        errs = out["error"].tolist()[-3:]
        assert "unknown entity" in errs[0] and "online store holds" in errs[1]
        assert "target date" in errs[2]
        assert not (tmp_path / (dst + ".partial")).exists()
    assert (read_log(ws, "ridership_14d")["version"] == 1).sum() == 2 * (len(rows) - 3)


def test_batch_endpoint_streams_ndjson_and_csv(ws, ridership) -> None:
    rows = _rows(3)
    expected = _v1(ws, ridership, rows)
    nd = "\n".join(json.dumps(r) for r in rows) + "\n{broken\n"
    csv_body = "station,date\n" + "\n".join(f"{r['station']},{r['date']}" for r in rows)
    with TestClient(create_app(ws.root, ridership.path)) as client:
        url = "/v1/models/ridership_14d/batch"
        a = client.post(url, content=nd, headers={"Content-Type": "application/x-ndjson"})
        b = client.post(url, content=csv_body, headers={"Content-Type": "text/csv"})
        c = client.post(url, content=nd, headers={"Content-Type": "application/json"})
    got = [json.loads(ln) for ln in a.text.splitlines()]
    assert len(got) == len(rows) + 1 and "not valid JSON" in got[-1]["error"]
    np.testing.assert_allclose([g["prediction"] for g in got[:-1]], expected, rtol=1e-12)
    np.testing.assert_allclose([json.loads(ln)["prediction"] for ln in b.text.splitlines()],
                               expected, rtol=1e-12)
    assert c.status_code == 400 and "NDJSON or CSV" in c.json()["message"]


# ------------------------------------------------------------------ plan, gates


def test_plan_compares_slices_with_production_and_changes_nothing(ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    v1 = registry.get_version(ws, "ridership_14d", 1)
    metrics = json.loads(json.dumps(v1["metrics"]))
    sl = metrics["slices"][0]
    sl["model"]["rmse"] *= 1.5  # one slice value much worse than production
    v3 = versions.register(ws, "ridership_14d", run_id="worse-slice", artifact=v1["artifact"],
                           manifest=v1["manifest"], metrics=metrics, as_of=T)
    gated = replace(model, gates=(Gate(), Gate("slices", tolerance=0.1),
                                  Gate("latency", max_ms=50), Gate("size", max_mb=50)))
    before = registry.audit(ws)
    plan = registry.plan(ws, gated, v3)
    assert registry.audit(ws) == before
    by_gate = {g["gate"]: g for g in plan["gates"]}
    assert by_gate["beats_baseline"]["passed"] and by_gate["size"]["passed"]
    assert by_gate["latency"]["passed"] and by_gate["latency"]["p99_ms"] > 0
    assert not by_gate["slices"]["passed"]
    worse = by_gate["slices"]["worse"]
    assert [(w["slice"], w["value"]) for w in worse] == [(sl["slice"], sl["value"])]
    assert worse[0]["worse_by"] == pytest.approx(0.5)
    assert plan["production_version"] == 1 and plan["retires"] == 1
    assert not plan["gates_passed"]
    with pytest.raises(GateFailed, match="slices"):
        registry.promote(ws, gated, v3, as_of=T)
    tight = replace(model, gates=(Gate("latency", max_ms=1e-6), Gate("size", max_mb=1e-6)))
    assert not any(g["passed"] for g in registry.plan(ws, tight, 2)["gates"])


def test_gate_declarations_are_checked(tmp_path) -> None:
    proj = _variant_project(tmp_path, "gates=(tuesday.project.Gate('latency', max_ms=-1), "
                                      "tuesday.project.Gate('speed'))")
    with pytest.raises(TuesdayError) as exc:
        load_project(proj)
    assert "max_ms must be a positive number" in str(exc.value)
    assert "gate kind 'speed' is unknown" in str(exc.value)


# --------------------------------------------------------------- crash safety

FAULTS = ("promote:after_gates", "promote:after_retire", "promote:after_stage",
          "promote:after_audit", "promote:before_commit")


def _state(ws: Workspace) -> tuple:
    with ws.engine().connect() as conn:
        stages = conn.execute(sa.select(meta.model_versions.c.version,
                                        meta.model_versions.c.stage)
                              .order_by(meta.model_versions.c.version)).all()
        audit = conn.execute(sa.select(sa.func.count()).select_from(meta.transitions)
                             ).scalar()
        deps = conn.execute(sa.select(sa.func.count()).select_from(meta.deployments)).scalar()
    return tuple(stages), audit, deps


@pytest.mark.parametrize("fault", FAULTS)
def test_promotion_killed_at_any_step_leaves_old_or_new_state(ws, ridership, fault) -> None:
    registry.deploy(ws, "ridership_14d", "canary", 2, percent=10, as_of=T)
    old = _state(ws)
    env = {**os.environ, "TUESDAY_FAULT": fault}
    proc = subprocess.run(
        [sys.executable, "-m", "tuesday.cli", "--project", str(RIDERSHIP), "--workspace",
         str(ws.root), "promote", "ridership_14d", "2", "--as-of", "2016-07-01"],
        env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    after = _state(ws)
    assert after == old  # nothing was committed
    # the workspace still works: the same promotion now completes in full
    registry.promote(ws, ridership.project.model("ridership_14d"), 2, as_of=T)
    stages, audit, deps = _state(ws)
    assert dict(stages) == {1: "retired", 2: "production"}
    assert (audit, deps) == (old[1] + 2, old[2] + 1)


# ------------------------------------------------------------- several workers


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_two_workers_answers_and_logs_everything(ws) -> None:
    import signal
    import time
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuesday.cli", "--project", str(RIDERSHIP), "--workspace",
         str(ws.root), "serve", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stderr.read() if proc.stderr else "") from None
                time.sleep(0.2)
        n = 120
        body = json.dumps({"station": "Clark_Lake", "date": DAY}).encode()
        for _ in range(n):
            req = urllib.request.Request(f"{base}/v1/models/ridership_14d/predict", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: each worker flushes its log
        proc.wait(timeout=60)
    log = read_log(ws, "ridership_14d")
    assert len(log) == n and log["request_id"].is_unique


def test_challenger_against_what_production_served(ws, ridership) -> None:
    """The gate compares the version's backtest with production's served answers on the
    same days (oracle: the metric recomputed by hand on the joined rows)."""
    import io

    from tuesday.serve.prediction_log import PredictionLog

    model = replace(ridership.project.model("ridership_14d"),
                    gates=(Gate("beats_production", tolerance=0.0),))
    v2 = registry.get_version(ws, "ridership_14d", 2)
    bt = pq.read_table(io.BytesIO(ws.get_artifact(
        v2["manifest"]["backtest_predictions"]["sha256"]))).to_pandas().tail(30)
    assert registry.plan(ws, model, 2)["gates"][0]["rows"] == 0  # nothing served yet

    def serve_log(answers: np.ndarray, tag: str, hour: int) -> None:
        log = PredictionLog(ws)
        log.add([{"request_id": f"{tag}{i}", "model": "ridership_14d", "version": 1,
                  "entity": "Clark_Lake", "target_time": pd.Timestamp(t).to_pydatetime(),
                  "served_at": datetime(2016, 7, 1, hour, 0, i), "prediction": float(p),
                  "baselines": "{}", "features": "{}", "variant": "primary",
                  "raw_prediction": float(p), "propensity": None, "dropped_by": None}
                 for i, (t, p) in enumerate(zip(bt["date"], answers, strict=True))])
        log.flush()

    y = bt["rides"].to_numpy(float)
    serve_log(y * 1.5, "bad", 0)  # production served answers 50 % too high
    gate = registry.plan(ws, model, 2)["gates"][0]
    mine = float(np.sqrt(np.mean((bt["model"].to_numpy(float) - y) ** 2)))
    theirs = float(np.sqrt(np.mean((1.5 * y - y) ** 2)))
    assert gate["rows"] == 30 and gate["passed"]
    assert gate["version"] == pytest.approx(mine) and gate["production"] == pytest.approx(theirs)
    serve_log(y, "perfect", 1)  # served later: the latest answer per day counts
    gate = registry.plan(ws, model, 2)["gates"][0]
    assert not gate["passed"] and gate["production"] == pytest.approx(0.0)
