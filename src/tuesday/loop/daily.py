"""The daily loop: monitor, decide, retrain, gate, materialize, alert; one tick per day.

A model's :class:`Policy` says when the loop retrains it (on a schedule, after drift
for K consecutive ticks, when its accuracy on ground truth falls behind its best
baseline) and whether a retrained version that passes its gates goes to production by
itself or waits for a person. :func:`tick` is one run of the daily job at an explicit
``as_of``; it is idempotent: its outcome is recorded in the ``loop_ticks`` table and a
second run of the same (model, as_of) returns that record without doing anything.

Monitoring in the loop looks at the policy's recent windows, not at everything ever
served (:mod:`tuesday.loop.recent`), so a shock shows within days.

Nothing here reads the wall clock except :func:`run_scheduler`'s default clock, so the
same ticks can be replayed day by day over history (:mod:`tuesday.loop.replay`).

The policy itself is declared with the model (:class:`tuesday.project.Policy`).

Example:
    >>> from tuesday.project import Policy
    >>> Policy(schedule="7d", drift_ticks=3, auto_promote=False).schedule_days
    7
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tuesday import meta
from tuesday.data import derived, tables, upkeep
from tuesday.data.features import horizon
from tuesday.data.materialize import materialize
from tuesday.errors import Conflict, GateFailed, TuesdayError
from tuesday.loop.recent import monitor_summary, policy_for, recent_monitor
from tuesday.project import LoadedProject, Model
from tuesday.project.policy import Policy, check_policy
from tuesday.release import registry
from tuesday.serve.timing import served_latency
from tuesday.train import training
from tuesday.watch import alerts
from tuesday.watch.anomalies import watch_of
from tuesday.workspace import Workspace

log = logging.getLogger(__name__)

#: what a tick's ``status`` can be
TICK_STATUSES = ("ok", "promoted", "awaiting_approval", "retrain_failed", "no_production")
ACTOR = "loop"


# ------------------------------------------------------------------ recorded ticks


def get_tick(ws: Workspace, model: str, as_of: datetime) -> dict[str, Any] | None:
    """The recorded outcome of a tick, or None when it has not run."""
    t = meta.loop_ticks
    with ws.engine().connect() as conn:
        row = conn.execute(sa.select(t.c.outcome).where(
            t.c.model == model, t.c.as_of == _naive(as_of))).scalar()
    return dict(row) if row is not None else None


def ticks(ws: Workspace, model: str, *, before: datetime | None = None,
          limit: int | None = None) -> list[dict[str, Any]]:
    """Recorded tick outcomes of a model, newest first."""
    t = meta.loop_ticks
    q = sa.select(t.c.outcome).where(t.c.model == model).order_by(t.c.as_of.desc())
    if before is not None:
        q = q.where(t.c.as_of < _naive(before))
    if limit is not None:
        q = q.limit(limit)
    with ws.engine().connect() as conn:
        return [dict(r) for r in conn.execute(q).scalars()]


def _record(ws: Workspace, out: dict[str, Any]) -> dict[str, Any]:
    t = meta.loop_ticks
    try:
        with ws.engine().begin() as conn:
            conn.execute(t.insert().values(model=out["model"],
                                           as_of=_naive(out["as_of"]), status=out["status"],
                                           exit_code=out["exit_code"], outcome=out))
    except sa.exc.IntegrityError:  # another process ran the same tick first
        got = get_tick(ws, out["model"], _naive(out["as_of"]))
        assert got is not None
        return {**got, "repeated": True}
    return out


# ----------------------------------------------------------------------- the tick


class StageTimer:
    """Seconds spent per stage, summed over every time a stage runs.

    Example:
        >>> timer = StageTimer()
        >>> with timer("train"):
        ...     pass
        >>> list(timer.seconds)
        ['train']
    """

    def __init__(self, digits: int = 4) -> None:
        self.seconds: dict[str, float] = {}
        self.digits = digits

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage`` (rounded to ``digits``)."""
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + seconds, self.digits)


