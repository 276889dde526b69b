"""Model registry: versions, stages by an explicit transition table, gates, audit.

Stages: ``experimental -> candidate -> production -> retired``. Every change of stage is
one database transaction that also writes its audit row, so a promotion is either fully
done or not at all.

Concurrent processes: a promotion, a rollback and a deployment each check the stages and
then write them in one transaction that holds the database's write lock from its first
read (``Workspace.write_transaction``: ``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL the
stage rows are read ``FOR UPDATE``), so they run one after another. A request whose
premise another process changed meanwhile (the production version its gates were
checked against, or the version a rollback meant to replace) changes nothing and raises
``Conflict`` (exit code 5, HTTP 409) that says what happened and what to do.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from tuesday import meta
from tuesday.data.predictions import read_log
from tuesday.errors import Conflict, GateFailed, NotFound, TuesdayError
from tuesday.project import Gate, Model
from tuesday.train import evaluation
from tuesday.train.training import load_model
from tuesday.workspace import Workspace, fault

STAGES = ("experimental", "candidate", "production", "retired")
LATENCY_SAMPLES = 2000
#: allowed (from, to) stage changes
TRANSITIONS: frozenset[tuple[str, str]] = frozenset({
    ("experimental", "candidate"),
    ("experimental", "retired"),
    ("candidate", "production"),
    ("candidate", "retired"),
    ("production", "retired"),
    ("retired", "production"),  # rollback
})


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


#: a timer of the served path for the latency gate: (model, version row, requests) to
#: seconds per request and a description of what was timed, or None when it cannot time
#: it (``tuesday.serve.timing.served_latency`` makes one)
Timer = Callable[[Model, dict[str, Any], int], tuple[np.ndarray, str] | None]


def check_gates(ws: Workspace, model: Model, row: dict[str, Any],
                current: dict[str, Any] | None = None, *,
                timer: Timer | None = None) -> list[dict[str, Any]]:
    """Evaluate the model's gates on a version (``row`` from ``get_version``).

    ``current`` is the production version the slice gate compares against (the
    production version is looked up when not given). ``timer`` times the served path for
    the latency gate; without one (or when it cannot), the gate times the model call
    alone and says so.
    """
    metrics = row["metrics"]
    if current is None:
        current = production(ws, model.name)
    if current is not None and current["version"] == row["version"]:
        current = None
    out = []
    for g in model.gates:
        if g.kind == "beats_baseline":
            out.append(_gate_baseline(g, metrics))
        elif g.kind == "slices":
            out.append(_gate_slices(g, model, metrics, current))
        elif g.kind == "latency":
            out.append(_gate_latency(g, ws, model, row, timer))
        elif g.kind == "beats_production":
            out.append(challenger_check(ws, model, row, current, tolerance=g.tolerance))
        elif g.kind == "ope":
            from tuesday.release import ope

            out.append(ope.gate(ws, model, row, current, estimator=g.estimator,
                                confidence=g.confidence, min_lift=g.min_lift,
                                min_rows=g.min_rows))
        elif g.kind == "size":
            size = ws.artifact_size(row["manifest"]["artifact"]["sha256"]) or 0
            mb = size / 1e6
            out.append({"gate": "size", "passed": mb <= g.max_mb, "megabytes": mb,
                        "max_mb": g.max_mb,
                        "message": f"artifact {mb:.3f} MB (limit {g.max_mb:g} MB)"})
    return out


def _gate_baseline(g: Gate, metrics: dict[str, Any]) -> dict[str, Any]:
    primary = metrics["primary"]
    mine = metrics["model"][primary]
    best = metrics["best_baseline"]
    theirs = metrics["baselines"][best][primary]
    way = metrics.get("direction")
    lift = evaluation.lift(primary, mine, theirs, way)
    passed = evaluation.better(primary, mine, theirs, way) and lift >= g.min_lift
    return {"gate": "beats_baseline", "passed": bool(passed), "metric": primary,
            "model": mine, "baseline": best, "baseline_value": theirs, "lift": lift,
            "min_lift": g.min_lift,
            "message": (f"{primary} {mine:.4f} vs best baseline {best!r} {theirs:.4f}: "
                        f"{'better' if lift >= 0 else 'worse'} by {abs(lift):.1%}"
                        + (f" (needs at least {g.min_lift:.1%})" if g.min_lift else ""))}


def slice_changes(model: Model, metrics: dict[str, Any],
                  current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Primary metric per declared slice value: this version against production."""
    primary = metrics["primary"]
    theirs = {(r["slice"], json.dumps(r["value"])): r["model"][primary]
              for r in (current or {}).get("metrics", {}).get("slices", [])}
    out = []
    for r in metrics.get("slices", []):
        mine = r["model"][primary]
        prod = theirs.get((r["slice"], json.dumps(r["value"])))
        change = None
        if prod is not None and not (math.isnan(mine) or math.isnan(prod)):
            # positive change = worse, relative to production
            change = -evaluation.lift(primary, mine, prod, metrics.get("direction"))
        out.append({"slice": r["slice"], "value": r["value"], "rows": r["rows"],
                    "metric": primary, "version": mine, "production": prod,
                    "worse_by": change})
    return out


