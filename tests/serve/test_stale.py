"""Stale online features: a model that declares ``max_staleness`` refuses (or flags) a
row whose features were materialized longer ago than it allows, by the predictor's
clock; without the declaration nothing changes."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.conftest import AS_OF
from tuesday.errors import ValidationFailed
from tuesday.project import LoadedProject, check_project
from tuesday.serve.predictor import Predictor

MODEL = "ridership_14d"
ROW = {"station": "Clark_Lake", "date": "2016-07-05"}


def _declared(loaded: LoadedProject, **changes) -> LoadedProject:
    project = loaded.project
    models = tuple(dataclasses.replace(m, **changes) if m.name == MODEL else m
                   for m in project.models)
    return dataclasses.replace(loaded, project=dataclasses.replace(project, models=models))


def _at(days: float):
    return lambda: AS_OF + timedelta(days=days)


def test_features_older_than_allowed_are_refused(served_ws, ridership) -> None:
    loaded = _declared(ridership, max_staleness="2d")
    fresh = Predictor(served_ws, loaded, clock=_at(1), log_predictions=False)
    assert fresh.predict(MODEL, [ROW])["predictions"][0]["prediction"] is not None
    late = Predictor(served_ws, loaded, clock=_at(3), log_predictions=False)
    with pytest.raises(ValidationFailed, match=r"materialized at 2016-06-30T00:00, 3\.0 "
                                               r"days ago \(the model allows 2d\)"):
        late.predict(MODEL, [ROW])
    assert late.incomplete == {(MODEL, "refused"): 1}
    batch = late.predict(MODEL, [ROW], partial=True)["predictions"][0]
    assert batch["prediction"] is None and "stale" in batch["error"]


def test_flagged_rows_are_answered_with_their_age(served_ws, ridership) -> None:
    loaded = _declared(ridership, max_staleness="12h", missing_features="flag")
    pred = Predictor(served_ws, loaded, clock=_at(1), log_predictions=False)
    got = pred.predict(MODEL, [ROW])["predictions"][0]
    assert got["stale_features"] == "24.0 hours" and got["prediction"] is not None
    assert pred.incomplete == {(MODEL, "flagged"): 1}


def test_without_a_declaration_age_is_not_checked(served_ws, ridership) -> None:
    pred = Predictor(served_ws, ridership, clock=_at(400), log_predictions=False)
    got = pred.predict(MODEL, [ROW])["predictions"][0]
    assert "stale_features" not in got and got["prediction"] is not None


@pytest.mark.parametrize("bad", ["0d", "-1d", "soon"])
def test_a_bad_max_staleness_is_refused_when_the_project_loads(ridership, bad) -> None:
    problems = check_project(_declared(ridership, max_staleness=bad).project)
    assert any("max_staleness" in p for p in problems), problems