@dataclass
class _Tick:
    """One tick under way: what every step reads, and the outcome the steps fill in."""

    ws: Workspace
    loaded: LoadedProject
    model: Model
    policy: Policy
    as_of: datetime
    out: dict[str, Any]
    step: Callable[[str], None]
    timer: StageTimer = field(default_factory=StageTimer)
    raised: list[alerts.Alert] = field(default_factory=list)

    def alert(self, kind: str, severity: str, title: str, details: Mapping[str, Any],
              subject: str = "") -> None:
        """Raise (or repeat) the loop's alert of this kind (and subject) for the model."""
        name = self.model.name
        with self.timer("alerts"):
            self.raised.append(alerts.raise_alert(
                self.ws, model=name, kind=kind, severity=severity, title=title,
                details=details, as_of=self.as_of, routes=self.policy.routes,
                subject=subject,
                dedup_key=f"{name}/loop/{kind}" + (f"/{subject}" if subject else "")))


def tick(ws: Workspace, loaded: LoadedProject, model_name: str, as_of: datetime, *,
         policy: Policy | None = None, ingest: str | Path | None = None,
         write_report: bool = True, progress: Callable[[str], None] | None = None
         ) -> dict[str, Any]:
    """One run of the daily job for a model at ``as_of``; returns a JSON-ready outcome.

    Steps: ingest the files of ``ingest`` (optional; one ``SOURCE.csv`` or
    ``SOURCE.parquet`` per source), monitor the recent windows, decide (schedule, drift
    for ``drift_ticks`` ticks, degraded quality), retrain on the sliding window,
    promote through the gates (or leave a candidate awaiting approval), materialize the
    online features for the production version, compact and vacuum the prediction log
    and the model's source tables (``tuesday.data.upkeep``), raise and resolve alerts.

    Idempotent: the outcome is recorded in ``loop_ticks``; running the same
    (model, as_of) again returns it (with ``"repeated": true``) and changes nothing.
    A tick older than the newest recorded one is refused (it would rewrite history).

    The outcome's ``exit_code`` is what ``tuesday loop run`` exits with: 0 done; 4 a
    retrained version failed its gates and awaits approval; the error's code (7 for
    missing data, 1 otherwise) when retraining failed.

    Example:
        >>> out = tick(ws, loaded, "ridership_14d", datetime(2016, 7, 1))  # doctest: +SKIP
        >>> out["status"], out["reasons"]  # doctest: +SKIP
        ('promoted', ['schedule: the newest version is 7 days old (every 7d)'])
    """
    model = loaded.project.model(model_name)
    pol = policy or policy_for(model)
    t = _naive(as_of)
    done = _already_done(ws, model_name, pol, t)
    if done is not None:
        return done
    run = _Tick(ws, loaded, model, pol, t, _new_outcome(model_name, pol, t),
                progress or (lambda _m: None))
    if ingest is not None:
        run.step("ingesting")
        with run.timer("ingest"):
            run.out["ingested"] = ingest_folder(ws, loaded, ingest, t)
    prod = registry.production(ws, model_name)
    if prod is not None:
        _monitor(run, prod, write_report)
    if _decide(run, prod):
        _retrain(run)
    _materialize(run)
    with run.timer("upkeep"):  # the small files of the log and of the model's sources
        upkeep.tidy_workspace(ws, tables.sources_used(loaded.project, model))
    with run.timer("alerts"):
        run.out["resolved_alerts"] = _resolve_cleared(ws, model_name, run.out, t)
    run.out["alerts"] = [{"id": a.id, "kind": a.kind, "severity": a.severity,
                          "title": a.title, "count": a.count, "status": a.status}
                         for a in run.raised]
    run.out["seconds"] = run.timer.seconds
    return _record(ws, run.out)


def _already_done(ws: Workspace, model_name: str, pol: Policy,
                  t: datetime) -> dict[str, Any] | None:
    """The recorded outcome when this tick already ran; raises when the policy is
    invalid or a later tick is already recorded."""
    problems = check_policy(pol, f"Model {model_name!r}")
    if problems:
        raise TuesdayError(" ".join(problems), fix="Fix the policy declaration.")
    done = get_tick(ws, model_name, t)
    if done is not None:
        return {**done, "repeated": True}
    newer = ticks(ws, model_name, limit=1)
    if newer and pd.Timestamp(newer[0]["as_of"]) > pd.Timestamp(t):
        raise Conflict(f"Model {model_name!r} already has a loop tick as of "
                       f"{newer[0]['as_of']}; a tick as of {t.isoformat()} would decide "
                       "with a past that the later tick already acted on.",
                       fix="Run ticks in time order (pass a later --as-of).")
    return None


