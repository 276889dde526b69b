"""Monitoring: quality per window / slice / variant against direct pandas computations,
CBPE against realised metrics, data and service health, alerts through a real Log route,
the HTML report and the CLI."""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from tests.conftest import AS_OF, RIDERSHIP
from tuesday.cli import main
from tuesday.data import tables
from tuesday.errors import TuesdayError
from tuesday.loop import daily as loop
from tuesday.project import Freshness, LoadedProject
from tuesday.release import registry
from tuesday.serve.prediction_log import PredictionLog
from tuesday.watch import alerts, health, monitoring, quality
from tuesday.workspace import Workspace

MODEL = "ridership_14d"
FIRST, LAST = pd.Timestamp("2016-05-02"), pd.Timestamp("2016-06-26")  # 8 weeks, Mon-Sun
MONITOR_AT = datetime(2016, 7, 3)
HOLIDAY = pd.Timestamp("2016-05-30")  # Memorial Day


def _labels(ws: Workspace, loaded: LoadedProject) -> pd.DataFrame:
    src = loaded.project.source("ridership")
    t = tables.read_table(ws, src).to_pandas()
    t["date"] = pd.to_datetime(t["date"])
    return t


def _reference(ws: Workspace) -> pd.DataFrame:
    prod = registry.production(ws, MODEL)
    assert prod is not None
    return pq.read_table(io.BytesIO(ws.get_artifact(
        prod["manifest"]["reference"]["sha256"]))).to_pandas()


def _row(version: int, variant: str, entity: str, target: pd.Timestamp, prediction: float,
         baselines: dict[str, float], features: dict[str, Any],
         request_id: str | None = None) -> dict[str, Any]:
    return {"request_id": request_id or uuid.uuid4().hex, "model": MODEL, "version": version,
            "entity": entity, "target_time": target.to_pydatetime(),
            "served_at": (target - pd.Timedelta(days=14)).to_pydatetime(),
            "prediction": prediction, "baselines": json.dumps(baselines),
            "features": json.dumps(features), "variant": variant,
            "raw_prediction": prediction, "propensity": None, "dropped_by": None}


def _write(ws: Workspace, rows: list[dict[str, Any]]) -> None:
    log = PredictionLog(ws)
    assert log.add(rows)
    log.flush()


@pytest.fixture()
def served(ws_copy: Workspace, ridership: LoadedProject) -> tuple[Workspace, pd.DataFrame]:
    """Version 1 in production; 56 days of Clark_Lake forecasts logged with their
    baselines, each also answered by a (worse) shadow version 2 on the same request."""
    ws = ws_copy
    registry.promote(ws, ridership.project.model(MODEL), 1, as_of=AS_OF)
    lab = _labels(ws, ridership)
    days = lab[(lab["station"] == "Clark_Lake") & (lab["date"] >= FIRST)
               & (lab["date"] <= LAST)].sort_values("date").reset_index(drop=True)
    assert len(days) == 56
    rng = np.random.default_rng(1)
    ref = _reference(ws).sample(len(days), random_state=1).reset_index(drop=True)
    rows, truth = [], []
    for i, d in days.iterrows():
        y = float(d["rides"])
        p = y + rng.normal(0, 1.0)
        bl = {"seasonal_naive": y + rng.normal(0, 2.0), "seasonal_mean_4w": y + rng.normal(0, 1.5)}
        feats = {c: float(ref.loc[i, c]) for c in ref.columns
                 if c in ridership.project.model(MODEL).feature_names}
        feats["day_of_week"] = float(d["date"].day_of_week)
        feats["holiday_is_holiday"] = float(d["date"] == HOLIDAY)
        rid = uuid.uuid4().hex
        rows.append(_row(1, "primary", "Clark_Lake", d["date"], p, bl, feats, rid))
        shadow = y + rng.normal(0, 3.0)
        rows.append(_row(2, "shadow", "Clark_Lake", d["date"], shadow, bl, feats, rid))
        truth.append({"date": d["date"], "y": y, "p": p, "shadow": shadow, **bl,
                      "dow": d["date"].day_of_week, "holiday": int(d["date"] == HOLIDAY)})
    _write(ws, rows)
    return ws, pd.DataFrame(truth)


