"""The daily loop: policy, idempotent ticks, gates and approval, alerts, scheduler, CLI."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.conftest import AS_OF, RIDERSHIP
from tuesday import meta
from tuesday.cli import main
from tuesday.errors import Conflict, TuesdayError, ValidationFailed
from tuesday.loop import daily as loop
from tuesday.loop.replay import _with_folds
from tuesday.project import LoadedProject, Policy, check_project
from tuesday.release import registry
from tuesday.watch import alerts
from tuesday.workspace import Workspace

MODEL = "ridership_14d"
DAY1 = datetime(2016, 7, 1)
DAY3 = datetime(2016, 7, 3)


def _snapshot(ws: Workspace) -> dict[str, Any]:
    out = {}
    with ws.engine().connect() as conn:
        for t in (meta.model_versions, meta.transitions, meta.runs, meta.loop_ticks,
                  meta.alerts, meta.alert_deliveries, meta.deployments):
            out[t.name] = [tuple(r) for r in conn.execute(sa.select(t)).all()]
    return out


@pytest.fixture()
def live(ws_copy: Workspace, ridership: LoadedProject) -> tuple[Workspace, LoadedProject]:
    """Version 1 (trained 2016-06-30) in production; a 2-fold project for fast retrains."""
    registry.promote(ws_copy, ridership.project.model(MODEL), 1, as_of=AS_OF)
    return ws_copy, _with_folds(ridership, MODEL, 2)


# ---------------------------------------------------------------------- policy


def test_policy_declaration_is_checked_with_the_project(ridership: LoadedProject) -> None:
    model = ridership.project.model(MODEL)
    bad = dataclasses.replace(model, policy=Policy(schedule="-3d", drift_ticks=0,
                                                   auto_promote="yes",  # type: ignore[arg-type]
                                                   routes=("slack",)))  # type: ignore[arg-type]
    problems = check_project(dataclasses.replace(ridership.project, models=(bad,)))
    text = " ".join(problems)
    assert "'schedule' must be a whole number of days like '7d'" in text
    assert "'drift_ticks' must be a whole number >= 1" in text
    assert "'auto_promote' must be True or False" in text
    assert "'routes' must be a tuple of alert routes" in text
    good = dataclasses.replace(model, policy=Policy(schedule=None, auto_promote=False))
    assert check_project(dataclasses.replace(ridership.project, models=(good,))) == []
    assert loop.policy_for(model) == Policy()
    assert Policy(schedule="14d").schedule_days == 14
    assert Policy(schedule=None, drift_ticks=None).triggers == ("quality",)


# ------------------------------------------------------------------------ ticks


def test_tick_is_idempotent(live: tuple[Workspace, LoadedProject]) -> None:
    ws, lp = live
    pol = Policy(schedule="1d")
    first = loop.tick(ws, lp, MODEL, DAY3, policy=pol)
    assert first["status"] == "promoted" and first["exit_code"] == 0
    assert first["reasons"] == ["schedule: the newest version is 3 days old (every 1d)"]
    assert first["retrained"]["version"] == 2 and first["promoted"] == 2
    assert first["materialized"]["origin"] == "2016-07-03T00:00:00"
    assert first["materialized"]["last_target"] == "2016-07-17T00:00:00"
    before = _snapshot(ws)
    again = loop.tick(ws, lp, MODEL, DAY3, policy=pol)
    assert again["repeated"] is True
    assert {k: v for k, v in again.items() if k != "repeated"} == json.loads(
        json.dumps(first, default=str))
    assert _snapshot(ws) == before  # registry, audit, runs, ticks, alerts unchanged
    assert [v["version"] for v in registry.versions(ws, MODEL)] == [1, 2]
    assert loop.ticks(ws, MODEL)[0]["as_of"] == "2016-07-03T00:00:00"
    with pytest.raises(Conflict, match="already has a loop tick as of 2016-07-03"):
        loop.tick(ws, lp, MODEL, DAY1, policy=pol)


def test_tick_without_a_reason_only_materializes(live: tuple[Workspace, LoadedProject]
                                                 ) -> None:
    ws, lp = live
    out = loop.tick(ws, lp, MODEL, DAY1)  # default policy: every 7 days
    assert out["status"] == "ok" and out["reasons"] == [] and out["retrained"] is None
    assert out["monitor"]["status"] == "no_traffic"
    assert out["production_version"] == 1 and out["materialized"]["entities"] >= 1
    assert Path(out["monitor"]["report_html"]).read_text().startswith("<!doctype html>")


def test_min_days_between_retrains_holds_a_trigger(live: tuple[Workspace, LoadedProject]
                                                   ) -> None:
    ws, lp = live
    out = loop.tick(ws, lp, MODEL, DAY1, policy=Policy(schedule="1d",
                                                       min_days_between_retrains=3))
    assert out["reasons"] and out["retrained"] is None
    assert "retrains at most every 3 days" in out["held"]


def test_no_auto_promote_leaves_a_candidate_and_an_alert(
        live: tuple[Workspace, LoadedProject]) -> None:
    ws, lp = live
    out = loop.tick(ws, lp, MODEL, DAY3, policy=Policy(schedule="1d", auto_promote=False))
    assert out["status"] == "awaiting_approval" and out["exit_code"] == 0
    assert out["awaiting_approval"] == 2 and out["promoted"] is None
    assert {g["gate"] for g in out["gates"]} == {"beats_baseline"}
    stages = {v["version"]: v["stage"] for v in registry.versions(ws, MODEL)}
    assert stages == {1: "production", 2: "candidate"}
    assert out["production_version"] == 1
    [a] = [a for a in alerts.list_alerts(ws, model=MODEL) if a.kind == "approval"]
    assert a.status == "open" and a.severity == "warning"
    assert a.details["command"] == f"tuesday promote {MODEL} 2"
    assert "awaits approval" in a.title and a.delivered("log")
    # a person approves; the next tick resolves the alert
    registry.promote(ws, lp.project.model(MODEL), 2, as_of=DAY3, actor="alice")
    nxt = loop.tick(ws, lp, MODEL, datetime(2016, 7, 4),
                    policy=Policy(schedule="7d", auto_promote=False))
    assert [r["kind"] for r in nxt["resolved_alerts"]] == ["approval"]
    assert alerts.get_alert(ws, a.id).status == "resolved"


def test_failed_gate_leaves_a_candidate_and_exit_code_4(
        live: tuple[Workspace, LoadedProject]) -> None:
    ws, lp = live
    model = lp.project.model(MODEL)
    strict = dataclasses.replace(model, gates=(dataclasses.replace(model.gates[0],
                                                                   min_lift=0.99),))
    lp2 = LoadedProject(dataclasses.replace(lp.project, models=(strict,)), lp.path, lp.module)
    out = loop.tick(ws, lp2, MODEL, DAY3, policy=Policy(schedule="1d"))
    assert out["status"] == "awaiting_approval" and out["exit_code"] == 4
    assert out["gates"][0]["passed"] is False
    kinds = {a["kind"]: a for a in out["alerts"]}
    assert "beats_baseline failed" in kinds["approval"]["title"]


def test_failed_retrain_raises_a_critical_alert(live: tuple[Workspace, LoadedProject],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ws, lp = live

    def broken(*_a: Any, **_k: Any) -> None:
        raise ValidationFailed("Model 'ridership_14d' has no labels.", fix="Ingest some.")

    monkeypatch.setattr(loop.training, "train", broken)
    out = loop.tick(ws, lp, MODEL, DAY3, policy=Policy(schedule="1d"))
    assert out["status"] == "retrain_failed" and out["exit_code"] == 7
    assert out["error"] == "Model 'ridership_14d' has no labels."
    assert out["production_version"] == 1  # production keeps serving
    [a] = out["alerts"]
    assert a["kind"] == "retrain_failed" and a["severity"] == "critical"


def test_tick_refuses_a_bad_policy(live: tuple[Workspace, LoadedProject]) -> None:
    ws, lp = live
    with pytest.raises(TuesdayError, match="'min_rows' must be a whole number >= 1"):
        loop.tick(ws, lp, MODEL, DAY1, policy=Policy(min_rows=0))


# -------------------------------------------------------------------- scheduler


def test_scheduler_ticks_once_a_day_at_the_time(ridership: LoadedProject, ws_copy: Workspace,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, datetime]] = []
    monkeypatch.setattr(loop, "tick", lambda ws, lp, name, as_of, **k: calls.append(
        (name, as_of)) or {"model": name, "as_of": as_of.isoformat(), "exit_code": 0})
    now = [datetime(2016, 7, 1, 5, 0)]
    waited: list[float] = []

    def wait(seconds: float) -> None:  # a virtual clock: waiting moves time on
        waited.append(seconds)
        now[0] = now[0] + __import__("datetime").timedelta(seconds=seconds)

    seen: list[dict[str, Any]] = []
    out = loop.run_scheduler(ws_copy, ridership, at="06:00", clock=lambda: now[0],
                             wait=wait, max_days=2, on_tick=seen.append)
    assert calls == [(MODEL, datetime(2016, 7, 1, 6)), (MODEL, datetime(2016, 7, 2, 6))]
    assert len(out) == len(seen) == 2
    assert max(waited) <= 60.0
    with pytest.raises(TuesdayError, match="HH:MM like '06:00'"):
        loop.run_scheduler(ws_copy, ridership, at="25:00", max_days=1)


# -------------------------------------------------------------------------- CLI


def test_cli_loop_run_twice(ws_copy: Workspace, ridership: LoadedProject) -> None:
    registry.promote(ws_copy, ridership.project.model(MODEL), 1, as_of=AS_OF)
    args = ["--project", str(RIDERSHIP), "--workspace", str(ws_copy.root), "loop", "run",
            MODEL, "--as-of", "2016-07-01", "--json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    first = json.loads(r.output)
    assert first["status"] == "ok" and first["production_version"] == 1
    r2 = CliRunner().invoke(main, args)
    assert r2.exit_code == 0 and json.loads(r2.output)["repeated"] is True
    text = CliRunner().invoke(main, args[:-1])
    assert "recorded earlier; nothing done" in text.output
    ticks = CliRunner().invoke(main, ["--project", str(RIDERSHIP), "--workspace",
                                      str(ws_copy.root), "loop", "ticks", MODEL, "--json"])
    assert [t["as_of"] for t in json.loads(ticks.output)] == ["2016-07-01T00:00:00"]
    old = CliRunner().invoke(main, [*args[:-3], "--as-of", "2016-06-30"])
    assert old.exit_code == 5 and "already has a loop tick" in old.output