def _new_outcome(model_name: str, pol: Policy, t: datetime) -> dict[str, Any]:
    return {
        "model": model_name, "as_of": t.isoformat(), "status": "ok", "exit_code": 0,
        "policy": pol.to_dict(), "ingested": {}, "monitor": None, "drift_streak": 0,
        "reasons": [], "held": None, "retrained": None, "promoted": None,
        "awaiting_approval": None, "gates": None, "error": None, "materialized": None,
        "production_version": None, "alerts": [], "resolved_alerts": [], "seconds": {},
    }


def _monitor(run: _Tick, prod: dict[str, Any], write_report: bool) -> None:
    """Monitor the recent windows; alert on sustained drift, degraded quality and
    missing ground truth."""
    name, pol, out = run.model.name, run.policy, run.out
    metric = run.model.primary_metric
    run.step("monitoring")
    with run.timer("monitor"):
        report = recent_monitor(run.ws, run.loaded, name, run.as_of, pol, write=write_report)
    mon = monitor_summary(report, metric)
    out["monitor"] = mon
    if mon["drifted"]:
        out["drift_streak"] = 1 + _drift_streak(run.ws, name, run.as_of)
    if out["drift_streak"] >= (pol.drift_ticks or 5):  # sustained, not one noisy tick
        run.alert("drift", "warning",
                  f"{name}: {len(mon['drifted_columns'])} served feature(s) drifted "
                  f"over the last {pol.drift_window} ({mon['drift_share']:.0%}), "
                  f"{out['drift_streak']} ticks in a row",
                  {"drifted": mon["drifted_columns"], "share": mon["drift_share"],
                   "streak": out["drift_streak"], "window": pol.drift_window})
    _key_alerts(run, mon)
    if mon.get("anomaly"):
        a = mon["anomaly"]
        run.alert("anomaly", "critical",
                  f"{name}: the served forecasts for {a['date']} are far off on "
                  f"{a['rows']} rows of ground truth: {a['why']}",
                  {"version": prod["version"], **a})
    q = mon["quality"]
    if q["degraded"]:
        run.alert("quality", "critical",
                  f"{name}: the served forecasts of the last {pol.quality_window} are "
                  f"degraded on {q['rows']} rows ({q['days']} target days) of ground "
                  f"truth: {q['why']}",
                  {"version": prod["version"], "metric": metric, "why": q["why"],
                   "model": q.get("model"), "baseline": q.get("best_baseline"),
                   "baseline_metrics": q.get("baseline"), "rows": q["rows"],
                   "backtest": mon["expected"]["backtest"], "window": pol.quality_window})
    if q["days_served"] >= pol.min_days and q["rows"] == 0:
        run.alert("ground_truth", "warning",
                  f"{name}: no ground truth for the {q['rows_served']} predictions "
                  f"({q['days_served']} target days) whose target lies in the last "
                  f"{pol.quality_window}",
                  {"rows_served": q["rows_served"], "days_served": q["days_served"],
                   "window": pol.quality_window})


def _key_alerts(run: _Tick, mon: dict[str, Any]) -> None:
    """Alert on each key feature that drifted on ``key_ticks`` consecutive ticks (this
    one included): a price that moved is news even when the other features did not."""
    need = watch_of(run.model).key_ticks
    streaks = run.out["key_streaks"] = {}
    for k in mon.get("key", []):
        if not k["drifted"]:
            continue
        n = 1 + _key_streak(run.ws, run.model.name, run.as_of, k["feature"])
        streaks[k["feature"]] = n
        if n >= need:
            idx = f"index {k['index']:.3f}" if k["index"] is not None else "no index"
            run.alert("key_drift", "warning",
                      f"{run.model.name}: key feature {k['feature']!r} drifted over the "
                      f"last {run.policy.drift_window} on {n} ticks in a row ({idx}: the "
                      f"typical entity moved {_pct(k['index'])}; test "
                      f"{'drifted' if k['test_drifted'] else 'did not drift'})",
                      {**k, "streak": n, "window": run.policy.drift_window},
                      subject=k["feature"])


def _pct(index: float | None) -> str:
    return "?" if index is None else f"{index - 1:+.1%}"


