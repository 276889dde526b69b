"""Registry changes from concurrent processes: real processes started together behind a
barrier, many rounds, then the invariants: at most one production version, every change
audited and the audit chain consistent (replaying it gives the stages), a deployment's
challenger is a candidate, and rollback works afterwards."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import RIDERSHIP
from tests.release.race_worker import MODEL, T, serve_jobs
from tuesday import meta
from tuesday.errors import Conflict
from tuesday.release import registry
from tuesday.train import versions
from tuesday.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3


class Pool:
    """Worker processes (spawned, so nothing is shared but the workspace folder) that
    run one job each per round, all released by the same barrier."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.barrier = ctx.Barrier(n)
        self.results = ctx.Queue()
        self.jobs = [ctx.Queue() for _ in range(n)]
        self.procs = [ctx.Process(target=serve_jobs, args=(
            str(RIDERSHIP), f"worker{i}", q, self.results, self.barrier))
            for i, q in enumerate(self.jobs)]
        for p in self.procs:
            p.start()
        ready = [self.results.get(timeout=300) for _ in self.procs]
        assert all(r[1] == "ready" for r in ready), ready

    def round(self, ws: Workspace, jobs: list[tuple[str, Any]]) -> list[tuple[Any, ...]]:
        for q, (kind, arg) in zip(self.jobs, jobs, strict=True):
            q.put((str(ws.root), kind, arg))
        out = [self.results.get(timeout=300) for _ in jobs]
        crashed = [r for r in out if r[3] in ("crash", "error")]
        assert not crashed, crashed
        return out

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join(timeout=60)
            assert p.exitcode == 0


@pytest.fixture()
def race_ws(meta_ws: Workspace) -> Workspace:
    """The trained ridership workspace (version 1 a candidate), a private copy, with its
    metadata on SQLite or on PostgreSQL."""
    return meta_ws


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    p = Pool(WORKERS)
    yield p
    p.close()


def register(ws: Workspace, n: int = 1) -> list[int]:
    """``n`` new candidate versions, copies of version 1 (real artifacts)."""
    v = registry.get_version(ws, MODEL, 1)
    return [versions.register(ws, MODEL, run_id=f"race{time.monotonic_ns()}",
                              artifact=v["artifact"], manifest=v["manifest"],
                              metrics=v["metrics"], as_of=T) for _ in range(n)]


def audit_count(ws: Workspace) -> int:
    with ws.engine().connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(meta.transitions)
                                ).scalar() or 0)


def check(ws: Workspace) -> dict[int, str]:
    """The invariants; returns the stages."""
    stages = {v["version"]: v["stage"] for v in registry.versions(ws, MODEL)}
    assert sum(s == "production" for s in stages.values()) <= 1, stages
    replay: dict[int, str] = {}
    for t in registry.audit(ws, MODEL):  # every row starts where the one before left
        assert t["from_stage"] == replay.get(t["version"]), (t, replay.get(t["version"]))
        replay[t["version"]] = t["to_stage"]
        assert sum(s == "production" for s in replay.values()) <= 1, t
    assert replay == stages
    dep = registry.deployment(ws, MODEL)
    if dep["mode"] != "single":
        assert stages[dep["version"]] == "candidate", (dep, stages)
    return stages


def production(ws: Workspace) -> int | None:
    prod = registry.production(ws, MODEL)
    return prod["version"] if prod else None


def test_simultaneous_promotions_leave_one_production_version(race_ws: Workspace,
                                                             pool: Pool) -> None:
    rounds, conflicts = 25, 0
    for _ in range(rounds):
        new = register(race_ws, WORKERS)
        before, had = audit_count(race_ws), production(race_ws) is not None
        results = pool.round(race_ws, [("promote", v) for v in new])
        stages = check(race_ws)
        won = [r for r in results if r[3] == "ok" and r[4]]
        lost = [r for r in results if r[3] == "conflict"]
        assert len(won) + len(lost) == WORKERS and won
        assert production(race_ws) in {r[2] for r in won}
        for r in lost:  # the loser changed nothing and was told why and what to do
            assert stages[r[2]] == "candidate"
            assert "changed while this request ran" in r[4]
            assert f"Run `tuesday promote {MODEL} {r[2]}` again" in r[4]
        # per winner one promotion and one retirement of the version it replaced
        assert audit_count(race_ws) - before == 2 * len(won) - (not had)
        conflicts += len(lost)
    assert conflicts > 0  # the processes did race
    res = registry.rollback(race_ws, MODEL, as_of=T)
    assert res["replaced"] != res["version"] and production(race_ws) == res["version"]
    check(race_ws)
    print(f"promotion races: {rounds} rounds x {WORKERS} processes, {conflicts} conflicts, "
          "invariants held")