def _gate_slices(g: Gate, model: Model, metrics: dict[str, Any],
                 current: dict[str, Any] | None) -> dict[str, Any]:
    if current is None:
        return {"gate": "slices", "passed": True, "worse": [],
                "message": "no production version to compare slices with"}
    rows = slice_changes(model, metrics, current)
    worse = [r for r in rows if r["worse_by"] is not None and r["worse_by"] > g.tolerance]
    compared = sum(r["worse_by"] is not None for r in rows)
    msg = (f"{compared} slice value(s) compared with production version "
           f"{current['version']} (tolerance {g.tolerance:.0%})")
    if worse:
        msg += "; worse: " + ", ".join(
            f"{r['slice']}={r['value']} {r['metric']} {r['version']:.4f} vs "
            f"{r['production']:.4f} (+{r['worse_by']:.1%})" for r in worse[:5])
    return {"gate": "slices", "passed": not worse, "worse": worse, "compared": compared,
            "tolerance": g.tolerance, "message": msg}


MIN_CHALLENGER_ROWS = 7


def challenger_check(ws: Workspace, model: Model, row: dict[str, Any],
                     current: dict[str, Any] | None, *,
                     tolerance: float = 0.0) -> dict[str, Any]:
    """Champion against challenger on the same days: the version's out-of-sample backtest
    predictions against what production actually served, on the rows where both exist
    and ground truth is known. Passes when the version is not worse than production by
    more than ``tolerance`` (relative), or when there is nothing to compare."""
    import io

    import pandas as pd
    import pyarrow.parquet as pq


    base = {"gate": "beats_production", "tolerance": tolerance}
    if current is None:
        return {**base, "passed": True, "rows": 0,
                "message": "no production version to compare with"}
    bt_ref = row["manifest"].get("backtest_predictions")
    log = read_log(ws, model.name)
    log = log[(log["version"] == current["version"]) & (log["variant"] != "shadow")
              & log["prediction"].notna()]
    if bt_ref is None or log.empty:
        return {**base, "passed": True, "rows": 0,
                "message": f"production version {current['version']} has no served "
                           "predictions to compare with"}
    bt = pq.read_table(io.BytesIO(ws.get_artifact(bt_ref["sha256"]))).to_pandas()
    key = model.entity.key
    tcol = next((c for c in bt.columns if c not in (key, model.target, "model")
                 and pd.api.types.is_datetime64_any_dtype(bt[c])), None)
    on = ["entity", "target_time"] if tcol else ["entity"]
    bt = bt.rename(columns={key: "entity", **({tcol: "target_time"} if tcol else {})})
    bt["entity"] = bt["entity"].astype(str)
    served = log.sort_values("served_at").drop_duplicates(on, keep="last")
    if tcol:
        bt["target_time"] = pd.to_datetime(bt["target_time"]).astype("datetime64[us]")
        served = served.assign(target_time=served["target_time"].astype("datetime64[us]"))
    both = bt.merge(served[[*on, "prediction"]], on=on, how="inner").dropna(
        subset=[model.target, "model", "prediction"])
    if len(both) < MIN_CHALLENGER_ROWS:
        return {**base, "passed": True, "rows": len(both),
                "message": f"only {len(both)} served row(s) overlap the backtest of version "
                           f"{row['version']} (at least {MIN_CHALLENGER_ROWS} needed)"}
    y = both[model.target].to_numpy(dtype=float)
    if model.task == "binary":
        y = (both[model.target] == model.positive).to_numpy(dtype=float)
    primary = row["metrics"]["primary"]
    way = row["metrics"].get("direction")
    mine = evaluation.score([primary], y, both["model"].to_numpy(dtype=float))[primary]
    theirs = evaluation.score([primary], y, both["prediction"].to_numpy(dtype=float))[primary]
    lift = evaluation.lift(primary, mine, theirs, way)
    passed = bool(lift >= -tolerance) if not math.isnan(lift) \
        else not evaluation.better(primary, theirs, mine, way)  # production scored 0
    return {**base, "passed": passed, "rows": len(both), "metric": primary, "version": mine,
            "production": theirs, "lift": lift,
            "message": f"on {len(both)} served rows with ground truth, {primary} "
                       f"{mine:.4f} vs production version {current['version']} "
                       f"{theirs:.4f}" + ("" if math.isnan(lift) else
                                   f": {'better' if lift >= 0 else 'worse'} by {abs(lift):.1%}")}


