"""Replay: the whole daily loop over history, day by day, with a virtual clock.

``replay`` builds a fresh workspace from a project's history (the module's
``example_frames()``, or a folder with one file per source), applies the shocks
(:mod:`tuesday.loop.shocks`), trains and promotes the first version at ``start``, then
lives every day to ``end``:

1. ingest the rows that became known that day (by ``available_at`` where a source has
   one, else by its time column); the label source's rows are the actuals arriving;
2. run the daily tick (:func:`tuesday.loop.daily.tick`): monitor the recent windows,
   alert, retrain and promote by the model's policy, materialize the online features;
3. serve the forecast for the day entering the horizon through the real predict path
   (``Predictor`` with the virtual day as its clock), logged like any prediction.

The timeline report (:mod:`tuesday.loop.timeline`: JSON, and HTML that opens offline
with inline SVG charts) shows accuracy against the baselines over time, drift, alerts,
retrains and promotions, and for each shock how long the loop took to notice and
whether accuracy came back.

Example:
    >>> from tuesday.loop.replay import Shock
    >>> Shock.parse("scale=0.6 from 2015-03-01").describe()
    'scale the target by 0.6 from 2015-03-01'
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tuesday.data import tables
from tuesday.data.features import horizon
from tuesday.errors import Conflict, GateFailed, TuesdayError
from tuesday.loop import daily as loop
from tuesday.loop.shocks import Shock
from tuesday.loop.timeline import timeline, write_timeline
from tuesday.project import LoadedProject, Model, Policy, Project, Source, parse_time
from tuesday.release import registry
from tuesday.serve.predictor import Predictor
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

__all__ = ["Shock", "replay"]


def replay(loaded: LoadedProject, model_name: str, start: str | datetime,
           end: str | datetime, *, workspace: str | Path | None = None,
           policy: Policy | None = None, shocks: Sequence[Shock | str] = (),
           frames: Mapping[str, pd.DataFrame] | None = None, data: str | Path | None = None,
           folds: int | None = None, progress: Callable[..., None] | None = None
           ) -> dict[str, Any]:
    """Run the daily loop from ``start`` to ``end``; returns the timeline (JSON-ready)
    with the paths of its JSON and HTML reports.

    Args:
        loaded: The project.
        model_name: The model to replay.
        start: The first day: history known then is ingested, version 1 is trained
            and put in production (through its gates, or with a recorded override).
        end: The last day.
        workspace: A new or empty folder (default: a fresh temporary folder).
        policy: The loop policy (default: the model's, else ``Policy()``).
        shocks: Changes to the history (``Shock`` or its text form).
        frames: The history, one frame per source (default: ``data``, else the project
            module's ``example_frames()``).
        data: A folder holding ``SOURCE.csv`` or ``SOURCE.parquet`` per source.
        folds: Backtest folds for every training in the replay (default: as declared);
            fewer folds make retrains faster and gates rougher.
        progress: Called with a short message as the replay goes, and with
            ``("day", done, total)`` as days are replayed.

    Example:
        >>> tl = replay(loaded, "ridership_14d", "2015-01-01", "2015-04-30",
        ...             shocks=["scale=0.6 from 2015-03-01"])  # doctest: +SKIP
        >>> tl["shocks"][0]["first_alert"]["days_after"]  # doctest: +SKIP
        4
    """
    started = time.perf_counter()
    step = progress or (lambda *_a: None)
    day0, last = _days(loaded.project.model(model_name), start, end)
    pol = policy or loop.policy_for(loaded.project.model(model_name))
    lp = _with_folds(loaded, model_name, folds)
    model = lp.project.model(model_name)
    parsed = [(s if isinstance(s, Shock) else Shock.parse(s)).resolved(lp.project, model)
              for s in shocks]
    ws = _fresh_workspace(workspace)
    history = _shocked(_history(lp, frames, data), parsed, lp.project)
    timer = loop.StageTimer(digits=3)
    _bootstrap(ws, lp, model, history, day0, timer, step)
    days = _live(ws, lp, model, history, (day0, last), pol, timer, step)
    step("writing the timeline")
    with timer("report"):
        tl = timeline(ws, lp, model_name, days, parsed, pol, day0, last)
        tl["folds"] = model.evaluation.folds
        tl["workspace"] = str(ws.root)
    tl["seconds"] = {"total": round(time.perf_counter() - started, 1), **timer.seconds}
    tl.update(write_timeline(ws, tl))
    return tl


def _days(model: Model, start: str | datetime,
          end: str | datetime) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last day of the replay, checked (a daily model, end after start)."""
    h = horizon(model)
    if h < pd.Timedelta(days=1) or h % pd.Timedelta(days=1):
        raise TuesdayError(f"Replay runs day by day; model {model.name!r} has horizon "
                           f"{model.horizon!r}, not a whole number of days.",
                           fix="Replay a daily forecasting model.")
    day0 = parse_time(start, what="--start").normalize()
    last = parse_time(end, what="--end").normalize()
    if last <= day0:
        raise TuesdayError(f"--end ({last.date()}) must be after --start ({day0.date()}).",
                           fix="Pass an --end later than --start.")
    return day0, last


def _bootstrap(ws: Workspace, lp: LoadedProject, model: Model,
               history: Mapping[str, pd.DataFrame], day0: pd.Timestamp,
               timer: loop.StageTimer, step: Callable[..., None]) -> None:
    """Ingest the history known at ``day0``, train version 1 and put it in production
    (with a recorded override when it fails its gates: a replay needs a first version)."""
    as_of = day0.to_pydatetime()
    step(f"ingesting history to {day0.date()}")
    with timer("ingest"):
        for name, frame in history.items():
            rows = _known(frame, lp.project.source(name), None, day0)
            if len(rows):
                tables.ingest_frame(ws, lp.project.source(name), rows, as_of=as_of,
                                    file=f"<replay {name}>")
    step("training version 1")
    with timer("train"):
        first = training.train(ws, lp, model.name, as_of, progress=step)
    with timer("promote"):
        try:
            registry.promote(ws, model, first.version, as_of=as_of, actor="replay")
        except GateFailed as exc:
            registry.promote(ws, model, first.version, as_of=as_of, actor="replay",
                             override_reason=f"replay bootstrap: the first version serves "
                                             f"even though {exc.message}")


def _live(ws: Workspace, lp: LoadedProject, model: Model,
          history: Mapping[str, pd.DataFrame], span: tuple[pd.Timestamp, pd.Timestamp],
          pol: Policy, timer: loop.StageTimer, step: Callable[..., None]
          ) -> list[dict[str, Any]]:
    """Live every day of ``span``: ingest what became known, tick, serve. Returns one
    record per day (``date``, ``ingested``, ``served``, ``serve_errors``,
    ``serve_error``, ``tick``)."""
    day0, last = span
    now = [day0.to_pydatetime()]
    predictor = Predictor(ws, lp, clock=lambda: now[0])
    days: list[dict[str, Any]] = []
    try:
        day = day0
        total = (last - day0).days + 1
        step("day", 0, total)
        while day <= last:
            now[0] = day.to_pydatetime()
            ingested = _ingest_day(ws, lp, history, day, timer) if day > day0 else 0
            out = loop.tick(ws, lp, model.name, day.to_pydatetime(), policy=pol,
                            write_report=False)
            for stage, s in out.get("seconds", {}).items():
                timer.add(stage, s)
            with timer("serve"):
                answer = _serve_day(predictor, lp, model, day, first=day == day0)
            errors = [p["error"] for p in answer["predictions"] if p.get("error")]
            days.append({"date": str(day.date()), "ingested": ingested,
                         "served": len(answer["predictions"]) - len(errors),
                         "serve_errors": len(errors), "serve_error": errors[:1],
                         "tick": out})
            step("day", len(days), total)
            day += pd.Timedelta(days=1)
    finally:
        predictor.close()
    return days


def _ingest_day(ws: Workspace, lp: LoadedProject, history: Mapping[str, pd.DataFrame],
                day: pd.Timestamp, timer: loop.StageTimer) -> int:
    """Ingest the rows that became known in the day before ``day``; rows accepted."""
    ingested = 0
    with timer("ingest"):
        for name, frame in history.items():
            rows = _known(frame, lp.project.source(name), day - pd.Timedelta(days=1), day)
            if len(rows):
                r = tables.ingest_frame(ws, lp.project.source(name), rows,
                                        as_of=day.to_pydatetime(),
                                        file=f"<replay {name} {day.date()}>")
                ingested += r.report.accepted
    return ingested


def _serve_day(predictor: Predictor, lp: LoadedProject, model: Model, day: pd.Timestamp,
               *, first: bool) -> dict[str, Any]:
    """Serve (and log) the forecast of every entity for the target day entering the
    horizon; on the first day, for every target day of the horizon."""
    hdays = int(horizon(model) / pd.Timedelta(days=1))
    targets = [day + pd.Timedelta(days=i) for i in
               (range(1, hdays + 1) if first else [hdays])]
    keys = _entities(model) or _stored_entities(predictor, model.name)
    rows = [{model.entity.key: e, _time_col(lp, model): str(tt.date())}
            for e in keys for tt in targets]
    predictor.refresh()  # the registry may have changed within the second
    answer = predictor.predict(model.name, rows, partial=True) if rows else \
        {"predictions": []}
    predictor.log.flush()
    return answer


def _with_folds(loaded: LoadedProject, model_name: str, folds: int | None) -> LoadedProject:
    if folds is None:
        return loaded
    m = training.with_folds(loaded.project.model(model_name), folds)
    project = dataclasses.replace(loaded.project, models=tuple(
        m if x.name == model_name else x for x in loaded.project.models))
    return LoadedProject(project, loaded.path, loaded.module)


def _fresh_workspace(workspace: str | Path | None) -> Workspace:
    root = Path(workspace) if workspace else Path(tempfile.mkdtemp(prefix="tuesday-replay-"))
    if root.exists() and any(root.iterdir()) and (root / "meta.sqlite").exists():
        ws = open_workspace(root)
        if registry.versions(ws) or tables.list_versions(ws):
            raise Conflict(f"Workspace {str(root)!r} already holds data; a replay builds its "
                           "own history from scratch and would mix with it.",
                           fix="Pass --workspace with a new or empty folder (or none, for "
                               "a fresh temporary one).")
        return ws
    return open_workspace(root)


def _history(loaded: LoadedProject, frames: Mapping[str, pd.DataFrame] | None,
             data: str | Path | None) -> dict[str, pd.DataFrame]:
    if frames is None and data is not None:
        frames = _read_folder(loaded.project, Path(data))
    if frames is None:
        make = getattr(loaded.module, "example_frames", None)
        if make is None:
            raise TuesdayError(
                f"Replay needs the history of project {loaded.project.name!r}: its module "
                "has no example_frames() and no --data folder was given.",
                fix="Pass --data DIR with one SOURCE.csv or SOURCE.parquet per source.")
        frames = make()
    assert frames is not None
    out = {}
    for name, frame in frames.items():
        src = loaded.project.source(name)
        f = frame.copy()
        for col in (src.time, src.available_at):
            if col is not None and col in f.columns:
                f[col] = pd.to_datetime(f[col])
        out[name] = f
    return out


def _shocked(history: dict[str, pd.DataFrame], shocks: Sequence[Shock],
             project: Project) -> dict[str, pd.DataFrame]:
    """The history with each (resolved) shock applied to its source, in order."""
    for s in shocks:
        assert s.source is not None
        history[s.source] = s.apply(history[s.source], project.source(s.source))
    return history


def _read_folder(project: Project, folder: Path) -> dict[str, pd.DataFrame]:
    if not folder.is_dir():
        raise TuesdayError(f"--data {str(folder)!r} is not a folder.",
                           fix="Pass a folder holding one SOURCE.csv or SOURCE.parquet per "
                               "source.")
    out = {}
    for src in project.sources:
        csv, pq = folder / f"{src.name}.csv", folder / f"{src.name}.parquet"
        if csv.is_file():
            out[src.name] = pd.read_csv(csv)
        elif pq.is_file():
            out[src.name] = pd.read_parquet(pq)
    if not out:
        raise TuesdayError(f"--data {str(folder)!r} holds no SOURCE.csv or SOURCE.parquet "
                           f"for the sources {', '.join(s.name for s in project.sources)}.",
                           fix="Name each file after its source.")
    return out


def _known(frame: pd.DataFrame, source: Source, since: pd.Timestamp | None,
           until: pd.Timestamp) -> pd.DataFrame:
    """Rows that became known in ``(since, until]``; a timeless source at the start."""
    col = source.available_at or source.time
    if col is None:
        return frame if since is None else frame.iloc[0:0]
    known = frame[col]
    keep = known <= until
    if since is not None:
        keep &= known > since
    return frame[keep]


def _entities(model: Model) -> list[str]:
    return [str(v) for v in model.where.get(model.entity.key, ())]


def _stored_entities(predictor: Predictor, model_name: str) -> list[str]:
    return predictor.store.entities(model_name)


def _time_col(loaded: LoadedProject, model: Model) -> str:
    tcol = loaded.project.source(model.label_source).time
    assert tcol is not None
    return tcol

