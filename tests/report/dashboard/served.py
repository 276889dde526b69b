"""A ridership workspace as a dashboard reader finds it after six weeks of service:
version 1 in production with version 2 shadowing it, six weeks of served forecasts,
their ground truth, and the alerts the monitor raised."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from tuesday.data import tables
from tuesday.data.materialize import materialize
from tuesday.project import LoadedProject
from tuesday.release import registry
from tuesday.serve.predictor import Predictor
from tuesday.watch.monitoring import monitor
from tuesday.workspace import Workspace, open_workspace

MODEL = "ridership_14d"
#: where the browser tests write the pages' screenshots
ARTIFACTS = Path(os.environ.get("TUESDAY_UI_ARTIFACTS") or
                 Path(__file__).resolve().parents[3] / "tests" / "artifacts" / "ui")
START = datetime(2016, 6, 30)
#: forecast origins: every 14 days, each serving the next 14 days
ORIGINS = [START + timedelta(days=14 * k) for k in range(3)]
LAST = datetime(2016, 8, 25)


def served_workspace(trained: Workspace, loaded: LoadedProject, folder: Path) -> Workspace:
    """A copy of ``trained`` (versions 1 and 2 of ridership_14d, data to 2016-06-30)
    with six weeks of service, ground truth to 2016-08-25 and the monitor's alerts."""
    dst = folder / "ws"
    shutil.copytree(trained.root, dst)
    ws = open_workspace(dst)
    project = loaded.project
    model = project.model(MODEL)
    registry.promote(ws, model, 1, as_of=START)
    registry.deploy(ws, MODEL, "shadow", 2, as_of=START, actor="analyst",
                    reason="compare the 3-fold retrain before promoting it")
    since = START
    for origin in ORIGINS:
        if origin > since:
            _ingest(ws, loaded, folder, since, origin)
            since = origin
        materialize(ws, project, model, origin)
        predictor = Predictor(ws, loaded, clock=lambda o=origin: o + timedelta(hours=7))
        days = pd.date_range(origin + timedelta(days=1), periods=14, freq="D")
        for d in days:  # one request a day, as a planner would ask
            predictor.predict(MODEL, [{"station": "Clark_Lake", "date": str(d.date())}])
        predictor.log.flush()
        predictor.close()
    _ingest(ws, loaded, folder, since, LAST)
    monitor(ws, loaded, MODEL, LAST, alert=True, write=False)
    return ws


def _ingest(ws: Workspace, loaded: LoadedProject, folder: Path, since: datetime,
            until: datetime) -> None:
    files = loaded.module.example_files(folder / f"files-{until:%m%d}",
                                        since=str(since.date()), until=str(until.date()))
    for name, path in files.items():
        tables.ingest_file(ws, loaded.project.source(name), path, as_of=until)