def _key_streak(ws: Workspace, model: str, t: datetime, feature: str) -> int:
    """Consecutive ticks before ``t`` on which key ``feature`` drifted."""
    n = 0
    for prev in ticks(ws, model, before=t, limit=400):
        if feature not in ((prev.get("monitor") or {}).get("key_drifted") or []):
            break
        n += 1
    return n


def _decide(run: _Tick, prod: dict[str, Any] | None) -> bool:
    """Whether to retrain: the reasons (no production version, schedule, sustained
    drift, degraded production quality), unless the newest version is too recent."""
    pol, out = run.policy, run.out
    versions = registry.versions(run.ws, run.model.name)
    newest = max((pd.Timestamp(v["created_at"]) for v in versions), default=None)
    age = ((pd.Timestamp(run.as_of) - newest) / pd.Timedelta(days=1)
           if newest is not None else None)
    reasons = []
    if prod is None:
        reasons.append("no production version")
    every = pol.schedule_days
    if every is not None and age is not None and age >= every:
        reasons.append(f"schedule: the newest version is {age:g} days old "
                       f"(every {pol.schedule})")
    if pol.drift_ticks is not None and out["drift_streak"] >= pol.drift_ticks:
        reasons.append(f"drift: dataset drift on {out['drift_streak']} consecutive ticks "
                       f"(policy: {pol.drift_ticks})")
    pq_ = (out["monitor"] or {}).get("production_quality") or {}
    if pol.on_degraded and pq_.get("degraded"):
        reasons.append(f"quality: production version {prod['version'] if prod else '?'} "
                       f"is degraded over the last {pol.quality_window}: {pq_['why']}")
    out["reasons"] = reasons
    if reasons and age is not None and age < pol.min_days_between_retrains:
        out["held"] = (f"the newest version is {age:g} days old; the policy retrains at "
                       f"most every {pol.min_days_between_retrains} days")
        return False
    return bool(reasons)


def _retrain(run: _Tick) -> None:
    """Train on the sliding window and put the new version through its gates; a
    failed retrain is an alert, never a crash of the job."""
    name, out, metric = run.model.name, run.out, run.model.primary_metric
    run.step("retraining")
    try:
        with run.timer("train"):
            res = training.train(run.ws, run.loaded, name, run.as_of)
    except Exception as exc:  # a failed retrain is an alert, never a crash of the job
        code = exc.exit_code if isinstance(exc, TuesdayError) else 1
        msg = exc.message if isinstance(exc, TuesdayError) else f"{type(exc).__name__}: {exc}"
        log.exception("retraining %s as of %s failed", name, run.as_of)
        out.update(status="retrain_failed", exit_code=code, error=msg)
        run.alert("retrain_failed", "critical", f"{name}: retraining failed: {msg}",
                  {"error": msg, "reasons": out["reasons"]})
        return
    best = res.metrics["best_baseline"]
    out["retrained"] = {"version": res.version, "run_id": res.run_id,
                        metric: res.metrics["model"][metric], "best_baseline": best,
                        "baseline": res.metrics["baselines"][best][metric],
                        "lift": res.metrics["lift"]}
    run.step("promoting")
    with run.timer("promote"):
        _gate(run.ws, run.model, res.version, run.policy, run.as_of, out,
              timer=served_latency(run.ws, run.loaded))
    if out["awaiting_approval"] is not None:
        gates = out["gates"] or []
        failed = [g for g in gates if not g["passed"]]
        run.alert("approval", "warning",
                  f"{name} v{res.version} awaits approval: "
                  + ("; ".join(f"{g['gate']} failed ({g['message']})" for g in failed)
                     if failed else "the policy does not promote by itself"),
                  {"version": res.version, "gates": [
                      {"gate": g["gate"], "passed": g["passed"], "message": g["message"]}
                      for g in gates],
                   "command": f"tuesday promote {name} {res.version}"})


def _materialize(run: _Tick) -> None:
    """Materialize the online features of the production version at the tick's origin."""
    prod = registry.production(run.ws, run.model.name)
    out = run.out
    if prod is None:
        if out["status"] == "ok":
            out["status"] = "no_production"
        return
    out["production_version"] = prod["version"]
    run.step("materializing")
    with run.timer("materialize"):
        m = materialize(run.ws, run.loaded.project, run.model, origin(run.model, run.as_of))
    out["materialized"] = {k: m.get(k) for k in ("entities", "targets", "origin",
                                                 "first_target", "last_target")}