def _metrics(y: pd.Series, p: pd.Series) -> dict[str, float]:
    """The oracle: the metrics written out on pandas columns."""
    err = p - y
    return {"rmse": float(np.sqrt((err ** 2).mean())), "mae": float(err.abs().mean()),
            "wape": float(err.abs().sum() / y.abs().sum()), "bias": float(err.mean())}


def _close(got: dict[str, float], want: dict[str, float]) -> None:
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


# ------------------------------------------------------------------ quality


def test_windows_slices_and_shadow_match_a_direct_computation(
        served: tuple[Workspace, pd.DataFrame], ridership: LoadedProject) -> None:
    ws, truth = served
    r = monitoring.monitor(ws, ridership, MODEL, MONITOR_AT)
    assert r["predictions_logged"] == 56  # shadow rows are not what users got
    q = r["quality"]
    assert q["rows_with_ground_truth"] == 56 and q["rows_served"] == 56
    _close(q["model"], _metrics(truth["y"], truth["p"]))
    _close(q["baselines"]["seasonal_naive"], _metrics(truth["y"], truth["seasonal_naive"]))
    assert q["best_baseline"] == "seasonal_mean_4w" and q["beats_baseline"] is True
    assert np.isnan(q["model"]["mase"])  # no scale on live rows: declared, reported as NaN

    # weekly windows, Monday to Sunday, model and both baselines on the same rows
    assert [w["start"] for w in r["windows"]] == [
        (FIRST + pd.Timedelta(weeks=k)).date().isoformat() for k in range(8)]
    week = truth.assign(w=truth["date"].dt.to_period("W"))
    for w, (_, g) in zip(r["windows"], week.groupby("w"), strict=True):
        assert w["rows"] == 7
        _close(w["model"], _metrics(g["y"], g["p"]))
        _close(w["baselines"]["seasonal_mean_4w"], _metrics(g["y"], g["seasonal_mean_4w"]))
        want = _metrics(g["y"], g["seasonal_naive"])["rmse"] \
            < _metrics(g["y"], g["seasonal_mean_4w"])["rmse"]
        assert w["best_baseline"] == ("seasonal_naive" if want else "seasonal_mean_4w")

    # slices declared by the model: day_of_week and holiday_is_holiday (features)
    by = {(s["slice"], s["value"]): s for s in r["slices"]}
    assert {k[0] for k in by} == {"day_of_week", "holiday_is_holiday"}
    assert by[("holiday_is_holiday", 1)]["rows"] == 1
    for dow, g in truth.groupby("dow"):
        s = by[("day_of_week", dow)]
        assert s["rows"] == 8
        _close(s["model"], _metrics(g["y"], g["p"]))
        _close(s["baselines"]["seasonal_naive"], _metrics(g["y"], g["seasonal_naive"]))

    # per variant: primary v1 and shadow v2, then a paired comparison on the same rows
    v = {(x["version"], x["variant"]): x for x in r["variants"]["variants"]}
    assert set(v) == {(1, "primary"), (2, "shadow")}
    _close(v[(2, "shadow")]["model"], _metrics(truth["y"], truth["shadow"]))
    [c] = r["variants"]["comparisons"]
    assert c["kind"] == "shadow" and c["paired"] and c["metric"] == "rmse"
    assert c["reference"] == {"version": 1, "variant": "primary", "rows": 56}
    diff = _metrics(truth["y"], truth["shadow"])["rmse"] - _metrics(truth["y"], truth["p"])["rmse"]
    assert c["difference"] == pytest.approx(diff)
    assert c["ci95"][0] < diff < c["ci95"][1]
    assert c["significant"] and c["better"] == "reference"  # noise 3 vs noise 1
    assert "paired bootstrap over the same 56 requests" in c["note"]
    again = monitoring.monitor(ws, ridership, MODEL, MONITOR_AT, write=False)
    assert again["variants"]["comparisons"][0]["ci95"] == c["ci95"]  # fixed seed
    # the report files: JSON without NaN, HTML offline
    assert "NaN" not in Path(r["report_json"]).read_text()
    page = Path(r["report_html"]).read_text()
    for title in ("Quality over time", "Quality per slice", "Deployment variants",
                  "Data health", "Feature drift"):
        assert title in page
    assert "<script" not in page and "http" not in page


