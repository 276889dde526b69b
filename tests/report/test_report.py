"""The evaluation report, checked against independent computations from the stored
backtest predictions and model file, on real data (ridership regression, churn
classification)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import tuesday.examples
from tuesday.data import tables
from tuesday.errors import NotFound
from tuesday.project import Learner, LoadedProject, load_project
from tuesday.release import registry
from tuesday.report import evaluation as report
from tuesday.report.evaluation import (
    EvaluationReport,
    evaluation_report,
    render_evaluation_html,
    write_evaluation_report,
)
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

MODEL = "ridership_14d"
CHURN = Path(tuesday.examples.__file__).parent / "churn" / "project.py"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


class TagBalance(HTMLParser):
    """Every opened (non-void) tag is closed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
            return
        self.stack.pop()


def parse(page: str) -> TagBalance:
    checker = TagBalance()
    checker.feed(page)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []
    return checker


def backtest_frame(ws: Workspace, model: str, version: int) -> pd.DataFrame:
    manifest = registry.get_version(ws, model, version)["manifest"]
    data = ws.get_artifact(manifest["backtest_predictions"]["sha256"])
    return pq.read_table(io.BytesIO(data)).to_pandas()


def rmse(a: pd.Series, b: pd.Series) -> float:
    return float(np.sqrt(((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def stored(trained_ws: Workspace) -> dict[str, Any]:
    return registry.get_version(trained_ws, MODEL, 1)


@pytest.fixture(scope="module")
def preds(trained_ws: Workspace) -> pd.DataFrame:
    return backtest_frame(trained_ws, MODEL, 1)


@pytest.fixture(scope="module")
def rep(trained_ws: Workspace, ridership: LoadedProject) -> dict[str, Any]:
    return evaluation_report(trained_ws, ridership, MODEL, 1)


@pytest.fixture(scope="module")
def page(rep: dict[str, Any]) -> str:
    return render_evaluation_html(rep)


# ------------------------------------------------------------------ ridership


def test_headline_is_the_stored_comparison(rep: dict[str, Any], stored: dict[str, Any],
                                           trained_ws: Workspace) -> None:
    m, manifest = stored["metrics"], stored["manifest"]
    h = rep["headline"]
    best = m["best_baseline"]
    assert (rep["primary"], h["best_baseline"]) == ("rmse", best)
    assert h["model"] == m["model"]["rmse"]
    assert h["baseline"] == m["baselines"][best]["rmse"]
    assert h["lift"] == pytest.approx(m["lift"], rel=1e-12)
    assert h["lift"] == pytest.approx(1 - h["model"] / h["baseline"], rel=1e-12)
    assert h["beats_baseline"] is (h["model"] < h["baseline"])
    assert (h["train_rows"], h["train_seconds"]) == (m["train_rows"], m["train_seconds"])
    size = trained_ws.artifact_path(manifest["artifact"]["sha256"]).stat().st_size
    assert h["model_bytes"] == manifest["artifact"]["bytes"] == size
    assert h["backtest_rows"] == m["rows"] == sum(f["test_rows"] for f in m["folds"])
    assert h["folds"] == len(m["folds"]) > 1
    assert f"better by {h['lift']:.1%}" in h["verdict"]
    assert rep["overall"] == {"model": m["model"], "baselines": m["baselines"]}


def test_each_fold_equals_the_stored_metrics_and_a_pandas_recomputation(
        rep: dict[str, Any], stored: dict[str, Any], preds: pd.DataFrame) -> None:
    m = stored["metrics"]
    folds = rep["folds"]
    assert [f["fold"] for f in folds] == [f["fold"] for f in m["folds"]]
    assert sorted(preds["fold"].unique()) == [f["fold"] for f in folds]
    for mine, theirs in zip(folds, m["folds"], strict=True):
        assert mine["model"] == theirs["model"]
        for b in m["baselines"]:
            assert mine["baselines"][b] == theirs[b]
        assert mine["test_rows"] == theirs["test_rows"]
    for number, g in preds.groupby("fold"):
        f = next(f for f in folds if f["fold"] == number)
        assert f["model"]["rmse"] == pytest.approx(rmse(g["model"], g["rides"]), rel=1e-9)
        for b in m["baselines"]:
            assert f["baselines"][b]["rmse"] == pytest.approx(rmse(g[b], g["rides"]),
                                                              rel=1e-9)
        assert (f["first"], f["last"]) == (g["date"].min().strftime("%Y-%m-%d"),
                                           g["date"].max().strftime("%Y-%m-%d"))
        # each fold against its own best baseline (the one rule of evaluation.verdict)
        best = min(f["baselines"][b]["rmse"] for b in m["baselines"])
        assert f["baselines"][f["best_baseline"]]["rmse"] == best
        assert f["lift"] == pytest.approx((best - f["model"]["rmse"]) / best, rel=1e-12)


def test_slices_are_the_stored_slices_with_readable_labels(rep: dict[str, Any],
                                                           stored: dict[str, Any]) -> None:
    m = stored["metrics"]
    assert len(rep["slices"]) == len(m["slices"])
    for mine, theirs in zip(rep["slices"], m["slices"], strict=True):
        assert (mine["slice"], mine["value"], mine["rows"]) == (
            theirs["slice"], theirs["value"], theirs["rows"])
        assert mine["model"] == theirs["model"]
    days = [s["label"] for s in rep["slices"] if s["slice"] == "day_of_week"]
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def test_actual_vs_predicted_is_summed_per_day(rep: dict[str, Any],
                                               preds: pd.DataFrame) -> None:
    ot = rep["over_time"]
    assert rep["calibration"] is None
    best = rep["best_baseline"]
    daily = preds.groupby(preds["date"].dt.floor("D"))[["rides", "model", best]].sum()
    assert ot["date"] == [d.strftime("%Y-%m-%d") for d in daily.index]
    assert len(ot["date"]) == len(preds)  # one station: one row per day
    np.testing.assert_allclose(ot["actual"], daily["rides"], rtol=1e-12)
    np.testing.assert_allclose(ot["model"], daily["model"], rtol=1e-12)
    np.testing.assert_allclose(ot["best_baseline"], daily[best], rtol=1e-12)
    assert [s["fold"] for s in ot["fold_starts"]] == sorted(preds["fold"].unique())
    for s in ot["fold_starts"]:
        first = preds.loc[preds["fold"] == s["fold"], "date"].min()
        assert s["date"] == first.strftime("%Y-%m-%d")


def test_residuals_by_fold_match_the_stored_bias(rep: dict[str, Any], stored: dict[str, Any],
                                                 preds: pd.DataFrame) -> None:
    res = rep["residuals"]
    for mine, theirs in zip(res["by_fold"], stored["metrics"]["folds"], strict=True):
        assert mine["fold"] == theirs["fold"]
        assert mine["mean"] == pytest.approx(theirs["model"]["bias"], rel=1e-9, abs=1e-12)
        assert mine["mean_abs"] == pytest.approx(theirs["model"]["mae"], rel=1e-9)
    err = preds["model"] - preds["rides"]
    assert res["overall"]["mean"] == pytest.approx(err.mean(), rel=1e-9)
    assert res["overall"]["median"] == pytest.approx(err.median(), rel=1e-9)
    hist = res["histogram"]
    assert len(hist["counts"]) == len(hist["edges"]) - 1 == report.HISTOGRAM_BINS
    assert sum(hist["counts"]) + hist["below"] + hist["above"] == len(preds)


def test_feature_importance_is_the_normalised_gain_of_the_model_file(
        rep: dict[str, Any], stored: dict[str, Any], trained_ws: Workspace) -> None:
    path = trained_ws.artifact_path(stored["manifest"]["artifact"]["sha256"])
    booster = lgb.Booster(model_str=path.read_text())
    gain = pd.Series(booster.feature_importance(importance_type="gain"),
                     index=booster.feature_name())
    expected = (gain / gain.sum()).sort_values(ascending=False)
    feats = rep["importance"]["features"]
    assert [f["feature"] for f in feats] == list(expected.index)
    np.testing.assert_allclose([f["share"] for f in feats], expected.to_numpy(), rtol=1e-12)
    assert sum(f["share"] for f in feats) == pytest.approx(1.0)
    assert set(rep["importance"]["features"][0]) == {"feature", "gain", "share"}


def test_entity_table_matches_pandas(rep: dict[str, Any], preds: pd.DataFrame) -> None:
    ents = rep["entities"]
    best = rep["best_baseline"]
    assert (ents["key"], ents["metric"], ents["baseline"]) == ("station", "rmse", best)
    by = preds.groupby("station")
    assert ents["count"] == by.ngroups == 1
    for row in ents["rows"]:
        g = by.get_group(row["entity"])
        assert row["rows"] == len(g)
        assert row["model"] == pytest.approx(rmse(g["model"], g["rides"]), rel=1e-12)
        assert row["baseline"] == pytest.approx(rmse(g[best], g["rides"]), rel=1e-12)
        assert row["difference"] == pytest.approx(row["model"] - row["baseline"])
        assert row["actual_mean"] == pytest.approx(g["rides"].mean(), rel=1e-12)


def test_entities_that_lose_most_to_the_baseline_come_first() -> None:
    """Several entities (the ridership model has one): per-entity RMSE with pandas."""
    rng = np.random.default_rng(3)
    n = 60
    frame = pd.DataFrame({"store": np.repeat(["a", "b", "c", "d"], n // 4),
                          "y": rng.normal(10, 2, n), "fold": np.tile([0, 1], n // 2)})
    noise = {"a": 0.1, "b": 3.0, "c": 1.0, "d": 6.0}
    frame["model"] = frame["y"] + rng.normal(0, 1, n) * frame["store"].map(noise)
    frame["naive"] = frame["y"] + rng.normal(0, 1.5, n)
    ents = report._entities(frame, "store", "y", "regression", "rmse", "naive")
    assert ents is not None
    expected = {s: rmse(g["model"], g["y"]) - rmse(g["naive"], g["y"])
                for s, g in frame.groupby("store")}
    order = sorted(expected, key=lambda s: -expected[s])
    assert [r["entity"] for r in ents["rows"]] == order
    for r in ents["rows"]:
        assert r["difference"] == pytest.approx(expected[r["entity"]], rel=1e-12)
    assert ents["losing"] == sum(v > 0 for v in expected.values())


def test_losses_are_the_rows_that_lose_most_explained_by_their_fold_model(
        rep: dict[str, Any], preds: pd.DataFrame, page: str) -> None:
    """The explained rows are the backtest rows whose absolute error exceeds the best
    baseline's most, in that order, from all the backtest (not only the rows that were
    explained); each one's contributions add up to the prediction its fold's model made
    (the final model, trained on those days, would not)."""
    losses = rep["losses"]
    best = rep["best_baseline"]
    assert losses["baseline"] == best and len(losses["rows"]) == report.MAX_LOSSES
    y = preds["rides"]
    excess = ((preds["model"] - y).abs() - (preds[best] - y).abs()).sort_values(
        ascending=False, kind="stable")
    worst = preds.loc[excess.index[:report.MAX_LOSSES]]
    assert [r["time"] for r in losses["rows"]] == \
        [t.strftime("%Y-%m-%d") for t in worst["date"]]
    assert [r["excess_error"] for r in losses["rows"]] == \
        pytest.approx(list(excess.iloc[:report.MAX_LOSSES]), abs=1e-12)
    for row, (_, b) in zip(losses["rows"], worst.iterrows(), strict=True):
        e = row["explanation"]
        assert row["model"] == b["model"] and row["fold"] == b["fold"]
        total = e["expected_raw"] + sum(c["raw"] for c in e["contributions"].values())
        assert total == pytest.approx(b["model"], abs=1e-9)
        assert e["baseline"] == {"name": best, "prediction": b[best]}
        assert e["sentence"].startswith(f"Forecast {e['sentence'].split()[1]} rides for "
                                        "Clark_Lake on ")
    assert f"Where the model lost most to {best}, and why" in page
    assert losses["rows"][0]["explanation"]["sentence"].split(".")[0] in page


def test_report_is_json_and_deterministic(rep: dict[str, Any], trained_ws: Workspace,
                                          ridership: LoadedProject) -> None:
    text = json.dumps(rep, allow_nan=False, sort_keys=True)
    assert json.loads(text) == rep
    again = evaluation_report(trained_ws, ridership.project, MODEL, 1)
    assert json.dumps(again, sort_keys=True) == text


def test_html_is_self_contained_and_parses(page: str, rep: dict[str, Any]) -> None:
    assert page.startswith("<!doctype html>")
    lower = page.lower()
    assert "http://" not in lower and "https://" not in lower
    assert "<script src" not in lower and "<link" not in lower and "@import" not in lower
    tags = parse(page).tags
    # actual vs predicted over time, residual histogram, a waterfall per explained loss
    assert tags["svg"] == 2 + len(rep["losses"]["rows"])
    assert tags["polyline"] >= 3  # actual, model, best baseline
    assert tags["rect"] >= report.HISTOGRAM_BINS
    assert "Actual vs predicted over time" in page
    assert 'class="sortable entities"' in page
    assert "<td class=l>Clark_Lake</td>" in page
    assert "Feature importance" in page and rep["importance"]["features"][0]["feature"] in page
    assert "Residual by fold" in page
    assert f"{rep['headline']['lift']:+.1%}" in page


def test_html_reads_without_javascript(page: str) -> None:
    """Everything but the inline sort script is plain markup: dropping it loses no data."""
    start, end = page.index("<script>"), page.index("</script>")
    assert page.count("<script>") == 1
    assert "fetch(" not in page[start:end] and "import" not in page[start:end]
    without = page[:start] + page[end + len("</script>"):]
    assert "<td class=l>Clark_Lake</td>" in without and "<svg" in without


def test_notebook_repr_is_the_body(rep: dict[str, Any]) -> None:
    r = EvaluationReport(rep)
    body = r._repr_html_()
    assert body.startswith('<div class="tuesday-report">')
    assert "<html" not in body and "<svg" in body and "sortable entities" in body
    parse(body)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.data = {}  # type: ignore[misc]


def test_write_evaluation_report(ws_copy: Workspace, ridership: LoadedProject) -> None:
    json_path, html_path = write_evaluation_report(ws_copy, ridership, MODEL, 1)
    assert (json_path.parent, html_path.parent) == (ws_copy.reports, ws_copy.reports)
    assert (json_path.name, html_path.name) == ("evaluation-ridership_14d-v1.json",
                                                "evaluation-ridership_14d-v1.html")
    data = json.loads(json_path.read_text())
    assert data == evaluation_report(ws_copy, ridership, MODEL, 1)
    assert html_path.read_text() == render_evaluation_html(data)


def test_unknown_version_is_not_found(trained_ws: Workspace,
                                      ridership: LoadedProject) -> None:
    with pytest.raises(NotFound, match="has no version 99"):
        evaluation_report(trained_ws, ridership, MODEL, 99)


# ---------------------------------------------------------------------- churn


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, LoadedProject]:
    """The churn example on its real data; 60 boosting rounds instead of 400 keep the
    five-fold training quick (the report does not depend on the model's quality)."""
    loaded = load_project(CHURN)
    spec = loaded.project.model("churn")
    quick = dataclasses.replace(spec, learner=Learner(
        "lightgbm", {**dict(spec.learner.params), "num_boost_round": 60, "num_threads": 1}))
    loaded = dataclasses.replace(loaded, project=dataclasses.replace(
        loaded.project, models=(quick,)))
    root = tmp_path_factory.mktemp("churn-report")
    ws = open_workspace(root / "ws")
    for name, path in loaded.module.example_files(root / "data").items():
        tables.ingest_file(ws, loaded.project.source(name), path, as_of=datetime(2024, 1, 1))
    training.train(ws, loaded, "churn", datetime(2024, 1, 2))
    return ws, loaded


def test_classifier_report_has_a_calibration_table(
        churn: tuple[Workspace, LoadedProject]) -> None:
    ws, loaded = churn
    rep = evaluation_report(ws, loaded, "churn", 1)
    assert (rep["task"], rep["primary"], rep["direction"]) == ("binary", "auc", "higher")
    assert rep["over_time"] is None and rep["time"] is None
    preds = backtest_frame(ws, "churn", 1)
    cal = rep["calibration"]
    assert [b["decile"] for b in cal["bins"]] == list(range(1, 11))
    assert [b["rows"] for b in cal["bins"]] == [500] * 10
    ordered = preds.sort_values("model", kind="stable")
    for i, b in enumerate(cal["bins"]):
        chunk = ordered.iloc[500 * i:500 * (i + 1)]
        assert b["predicted_mean"] == pytest.approx(chunk["model"].mean(), rel=1e-9)
        assert b["predicted_min"] == chunk["model"].min()
        assert b["predicted_max"] == chunk["model"].max()
        assert b["observed"] == pytest.approx(chunk["churn"].mean(), rel=1e-12)
    assert sum(b["observed"] * b["rows"] for b in cal["bins"]) == preds["churn"].sum()
    # the model ranks: the top decile churns far more than the bottom one
    assert cal["bins"][-1]["observed"] > 0.5 > cal["bins"][0]["observed"]
    stored = registry.get_version(ws, "churn", 1)["metrics"]
    assert rep["headline"]["model"] == stored["model"]["auc"]
    assert [f["model"] for f in rep["folds"]] == [f["model"] for f in stored["folds"]]
    ents = rep["entities"]
    assert (ents["key"], ents["metric"], ents["count"]) == ("customer_id", "brier", 5000)
    worst = ents["rows"][0]
    g = preds[preds["customer_id"] == worst["entity"]]
    assert worst["model"] == pytest.approx(float(((g["model"] - g["churn"]) ** 2).mean()))
    assert json.loads(json.dumps(rep, allow_nan=False)) == rep

    page = render_evaluation_html(rep)
    tags = parse(page).tags
    assert "<table class=calibration>" in page
    assert "Calibration: predicted probability against the observed rate" in page
    assert "Actual vs predicted over time" not in page
    assert "https://" not in page and "http://" not in page
    # calibration curve, residual histogram, a waterfall per explained loss
    assert tags["svg"] == 2 + len(rep["losses"]["rows"])
    assert rep["losses"]["rows"], "a classifier loses to its prior somewhere"
    for row in rep["losses"]["rows"]:
        e = row["explanation"]
        assert e["link"] == "logit"
        raw = e["expected_raw"] + sum(c["raw"] for c in e["contributions"].values())
        assert 1 / (1 + math.exp(-raw)) == pytest.approx(row["model"], abs=1e-9)
        assert e["sentence"].startswith("Probability of churn")
    assert "reasons multiply rather than add" in page
    shown = page.count("<tr><td class=l>C")
    assert shown == report.MAX_ENTITY_ROWS
    assert f"Showing {report.MAX_ENTITY_ROWS} of 5000" in page
    assert math.isfinite(rep["headline"]["lift"])


def test_regression_without_time_gets_actual_vs_predicted_by_decile() -> None:
    frame = pd.DataFrame({"y": np.arange(100.0), "model": np.arange(100.0) + 1.0})
    cal = report._calibration(frame, "y", "regression")
    assert cal["observed"] == "mean actual"
    assert [b["rows"] for b in cal["bins"]] == [10] * 10
    assert [b["observed"] for b in cal["bins"]] == [4.5 + 10 * i for i in range(10)]
    assert cal["mean_abs_gap"] == pytest.approx(1.0)