def _gate_latency(g: Gate, ws: Workspace, model: Model, row: dict[str, Any],
                  timer: Timer | None) -> dict[str, Any]:
    """Infra validation: the served path's time per request when a timer is given,
    else the model call's (the artifact loaded as the server does, single rows)."""
    n = LATENCY_SAMPLES
    got = timer(model, row, n) if timer is not None else None
    if got is not None:
        took, what = got
    else:
        took, what = _model_call_seconds(ws, row, n), (
            "the model call alone (single rows; the served path was not timed"
            + (": nothing is materialized online" if timer is not None else "") + ")")
    p50, p99 = (float(np.percentile(took, q)) * 1000 for q in (50, 99))
    return {"gate": "latency", "passed": p99 <= g.max_ms, "p50_ms": p50, "p99_ms": p99,
            "max_ms": g.max_ms, "rows": n, "timed": what,
            "message": f"p99 {p99:.3f} ms, p50 {p50:.3f} ms over {n} requests of {what} "
                       f"(budget {g.max_ms:g} ms)"}


def _model_call_seconds(ws: Workspace, row: dict[str, Any], n: int) -> np.ndarray:
    import io

    import pyarrow.parquet as pq

    manifest = row["manifest"]
    booster = load_model(ws, manifest)
    names = list(manifest["features"])
    ref = pq.read_table(io.BytesIO(ws.get_artifact(manifest["reference"]["sha256"])),
                        columns=names).to_pandas()
    x = booster.encode(ref) if len(ref) else np.zeros((1, len(names)))
    rows = x[np.arange(n) % len(x)]
    for i in range(50):  # warm up
        booster.predict(rows[i:i + 1], num_threads=1)
    took = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        booster.predict(rows[i:i + 1], num_threads=1)
        took[i] = time.perf_counter() - t0
    return took


def plan(ws: Workspace, model: Model, version: int, *,
         timer: Timer | None = None) -> dict[str, Any]:
    """What promoting ``version`` would change, without changing anything."""
    row = get_version(ws, model.name, version)
    current = production(ws, model.name)
    gates = check_gates(ws, model, row, current, timer=timer)
    primary = row["metrics"]["primary"]
    allowed = row["stage"] == "production" or (row["stage"], "production") in TRANSITIONS
    dep = deployment(ws, model.name)
    return {
        "model": model.name, "version": version, "stage": row["stage"],
        "production_version": current["version"] if current else None,
        "transition_allowed": allowed,
        "would_change": allowed and row["stage"] != "production",
        "gates": gates, "gates_passed": all(g["passed"] for g in gates),
        "metric": primary,
        "overall": {"version": row["metrics"]["model"][primary],
                    "production": current["metrics"]["model"][primary] if current else None,
                    "best_baseline": row["metrics"]["best_baseline"],
                    "baseline": row["metrics"]["baselines"][
                        row["metrics"]["best_baseline"]][primary]},
        "versus_production": versus_production(model, row, current),
        "slices": slice_changes(model, row["metrics"], current),
        "deployment": dep,
        "deployment_after": "single" if dep["mode"] != "single" else None,
        "retires": current["version"] if current and current["version"] != version
        else None,
    }


