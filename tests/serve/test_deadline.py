"""A model's latency deadline: when its model path would pass it, the request is answered
by the model's baseline, flagged in the answer and the log, and counted in /metrics."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject, check_project
from tuesday.serve.inference import Loaded
from tuesday.serve.predictor import Predictor

MODEL = "ridership_14d"
ROW = {"station": "Clark_Lake", "date": "2016-07-05"}


def _with_deadline(loaded: LoadedProject, deadline_ms: float | None) -> LoadedProject:
    project = loaded.project
    models = tuple(dataclasses.replace(m, deadline_ms=deadline_ms) if m.name == MODEL else m
                   for m in project.models)
    return dataclasses.replace(loaded, project=dataclasses.replace(project, models=models))


def _warm(pred: Predictor) -> None:
    """Load the version and the entity's record: a cold first request is late anyway."""
    pred.route(MODEL)
    pred.assemble(MODEL, [ROW])


@pytest.fixture()
def slow_model(monkeypatch):
    """The model's prediction call takes 100 ms (a stalled core, a cold cache): the
    injected fault the deadline guards against."""
    real = Loaded.predict_rows

    def slow(self, rows):
        time.sleep(0.100)
        return real(self, rows)

    monkeypatch.setattr(Loaded, "predict_rows", slow)


def test_a_slow_model_path_is_answered_by_the_baseline_and_flagged(served_ws, ridership,
                                                                   slow_model) -> None:
    loaded = _with_deadline(ridership, 30.0)
    pred = Predictor(served_ws, loaded)
    baseline = loaded.project.model(MODEL).baselines[0].name
    _warm(pred)
    first = pred.predict(MODEL, [ROW])["predictions"][0]
    assert "fallback" not in first  # no estimate yet: the model answers, late
    assert pred.deadline == {(MODEL, "missed"): 1}
    second = pred.predict(MODEL, [ROW])["predictions"][0]
    assert second["fallback"] == {"reason": "deadline", "baseline": baseline,
                                  "deadline_ms": 30.0}
    assert second["prediction"] != first["prediction"]
    assert pred.deadline[(MODEL, "fallback")] == 1
    pred.log.flush()
    log = read_log(served_ws, MODEL).sort_values("served_at")
    assert list(log["variant"]) == ["primary", "deadline"]
    fell = log.iloc[1]
    assert fell["prediction"] == pytest.approx(json.loads(fell["baselines"])[baseline])
    pred.log.close()


def test_the_model_is_tried_again_and_answers_once_it_is_fast(served_ws, ridership,
                                                              monkeypatch) -> None:
    loaded = _with_deadline(ridership, 30.0)
    pred = Predictor(served_ws, loaded, log_predictions=False)
    _warm(pred)
    pred.model_seconds[MODEL] = 0.100  # it was slow a moment ago
    answers = [pred.predict(MODEL, [ROW])["predictions"][0] for _ in range(30)]
    fell = [("fallback" in a) for a in answers]
    assert fell[0] and not fell[-1]  # estimates shrink until the model is tried again
    assert fell.index(False) <= 20 and not any(fell[fell.index(False):])


def test_no_deadline_means_no_fallback_and_a_fast_path_unchanged(served_ws, ridership,
                                                                 slow_model) -> None:
    pred = Predictor(served_ws, ridership, log_predictions=False)
    for _ in range(3):
        assert "fallback" not in pred.predict(MODEL, [ROW])["predictions"][0]
    assert pred.deadline == {}


def test_metrics_count_fallbacks(served_ws, ridership, slow_model) -> None:
    from starlette.testclient import TestClient

    from tuesday.serve.server import create_app

    app = create_app(served_ws.root, ridership.path)
    state = app.state.tuesday
    state.predictor.loaded = _with_deadline(ridership, 30.0)
    state.predictor._specs.clear()
    with TestClient(app) as client:
        _warm(state.predictor)
        for _ in range(3):
            assert client.post(f"/v1/models/{MODEL}/predict", json=ROW).status_code == 200
        metrics = client.get("/metrics").text
    assert 'tuesday_deadline_rows_total{model="ridership_14d",outcome="fallback"} 2.0' in metrics
    assert 'tuesday_deadline_rows_total{model="ridership_14d",outcome="missed"} 1.0' in metrics
    assert 'variant="deadline"' in metrics


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "50", True])
def test_a_bad_deadline_is_refused_when_the_project_loads(ridership, bad) -> None:
    problems = check_project(_with_deadline(ridership, bad).project)
    assert any("deadline_ms must be a positive number" in p for p in problems), problems


def test_the_latency_gate_times_the_served_path_not_only_the_model(served_ws,
                                                                   ridership) -> None:
    """A business rule that takes 5 ms is invisible to a gate that times the model call
    alone and fails the served-path one: the gate measures what a client waits for."""
    from tuesday.project import Gate, rule
    from tuesday.release import registry
    from tuesday.serve.timing import served_latency

    def slow_rule(request, prediction):
        time.sleep(0.005)
        return prediction

    base = ridership.project.model(MODEL)
    gated = dataclasses.replace(base, gates=(Gate("latency", max_ms=3),),
                                rules=(rule(slow_rule, name="slow"),))
    project = dataclasses.replace(ridership.project, models=tuple(
        gated if m.name == MODEL else m for m in ridership.project.models))
    loaded = dataclasses.replace(ridership, project=project)
    row = registry.get_version(served_ws, MODEL, 1)
    registry.LATENCY_SAMPLES, saved = 100, registry.LATENCY_SAMPLES
    try:
        alone = registry.check_gates(served_ws, gated, row)[0]
        served = registry.check_gates(served_ws, gated, row,
                                      timer=served_latency(served_ws, loaded))[0]
    finally:
        registry.LATENCY_SAMPLES = saved
    assert "model call alone" in alone["timed"] and alone["p50_ms"] < 5.0
    assert "served path" in served["timed"] and "1 rule(s)" in served["timed"]
    assert not served["passed"] and served["p50_ms"] >= 5.0
    assert len(read_log(served_ws, MODEL)) == 0  # nothing timed reaches the real log