def _gate(ws: Workspace, model: Model, version: int, pol: Policy, t: datetime,
          out: dict[str, Any], *, timer: registry.Timer | None = None) -> None:
    """Promote ``version`` if the policy allows and its gates pass; else leave it a
    candidate awaiting approval. Updates ``out``."""
    if not pol.auto_promote:
        out["gates"] = registry.plan(ws, model, version, timer=timer)["gates"]
        out.update(status="awaiting_approval", awaiting_approval=version)
        return
    try:
        res = registry.promote(ws, model, version, as_of=t, actor=ACTOR, timer=timer)
    except GateFailed as exc:
        out["gates"] = exc.details
        prod_q = (out.get("monitor") or {}).get("production_quality") or {}
        current = registry.production(ws, model.name)
        if pol.challenger and prod_q.get("degraded") and current is not None:
            row = registry.get_version(ws, model.name, version)
            duel = registry.challenger_check(ws, model, row, current)
            out["challenger"] = duel
            if duel["passed"] and duel.get("rows", 0) >= registry.MIN_CHALLENGER_ROWS:
                registry.promote(ws, model, version, as_of=t, actor=ACTOR, override_reason=(
                    f"production version {current['version']} is degraded on ground truth "
                    f"({prod_q.get('why')}); the policy promotes a challenger that beats it: "
                    f"{duel['message']}"))
                out.update(status="promoted", promoted=version, override="challenger")
                return
        out.update(status="awaiting_approval", awaiting_approval=version,
                   exit_code=exc.exit_code)
        return
    out["gates"] = res["gates"]
    out.update(status="promoted", promoted=version)


def _drift_streak(ws: Workspace, model: str, t: datetime) -> int:
    """Consecutive ticks before ``t`` with dataset drift, since the last retrain."""
    n = 0
    for prev in ticks(ws, model, before=t, limit=400):
        if prev.get("retrained") or not (prev.get("monitor") or {}).get("drifted"):
            break
        n += 1
    return n


def _resolve_cleared(ws: Workspace, model: str, out: dict[str, Any],
                     t: datetime) -> list[dict[str, Any]]:
    """Resolve the loop's open alerts whose condition this tick found cleared."""
    mon = out["monitor"] or {}
    cleared: dict[str, str] = {}
    if mon.get("drift_share") is not None and not mon["drifted"]:
        cleared["drift"] = "no dataset drift over the drift window"
    q = mon.get("quality") or {}
    if q.get("days", 0) >= out["policy"].get("min_days", 1) \
            and q.get("rows", 0) >= out["policy"]["min_rows"] and not q.get("degraded"):
        cleared["quality"] = "the served forecasts are no longer degraded"
    if q.get("rows", 0) > 0:
        cleared["ground_truth"] = "ground truth is arriving"
    if out["monitor"] is not None and not mon.get("anomaly"):
        cleared["anomaly"] = "the newest day with ground truth is within its limits"
    for k in mon.get("key", []):
        if not k["drifted"]:
            cleared[f"key_drift/{k['feature']}"] = f"key feature {k['feature']!r} is steady"
    if out["retrained"] is not None:
        cleared["retrain_failed"] = f"version {out['retrained']['version']} was trained"
    done = []
    for a in alerts.list_alerts(ws, model=model):
        if a.status == "resolved" or not a.dedup_key.startswith(f"{model}/loop/"):
            continue
        kind = a.dedup_key.split("/loop/", 1)[1]
        note = cleared.get(kind)
        if kind == "approval" and out["awaiting_approval"] is None:
            v = a.details.get("version")
            stage = next((x["stage"] for x in registry.versions(ws, model)
                          if x["version"] == v), None)
            if stage != "candidate":
                note = f"version {v} is now {stage}"
        if note is not None:
            alerts.resolve(ws, a.id, actor=ACTOR, note=note, as_of=t)
            done.append({"id": a.id, "kind": a.kind, "note": note})
    return done


def origin(model: Model, as_of: datetime) -> datetime:
    """The forecast origin the online store is materialized at: the day of ``as_of``
    for a model whose horizon is in days (targets are dates), else ``as_of``."""
    ts = pd.Timestamp(as_of)
    if horizon(model) >= pd.Timedelta(days=1):
        ts = ts.normalize()
    return ts.to_pydatetime()