def versus_production(model: Model, row: dict[str, Any], current: dict[str, Any] | None
                      ) -> dict[str, Any] | None:
    """The version against production on the primary metric, whether or not a gate
    compares them: ``metric``, both values, ``better`` and ``by`` (the relative
    difference, 0.042 = 4.2 %), and one ``text`` line. None without another production
    version."""
    if current is None or current["version"] == row["version"]:
        return None
    metric = row["metrics"]["primary"]
    mine = row["metrics"]["model"][metric]
    theirs = current["metrics"]["model"].get(metric)
    if theirs is None or not (math.isfinite(mine) and math.isfinite(theirs)):
        return {"metric": metric, "version": mine, "production": theirs, "better": None,
                "by": None, "text": f"version {row['version']} and production version "
                                    f"{current['version']} cannot be compared on {metric}"}
    way = evaluation.direction(model).get(metric)
    gain = evaluation.lift(metric, mine, theirs, way)
    better = evaluation.better(metric, mine, theirs, way)
    by = abs(gain) if math.isfinite(gain) else None
    if mine == theirs or by == 0:
        how = "as good as"
    else:
        how = (f"{by:.1%} " if by is not None else "") + ("better than" if better
                                                          else "worse than")
    return {"metric": metric, "version": mine, "production": theirs, "better": better,
            "worse": not better and how != "as good as", "by": by,
            "text": f"version {row['version']} is {how} production version "
                    f"{current['version']} on {metric} ({mine:.4g} vs {theirs:.4g})"}


def promote(ws: Workspace, model: Model, version: int, *, as_of: datetime,
            actor: str = "cli", override_reason: str | None = None,
            timer: Timer | None = None) -> dict[str, Any]:
    """Move a version to production if it passes its gates (or with an override reason).

    The current production version, if any, is retired, the model's deployment goes back
    to ``single`` and the audit rows are written, all in one transaction that holds the
    database's write lock. If another process changed the production version while the
    gates were checked (against the old one), nothing changes and ``Conflict`` says so.
    """
    row = get_version(ws, model.name, version)
    if row["stage"] == "production":
        return {"model": model.name, "version": version, "stage": "production",
                "changed": False, "gates": check_gates(ws, model, row, timer=timer)}
    current = production(ws, model.name)
    gates = check_gates(ws, model, row, current, timer=timer)
    fault("promote:after_gates")
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
    seen = current["version"] if current else None
    with ws.write_transaction() as conn:
        stages = _stages(conn, model.name)
        if stages.get(version) == "production":  # the same promotion won a race
            return {"model": model.name, "version": version, "stage": "production",
                    "changed": False, "gates": gates}
        _expect_production(conn, model.name, stages, seen, doing=(
            f"Version {version} was not promoted: its gates were checked against "
            f"production version {seen}" if seen is not None else
            f"Version {version} was not promoted: its gates were checked when the model had "
            "no production version"),
            fix=f"Run `tuesday promote {model.name} {version}` again to check its gates "
                "against the new production version.")
        _move_locked(conn, model.name, version, "production", stages, actor=actor, reason=reason,
              at=as_of)
    return {"model": model.name, "version": version, "stage": "production", "changed": True,
            "gates": gates, "override": bool(failed)}


def rollback(ws: Workspace, model: str, *, as_of: datetime, actor: str = "cli",
             reason: str = "rollback") -> dict[str, Any]:
    """Restore the version that was in production before the current one.

    Runs under the database's write lock; a rollback that raced another change of the
    production version (two rollbacks at once, say) changes nothing and raises
    ``Conflict``, so two people rolling back a bad version cannot bring it back.
    """
    tr = meta.transitions
    current = production(ws, model)
    seen = current["version"] if current else None
    with ws.write_transaction() as conn:
        stages = _stages(conn, model)
        _expect_production(conn, model, stages, seen, doing=(
            f"This rollback of production version {seen} changed nothing"
            if seen is not None else "This rollback changed nothing"),
            fix=f"Check `tuesday models`; run `tuesday rollback {model}` again only if the "
                "new production version should be rolled back too.")
        history = conn.execute(sa.select(tr.c.version).where(
            tr.c.model == model, tr.c.to_stage == "production").order_by(tr.c.id.desc())
        ).scalars().all()
        previous = next((v for v in history if v != seen), None)
        if previous is None:
            raise Conflict(f"Model {model!r} has no earlier production version to roll "
                           "back to.",
                           fix="Promote a version with `tuesday promote MODEL VERSION`.")
        _move_locked(conn, model, previous, "production", stages, actor=actor,
              reason=f"{reason}: replaces version {seen}", at=as_of)
    return {"model": model, "version": previous, "replaced": seen, "stage": "production"}