def test_quality_uses_user_metrics_and_loop_keeps_its_numbers(
        served: tuple[Workspace, pd.DataFrame], ridership: LoadedProject) -> None:
    from tuesday.project import Metric

    ws, truth = served
    model = ridership.project.model(MODEL)
    over = Metric("over_forecast", lambda y, p: float(np.mean(p > y)))
    lp = LoadedProject(dataclasses.replace(ridership.project, models=(
        dataclasses.replace(model, metrics=(*model.metrics, over)),)), ridership.path,
        ridership.module)
    r = monitoring.monitor(ws, lp, MODEL, MONITOR_AT, write=False)
    share = float((truth["p"] > truth["y"]).mean())
    assert r["quality"]["model"]["over_forecast"] == pytest.approx(share)
    assert r["windows"][0]["model"]["over_forecast"] == pytest.approx(
        float((truth["p"] > truth["y"])[:7].mean()))
    # the loop's recent monitor uses the same public function on its window
    rec = loop.recent_monitor(ws, ridership, MODEL, MONITOR_AT,
                              loop.Policy(quality_window="70d"))
    direct = monitoring.live_quality(ws, ridership, MODEL, monitoring.read_log(ws, MODEL)
                                     .query("variant != 'shadow'"), MONITOR_AT)
    assert direct is not None
    for k in ("rmse", "mae", "wape", "bias"):
        assert rec["quality"]["model"][k] == direct["model"][k]
    assert rec["quality"]["rows_with_ground_truth"] == 56


def test_canary_and_ab_variants(ws_copy: Workspace, ridership: LoadedProject) -> None:
    ws = ws_copy
    registry.promote(ws, ridership.project.model(MODEL), 1, as_of=AS_OF)
    lab = _labels(ws, ridership)
    part = lab[(lab["date"] >= "2016-06-01") & (lab["date"] <= "2016-06-28")]
    stations = sorted(part["station"].unique())[:10]
    rng = np.random.default_rng(3)
    rows, truth = [], []
    for _, d in part[part["station"].isin(stations)].iterrows():
        y = float(d["rides"])
        k = stations.index(d["station"])
        if d["date"] < pd.Timestamp("2016-06-15"):  # canary period: 3 stations on v2
            variant, version = ("canary", 2) if k < 3 else ("primary", 1)
        else:  # A/B period: half of the stations on b
            variant, version = ("b", 2) if k % 2 else ("a", 1)
        p = y + rng.normal(0, 0.5 if version == 2 else 1.0)
        rows.append(_row(version, variant, d["station"], d["date"], p, {"seasonal_naive": y},
                         {}))
        truth.append({"variant": variant, "y": y, "p": p})
    _write(ws, rows)
    t = pd.DataFrame(truth)
    r = monitoring.monitor(ws, ridership, MODEL, MONITOR_AT, write=False)
    v = {x["variant"]: x for x in r["variants"]["variants"]}
    assert set(v) == {"primary", "canary", "a", "b"}
    for name, g in t.groupby("variant"):
        assert v[name]["rows_with_ground_truth"] == len(g)
        _close(v[name]["model"], _metrics(g["y"], g["p"]))
    comps = {c["kind"]: c for c in r["variants"]["comparisons"]}
    assert set(comps) == {"canary", "ab"}
    ab = comps["ab"]
    assert not ab["paired"] and ab["reference"]["variant"] == "a"
    ga, gb = t[t["variant"] == "a"], t[t["variant"] == "b"]
    assert ab["difference"] == pytest.approx(_metrics(gb["y"], gb["p"])["rmse"]
                                             - _metrics(ga["y"], ga["p"])["rmse"])
    assert ab["significant"] and ab["better"] == "challenger"
    assert comps["canary"]["reference"]["rows"] == len(t[t["variant"] == "primary"])


# --------------------------------------------------------------------- CBPE


