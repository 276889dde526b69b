"""Project declarations: loading and checking report every problem at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuesday.errors import TuesdayError
from tuesday.project import (
    Baseline,
    Column,
    Contract,
    Entity,
    Model,
    Project,
    Source,
    check_project,
    duration,
    lag,
    load_project,
    window,
)

e = Entity("shop")
S = Source("sales", Contract((Column("shop", "str"), Column("day", "date"),
                              Column("qty", "float"))), time="day", entity=e)


def test_names_are_deterministic() -> None:
    assert lag("sales", "qty", 14).name == "qty_lag_14d"
    assert window("sales", "qty", "28d", lag="14d", agg="max").name == "qty_max_28d_lag_14d"
    assert S.key == ("shop", "day")


def test_duration_errors_name_the_parameter() -> None:
    assert duration("6h", what="x") == duration(0, what="x") + duration("6h", what="y")
    with pytest.raises(TuesdayError, match=r"The horizon must be a duration like '14d'.*"
                                           r"Got '-5d' instead"):
        duration("-5d", what="horizon")


def test_every_problem_is_listed() -> None:
    bad = Model("m", e, "sales", "nope",
                (lag("sales", "qty", "7d"), lag("ghost", "x", "30d"),
                 window("sales", "qty", "7d", lag="14d", agg="median")),
                (), horizon="14d", metrics=("auc",), slices=("region",))
    problems = check_project(Project("p", (S,), (bad,)))
    text = "\n".join(problems)
    assert "target 'nope' is not a column of source 'sales'" in text
    assert "uses the value 7d before the target, but the model forecasts 14d ahead" in text
    assert "reads source 'ghost', which is not declared" in text
    assert "agg 'median'" in text
    assert "declares no baseline" in text
    assert "metric 'auc' is not known for task 'regression'" in text
    assert "slice 'region'" in text
    assert len(problems) == 7


def test_good_project_has_no_problem() -> None:
    good = Model("m", e, "sales", "qty", (lag("sales", "qty", "14d"),),
                 (Baseline("sn", "seasonal_naive"),), horizon="14d")
    assert check_project(Project("p", (S,), (good,))) == []


def test_load_project_errors(tmp_path: Path) -> None:
    with pytest.raises(TuesdayError, match="does not exist"):
        load_project(tmp_path / "missing.py")
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    with pytest.raises(TuesdayError, match="failed to import: SyntaxError"):
        load_project(broken)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(TuesdayError, match=r"must define `project = Project\(...\)`"):
        load_project(empty)