def ingest_folder(ws: Workspace, loaded: LoadedProject, folder: str | Path,
                  as_of: datetime) -> dict[str, Any]:
    """Ingest ``SOURCE.csv`` / ``SOURCE.parquet`` files of a folder, as of ``as_of``."""
    root = Path(folder)
    if not root.is_dir():
        raise TuesdayError(f"--ingest {str(root)!r} is not a folder.",
                           fix="Pass a folder holding one SOURCE.csv or SOURCE.parquet per "
                               "source to ingest.")
    out: dict[str, Any] = {}
    for src in loaded.project.sources:
        for ext in (".csv", ".parquet"):
            path = root / f"{src.name}{ext}"
            if path.is_file():
                r = tables.ingest_file(ws, src, path, as_of=as_of)
                out[src.name] = {"file": str(path), "version": r.version,
                                 "accepted": r.report.accepted,
                                 "quarantined": r.report.quarantined}
    for made in derived.refresh(ws, loaded.project):
        out[made.source] = {"derived": True, "version": made.version, "mode": made.mode,
                            "accepted": made.report.accepted,
                            "quarantined": made.report.quarantined}
    return out


def exit_code(outcome: Mapping[str, Any]) -> int:
    return int(outcome.get("exit_code", 0))


# ---------------------------------------------------------------------- scheduler


def wall_clock() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def run_scheduler(ws: Workspace, loaded: LoadedProject, models: Sequence[str] = (), *,
                  at: str = "06:00", clock: Callable[[], datetime] = wall_clock,
                  stop: threading.Event | None = None,
                  wait: Callable[[float], object] | None = None,
                  max_days: int | None = None,
                  on_tick: Callable[[dict[str, Any]], None] | None = None
                  ) -> list[dict[str, Any]]:
    """Run the tick of every model (all declared ones by default) once a day at ``at``.

    The tick's ``as_of`` is the scheduled time (e.g. ``2016-07-02T06:00``), so a run that
    is late still records the same tick, and a restart on the same day does not run it
    twice (ticks are idempotent). Missed days are not back-filled. Runs until ``stop`` is
    set, or for ``max_days`` days. ``clock`` and ``wait`` (seconds -> anything; default
    ``stop.wait``) make it testable with a virtual clock; a failing tick is logged and
    the scheduler carries on.

    Example:
        >>> stop = threading.Event()
        >>> threading.Thread(target=run_scheduler, args=(ws, loaded),
        ...                  kwargs={"stop": stop}, daemon=True).start()  # doctest: +SKIP
    """
    hour, minute = parse_at(at)
    names = list(models) or [m.name for m in loaded.project.models]
    for n in names:
        loaded.project.model(n)
    stop = stop or threading.Event()
    pause = wait or stop.wait
    now = pd.Timestamp(clock())
    due = now.normalize() + pd.Timedelta(hours=hour, minutes=minute)
    if due < now - pd.Timedelta(minutes=1):
        due += pd.Timedelta(days=1)
    outcomes: list[dict[str, Any]] = []
    days = 0
    while not stop.is_set() and (max_days is None or days < max_days):
        remaining = (due - pd.Timestamp(clock())).total_seconds()
        if remaining > 0:
            pause(min(remaining, 60.0))
            continue
        for name in names:
            try:
                res = tick(ws, loaded, name, due.to_pydatetime())
            except Exception as exc:  # the scheduler outlives one bad tick
                log.exception("loop tick of %s at %s failed", name, due)
                res = {"model": name, "as_of": due.isoformat(), "status": "error",
                       "exit_code": getattr(exc, "exit_code", 1), "error": str(exc)}
            outcomes.append(res)
            if on_tick is not None:
                on_tick(res)
        due += pd.Timedelta(days=1)
        days += 1
    return outcomes


def parse_at(at: str) -> tuple[int, int]:
    try:
        hh, mm = at.split(":")
        hour, minute = int(hh), int(mm)
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        raise TuesdayError(f"The scheduler's time of day must be HH:MM like '06:00'. "
                           f"Got {at!r}.", fix="Pass --at 06:00.") from None
    return hour, minute


def _naive(value: datetime | str) -> datetime:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()
