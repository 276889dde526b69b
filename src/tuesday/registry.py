"""Model registry: versions, stages by an explicit transition table, gates, audit.

Stages: ``experimental -> candidate -> production -> retired``. Every change of stage is
one database transaction that also writes its audit row, so a promotion is either fully
done or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tuesday import evaluation, meta
from tuesday.errors import Conflict, GateFailed, NotFound, TuesdayError
from tuesday.project import Model
from tuesday.workspace import Workspace

STAGES = ("experimental", "candidate", "production", "retired")
#: allowed (from, to) stage changes
TRANSITIONS: frozenset[tuple[str, str]] = frozenset({
    ("experimental", "candidate"),
    ("experimental", "retired"),
    ("candidate", "production"),
    ("candidate", "retired"),
    ("production", "retired"),
    ("retired", "production"),  # rollback
})


def register(ws: Workspace, model: str, *, run_id: str, artifact: str,
             manifest: dict[str, Any], metrics: dict[str, Any], as_of: datetime,
             stage: str = "candidate", actor: str = "tuesday") -> int:
    """Record a run and a new model version; returns the version number."""
    mv, runs = meta.model_versions, meta.runs
    with ws.engine().begin() as conn:
        last = conn.execute(sa.select(sa.func.max(mv.c.version))
                            .where(mv.c.model == model)).scalar()
        version = int(last or 0) + 1
        manifest = {**manifest, "version": version}
        conn.execute(runs.insert().values(run_id=run_id, model=model, as_of=as_of,
                                          created_at=as_of, manifest=manifest,
                                          metrics=metrics, artifact=artifact))
        conn.execute(mv.insert().values(model=model, version=version, stage=stage,
                                        run_id=run_id, artifact=artifact, created_at=as_of))
        conn.execute(meta.transitions.insert().values(
            model=model, version=version, from_stage=None, to_stage=stage, actor=actor,
            reason=f"trained by run {run_id[:12]}", at=as_of))
    return version


def versions(ws: Workspace, model: str | None = None) -> list[dict[str, Any]]:
    mv = meta.model_versions
    q = sa.select(mv).order_by(mv.c.model, mv.c.version)
    if model:
        q = q.where(mv.c.model == model)
    with ws.engine().connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def get_version(ws: Workspace, model: str, version: int) -> dict[str, Any]:
    """A version with its run's manifest and metrics."""
    mv, runs = meta.model_versions, meta.runs
    with ws.engine().connect() as conn:
        row = conn.execute(
            sa.select(mv, runs.c.manifest, runs.c.metrics)
            .join(runs, runs.c.run_id == mv.c.run_id)
            .where(mv.c.model == model, mv.c.version == version)).mappings().first()
    if row is None:
        known = [v["version"] for v in versions(ws, model)]
        raise NotFound(f"Model {model!r} has no version {version} (versions: "
                       f"{', '.join(map(str, known)) or 'none'}).",
                       fix=f"Run `tuesday train {model}` or pick a listed version.")
    return dict(row)


def production(ws: Workspace, model: str) -> dict[str, Any] | None:
    """The production version of a model with its manifest, or None."""
    mv = meta.model_versions
    with ws.engine().connect() as conn:
        v = conn.execute(sa.select(mv.c.version).where(
            mv.c.model == model, mv.c.stage == "production")).scalar()
    return get_version(ws, model, int(v)) if v is not None else None


