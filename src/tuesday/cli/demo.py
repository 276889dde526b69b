"""``tuesday demo``: the whole loop on the real Chicago ridership data.

1. Ingest 15.5 years of history (to 2016-06-30) through the contracts.
2. Train the 14-day-ahead model with its baselines and backtest; register it.
3. Promote it through its gate; materialize its online features.
4. Start the real HTTP server on a loopback port in its own process.
5. Live operation, day by day: ask the server for the forecast 14 days ahead, post the
   day's actual ridership to the ground-truth endpoint, ingest the day's weather and game
   rows, refresh the online features.
6. Let the remaining actuals arrive, stop the server (it flushes its prediction log),
   and monitor drift and real accuracy against the baselines.

:func:`run_demo` runs these steps; :func:`server` runs ``tuesday serve`` in a child
process. The ``tuesday demo`` command (:mod:`tuesday.cli.loop`) imports this module only
when it runs, since it loads every stage of the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console

from tuesday.cli.progress import progress
from tuesday.data import tables
from tuesday.data.materialize import materialize
from tuesday.errors import TuesdayError
from tuesday.project import LoadedProject, load_project
from tuesday.release import registry
from tuesday.report.evaluation import write_evaluation_report
from tuesday.train import training
from tuesday.watch import monitoring
from tuesday.workspace import Workspace, open_workspace

EXAMPLE = Path(__file__).parents[1] / "examples" / "ridership" / "project.py"
MODEL = "ridership_14d"
#: backtest folds of the demo's training: the example declares 26 (two years, 4 weeks at
#: a time) and `tuesday train` runs them all; the demo shows the loop, so it backtests
#: the last 24 weeks
FOLDS = 6
#: and boosts 150 rounds at twice the learning rate (LightGBM's default here: 400 at
#: 0.05): with the folds, its training takes a tenth of the CPU time of `tuesday train`
LEARNER = {"num_boost_round": 150, "learning_rate": 0.1}
START = pd.Timestamp("2016-06-30")
LAST_DAY = pd.Timestamp("2016-08-28")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(project: Path, workspace: Path, port: int, *,
           timeout: float = 60.0) -> Iterator[str]:
    """Run ``tuesday serve`` in a child process; yield its base URL; stop it gracefully."""
    cmd = [sys.executable, "-m", "tuesday.cli", "--project", str(project), "--workspace",
           str(workspace), "serve", "--port", str(port)]
    log = open(workspace / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise TuesdayError(f"The server exited with code {proc.returncode} before "
                                   "answering.", fix=f"See {workspace / 'server.log'}.")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TuesdayError(f"The server did not answer on {url} within {timeout:.0f}s.",
                                   fix=f"See {workspace / 'server.log'}.")
            time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def run_demo(workspace: str | None, *, days: int = 14, quiet: bool = False,
             production: bool = False, locations: Mapping[str, str | None] | None = None
             ) -> dict[str, Any]:
    """Run the loop; returns the summary printed by ``tuesday demo --json``.

    ``locations`` (metadata, online, storage URLs) put the workspace on those servers;
    ``production=True`` starts PostgreSQL, Redis and S3 on loopback for the run
    (:mod:`tuesday.servers`) and stops them at the end."""
    if production:
        from tuesday.servers import local_servers

        console = Console(stderr=True, quiet=quiet, soft_wrap=True)
        console.log("starting PostgreSQL, Redis and S3 (SeaweedFS) on loopback")
        with local_servers() as s:
            summary = run_demo(workspace, days=days, quiet=quiet, locations=s.locations())
        console.log("stopped the local servers (their data was temporary)")
        return summary
    started = time.perf_counter()
    console = Console(stderr=True, quiet=quiet, soft_wrap=True)
    root = Path(workspace) if workspace else Path(tempfile.mkdtemp(prefix="tuesday-demo-"))
    ws = open_workspace(root, **(locations or {}))
    if not ws.locations.embedded:
        console.log("workspace locations: " + ", ".join(
            f"{k} {v}" for k, v in ws.locations.shown().items()))
    loaded = _demo_project(load_project(EXAMPLE))
    frames = loaded.module.example_frames()
    counts = {"received": 0, "accepted": 0, "quarantined": 0}
    with progress(console) as tell:
        _ingest_history(ws, loaded, root / "inbox", counts, tell)
        console.log(f"ingested history to {START.date()}: {counts['accepted']} rows accepted, "
                    f"{counts['quarantined']} quarantined")
        res, evaluation_html = _train_and_promote(ws, loaded, console, tell)
        end = min(START + pd.Timedelta(days=days), LAST_DAY)
        served, last_day = _operate(ws, loaded, frames, root, end, counts, console, tell)
    console.log(f"served {served} predictions over HTTP; actuals fed up to {last_day.date()}")
    report = monitoring.monitor(ws, loaded, MODEL, datetime.now())
    summary = _summary(root, counts, res, evaluation_html, served, report,
                       seconds=round(time.perf_counter() - started, 1))
    summary["locations"] = ws.locations.shown()
    if not quiet:
        _print_summary(Console(highlight=False), summary)  # the result: on stdout
    return summary


def _demo_project(loaded: LoadedProject) -> LoadedProject:
    """The example project with the demo's shorter training (``FOLDS``, ``LEARNER``)."""
    model = loaded.project.model(MODEL)
    short = dataclasses.replace(
        model, evaluation=dataclasses.replace(model.evaluation, folds=FOLDS),
        learner=dataclasses.replace(model.learner, params={**model.learner.params,
                                                           **LEARNER}))
    project = dataclasses.replace(loaded.project, models=tuple(
        short if m.name == MODEL else m for m in loaded.project.models))
    return LoadedProject(project, loaded.path, loaded.module)