def test_cbpe_matches_realised_metrics_on_a_calibrated_sample() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, 20_000)
    y = (rng.random(20_000) < p).astype(float)  # calibrated by construction
    est, real = quality.cbpe(p), quality.realised(y, p)
    tol = {"accuracy": 0.01, "precision": 0.02, "recall": 0.02, "f1": 0.02, "roc_auc": 0.01,
           "brier": 0.005, "log_loss": 0.01}
    for k, t in tol.items():
        assert abs(est[k] - real[k]) < t, (k, est[k], real[k])
    # miscalibrated scores (same ranking, inflated): the estimate no longer holds
    bad = quality.cbpe(p ** 0.3)
    assert abs(bad["accuracy"] - quality.realised(y, p ** 0.3)["accuracy"]) > 0.1
    assert bad["roc_auc"] != pytest.approx(real["roc_auc"], abs=0.01)
    # hand-checked small case: TP 1.7, FP 0.3, FN 0.3, TN 1.7
    small = quality.cbpe([0.9, 0.8, 0.2, 0.1])
    assert small["accuracy"] == pytest.approx(0.85) and small["f1"] == pytest.approx(0.85)


def test_cbpe_on_the_churn_example(tmp_path: Path) -> None:
    """Out-of-fold churn scores (LightGBM, 5-fold CV): the estimate from the scores alone
    lands near the realised metrics; through ``monitor`` the section is an estimate."""
    from tuesday.examples import churn as churn_pkg
    from tuesday.project import load_project
    from tuesday.train import training
    from tuesday.workspace import open_workspace

    loaded = load_project(Path(churn_pkg.__file__).parent / "project.py")
    ws = open_workspace(tmp_path / "ws")
    for name, path in loaded.module.example_files(tmp_path / "data").items():
        tables.ingest_file(ws, loaded.project.source(name), path, as_of=datetime(2024, 1, 1))
    res = training.train(ws, loaded, "churn", datetime(2024, 1, 2))
    registry.promote(ws, loaded.project.model("churn"), res.version,
                     as_of=datetime(2024, 1, 3), actor="test")
    oof = pq.read_table(io.BytesIO(ws.get_artifact(
        res.manifest["backtest_predictions"]["sha256"]))).to_pandas()
    y, p = oof["churn"].to_numpy(float), oof["model"].to_numpy()
    real = quality.realised(y, p)
    assert real["roc_auc"] == pytest.approx(0.9231, abs=5e-4)  # the pinned CV AUC
    # boosted scores are not calibrated: taken as probabilities, they promise too much
    raw = quality.cbpe(p)
    assert raw["recall"] - real["recall"] > 0.1 and raw["roc_auc"] - real["roc_auc"] > 0.05
    # calibrated on folds 0-2 (isotonic, as NannyML), estimated on folds 3-4
    ref, cur = (oof["fold"] < 3).to_numpy(), (oof["fold"] >= 3).to_numpy()
    cal = quality.Calibration.fit(y[ref], p[ref])
    est = quality.cbpe(p[cur], calibration=cal)
    held = quality.realised(y[cur], p[cur])
    # measured: accuracy 0.956 vs 0.966, precision 0.923 vs 0.961, recall 0.755 vs 0.789,
    # f1 0.831 vs 0.867, roc_auc 0.922 vs 0.931, brier 0.037 vs 0.029; on 2,000 rows with
    # ~280 churners the realised recall alone has a standard error of about 0.025
    for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "brier"):
        assert abs(est[k] - held[k]) < 0.05, (k, est[k], held[k])
    assert abs(est["accuracy"] - held["accuracy"]) < 0.015
    assert abs(est["roc_auc"] - held["roc_auc"]) < 0.015
    # a log of those scores, plus 200 customers whose label has not arrived
    served_at = datetime(2024, 1, 3)
    rows = [{"request_id": uuid.uuid4().hex, "model": "churn", "version": 1,
             "entity": c, "target_time": None, "served_at": served_at, "prediction": float(p),
             "baselines": json.dumps({"prior": 0.1414}), "features": "{}",
             "variant": "primary", "raw_prediction": float(p), "propensity": None,
             "dropped_by": None}
            for c, p in zip([*oof["customer_id"], *(f"N{i:04d}" for i in range(200))],
                            [*oof["model"], *oof["model"][:200]], strict=True)]
    log = PredictionLog(ws)
    assert log.add(rows)
    log.flush()
    r = monitoring.monitor(ws, loaded, "churn", datetime(2024, 1, 4))
    e = r["performance_estimate"]
    assert e["kind"] == "estimate" and e["pending"]["rows"] == 200
    assert e["labelled"]["rows"] == 5000
    assert e["labelled"]["realised"]["roc_auc"] == pytest.approx(real["roc_auc"])
    # monitor calibrates on the production version's backtest predictions (all folds)
    assert e["calibrated_on"] == 5000
    full = quality.Calibration.fit(y, p)
    assert e["labelled"]["estimate"]["accuracy"] == pytest.approx(
        quality.cbpe(p, calibration=full)["accuracy"])
    assert e["pending"]["estimate"]["recall"] == pytest.approx(
        quality.cbpe(p[:200], calibration=full)["recall"])
    for k in ("accuracy", "recall", "roc_auc"):  # in-sample calibration: close by design
        assert abs(e["labelled"]["estimate"][k] - real[k]) < 0.02, k
    assert json.loads(Path(r["report_json"]).read_text())["performance_estimate"]["kind"] \
        == "estimate"
    page = Path(r["report_html"]).read_text()
    assert "Estimated performance <span class=est>estimate</span>" in page