def check_gates(model: Model, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Evaluate the model's gates on a version's backtest metrics."""
    out = []
    primary = metrics["primary"]
    mine = metrics["model"][primary]
    best = metrics["best_baseline"]
    theirs = metrics["baselines"][best][primary]
    for g in model.gates:
        if g.kind == "beats_baseline":
            lift = evaluation.lift(primary, mine, theirs)
            passed = evaluation.better(primary, mine, theirs) and lift >= g.min_lift
            out.append({"gate": "beats_baseline", "passed": bool(passed),
                        "metric": primary, "model": mine, "baseline": best,
                        "baseline_value": theirs, "lift": lift, "min_lift": g.min_lift,
                        "message": (
                            f"{primary} {mine:.4f} vs best baseline {best!r} {theirs:.4f}: "
                            f"{'better' if lift >= 0 else 'worse'} by {abs(lift):.1%}"
                            + (f" (needs at least {g.min_lift:.1%})" if g.min_lift else ""))})
    return out


def promote(ws: Workspace, model: Model, version: int, *, as_of: datetime,
            actor: str = "cli", override_reason: str | None = None) -> dict[str, Any]:
    """Move a version to production if it passes its gates (or with an override reason).

    The current production version, if any, is retired in the same transaction.
    """
    row = get_version(ws, model.name, version)
    if row["stage"] == "production":
        return {"model": model.name, "version": version, "stage": "production",
                "changed": False, "gates": check_gates(model, row["metrics"])}
    gates = check_gates(model, row["metrics"])
    failed = [g for g in gates if not g["passed"]]
    if failed and not override_reason:
        raise GateFailed(
            f"Model {model.name!r} version {version} fails {len(failed)} gate(s): "
            + "; ".join(f"{g['gate']}: {g['message']}" for g in failed) + ".",
            fix="Improve the model, or promote with --override-reason \"why\" to record an "
                "explicit exception.", details=gates)
    if override_reason is not None and not override_reason.strip():
        raise TuesdayError("An override needs a non-empty reason.",
                           fix='Pass --override-reason "why this version ships anyway".')
    reason = ("passed gates: " + "; ".join(g["message"] for g in gates)) if not failed \
        else f"OVERRIDE of failed gates ({override_reason})"
    _move(ws, model.name, version, "production", actor=actor, reason=reason, at=as_of,
          retire_current=True)
    return {"model": model.name, "version": version, "stage": "production", "changed": True,
            "gates": gates, "override": bool(failed)}


def rollback(ws: Workspace, model: str, *, as_of: datetime, actor: str = "cli",
             reason: str = "rollback") -> dict[str, Any]:
    """Restore the version that was in production before the current one."""
    tr = meta.transitions
    current = production(ws, model)
    with ws.engine().connect() as conn:
        history = conn.execute(sa.select(tr.c.version).where(
            tr.c.model == model, tr.c.to_stage == "production").order_by(tr.c.id.desc())
        ).scalars().all()
    cur = current["version"] if current else None
    previous = next((v for v in history if v != cur), None)
    if previous is None:
        raise Conflict(f"Model {model!r} has no earlier production version to roll back to.",
                       fix="Promote a version with `tuesday promote MODEL VERSION`.")
    _move(ws, model, previous, "production", actor=actor,
          reason=f"{reason}: replaces version {cur}", at=as_of, retire_current=True)
    return {"model": model, "version": previous, "replaced": cur, "stage": "production"}


def _move(ws: Workspace, model: str, version: int, to: str, *, actor: str, reason: str,
          at: datetime, retire_current: bool) -> None:
    mv, tr = meta.model_versions, meta.transitions
    with ws.engine().begin() as conn:
        frm = conn.execute(sa.select(mv.c.stage).where(
            mv.c.model == model, mv.c.version == version)).scalar()
        if (frm, to) not in TRANSITIONS:
            raise Conflict(f"Model {model!r} version {version} cannot move from {frm!r} to "
                           f"{to!r}. Allowed moves: "
                           + ", ".join(f"{a}->{b}" for a, b in sorted(TRANSITIONS)) + ".",
                           fix="Check the version's stage with `tuesday models`.")
        if retire_current and to == "production":
            cur = conn.execute(sa.select(mv.c.version).where(
                mv.c.model == model, mv.c.stage == "production")).scalars().all()
            for v in cur:
                conn.execute(mv.update().where(mv.c.model == model, mv.c.version == v)
                             .values(stage="retired"))
                conn.execute(tr.insert().values(model=model, version=v,
                                                from_stage="production", to_stage="retired",
                                                actor=actor, reason=f"replaced by {version}",
                                                at=at))
        conn.execute(mv.update().where(mv.c.model == model, mv.c.version == version)
                     .values(stage=to))
        conn.execute(tr.insert().values(model=model, version=version, from_stage=frm,
                                        to_stage=to, actor=actor, reason=reason, at=at))


def audit(ws: Workspace, model: str | None = None) -> list[dict[str, Any]]:
    tr = meta.transitions
    q = sa.select(tr).order_by(tr.c.id)
    if model:
        q = q.where(tr.c.model == model)
    with ws.engine().connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
