"""Registry: gates, stages by the transition table, audit, rollback, atomicity."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from tuesday.errors import Conflict, GateFailed, NotFound, TuesdayError
from tuesday.project import Gate
from tuesday.release import registry
from tuesday.train import versions

T = datetime(2016, 7, 1)


def _register_copy(ws, version: int = 1, **metric_changes) -> int:
    """Register another version reusing version 1's run, with changed metrics."""
    v = registry.get_version(ws, "ridership_14d", version)
    metrics = {**v["metrics"], "model": {**v["metrics"]["model"], **metric_changes}}
    return versions.register(ws, "ridership_14d", run_id=f"r{datetime.now().timestamp()}",
                             artifact=v["artifact"], manifest=v["manifest"], metrics=metrics,
                             as_of=T)


def test_promote_passes_gate_and_audits(meta_ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    res = registry.promote(meta_ws, model, 1, as_of=T, actor="alice")
    assert res["changed"] and res["gates"][0]["passed"]
    assert registry.production(meta_ws, "ridership_14d")["version"] == 1
    last = registry.audit(meta_ws, "ridership_14d")[-1]
    assert (last["from_stage"], last["to_stage"], last["actor"]) == ("candidate", "production",
                                                                      "alice")
    assert "passed gates" in last["reason"]
    # idempotent
    assert registry.promote(meta_ws, model, 1, as_of=T)["changed"] is False


def test_gate_refuses_and_says_by_how_much(meta_ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    worse = _register_copy(meta_ws, rmse=3.5)
    with pytest.raises(GateFailed, match=r"worse by 23\.9%") as exc:
        registry.promote(meta_ws, model, worse, as_of=T)
    assert exc.value.exit_code == 4
    assert registry.production(meta_ws, "ridership_14d") is None
    with pytest.raises(TuesdayError, match="non-empty reason"):
        registry.promote(meta_ws, model, worse, as_of=T, override_reason="  ")
    res = registry.promote(meta_ws, model, worse, as_of=T, override_reason="holiday freeze")
    assert res["override"] is True
    assert "OVERRIDE" in registry.audit(meta_ws, "ridership_14d")[-1]["reason"]


def test_min_lift_gate(meta_ws, ridership) -> None:
    model = replace(ridership.project.model("ridership_14d"), gates=(Gate(min_lift=0.9),))
    with pytest.raises(GateFailed, match=r"needs at least 90\.0%"):
        registry.promote(meta_ws, model, 1, as_of=T)


def test_rollback_restores_previous_production(meta_ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    with pytest.raises(Conflict, match="no earlier production version"):
        registry.rollback(meta_ws, "ridership_14d", as_of=T)
    registry.promote(meta_ws, model, 1, as_of=T)
    v2 = _register_copy(meta_ws)
    registry.promote(meta_ws, model, v2, as_of=T)
    stages = {v["version"]: v["stage"] for v in registry.versions(meta_ws, "ridership_14d")}
    assert stages == {1: "retired", v2: "production"}
    res = registry.rollback(meta_ws, "ridership_14d", as_of=T, actor="bob")
    assert (res["version"], res["replaced"]) == (1, v2)
    stages = {v["version"]: v["stage"] for v in registry.versions(meta_ws, "ridership_14d")}
    assert stages == {1: "production", v2: "retired"}
    # exactly one production version at any time
    assert sum(s == "production" for s in stages.values()) == 1


def test_transition_table_refuses_illegal_moves(meta_ws, ridership) -> None:
    model = ridership.project.model("ridership_14d")
    registry.promote(meta_ws, model, 1, as_of=T)
    v2 = _register_copy(meta_ws)
    registry.promote(meta_ws, model, v2, as_of=T)  # retires 1
    with pytest.raises(Conflict, match="cannot move from 'retired' to 'candidate'"):
        registry._move(meta_ws, "ridership_14d", 1, "candidate", actor="x", reason="x", at=T)


def test_unknown_version(meta_ws, ridership) -> None:
    with pytest.raises(NotFound, match=r"has no version 99 \(versions: 1\)"):
        registry.promote(meta_ws, ridership.project.model("ridership_14d"), 99, as_of=T)


def test_failed_transition_leaves_state_unchanged(meta_ws, ridership, monkeypatch) -> None:
    """A crash inside the promotion transaction leaves the old state, not a mix."""
    model = ridership.project.model("ridership_14d")
    registry.promote(meta_ws, model, 1, as_of=T)
    v2 = _register_copy(meta_ws)
    before = (registry.versions(meta_ws), registry.audit(meta_ws))
    original = registry.meta.transitions.insert
    calls = {"n": 0}

    def failing_insert(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # after the retirement of v1 was written
            raise RuntimeError("disk full")
        return original(*a, **k)

    monkeypatch.setattr(registry.meta.transitions, "insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        registry.promote(meta_ws, model, v2, as_of=T)
    monkeypatch.undo()
    assert (registry.versions(meta_ws), registry.audit(meta_ws)) == before