def _stages(conn: sa.Connection, model: str) -> dict[int, str]:
    """Every version's stage, read under lock (the write lock on SQLite, row locks on
    PostgreSQL) so that no other process changes them before this transaction ends."""
    mv = meta.model_versions
    return {int(v): str(s) for v, s in conn.execute(
        sa.select(mv.c.version, mv.c.stage).where(mv.c.model == model)
        .order_by(mv.c.version).with_for_update())}


def _expect_production(conn: sa.Connection, model: str, stages: dict[int, str],
                       seen: int | None, *, doing: str, fix: str) -> None:
    """Raise ``Conflict`` if the production version is no longer the one seen before."""
    now = [v for v, s in stages.items() if s == "production"]
    if now == ([] if seen is None else [seen]):
        return
    tr = meta.transitions
    last = conn.execute(sa.select(tr).where(tr.c.model == model).order_by(tr.c.id.desc())
                        .limit(1)).mappings().first()
    by = (f" (the last change: version {last['version']} to {last['to_stage']} by "
          f"{last['actor']!r} at {last['at']:%Y-%m-%d %H:%M})") if last else ""
    shown = ", ".join(map(str, now)) or "none"
    raise Conflict(f"Model {model!r} changed while this request ran: another process made "
                   f"the production version {shown}{by}. {doing}.", fix=fix)


def _move(ws: Workspace, model: str, version: int, to: str, *, actor: str, reason: str,
          at: datetime) -> None:
    """Change a version's stage (see ``_move_locked``) in its own locked transaction."""
    with ws.write_transaction() as conn:
        _move_locked(conn, model, version, to, _stages(conn, model), actor=actor,
                     reason=reason, at=at)


def _move_locked(conn: sa.Connection, model: str, version: int, to: str,
                 stages: dict[int, str], *, actor: str, reason: str, at: datetime) -> None:
    """Change a version's stage, retiring the production version when ``to`` is
    production, with the audit rows, inside the caller's locked transaction."""
    mv, tr = meta.model_versions, meta.transitions
    frm = stages.get(version)
    if (frm, to) not in TRANSITIONS:
        raise Conflict(f"Model {model!r} version {version} cannot move from {frm!r} to "
                       f"{to!r}. Allowed moves: "
                       + ", ".join(f"{a}->{b}" for a, b in sorted(TRANSITIONS)) + ".",
                       fix="Check the version's stage with `tuesday models`.")
    if to == "production":
        for v in [v for v, s in stages.items() if s == "production"]:
            conn.execute(mv.update().where(mv.c.model == model, mv.c.version == v)
                         .values(stage="retired"))
            conn.execute(tr.insert().values(model=model, version=v, from_stage="production",
                                            to_stage="retired", actor=actor,
                                            reason=f"replaced by {version}", at=at))
    fault("promote:after_retire")
    conn.execute(mv.update().where(mv.c.model == model, mv.c.version == version)
                 .values(stage=to))
    fault("promote:after_stage")
    conn.execute(tr.insert().values(model=model, version=version, from_stage=frm,
                                    to_stage=to, actor=actor, reason=reason, at=at))
    fault("promote:after_audit")
    if to == "production":
        dep = _deployment(conn, model)
        if dep["mode"] != "single":
            conn.execute(meta.deployments.insert().values(
                model=model, mode="single", version=None, percent=0.0, actor=actor,
                reason=f"version {version} moved to production; the {dep['mode']} "
                       f"deployment of version {dep['version']} ended", at=at))
    fault("promote:before_commit")


def audit(ws: Workspace, model: str | None = None) -> list[dict[str, Any]]:
    tr = meta.transitions
    q = sa.select(tr).order_by(tr.c.id)
    if model:
        q = q.where(tr.c.model == model)
    with ws.engine().connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


# -------------------------------------------------------------------- deployments

DEPLOYMENT_MODES = ("single", "shadow", "canary", "ab")


def _deployment(conn: sa.Connection, model: str) -> dict[str, Any]:
    d = meta.deployments
    row = conn.execute(sa.select(d).where(d.c.model == model).order_by(d.c.id.desc())
                       .limit(1)).mappings().first()
    if row is None:
        return {"model": model, "mode": "single", "version": None, "percent": 0.0}
    return {k: row[k] for k in ("model", "mode", "version", "percent", "actor", "reason",
                                "at")}


def deployment(ws: Workspace, model: str) -> dict[str, Any]:
    """The model's current deployment (``single`` when none was set)."""
    with ws.engine().connect() as conn:
        return _deployment(conn, model)


