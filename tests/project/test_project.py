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


def test_ranking_declarations_are_checked() -> None:
    from tuesday.project import (
        Baseline,
        Column,
        Contract,
        Entity,
        Gate,
        Model,
        Project,
        Slate,
        Source,
        check_project,
        max_per,
        request,
    )

    item = Entity("item", key="item_id")
    log = Source("log", Contract((Column("item_id", "str"), Column("ts", "timestamp"),
                                  Column("click", "int"), Column("req", "str"))),
                 time="ts", entity=item)
    fb = Source("fb", Contract((Column("request_id", "str"), Column("item_id", "str"))),
                time=None, entity=item)

    def model(**kw):
        base = dict(name="m", entity=item, label_source="log", target="click",
                    features=(request("x"),), baselines=(Baseline("p", "popular", window=3),),
                    task="ranking", metrics=("auc",), slate=Slate(size=3))
        return Model(**{**base, **kw})

    assert check_project(Project("p", (log, fb), (model(),))) == []
    problems = " ".join(check_project(Project("p", (log, fb), (
        model(name="a", slate=None),
        model(name="b", metrics=("ndcg_at_10",)),
        model(name="c", slate=Slate(size=0, group="nope", candidates="zzz", feedback="fb")),
        model(name="d", gates=(Gate("ope", estimator="magic", confidence=2.0),)),
        model(name="e", task="binary", slate=None, rules=(max_per("cat", 2),),
              baselines=(Baseline("r", "random"),), metrics=("auc",)),
        model(name="f", baselines=(Baseline("p", "popular", window=0, agg="mean",
                                            column="nope"),),
              gates=(Gate("beats_production"),)),
    ))))
    for part in ("needs slate=Slate", "need Slate(group=COLUMN)", "slate size must be",
                 "slate group 'nope'", "candidates source 'zzz' is not declared",
                 "needs the columns request_id, item_id, position and click",
                 "estimator must be one of", "confidence must be within",
                 "declare Slate(feedback=SOURCE)", "shape a slate and need task='ranking'",
                 "ranks items and needs task='ranking'", "needs window= days >= 1",
                 "agg must be 'sum' or 'count'", "reads column 'nope'",
                 "compares policies with Gate('ope')"):
        assert part in problems, part
