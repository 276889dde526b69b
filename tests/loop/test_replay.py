"""Replay: the daily loop over real history with a virtual clock, shocks, timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from tests.conftest import RIDERSHIP
from tuesday.cli import main
from tuesday.errors import Conflict, TuesdayError
from tuesday.loop.replay import Shock, replay
from tuesday.project import LoadedProject, Policy
from tuesday.release import registry
from tuesday.workspace import open_workspace

MODEL = "ridership_14d"
SHOCK = "scale=0.6 from 2015-03-02"


@pytest.fixture(scope="module")
def shocked(ridership: LoadedProject, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:
    """Eight weeks, weekly retrains (2-fold backtests to keep it short), ridership cut
    to 60% two weeks in."""
    return replay(ridership, MODEL, "2015-02-16", "2015-04-12",
                  workspace=tmp_path_factory.mktemp("replay"), policy=Policy(schedule="7d"),
                  shocks=[SHOCK], folds=2)


def test_shock_parsing(ridership: LoadedProject) -> None:
    model = ridership.project.model(MODEL)
    s = Shock.parse("scale=0.6 from 2015-03-01").resolved(ridership.project, model)
    assert (s.kind, s.value, s.source, s.column, s.end) == ("scale", 0.6, "ridership",
                                                            "rides", None)
    stuck = Shock.parse("stuck:weather.temp=50 from 2015-06-01 until 2015-07-01")
    assert stuck.describe() == "weather.temp stuck at 50 from 2015-06-01 until 2015-07-01"
    ren = Shock.parse("rename=Clark_Lake>Clark_Lake_2 from 2015-06-01").resolved(
        ridership.project, model)
    assert ren.column == "station"
    frame = pd.DataFrame({"station": ["Clark_Lake", "Clark_Lake", "Austin"],
                          "date": pd.to_datetime(["2015-05-31", "2015-06-01", "2015-06-01"]),
                          "rides": [10.0, 10.0, 2.0]})
    src = ridership.project.source("ridership")
    assert list(ren.apply(frame, src)["station"]) == ["Clark_Lake", "Clark_Lake_2", "Austin"]
    assert list(s.apply(frame.assign(date=pd.to_datetime(["2015-02-28", "2015-03-01",
                                                          "2015-03-02"])), src)["rides"]) \
        == [10.0, 6.0, 1.2]
    with pytest.raises(TuesdayError, match=r"A shock must look like 'scale=0\.6 from"):
        Shock.parse("halve ridership in March")
    with pytest.raises(TuesdayError, match="must be a number"):
        Shock.parse("scale=lots from 2015-03-01")
    with pytest.raises(TuesdayError, match="has no column 'nope'"):
        Shock.parse("stuck:weather.nope=1 from 2015-03-01").resolved(ridership.project, model)


def test_shock_raises_an_alert_within_14_days_and_a_retrain_follows(
        shocked: dict[str, Any]) -> None:
    [s] = shocked["shocks"]
    assert s["text"] == "scale ridership.rides by 0.6 from 2015-03-02"
    alert = s["first_alert"]
    assert alert is not None and alert["days_after"] <= 14
    assert "quality" in alert["kinds"]
    retrain = s["first_retrain"]
    assert retrain is not None and retrain["date"] >= alert["date"]
    assert s["first_promotion"] is not None
    # the forecasts made before the shock miss by about 1/0.6 - 1; accuracy comes back
    # as retrained versions see the new level
    assert s["before"]["wape"] < 0.15
    assert s["during"]["wape"] > 0.4
    assert s["after"]["wape"] < 0.75 * s["during"]["wape"]


def test_timeline_json_content(shocked: dict[str, Any]) -> None:
    tl = json.loads(Path(shocked["report_json"]).read_text())
    assert (tl["model"], tl["start"], tl["end"]) == (MODEL, "2015-02-16", "2015-04-12")
    assert tl["folds"] == 2 and tl["policy"]["schedule"] == "7d"
    days = tl["days"]
    assert len(days) == tl["summary"]["days"] == 56
    assert days[0]["served"] == 14 and all(d["served"] == 1 for d in days[1:])
    assert tl["summary"]["serve_errors"] == 0
    assert tl["summary"]["retrains"] == sum(1 for d in days if d["retrained"]) >= 7
    versions = tl["summary"]["versions"]
    assert versions == list(range(1, len(versions) + 1))
    # accuracy per target day: served forecast, actual, baselines and rolling WAPE
    acc = {r["date"]: r for r in tl["accuracy"]}
    row = acc["2015-03-20"]
    assert row["actual"] is not None and row["prediction"] is not None
    assert {"seasonal_naive", "seasonal_mean_4w", "wape", "wape_seasonal_naive"} <= set(row)
    assert acc["2015-04-26"]["actual"] is None  # served, its day not replayed yet
    kinds = {e["kind"] for e in tl["events"]}
    assert {"shock", "alert", "retrain", "promotion"} <= kinds
    assert [e["date"] for e in tl["events"]] == sorted(e["date"] for e in tl["events"])
    assert {"ingest", "monitor", "train", "promote", "materialize", "serve",
            "total"} <= set(tl["seconds"])
    # the replay's own workspace: production and audit as the loop left them
    ws = open_workspace(tl["workspace"])
    prod = registry.production(ws, MODEL)
    assert prod is not None and prod["version"] == days[-1]["production_version"]
    actors = {a["actor"] for a in registry.audit(ws, MODEL)}
    assert actors >= {"replay", "loop"}


def test_timeline_html_is_self_contained(shocked: dict[str, Any]) -> None:
    page = Path(shocked["report_html"]).read_text()
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == 3 and "<script" not in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "scale ridership.rides by 0.6 from 2015-03-02" in page


def test_replay_refuses_a_used_workspace(ridership: LoadedProject,
                                         shocked: dict[str, Any]) -> None:
    with pytest.raises(Conflict, match="already holds data"):
        replay(ridership, MODEL, "2015-02-16", "2015-02-20", workspace=shocked["workspace"])
    with pytest.raises(TuesdayError, match="must be after --start"):
        replay(ridership, MODEL, "2015-02-16", "2015-02-16")


def test_cli_replay_short(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, [
        "--project", str(RIDERSHIP), "replay", MODEL, "--start", "2015-05-04",
        "--end", "2015-05-08", "--folds", "2", "--schedule", "none",
        "--no-auto-promote", "--workspace", str(tmp_path / "rp"), "--json"])
    assert r.exit_code == 0, r.output
    tl = json.loads(r.stdout)
    assert tl["policy"]["schedule"] is None and tl["policy"]["auto_promote"] is False
    assert tl["summary"]["days"] == 5 and tl["summary"]["retrains"] == 0
    assert Path(tl["report_html"]).is_file()
    bad = CliRunner().invoke(main, ["--project", str(RIDERSHIP), "replay", MODEL, "--start",
                                    "2015-05-04", "--end", "2015-05-08", "--shock", "oops"])
    assert bad.exit_code == 2 and "A shock must look like" in bad.output


@pytest.mark.slow
def test_one_year_replay_with_the_shock(ridership: LoadedProject, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    """A year of the daily loop with weekly retrains: the shock is alerted on within two
    weeks, retrains follow and the rolling accuracy comes back (about 20 minutes)."""
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("a one-year replay; run with `python -m pytest -m slow`")
    tl = replay(ridership, MODEL, "2015-01-01", "2015-12-31", workspace=tmp_path / "year",
                policy=Policy(schedule="7d"), shocks=["scale=0.6 from 2015-06-01"], folds=4)
    [s] = tl["shocks"]
    assert s["first_alert"]["days_after"] <= 14
    assert s["first_retrain"]["date"] >= s["first_alert"]["date"]
    assert s["recovered"], s
    assert s["after"]["wape"] < 1.5 * s["before"]["wape"]
    assert tl["summary"]["days"] == 365 and tl["summary"]["retrains"] >= 52