def _ingest_history(ws: Workspace, loaded: LoadedProject, inbox: Path,
                    counts: dict[str, int], report: Callable[..., None]) -> None:
    """Step 1: write the example's files up to ``START`` to ``inbox`` and ingest them."""
    files = loaded.module.example_files(inbox, until=str(START.date()))
    for name, path in files.items():
        report(f"ingesting {name}")
        _count(counts, tables.ingest_file(ws, loaded.project.source(name), path, as_of=START))


def _train_and_promote(ws: Workspace, loaded: LoadedProject, console: Console,
                       report: Callable[..., None]) -> tuple[training.TrainResult, Path]:
    """Steps 2 and 3: train, write the evaluation report, promote through the gate and
    materialize the online features; returns the training result and the report."""
    model = loaded.project.model(MODEL)
    res = training.train(ws, loaded, MODEL, START.to_pydatetime(), progress=report)
    m = res.metrics
    console.log(f"trained {MODEL} v{res.version}: backtest RMSE {m['model']['rmse']:.3f} "
                "vs " + ", ".join(f"{k} {v['rmse']:.3f}" for k, v in m["baselines"].items()))
    report("writing the evaluation report")
    _, evaluation_html = write_evaluation_report(ws, loaded, MODEL, res.version)
    promoted = registry.promote(ws, model, res.version, as_of=START.to_pydatetime(),
                                actor="demo")
    console.log(f"promoted v{res.version}: {promoted['gates'][0]['message']}")
    materialize(ws, loaded.project, model, START.to_pydatetime())
    return res, evaluation_html


def _operate(ws: Workspace, loaded: LoadedProject, frames: dict[str, pd.DataFrame],
             root: Path, end: pd.Timestamp, counts: dict[str, int],
             console: Console, report: Callable[..., None]) -> tuple[int, pd.Timestamp]:
    """Steps 4 and 5, then the actuals of 6: start the server, live operation day by day
    to ``end``, actuals to ``LAST_DAY``. Returns the predictions served and the last day
    whose actuals were fed."""
    served = 0
    with server(loaded.path, root, free_port()) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        console.log(f"server answering on {url} (pid in {root / 'server.log'})")
        first = http.post(f"/v1/models/{MODEL}/predict", json={"rows": [
            {"station": "Clark_Lake", "date": str((START + pd.Timedelta(days=i)).date())}
            for i in range(1, 15)]})
        _check(first)
        served += len(first.json()["predictions"])
        total = (end - START).days
        report("live day", 0, total)
        for k in range(1, total + 1):
            _live_day(ws, loaded, frames, http, START + pd.Timedelta(days=k), counts)
            served += 1
            report("live day", k, total)
        day = START + pd.Timedelta(days=total)
        # labels keep arriving after the last forecast was made
        report("feeding the remaining actuals")
        while day < LAST_DAY:
            day = day + pd.Timedelta(days=1)
            _count(counts, _post_actuals(http, frames["ridership"], day))
    return served, day