def test_simultaneous_rollbacks_do_not_undo_each_other(race_ws: Workspace,
                                                       pool: Pool) -> None:
    for v in [1, *register(race_ws, 4)]:  # a history: 1, then each new version in turn
        registry.promote(race_ws, _model(), v, as_of=T)
    rounds, conflicts = 20, 0
    for _ in range(rounds):
        start = production(race_ws)
        before = audit_count(race_ws)
        results = pool.round(race_ws, [("rollback", None)] * WORKERS)
        check(race_ws)
        won = [r for r in results if r[3] == "ok"]
        assert won and len(won) + sum(r[3] == "conflict" for r in results) == WORKERS
        # the version in production at the start was replaced by one of them; any other
        # that succeeded read production after an earlier winner had committed (a
        # rollback of the rollback: 4 -> 5 -> 4 -> 5 is three such steps), which the
        # audit chain checked above orders
        assert start in [w[4][0] for w in won]
        assert audit_count(race_ws) - before == 2 * len(won)  # retire + restore, each
        conflicts += WORKERS - len(won)
    assert conflicts > 0
    check(race_ws)
    print(f"rollback races: {rounds} rounds x {WORKERS} processes, {conflicts} conflicts, "
          "invariants held")


def test_promotion_rollback_and_deploy_at_once(race_ws: Workspace, pool: Pool) -> None:
    registry.promote(race_ws, _model(), 1, as_of=T)
    registry.promote(race_ws, _model(), register(race_ws)[0], as_of=T)
    rounds = 20
    for _ in range(rounds):
        a, b = register(race_ws, 2)
        pool.round(race_ws, [("promote", a), ("rollback", None), ("deploy", b)])
        check(race_ws)
    res = registry.rollback(race_ws, MODEL, as_of=T)
    assert production(race_ws) == res["version"]
    check(race_ws)


def _model() -> Any:
    from tuesday.project import load_project

    return load_project(RIDERSHIP).project.model(MODEL)


# ------------------------------------------------------------------ through the CLI


def _cli(ws: Workspace, *args: str) -> list[str]:
    return [sys.executable, "-m", "tuesday.cli", "--project", str(RIDERSHIP), "--workspace",
            str(ws.root), *args]


def _wait_for(path: Path, proc: subprocess.Popen[str], deadline: float = 120) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.01)


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_loser_of_a_race_gets_a_conflict_with_exit_code_5(race_ws: Workspace,
                                                         tmp_path: Path,
                                                         command: str) -> None:
    """A CLI request whose first read is held open while another process changes the
    production version: it changes nothing, exits 5 and says what to do."""
    registry.promote(race_ws, _model(), 1, as_of=T)
    v2, v3 = register(race_ws, 2)
    if command == "rollback":
        registry.promote(race_ws, _model(), v2, as_of=T)
    paused, go = tmp_path / "paused", tmp_path / "go"
    slow_args = ("promote", MODEL, str(v2)) if command == "promote" else ("rollback", MODEL)
    slow = subprocess.Popen(
        [sys.executable, "-m", "tests.release.race_worker", str(paused), str(go),
         *_cli(race_ws, *slow_args)[3:]], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ})
    _wait_for(paused, slow)
    before = check(race_ws)
    other = ("promote", MODEL, str(v3)) if command == "promote" else ("rollback", MODEL)
    fast = subprocess.run(_cli(race_ws, *other), capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert fast.returncode == 0, fast.stderr
    middle = check(race_ws)
    assert middle != before
    go.touch()
    out, err = slow.communicate(timeout=300)
    assert slow.returncode == 5, (out, err)
    assert "changed while this request ran" in err
    assert ("`tuesday promote" in err) if command == "promote" else ("`tuesday rollback" in err)
    assert check(race_ws) == middle  # the loser changed nothing
    if command == "rollback":  # the version rolled back did not come back
        assert middle[v2] == "retired"


def test_conflict_is_exit_code_5() -> None:
    assert Conflict("x").exit_code == 5 and Conflict("x").status == 409
