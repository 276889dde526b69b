"""One rule decides who wins: the evaluation report (from the backtest's stored slice
metrics) and the monitor (from logged predictions joined to ground truth) give the same
verdict, slice by slice, on the same numbers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tuesday.project import LoadedProject
from tuesday.report import evaluation as report
from tuesday.train import evaluation
from tuesday.watch import quality


def rows() -> pd.DataFrame:
    """Four weeks of one store: 'mean_4w' is the best baseline overall, 'tsb' wins on
    Mondays (the day after the Sunday closure), where the model sits between them."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2016-05-02", periods=28, freq="D")
    y = rng.poisson(20, len(days)).astype(float)
    monday = days.day_of_week == 0
    model = y + rng.normal(0, 2, len(days))
    mean_4w = y + rng.normal(0, 3, len(days))
    tsb = y + rng.normal(0, 8, len(days))
    model[monday] = y[monday] + 6.0
    mean_4w[monday] = y[monday] + 9.0
    tsb[monday] = y[monday] + 1.0
    return pd.DataFrame({"station": "s1", "date": days, "rides": y, "model": model,
                         "mean_4w": mean_4w, "tsb": tsb, "day_of_week": days.day_of_week})


@pytest.fixture(scope="module")
def spec(ridership: LoadedProject) -> object:
    m = ridership.project.model("ridership_14d")
    return dataclasses.replace(m, metrics=("wape", "mae"), slices=("day_of_week",))


def test_report_and_monitor_agree_slice_by_slice(spec: object) -> None:
    model = spec
    frame = rows()
    names = ["model", "mean_4w", "tsb"]
    # what training stores, and how the report reads it
    metrics = {"slices": evaluation.slice_table(model, frame, "rides", names),  # type: ignore[arg-type]
               "baselines": {"mean_4w": {}, "tsb": {}}}
    from_report = report._slices(metrics, "wape", "lower")
    # the same numbers as the monitor sees them: logged rows joined to ground truth
    joined = pd.DataFrame({
        "entity": frame["station"], "target_time": frame["date"], "y": frame["rides"],
        "prediction": frame["model"],
        "baselines": [json.dumps({"mean_4w": a, "tsb": b})
                      for a, b in zip(frame["mean_4w"], frame["tsb"], strict=True)],
        "features": [json.dumps({"day_of_week": int(d)}) for d in frame["day_of_week"]],
    })
    labels = quality.Labels(joined[["entity", "target_time"]].assign(actual=frame["rides"]),
                            ("entity", "target_time"))
    from_monitor = quality.slices(model, joined, labels)  # type: ignore[arg-type]
    mine = {(s["value"]): (s["beats_baseline"], s["best_baseline"]) for s in from_report}
    theirs = {(s["value"]): (s["beats_baseline"], s["best_baseline"]) for s in from_monitor}
    assert mine == theirs
    assert mine[0] == (False, "tsb")  # Monday: the model loses to TSB...
    overall = evaluation.verdict("wape", evaluation.wape(frame["rides"], frame["model"]),
                                 {b: evaluation.wape(frame["rides"], frame[b])
                                  for b in ("mean_4w", "tsb")})
    assert overall.best_baseline == "mean_4w" and overall.beats  # ...though not overall
    assert sum(1 for v in mine.values() if v[0] is False) >= 1


def test_highlight_names_the_baseline_a_slice_loses_to(spec: object) -> None:
    frame = rows()
    metrics = {"slices": evaluation.slice_table(spec, frame, "rides",  # type: ignore[arg-type]
                                                ["model", "mean_4w", "tsb"]),
               "baselines": {"mean_4w": {}, "tsb": {}}}
    rep = {"best_baseline": "mean_4w", "folds": [], "entities": None, "calibration": None,
           "importance": None, "task": "regression",
           "slices": report._slices(metrics, "wape", "lower")}
    text = " ".join(report._highlights(rep))
    assert "day_of_week=Mon (to 'tsb')" in text
    assert "every slice" not in text


def test_verdict_rule() -> None:
    v = evaluation.verdict("wape", 0.608, {"mean_4_weekdays": 0.64, "tsb": 0.527})
    assert (v.beats, v.best_baseline) == (False, "tsb")
    assert v.lift == pytest.approx((0.527 - 0.608) / 0.527)
    # ties go to the baseline; the first declared of equal baselines is the best
    assert evaluation.verdict("mae", 1.0, {"a": 1.0, "b": 1.0}).beats is False
    assert evaluation.verdict("mae", 1.0, {"a": 2.0, "b": 2.0}).best_baseline == "a"
    # higher is better; closest to zero is better
    assert evaluation.verdict("auc", 0.7, {"prior": 0.5}).beats is True
    assert evaluation.verdict("bias", -0.1, {"naive": 0.2}).beats is True
    # nothing to compare with
    assert evaluation.verdict("mae", 1.0, {"a": float("nan")}).beats is None
    assert evaluation.verdict("mae", float("nan"), {"a": 1.0}).beats is None
    # the model on each baseline's own rows
    v = evaluation.verdict("mae", {"a": 3.0, "b": 1.0}, {"a": 2.0, "b": 2.5})
    assert (v.best_baseline, v.model, v.beats) == ("a", 3.0, False)