# --------------------------------------------------------------- data health


def test_data_health_volume_missing_and_freshness(
        ws_copy: Workspace, ridership: LoadedProject) -> None:
    ws = ws_copy
    project = ridership.project
    lab = _labels(ws, ridership)
    first = len(lab)  # the history ingest received every row
    stations = sorted(lab["station"].unique())
    day1 = pd.DataFrame({"station": stations, "date": pd.Timestamp("2016-07-01"),
                         "rides": 10.0})
    day2 = day1.iloc[:5].assign(date=pd.Timestamp("2016-07-02"))
    tables.ingest_frame(ws, project.source("ridership"), day1, as_of=datetime(2016, 7, 2, 6))
    tables.ingest_frame(ws, project.source("ridership"), day2, as_of=datetime(2016, 7, 3, 6))
    weather = pd.DataFrame({"date": pd.to_datetime(["2016-07-01", "2016-07-02"]),
                            "available_at": pd.to_datetime(["2016-07-02 06:00",
                                                            "2016-07-03 06:00"]),
                            "temp": [75.0, None], "temp_min": [60.0, 61.0],
                            "temp_max": [80.0, 82.0], "humidity": [50.0, None],
                            "percip": [0.0, 0.0], "weather_snow": [0.0, 0.0]})
    tables.ingest_frame(ws, project.source("weather"), weather, as_of=datetime(2016, 7, 3, 6))
    src = project.source("ridership")
    fresh = dataclasses.replace(src, contract=dataclasses.replace(
        src.contract, freshness=Freshness("12h")))
    proj = dataclasses.replace(project, sources=tuple(
        fresh if s.name == "ridership" else s for s in project.sources))
    at = datetime(2016, 7, 3, 12)
    h = {x["source"]: x for x in health.data_health(ws, proj, at)}
    r = h["ridership"]
    assert r["ingests"] == 3 and r["latest"]["received"] == 5
    assert r["volume"]["median_recent"] == float(np.median([first, 20]))
    assert r["volume"]["ratio"] == pytest.approx(5 / np.median([first, 20]))
    assert r["volume"]["ok"] is False
    assert r["missing"]["rows"] == 5 and r["missing"]["rates"]["rides"] == 0.0
    assert r["freshness"]["newest"] == "2016-07-02T00:00:00"
    assert r["freshness"]["age_hours"] == pytest.approx(36.0)
    assert r["freshness"]["within"] == "12h" and r["freshness"]["ok"] is False
    assert len(r["problems"]) == 2
    w = h["weather"]
    assert w["missing"]["rows"] == 2
    assert w["missing"]["rates"]["temp"] == 0.5 and w["missing"]["rates"]["humidity"] == 0.5
    assert w["missing"]["rates"]["temp_min"] == 0.0
    assert w["freshness"]["ok"] is None  # no freshness declared: reported, not judged
    # with no check declared, freshness is when the newest row became known
    assert w["freshness"]["column"] == "available_at"
    assert w["freshness"]["age_hours"] == pytest.approx(6.0)
    assert h["games"]["freshness"]["age_hours"] >= 0  # games scheduled ahead: not future
    assert w["volume"]["ok"] is False  # 2 rows against the history delivery
    # only what was known at an earlier time counts
    early = {x["source"]: x for x in health.data_health(ws, proj, datetime(2016, 7, 2, 12))}
    assert early["ridership"]["ingests"] == 2 and early["ridership"]["latest"]["received"] == 20
    assert early["ridership"]["missing"]["rows"] == 20