def deploy(ws: Workspace, model: str, mode: str, version: int | None = None, *,
           percent: float | None = None, as_of: datetime, actor: str = "cli",
           reason: str = "") -> dict[str, Any]:
    """Route part of a model's traffic to a challenger version (or back to ``single``).

    ``shadow`` sends every request to the challenger too but only logs its answers;
    ``canary`` answers ``percent`` % of requests with it; ``ab`` answers the entities
    whose hash falls under ``percent`` % with it (default 50).
    """
    if mode not in DEPLOYMENT_MODES:
        raise TuesdayError(f"Deployment mode must be one of {', '.join(DEPLOYMENT_MODES)}; "
                           f"got {mode!r}.", fix="Pick one of the listed modes.")
    if mode != "single" and version is None:
        raise TuesdayError(f"A {mode} deployment needs the challenger version.",
                           fix=f"Run `tuesday deploy {model} {mode} VERSION`.")
    pct = 0.0
    if mode != "single":
        default = {"shadow": 100.0, "canary": 10.0, "ab": 50.0}[mode]
        pct = default if percent is None or mode == "shadow" else float(percent)
        if not 0 < pct < 100 and mode != "shadow":
            raise TuesdayError(f"The {mode} percentage must be between 0 and 100 "
                               f"(exclusive); got {percent!r}.",
                               fix="Pass --percent 10 for 10 % of the traffic.")
        assert version is not None
        get_version(ws, model, version)  # a clear error for an unknown version
    with ws.write_transaction() as conn:
        stages = _stages(conn, model)
        prod = next((v for v, s in stages.items() if s == "production"), None)
        if prod is None:
            raise Conflict(f"Model {model!r} has no production version; a deployment routes "
                           "traffic between production and a challenger.",
                           fix=f"Promote a version first with `tuesday promote {model} "
                               "VERSION`.")
        if mode == "single":
            version = None
        elif stages.get(version or 0) != "candidate":
            raise Conflict(f"Model {model!r} version {version} is {stages.get(version or 0)!r};"
                           " only a candidate version can take part in a deployment (the "
                           f"other side is production version {prod}).",
                           fix="Pick a candidate version (see `tuesday models`).")
        conn.execute(meta.deployments.insert().values(
            model=model, mode=mode, version=version, percent=pct, actor=actor,
            reason=reason or f"set to {mode}", at=as_of))
    return {**deployment(ws, model), "production_version": prod}


def deployment_history(ws: Workspace, model: str) -> list[dict[str, Any]]:
    d = meta.deployments
    with ws.engine().connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(d).where(d.c.model == model).order_by(d.c.id)).mappings()]


def version_summaries(ws: Workspace, model: str) -> list[dict[str, Any]]:
    """Every version of a model, newest first, with what a reader compares them on: its
    stage, when it was trained (and on data as of when), the primary metric of the model
    and of its best baseline, the lift, and every overall metric of both (one query)."""
    mv, runs = meta.model_versions, meta.runs
    with ws.engine().connect() as conn:
        rows = conn.execute(
            sa.select(mv.c.version, mv.c.stage, mv.c.created_at, mv.c.run_id, runs.c.as_of,
                      runs.c.metrics)
            .join(runs, runs.c.run_id == mv.c.run_id)
            .where(mv.c.model == model).order_by(mv.c.version.desc())).mappings().all()
    out = []
    for r in rows:
        m = r["metrics"] or {}
        primary, best = m.get("primary"), m.get("best_baseline")
        mine = (m.get("model") or {}).get(primary)
        theirs = ((m.get("baselines") or {}).get(best) or {}).get(primary)
        out.append({"version": int(r["version"]), "stage": r["stage"],
                    "created_at": r["created_at"], "as_of": r["as_of"], "run_id": r["run_id"],
                    "primary": primary, "model": mine, "best_baseline": best,
                    "baseline": theirs, "lift": m.get("lift"),
                    "beats_baseline": (None if primary is None or mine is None
                                       or theirs is None else
                                       evaluation.better(str(primary), mine, theirs,
                                                         m.get("direction"))),
                    "metrics": m.get("model") or {},
                    "baseline_metrics": (m.get("baselines") or {}).get(best) or {},
                    "train_rows": m.get("train_rows"), "folds": len(m.get("folds") or [])})
    return out