def _live_day(ws: Workspace, loaded: LoadedProject, frames: dict[str, pd.DataFrame],
              http: httpx.Client, day: pd.Timestamp, counts: dict[str, int]) -> None:
    """One day of live operation: the forecast 14 days ahead, the day's actuals, the
    day's weather and games, fresh online features."""
    project = loaded.project
    target = day - pd.Timedelta(days=1) + pd.Timedelta(days=14)
    r = http.post(f"/v1/models/{MODEL}/predict",
                  json={"station": "Clark_Lake", "date": str(target.date())})
    _check(r)
    _count(counts, _post_actuals(http, frames["ridership"], day))
    for name in ("weather", "games"):
        rows = loaded.module.known_rows(frames[name], since=day - pd.Timedelta(days=1),
                                        until=day)
        if len(rows):
            _count(counts, tables.ingest_frame(ws, project.source(name), rows,
                                               as_of=day.to_pydatetime()))
    materialize(ws, project, project.model(MODEL), day.to_pydatetime())


def _count(counts: dict[str, int], result: dict[str, Any] | tables.IngestResult) -> None:
    """Add an ingest's (or a ground-truth post's) row counts to ``counts``."""
    r = result.report.to_dict() if isinstance(result, tables.IngestResult) else result
    for k in counts:
        counts[k] += int(r[k])


def _summary(root: Path, counts: dict[str, int], res: training.TrainResult,
             evaluation_html: Path, served: int, report: dict[str, Any], *,
             seconds: float) -> dict[str, Any]:
    m = res.metrics
    q = report.get("quality") or {}
    return {
        "workspace": str(root),
        "rows_received": counts["received"],
        "rows_accepted": counts["accepted"],
        "rows_quarantined": counts["quarantined"],
        "model": MODEL,
        "model_version": res.version,
        "metrics": {"primary": m["primary"], "model": m["model"], "baselines": m["baselines"],
                    "best_baseline": m["best_baseline"], "lift": m["lift"],
                    "backtest_rows": m["rows"], "folds": len(m["folds"]),
                    "report": str(evaluation_html)},
        "predictions_served": served,
        "monitor": {"status": report["status"], "report": report["report_html"],
                    "report_json": report["report_json"],
                    "rows_with_ground_truth": q.get("rows_with_ground_truth", 0),
                    "live_model": q.get("model"), "live_baselines": q.get("baselines")},
        "seconds": seconds,
    }


def _post_actuals(http: httpx.Client, rides: pd.DataFrame, day: pd.Timestamp
                  ) -> dict[str, Any]:
    rows = rides[rides["date"] == day]
    body = {"as_of": day.isoformat(), "rows": [
        {"station": r.station, "date": day.date().isoformat(), "rides": float(r.rides)}
        for r in rows.itertuples()]}
    r = http.post("/v1/ground-truth/ridership", json=body)
    _check(r)
    return dict(r.json())


def _check(r: httpx.Response) -> None:
    if r.status_code >= 300 and r.status_code != 207:
        raise TuesdayError(f"The server answered {r.status_code} to {r.request.url}: "
                           f"{r.text[:500]}", fix="See server.log in the workspace.")


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    m = s["metrics"]
    console.print()
    console.print(f"[bold]tuesday demo[/] finished in {s['seconds']}s; workspace {s['workspace']}")
    if any(v != "(workspace folder)" for v in s["locations"].values()):
        console.print("  on " + ", ".join(f"{k} {v}" for k, v in s["locations"].items()))
    console.print(f"  data: {s['rows_received']} rows received, {s['rows_accepted']} accepted, "
                  f"{s['rows_quarantined']} quarantined")
    console.print(f"  model {s['model']} v{s['model_version']} in production; backtest "
                  f"({m['folds']} folds, {m['backtest_rows']} days) RMSE "
                  f"{m['model']['rmse']:.3f}")
    for name, vals in m["baselines"].items():
        console.print(f"    baseline {name}: RMSE {vals['rmse']:.3f}")
    console.print(f"  evaluation report: {m['report']}")
    console.print(f"  served {s['predictions_served']} predictions over HTTP")
    mon = s["monitor"]
    line = f"  monitor: {mon['status']}"
    if mon["live_model"]:
        line += (f"; live RMSE on {mon['rows_with_ground_truth']} days "
                 f"{mon['live_model']['rmse']:.3f} vs " + ", ".join(
                     f"{k} {v['rmse']:.3f}" for k, v in (mon["live_baselines"] or {}).items()))
    console.print(line)
    console.print(f"  report: {mon['report']}")