# ------------------------------------------------------------ service health

# the server's own buckets: 980 requests in (2.5 ms, 5 ms], 15 in (25 ms, 50 ms], 5 in
# (100 ms, 500 ms]; p99 rank 990 lies in (25 ms, 50 ms]: 25 + 25 * (990 - 980) / 15 ms
P99 = 0.025 + 0.025 * 10 / 15


def _server_metrics() -> str:
    reg = CollectorRegistry()
    requests = Counter("tuesday_requests", "HTTP requests", ["endpoint", "status"],
                       registry=reg)
    latency = Histogram("tuesday_request_seconds", "Request latency", ["endpoint"],
                        registry=reg,
                        buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1))
    for n, seconds, ep in ((700, 0.003, "predict"), (280, 0.003, "batch"),
                           (15, 0.04, "predict"), (5, 0.3, "batch")):
        for _ in range(n):
            latency.labels(ep).observe(seconds)
    requests.labels("predict", "200").inc(705)
    requests.labels("batch", "200").inc(285)
    requests.labels("predict", "503").inc(6)
    requests.labels("predict", "422").inc(4)
    return generate_latest(reg).decode()


def test_service_health_from_prometheus_text() -> None:
    s = health.service_health(_server_metrics())
    assert s["requests"] == 1000 and s["errors"] == 6 and s["client_errors"] == 4
    assert s["error_rate"] == pytest.approx(0.006)
    assert s["p99_seconds"] == pytest.approx(P99)
    ep = {e["endpoint"]: e for e in s["endpoints"]}
    assert ep["predict"]["error_rate"] == pytest.approx(6 / 715)
    # predict alone: 700 fast, 15 at 40 ms; rank 0.99 * 715 = 707.85 in (25 ms, 50 ms]
    assert ep["predict"]["p99_seconds"] == pytest.approx(0.025 + 0.025 * 7.85 / 15)
    # batch: rank 282.15 of 285 lies in (100 ms, 500 ms] after 280 fast requests
    assert ep["batch"]["p99_seconds"] == pytest.approx(0.1 + 0.4 * 2.15 / 5)
    assert health.histogram_quantile(0.5, [(1.0, 10), (2.0, 30), (float("inf"), 30)]) == 1.25
    # beyond the last finite bucket Prometheus answers that bound
    assert health.histogram_quantile(0.99, [(1.0, 10), (float("inf"), 20)]) == 1.0
    with pytest.raises(TuesdayError, match=r"\+Inf bucket"):
        health.histogram_quantile(0.5, [(1.0, 10)])


@pytest.fixture()
def metrics_url() -> Iterator[str]:
    body = _server_metrics().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/metrics"
    finally:
        srv.shutdown()
        th.join(timeout=10)


# -------------------------------------------------------------------- alerts


