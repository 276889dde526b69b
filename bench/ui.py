"""Dashboard page load times for a workspace with a year of prediction log.

    python bench/ui.py [--rows-per-day 200] [--loads 5] [--keep DIR]

The workspace: the ridership example served for a year as a planner would use it, origin
by origin every 14 days from 2015-08-27 to 2016-08-11: the data known at the origin is
ingested, the online features materialized, and each of the next 14 days is forecast by
``--rows-per-day`` requests (one row each) through the real predict path, which logs
them (so the log holds 365 x rows-per-day rows, with their features and baselines, and
ground truth for all but the last days). Version 1 (trained at the first origin, 3-fold
backtest) serves throughout.

Then a real ``tuesday serve`` answers, and headless Chromium (Debian's, through
Playwright) opens each page; the time is navigation start to the load event (the server
renders everything, so that is the page). "cold" is the first load after the server
started (the monitor is computed: the log and the labels are read whole), "warm" the
median of ``--loads`` loads after it (the monitor is cached for 30 s). Side by side, the
floors: ``GET /health`` (a round trip), reading the log alone (``read_log``), and the
monitor computed in process (``monitor()``, what the page's data costs without HTTP or
HTML); the ratio column is each page's warm or cold time over the monitor floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from tuesday.data import tables
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.project import load_project
from tuesday.release import registry
from tuesday.serve.predictor import Predictor
from tuesday.train import training
from tuesday.watch.monitoring import monitor
from tuesday.workspace import Workspace, open_workspace

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "src/tuesday/examples/ridership/project.py"
MODEL = "ridership_14d"
FIRST = datetime(2015, 8, 27)
ORIGINS = [FIRST + timedelta(days=14 * k) for k in range(26)]
LAST = datetime(2016, 8, 26)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def build(folder: Path, rows_per_day: int) -> tuple[Workspace, Path]:
    """The served workspace (see the module docstring) and its 3-fold project file."""
    text = PROJECT.read_text().replace("Backtest(folds=26,", "Backtest(folds=3,")
    project_path = folder / "project.py"
    project_path.write_text(text)
    loaded = load_project(project_path)
    ws = open_workspace(folder / "ws")
    model = loaded.project.model(MODEL)
    since = None
    for k, origin in enumerate(ORIGINS):
        files = loaded.module.example_files(folder / f"files-{k}", until=str(origin.date()),
                                            since=None if since is None else str(since.date()))
        for name, path in files.items():
            tables.ingest_file(ws, loaded.project.source(name), path, as_of=origin)
        since = origin
        if k == 0:
            training.train(ws, loaded, MODEL, origin)
            registry.promote(ws, model, 1, as_of=origin)
        materialize(ws, loaded.project, model, origin)
        predictor = Predictor(ws, loaded, clock=lambda o=origin: o + timedelta(hours=7))
        for d in pd.date_range(origin + timedelta(days=1), periods=14, freq="D"):
            for _ in range(rows_per_day):
                predictor.predict(MODEL, [{"station": "Clark_Lake", "date": str(d.date())}])
            predictor.log.flush()
        predictor.close()
        print(f"  origin {origin.date()}: {len(read_log(ws, MODEL)):,} rows logged",
              file=sys.stderr)
    files = loaded.module.example_files(folder / "files-last", since=str(since.date()),
                                        until=str(LAST.date()))
    for name, path in files.items():
        tables.ingest_file(ws, loaded.project.source(name), path, as_of=LAST)
    return ws, project_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows-per-day", type=int, default=200)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--keep", help="build the workspace here and keep it")
    args = ap.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="tuesday-bench-ui-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if (folder / "ws").exists():
        ws, project_path = open_workspace(folder / "ws"), folder / "project.py"
    else:
        ws, project_path = build(folder, args.rows_per_day)
    log_rows = len(read_log(ws, MODEL))
    print(f"workspace {folder}: {log_rows:,} prediction log rows, built in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    loaded = load_project(project_path)
    floors = {
        "read_log (the whole log)": statistics.median(
            timed(lambda: read_log(ws, MODEL)) for _ in range(3)),
        "monitor() in process": statistics.median(
            timed(lambda: monitor(ws, loaded, MODEL, LAST, write=False)) for _ in range(3)),
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuesday.cli", "--project", str(project_path), "--workspace",
         str(ws.root), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TUESDAY_COMPILED": "off"})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        floors["GET /health"] = statistics.median(
            timed(lambda: urllib.request.urlopen(f"{base}/health").read()) for _ in range(20))
        rows = pages(base, args.loads, ws)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    report(rows, floors, log_rows, args)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def pages(base: str, loads: int, ws: Workspace) -> list[tuple[str, float, float]]:
    """(page, cold s, warm median s) of each page, opened in Chromium."""
    from playwright.sync_api import sync_playwright

    rid = read_log(ws, MODEL)["request_id"].iloc[-1]
    paths = [("overview /ui/", "/ui/"), ("model /ui/models/M", f"/ui/models/{MODEL}"),
             ("explain by entity and day",
              f"/ui/models/{MODEL}/explain?entity=Clark_Lake&at=2016-08-20"),
             ("explain a logged request", f"/ui/models/{MODEL}/explain?request_id={rid}"),
             ("JSON /v1/models/M/monitor", f"/v1/models/{MODEL}/monitor"),
             ("JSON /v1/models/M/report", f"/v1/models/{MODEL}/report")]
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or
                                    "/usr/bin/chromium", args=ARGS)
        page = browser.new_page()
        for name, path in paths:
            times = []
            for _ in range(loads + 1):
                page.goto(f"{base}{path}", wait_until="load")
                times.append(page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return (n.loadEventEnd - n.startTime) / 1000; }"))
            out.append((name, times[0], statistics.median(times[1:])))
        browser.close()
    return out


def report(rows: list[tuple[str, float, float]], floors: dict[str, float], log_rows: int,
           args: argparse.Namespace) -> None:
    mon = floors["monitor() in process"]
    print(f"\n`python bench/ui.py --rows-per-day {args.rows_per_day} --loads {args.loads}`: "
          f"{log_rows:,} log rows (a year, {args.rows_per_day} requests a day), "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| page | cold s | warm s (median) | cold / monitor() | warm / monitor() |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, cold, warm in rows:
        print(f"| {name} | {cold:.3f} | {warm:.3f} | {cold / mon:.2f} | {warm / mon:.2f} |")
    print("\n| floor | s |\n| --- | ---: |")
    for name, s in floors.items():
        print(f"| {name} | {s:.4f} |")


if __name__ == "__main__":
    main()