def test_alerts_through_a_real_log_route_and_the_cli(
        served: tuple[Workspace, pd.DataFrame], ridership: LoadedProject,
        metrics_url: str, caplog: pytest.LogCaptureFixture) -> None:
    ws, _truth = served
    # the model loses to its baselines: its answers replaced by a bad forecast
    bad = monitoring.read_log(ws, MODEL)
    bad = bad[bad["variant"] == "primary"].assign(
        prediction=lambda f: f["prediction"] + 10.0,
        served_at=lambda f: f["served_at"] + timedelta(hours=1))
    _write(ws, [{**r, "dropped_by": None, "propensity": None}
                for r in bad.to_dict("records")])
    text = health.fetch_metrics(metrics_url)
    with caplog.at_level(logging.WARNING, logger="tuesday.watch.alerts"):
        r = monitoring.monitor(ws, ridership, MODEL, MONITOR_AT, metrics_text=text,
                               alert=True, max_error_rate=0.005,
                               drift_thresholds={"temp_last_known": 0.0})
    kinds = {(a["kind"], a["severity"]) for a in r["alerts"]}
    assert ("quality", "critical") in kinds and ("service", "critical") in kinds
    assert r["status"] == "degraded"
    temp = next(c for c in r["drift"]["columns"] if c["column"] == "temp_last_known")
    assert temp["threshold"] == 0.0  # the per-feature override reached drift.py
    for a in r["alerts"]:
        assert a["deliveries"][0]["route"] == "log" and a["deliveries"][0]["ok"]
    assert any("[CRITICAL] ridership_14d quality" in m for m in caplog.messages)
    assert any("0.6% of 1000 requests failed" in m for m in caplog.messages)
    stored = alerts.list_alerts(ws, status="open", model=MODEL)
    assert {a.dedup_key for a in stored} >= {f"{MODEL}/monitor/quality/baseline",
                                               f"{MODEL}/monitor/service/errors"}
    # the same report again: counted, not re-sent
    again = monitoring.raise_alerts(ws, ridership, r, MONITOR_AT)
    assert all(a.count == 2 and len(a.deliveries) == 1 for a in again)

    runner = CliRunner()
    base = ["--project", str(RIDERSHIP), "--workspace", str(ws.root)]
    res = runner.invoke(main, [*base, "alerts", "list", "--status", "open", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    qid = next(a["id"] for a in listed if a["kind"] == "quality")
    res = runner.invoke(main, [*base, "alerts", "ack", str(qid), "--note", "looking",
                               "--actor", "alice", "--as-of", "2016-07-03T09:00", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "acknowledged"
    res = runner.invoke(main, [*base, "alerts", "resolve", str(qid), "--actor", "alice",
                               "--as-of", "2016-07-03T10:00"])
    assert res.exit_code == 0 and "resolved" in res.stdout
    assert alerts.get_alert(ws, qid).note == "looking"
    res = runner.invoke(main, [*base, "alerts", "ack", "9999"])
    assert res.exit_code == 3 and "does not exist" in res.output
    # the monitor command: service health from the URL, alerts, text summary
    res = runner.invoke(main, [*base, "monitor", MODEL, "--as-of", "2016-07-03",
                               "--metrics-url", metrics_url, "--alert",
                               "--drift-threshold", "temp_last_known=0.2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["service_health"]["p99_seconds"] == pytest.approx(P99)
    assert any(a["kind"] == "quality" and a["id"] != qid for a in out["alerts"])  # reopened
    res = runner.invoke(main, [*base, "monitor", MODEL, "--as-of", "2016-07-03",
                               "--drift-method", "no_such_feature=psi"])
    assert res.exit_code == 2 and "no_such_feature" in res.output
    res = runner.invoke(main, [*base, "monitor", MODEL, "--as-of", "2016-07-03"])
    assert res.exit_code == 0 and "window 2016-06-20..2016-06-26" in res.stdout
    assert "shadow:" in res.stdout


def test_alerts_for_data_problems_are_warnings() -> None:
    report = {"model": "m", "drift": None, "quality": None, "data_health": [
        {"source": "s", "ingests": 3,
         "volume": {"ok": False, "received": 5, "ratio": 0.25},
         "freshness": {"ok": False, "column": "date", "newest": "2016-07-01T00:00:00",
                       "age_hours": 60.0, "within": "1d"}}],
        "service_health": {"requests": 10, "errors": 0, "error_rate": 0.0}}
    found = monitoring.alerts_for(report)
    assert [(a["kind"], a["severity"], a["subject"]) for a in found] == [
        ("data", "warning", "s/volume"), ("data", "warning", "s/freshness")]
    assert "is stale" in found[1]["title"]
