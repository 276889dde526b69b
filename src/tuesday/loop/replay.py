"""Replay: the whole daily loop over history, day by day, with a virtual clock.

``replay`` builds a fresh workspace from a project's history (the module's
``example_frames()``, or a folder with one file per source), trains and promotes the
first version at ``start``, then lives every day to ``end``:

1. ingest the rows that became known that day (by ``available_at`` where a source has
   one, else by its time column); the label source's rows are the actuals arriving;
2. run the daily tick (``tuesday.loop.tick``): monitor the recent windows, alert,
   retrain and promote by the model's policy, materialize the online features;
3. serve the forecast for the day entering the horizon through the real predict path
   (``Predictor`` with the virtual day as its clock), logged like any prediction.

Shocks change the history before it is replayed, to rehearse what the loop does when
the world changes: ``scale=0.6 from 2015-03-01`` (the target multiplied by 0.6 from that
day), ``stuck:weather.temp=50 from 2015-06-01`` (a sensor stuck at a constant),
``rename:ridership.station=Clark_Lake>Clark_Lake_Loop from 2015-06-01`` (a taxonomy
change: an entity's code changes). The timeline report (JSON, and HTML that opens
offline with inline SVG charts) shows accuracy against the baselines over time, drift,
alerts, retrains and promotions, and for each shock how long the loop took to notice
and whether accuracy came back.

Example:
    >>> from tuesday.replay import Shock
    >>> Shock.parse("scale=0.6 from 2015-03-01").describe()
    'scale the target by 0.6 from 2015-03-01'
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuesday.data import tables
from tuesday.data.features import horizon
from tuesday.data.predictions import read_log
from tuesday.errors import Conflict, GateFailed, TuesdayError
from tuesday.loop import daily as loop
from tuesday.project import Backtest, LoadedProject, Model, Policy, Project, Source, parse_time
from tuesday.release import registry
from tuesday.serve.predictor import Predictor
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

SHOCK_KINDS = ("scale", "stuck", "rename")
ROLLING_DAYS = 14
#: accuracy counts as recovered when the rolling WAPE is back within this factor of
#: its level in the 28 days before the shock
RECOVERY = 1.5
_SHOCK = re.compile(
    r"^\s*(?P<kind>[a-z]+)(?::(?P<source>[\w-]+)\.(?P<column>\w+))?\s*=\s*(?P<value>\S+)"
    r"\s+from\s+(?P<start>\S+)(?:\s+(?:until|to)\s+(?P<end>\S+))?\s*$")


# -------------------------------------------------------------------------- shocks


@dataclass(frozen=True)
class Shock:
    """A change applied to the history before it is replayed.

    Attributes:
        kind: ``scale`` (multiply a numeric column), ``stuck`` (set it to a constant)
            or ``rename`` (an entity code changes: ``value`` is ``'OLD>NEW'``).
        value: The factor, the constant, or ``'OLD>NEW'``.
        start: First day affected (by the source's time column).
        end: First day no longer affected (None: to the end).
        source: The source changed (default: the model's label source).
        column: The column changed (default: the target; for ``rename`` the entity key).

    Example:
        >>> Shock.parse("stuck:weather.temp=50 from 2015-06-01 until 2015-07-01").column
        'temp'
    """

    kind: str
    value: float | str
    start: str
    end: str | None = None
    source: str | None = None
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> Shock:
        """Parse ``KIND[:SOURCE.COLUMN]=VALUE from DAY [until DAY]``."""
        m = _SHOCK.match(text)
        if m is None or m["kind"] not in SHOCK_KINDS:
            raise TuesdayError(
                f"A shock must look like 'scale=0.6 from 2015-03-01', "
                f"'stuck:weather.temp=50 from 2015-06-01 until 2015-07-01' or "
                f"'rename:ridership.station=OLD>NEW from 2015-06-01' (kinds: "
                f"{', '.join(SHOCK_KINDS)}). Got {text!r}.",
                fix="Write the shock as KIND[:SOURCE.COLUMN]=VALUE from DAY [until DAY].")
        value: float | str = m["value"]
        if m["kind"] in ("scale", "stuck"):
            try:
                value = float(m["value"])
            except ValueError:
                raise TuesdayError(f"The value of a {m['kind']} shock must be a number. "
                                   f"Got {m['value']!r} in {text!r}.",
                                   fix="Write e.g. 'scale=0.6 from 2015-03-01'.") from None
        elif ">" not in str(value):
            raise TuesdayError(f"A rename shock's value must be 'OLD>NEW'. Got {value!r}.",
                               fix="Write e.g. 'rename=Clark_Lake>Clark_Lake_2 from "
                                   "2015-06-01'.")
        for what in ("start", "end"):
            if m[what] is not None:
                parse_time(m[what], what=f"the {what} of shock {text!r}")
        return cls(m["kind"], value, m["start"], m["end"], m["source"], m["column"])

    def resolved(self, project: Project, model: Model) -> Shock:
        """The shock with its source and column filled in and checked."""
        src_name = self.source or model.label_source
        src = project.source(src_name)
        col = self.column or (model.entity.key if self.kind == "rename" else model.target)
        if src.contract.column(col) is None:
            raise TuesdayError(f"Shock {self.describe()!r}: source {src_name!r} has no "
                               f"column {col!r}.",
                               fix=f"Columns: {', '.join(src.contract.names)}.")
        if src.time is None:
            raise TuesdayError(f"Shock {self.describe()!r}: source {src_name!r} has no time "
                               "column, so a shock cannot start on a day.",
                               fix="Shock a source with a time column.")
        return dataclasses.replace(self, source=src_name, column=col)

    def describe(self) -> str:
        what = f"{self.source}.{self.column}" if self.source and self.column else "the target"
        span = f"from {self.start}" + (f" until {self.end}" if self.end else "")
        if self.kind == "scale":
            return f"scale {what} by {self.value:g} {span}"
        if self.kind == "stuck":
            return f"{what} stuck at {self.value:g} {span}"
        old, new = str(self.value).split(">", 1)
        return f"rename {old!r} to {new!r} in {what} {span}"

    def apply(self, frame: pd.DataFrame, source: Source) -> pd.DataFrame:
        """The frame with the shock applied (a copy)."""
        assert source.time is not None and self.column is not None
        t = pd.to_datetime(frame[source.time])
        hit = t >= pd.Timestamp(self.start)
        if self.end is not None:
            hit &= t < pd.Timestamp(self.end)
        out = frame.copy()
        if self.kind == "scale":
            out.loc[hit, self.column] = out.loc[hit, self.column] * float(self.value)
        elif self.kind == "stuck":
            out.loc[hit, self.column] = float(self.value)
        else:
            old, new = str(self.value).split(">", 1)
            out.loc[hit & (out[self.column].astype(str) == old), self.column] = new
        return out


def _shock_dict(s: Shock) -> dict[str, Any]:
    return {**dataclasses.asdict(s), "text": s.describe()}


# -------------------------------------------------------------------------- replay


def replay(loaded: LoadedProject, model_name: str, start: str | datetime,
           end: str | datetime, *, workspace: str | Path | None = None,
           policy: Policy | None = None, shocks: Sequence[Shock | str] = (),
           frames: Mapping[str, pd.DataFrame] | None = None, data: str | Path | None = None,
           folds: int | None = None, progress: Callable[[str], None] | None = None
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
        progress: Called with a short message as the replay goes.

    Example:
        >>> tl = replay(loaded, "ridership_14d", "2015-01-01", "2015-04-30",
        ...             shocks=["scale=0.6 from 2015-03-01"])  # doctest: +SKIP
        >>> tl["shocks"][0]["first_alert"]["days_after"]  # doctest: +SKIP
        4
    """
    started = time.perf_counter()
    step = progress or (lambda _m: None)
    model = loaded.project.model(model_name)
    h = horizon(model)
    if h < pd.Timedelta(days=1) or h % pd.Timedelta(days=1):
        raise TuesdayError(f"Replay runs day by day; model {model_name!r} has horizon "
                           f"{model.horizon!r}, not a whole number of days.",
                           fix="Replay a daily forecasting model.")
    day0 = parse_time(start, what="--start").normalize()
    last = parse_time(end, what="--end").normalize()
    if last <= day0:
        raise TuesdayError(f"--end ({last.date()}) must be after --start ({day0.date()}).",
                           fix="Pass an --end later than --start.")
    pol = policy or loop.policy_for(model)
    lp = _with_folds(loaded, model_name, folds)
    model = lp.project.model(model_name)
    parsed = [s if isinstance(s, Shock) else Shock.parse(s) for s in shocks]
    parsed = [s.resolved(lp.project, model) for s in parsed]
    ws = _fresh_workspace(workspace)
    history = _history(lp, frames, data)
    for s in parsed:
        assert s.source is not None
        history[s.source] = s.apply(history[s.source], lp.project.source(s.source))
    seconds: dict[str, float] = {}

    def took(stage: str, t0: float) -> None:
        seconds[stage] = round(seconds.get(stage, 0.0) + time.perf_counter() - t0, 3)

    # ------------------------------------------------------------------ bootstrap
    step(f"ingesting history to {day0.date()}")
    t0 = time.perf_counter()
    for name, frame in history.items():
        rows = _known(frame, lp.project.source(name), None, day0)
        if len(rows):
            tables.ingest_frame(ws, lp.project.source(name), rows, as_of=day0.to_pydatetime(),
                                file=f"<replay {name}>")
    took("ingest", t0)
    step("training version 1")
    t0 = time.perf_counter()
    first = training.train(ws, lp, model_name, day0.to_pydatetime())
    took("train", t0)
    t0 = time.perf_counter()
    try:
        registry.promote(ws, model, first.version, as_of=day0.to_pydatetime(), actor="replay")
    except GateFailed as exc:
        registry.promote(ws, model, first.version, as_of=day0.to_pydatetime(), actor="replay",
                         override_reason=f"replay bootstrap: the first version serves even "
                                         f"though {exc.message}")
    took("promote", t0)

    # ---------------------------------------------------------------- day by day
    now = [day0.to_pydatetime()]
    predictor = Predictor(ws, lp, clock=lambda: now[0])
    entities = _entities(model)
    days: list[dict[str, Any]] = []
    hdays = int(h / pd.Timedelta(days=1))
    try:
        day = day0
        while day <= last:
            now[0] = day.to_pydatetime()
            step(f"replaying {day.date()}")
            ingested = 0
            if day > day0:
                t0 = time.perf_counter()
                for name, frame in history.items():
                    rows = _known(frame, lp.project.source(name), day - pd.Timedelta(days=1),
                                  day)
                    if len(rows):
                        r = tables.ingest_frame(ws, lp.project.source(name), rows,
                                                as_of=day.to_pydatetime(),
                                                file=f"<replay {name} {day.date()}>")
                        ingested += r.report.accepted
                took("ingest", t0)
            out = loop.tick(ws, lp, model_name, day.to_pydatetime(), policy=pol,
                            write_report=False)
            for stage, s in out.get("seconds", {}).items():
                seconds[stage] = round(seconds.get(stage, 0.0) + s, 3)
            t0 = time.perf_counter()
            targets = [day + pd.Timedelta(days=i) for i in
                       (range(1, hdays + 1) if day == day0 else [hdays])]
            keys = entities or _stored_entities(predictor, model_name)
            rows = [{model.entity.key: e, _time_col(lp, model): str(tt.date())}
                    for e in keys for tt in targets]
            predictor.refresh()  # the registry may have changed within the second
            answer = predictor.predict(model_name, rows, partial=True) if rows else \
                {"predictions": []}
            predictor.log.flush()
            took("serve", t0)
            errors = [p["error"] for p in answer["predictions"] if p.get("error")]
            days.append({"date": str(day.date()), "ingested": ingested,
                         "served": len(answer["predictions"]) - len(errors),
                         "serve_errors": len(errors), "serve_error": errors[:1],
                         "tick": out})
            day += pd.Timedelta(days=1)
    finally:
        predictor.close()
    step("writing the timeline")
    t0 = time.perf_counter()
    tl = timeline(ws, lp, model_name, days, parsed, pol, day0, last)
    tl["folds"] = lp.project.model(model_name).evaluation.folds
    tl["workspace"] = str(ws.root)
    took("report", t0)
    tl["seconds"] = {"total": round(time.perf_counter() - started, 1), **seconds}
    paths = write_timeline(ws, tl)
    tl.update(paths)
    return tl


def _with_folds(loaded: LoadedProject, model_name: str, folds: int | None) -> LoadedProject:
    if folds is None:
        return loaded
    model = loaded.project.model(model_name)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise TuesdayError(f"--folds must be a whole number >= 1. Got {folds!r}.",
                           fix="Pass e.g. --folds 4.")
    if not isinstance(model.evaluation, Backtest):
        raise TuesdayError(f"--folds applies to a Backtest; model {model_name!r} uses "
                           f"{type(model.evaluation).__name__}.", fix="Drop --folds.")
    m = dataclasses.replace(model, evaluation=dataclasses.replace(model.evaluation,
                                                                  folds=folds))
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
    rows = predictor.conn.execute("SELECT entity FROM online_features WHERE model = ? "
                                  "ORDER BY entity", (model_name,)).fetchall()
    return [str(r[0]) for r in rows]


def _time_col(loaded: LoadedProject, model: Model) -> str:
    tcol = loaded.project.source(model.label_source).time
    assert tcol is not None
    return tcol


# ------------------------------------------------------------------------ timeline


def timeline(ws: Workspace, loaded: LoadedProject, model_name: str,
             days: list[dict[str, Any]], shocks: Sequence[Shock], policy: Policy,
             start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """The replay's timeline: per-target accuracy (daily and rolling) against the
    baselines, per-day loop outcomes, events, and what happened after each shock."""
    model = loaded.project.model(model_name)
    acc = _accuracy(ws, loaded, model)
    events: list[dict[str, Any]] = []
    for s in shocks:
        events.append({"date": str(pd.Timestamp(s.start).date()), "kind": "shock",
                       "text": s.describe()})
    per_day = []
    for d in days:
        t = d["tick"]
        mon = t.get("monitor") or {}
        row = {"date": d["date"], "status": t["status"],
               "monitor": mon.get("status"), "drift_share": mon.get("drift_share"),
               "drifted": mon.get("drifted_columns", []),
               "production_version": t.get("production_version"),
               "reasons": t["reasons"], "held": t.get("held"),
               "retrained": (t["retrained"] or {}).get("version"),
               "promoted": t.get("promoted"), "awaiting_approval": t.get("awaiting_approval"),
               "alerts": [a["kind"] for a in t["alerts"] if a["count"] == 1],
               "served": d["served"], "serve_errors": d["serve_errors"],
               "ingested": d["ingested"]}
        per_day.append(row)
        for a in t["alerts"]:
            if a["count"] == 1:  # a new alert, not another occurrence of an open one
                events.append({"date": d["date"], "kind": "alert", "alert": a["kind"],
                               "severity": a["severity"], "text": a["title"]})
        for r in t.get("resolved_alerts", []):
            events.append({"date": d["date"], "kind": "resolved", "alert": r["kind"],
                           "text": f"{r['kind']} alert resolved: {r['note']}"})
        if t["retrained"]:
            r = t["retrained"]
            events.append({"date": d["date"], "kind": "retrain", "version": r["version"],
                           "text": f"trained v{r['version']} ({'; '.join(t['reasons'])}); "
                                   f"backtest lift over {r['best_baseline']} "
                                   f"{r['lift']:.1%}"})
        if t.get("promoted"):
            events.append({"date": d["date"], "kind": "promotion", "version": t["promoted"],
                           "text": f"v{t['promoted']} promoted to production"})
        if t.get("awaiting_approval"):
            events.append({"date": d["date"], "kind": "awaiting_approval",
                           "version": t["awaiting_approval"],
                           "text": f"v{t['awaiting_approval']} left as a candidate awaiting "
                                   "approval"})
        if t["status"] == "retrain_failed":
            events.append({"date": d["date"], "kind": "retrain_failed", "text": t["error"]})
    events.sort(key=lambda e: e["date"])
    return {
        "model": model_name, "start": str(start.date()), "end": str(end.date()),
        "policy": policy.to_dict(), "shocks": [_shock_summary(s, per_day, acc, model)
                                               for s in shocks],
        "metric": "wape", "rolling_days": ROLLING_DAYS,
        "baselines": [b.name for b in model.baselines],
        "summary": {
            "days": len(per_day),
            "retrains": sum(1 for d in per_day if d["retrained"]),
            "promotions": sum(1 for d in per_day if d["promoted"]),
            "alerts": sum(len(d["alerts"]) for d in per_day),
            "served": sum(d["served"] for d in per_day),
            "serve_errors": sum(d["serve_errors"] for d in per_day),
            "versions": [v["version"] for v in registry.versions(ws, model_name)],
            "accuracy": _overall(acc, model),
        },
        "days": per_day, "events": events, "accuracy": acc.to_dict(orient="records"),
    }


def _accuracy(ws: Workspace, loaded: LoadedProject, model: Model) -> pd.DataFrame:
    """Per target day: actual, served prediction and baselines, with rolling WAPE."""
    logged = read_log(ws, model.name)
    cols = ["date", "version", "actual", "prediction", *(b.name for b in model.baselines)]
    if logged.empty:
        return pd.DataFrame(columns=cols)
    logged = logged[logged["variant"] != "shadow"]
    logged = logged.sort_values("served_at").drop_duplicates(["entity", "target_time"],
                                                             keep="last")
    src = loaded.project.source(model.label_source)
    labels = tables.read_table(ws, src).to_pandas()
    key, tcol = model.entity.key, src.time
    assert tcol is not None
    labels = labels[[key, tcol, model.target]].rename(
        columns={key: "entity", tcol: "target_time", model.target: "actual"})
    labels["entity"] = labels["entity"].astype(str)
    j = logged.merge(labels, on=["entity", "target_time"], how="left")
    bl = pd.DataFrame([json.loads(s) for s in j["baselines"]], index=j.index)
    names = [b.name for b in model.baselines if b.name in bl.columns]
    j = pd.concat([j, bl[names]], axis=1)
    j["date"] = pd.to_datetime(j["target_time"]).dt.normalize()
    have = j[j["actual"].notna()]
    per = []
    for date, g in j.groupby("date", sort=True):
        row: dict[str, Any] = {"date": date, "version": int(g["version"].max()),
                               "actual": _sum_or_none(g["actual"]),
                               "prediction": _sum_or_none(g["prediction"])}
        for n in names:
            row[n] = _sum_or_none(g[n])
        per.append(row)
    frame = pd.DataFrame(per)
    # rolling WAPE over the last ROLLING_DAYS target days with ground truth
    err = have.assign(abs_actual=have["actual"].abs(),
                      e_model=(have["prediction"] - have["actual"]).abs(),
                      **{f"e_{n}": (have[n] - have["actual"]).abs() for n in names})
    daily = err.groupby("date")[["abs_actual", "e_model", *(f"e_{n}" for n in names)]].sum()
    daily = daily.reindex(pd.date_range(frame["date"].min(), frame["date"].max(), freq="D"))
    roll = daily.rolling(f"{ROLLING_DAYS}D", min_periods=1).sum()
    cnt = daily["abs_actual"].notna().astype(int).rolling(f"{ROLLING_DAYS}D").sum()
    ok = (cnt >= ROLLING_DAYS // 2) & (roll["abs_actual"] > 0)
    frame = frame.set_index("date")
    frame["wape"] = (roll["e_model"] / roll["abs_actual"]).where(ok)
    for n in names:
        frame[f"wape_{n}"] = (roll[f"e_{n}"] / roll["abs_actual"]).where(ok)
    frame = frame.reset_index()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return frame.replace({np.nan: None})


def _sum_or_none(s: pd.Series) -> float | None:
    s = s.dropna()
    return float(s.sum()) if len(s) else None


def _wape(acc: pd.DataFrame, col: str, lo: str, hi: str) -> float | None:
    """WAPE of ``col`` over the target days in ``[lo, hi)`` that have ground truth."""
    if acc.empty or col not in acc.columns:
        return None
    w = acc[(acc["date"] >= lo) & (acc["date"] < hi) & acc["actual"].notna()
            & acc[col].notna()]
    if w.empty:
        return None
    denom = w["actual"].astype(float).abs().sum()
    return float((w[col].astype(float) - w["actual"].astype(float)).abs().sum() / denom) \
        if denom else None


def _best(acc: pd.DataFrame, model: Model, lo: str, hi: str) -> tuple[str | None, float | None]:
    vals: dict[str, float] = {}
    for b in model.baselines:
        v = _wape(acc, b.name, lo, hi)
        if v is not None:
            vals[b.name] = v
    if not vals:
        return None, None
    name = min(vals, key=lambda k: vals[k])
    return name, vals[name]


def _overall(acc: pd.DataFrame, model: Model) -> dict[str, Any]:
    lo, hi = "0000", "9999"
    name, value = _best(acc, model, lo, hi)
    return {"wape": _wape(acc, "prediction", lo, hi), "best_baseline": name,
            "baseline_wape": value,
            "days_with_ground_truth": int(acc["actual"].notna().sum()) if len(acc) else 0}


def _shock_summary(s: Shock, days: list[dict[str, Any]], acc: pd.DataFrame,
                   model: Model) -> dict[str, Any]:
    """When the loop noticed the shock, what it did, and whether accuracy came back."""
    start = pd.Timestamp(s.start)
    d0 = str(start.date())
    out: dict[str, Any] = {**_shock_dict(s), "first_alert": None, "first_retrain": None,
                           "first_promotion": None}
    after = [d for d in days if d["date"] >= d0]
    alert = next((d for d in after if d["alerts"]), None)
    if alert is not None:
        out["first_alert"] = {"date": alert["date"], "kinds": alert["alerts"],
                              "days_after": (pd.Timestamp(alert["date"]) - start).days}
    retrain = next((d for d in after if d["retrained"]), None)
    if retrain is not None:
        out["first_retrain"] = {"date": retrain["date"], "version": retrain["retrained"],
                                "reasons": retrain["reasons"],
                                "days_after": (pd.Timestamp(retrain["date"]) - start).days}
    promo = next((d for d in after if d["promoted"]), None)
    if promo is not None:
        out["first_promotion"] = {"date": promo["date"], "version": promo["promoted"],
                                  "days_after": (pd.Timestamp(promo["date"]) - start).days}
    day = pd.Timedelta(days=1)

    def window(lo: pd.Timestamp, hi: pd.Timestamp) -> dict[str, Any]:
        a, b = str(lo.date()), str(hi.date())
        name, value = _best(acc, model, a, b)
        return {"from": a, "to": b, "wape": _wape(acc, "prediction", a, b),
                "best_baseline": name, "baseline_wape": value}

    out["before"] = window(start - 28 * day, start)
    out["during"] = window(start, start + ROLLING_DAYS * day)
    last = pd.Timestamp(acc["date"].max()) if len(acc) else start
    out["after"] = window(last - 27 * day, last + day)
    # recovered: the rolling WAPE back within RECOVERY x its level before the shock
    out["recovered_on"] = None
    before = out["before"]["wape"]
    if before is not None and len(acc) and "wape" in acc.columns:
        later = acc[(acc["date"] >= str((start + ROLLING_DAYS * day).date()))
                    & acc["wape"].notna()]
        back = later[later["wape"].astype(float) <= RECOVERY * before]
        if len(back):
            out["recovered_on"] = {
                "date": back["date"].iloc[0], "wape": float(back["wape"].iloc[0]),
                "days_after": (pd.Timestamp(back["date"].iloc[0]) - start).days}
    out["recovered"] = out["recovered_on"] is not None
    return out


# ------------------------------------------------------------------------- reports


def write_timeline(ws: Workspace, tl: dict[str, Any]) -> dict[str, str]:
    """Write the timeline as JSON and as a self-contained HTML page."""
    base = ws.reports / f"replay-{tl['model']}-{tl['start']}-{tl['end']}"
    jp, hp = base.with_suffix(".json"), base.with_suffix(".html")
    paths = {"report_json": str(jp), "report_html": str(hp)}
    jp.write_text(json.dumps({**tl, **paths}, indent=1, default=str))
    hp.write_text(render_timeline(tl))
    return paths


_COLORS = {"prediction": "#1f5fbf", "actual": "#222", "wape": "#1f5fbf"}
_BASELINE_COLORS = ("#d9822b", "#3a9d5d", "#8e44ad", "#b03a2e")
_EVENT_COLORS = {"shock": "#b00", "alert": "#e67e22", "resolved": "#f5cba7",
                 "retrain": "#7f8c8d",
                 "promotion": "#27ae60", "awaiting_approval": "#8e44ad",
                 "retrain_failed": "#c0392b"}


def render_timeline(tl: dict[str, Any]) -> str:
    """A self-contained HTML page (inline SVG, no scripts, no network) of a timeline."""
    e = html.escape
    acc = tl["accuracy"]
    dates = [r["date"] for r in acc]
    bls = tl["baselines"]
    markers = [(ev["date"], _EVENT_COLORS.get(ev["kind"], "#999"), ev["text"])
               for ev in tl["events"]]
    s = tl["summary"]
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>Replay {e(tl['model'])} {e(tl['start'])} to {e(tl['end'])}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        ".k{display:inline-block;width:1em;height:.6em;margin:0 .3em}"
        "svg{background:#fff;border:1px solid #eee}</style>",
        f"<h1>Replay of {e(tl['model'])}: {e(tl['start'])} to {e(tl['end'])}</h1>",
        f"<p>{s['days']} days; {s['served']} predictions served ({s['serve_errors']} "
        f"without features); {s['retrains']} retrain(s), {s['promotions']} promotion(s), "
        f"{s['alerts']} new alert(s); versions {', '.join(map(str, s['versions']))}. "
        f"Backtest folds per training: {tl.get('folds')}.</p>",
    ]
    a = s["accuracy"]
    if a["wape"] is not None:
        parts.append(f"<p>Accuracy of what was served over {a['days_with_ground_truth']} "
                     f"days with ground truth: WAPE {a['wape']:.3f}; best baseline "
                     f"{e(str(a['best_baseline']))} {_f(a['baseline_wape'])}.</p>")
    parts.append("<h2>Policy</h2><p>" + e(", ".join(
        f"{k}={v}" for k, v in tl["policy"].items())) + "</p>")
    if tl["shocks"]:
        parts.append("<h2>Shocks</h2><table><tr><th>shock</th><th>first alert</th>"
                     "<th>first retrain</th><th>first promotion</th><th>WAPE before</th>"
                     "<th>first 14 days</th><th>last 28 days</th><th>recovered (rolling WAPE "
                     f"within {RECOVERY:g}x of before)</th></tr>")
        for sh in tl["shocks"]:
            def ev(x: dict[str, Any] | None, what: str = "") -> str:
                if not x:
                    return "none"
                return f"{x['date']} (+{x['days_after']} d){what}"
            fa = sh["first_alert"]
            parts.append(
                f"<tr><td>{e(sh['text'])}</td>"
                f"<td>{e(ev(fa, ': ' + ', '.join(fa['kinds']) if fa else ''))}</td>"
                f"<td>{e(ev(sh['first_retrain']))}</td><td>{e(ev(sh['first_promotion']))}"
                f"</td><td>{_win(sh['before'])}</td><td>{_win(sh['during'])}</td>"
                f"<td>{_win(sh['after'])}</td><td>{e(ev(sh['recovered_on']))}</td>"
                "</tr>")
        parts.append("</table>")
    parts.append("<h2>Actual, served forecast and baselines (by target day)</h2>")
    series = [("actual", _COLORS["actual"], [r["actual"] for r in acc]),
              ("served forecast", _COLORS["prediction"], [r["prediction"] for r in acc])]
    series += [(b, _BASELINE_COLORS[i % 4], [r.get(b) for r in acc])
               for i, b in enumerate(bls)]
    parts.append(svg_chart(dates, series, markers))
    parts.append(f"<h2>Rolling {tl['rolling_days']}-day WAPE (lower is better)</h2>")
    series = [("model", _COLORS["wape"], [r.get("wape") for r in acc])]
    series += [(b, _BASELINE_COLORS[i % 4], [r.get(f"wape_{b}") for r in acc])
               for i, b in enumerate(bls)]
    parts.append(svg_chart(dates, series, markers))
    parts.append("<h2>Share of served features drifted (last "
                 f"{e(str(tl['policy']['drift_window']))}, per tick)</h2>")
    ddates = [d["date"] for d in tl["days"]]
    parts.append(svg_chart(ddates, [("drift share", "#c0392b",
                                     [d["drift_share"] for d in tl["days"]])], markers,
                           y_min=0.0, y_max=1.0, threshold=0.5))
    parts.append("<p>" + " ".join(f"<span class=k style='background:{c}'></span>{e(k)}"
                                  for k, c in _EVENT_COLORS.items()) + " (vertical lines)</p>")
    parts.append("<h2>Events</h2><table><tr><th>date</th><th>kind</th><th>what</th></tr>")
    for ev_ in tl["events"]:
        parts.append(f"<tr><td>{e(ev_['date'])}</td><td>{e(ev_['kind'])}"
                     f"{(' ' + e(ev_['alert'])) if ev_.get('alert') else ''}</td>"
                     f"<td>{e(str(ev_['text']))}</td></tr>")
    parts.append("</table>")
    if tl.get("seconds"):
        parts.append("<h2>Where the time went (seconds)</h2><table>" + "".join(
            f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in tl["seconds"].items())
            + "</table>")
    return "\n".join(parts)


def _f(v: float | None) -> str:
    return "&ndash;" if v is None else f"{v:.3f}"


def _win(w: dict[str, Any] | None) -> str:
    if not w:
        return "&ndash;"
    return (f"{_f(w['wape'])} (baseline {html.escape(str(w['best_baseline']))} "
            f"{_f(w['baseline_wape'])})")


def svg_chart(dates: Sequence[str], series: Sequence[tuple[str, str, Sequence[Any]]],
              markers: Sequence[tuple[str, str, str]] = (), *, width: int = 960,
              height: int = 240, y_min: float | None = None, y_max: float | None = None,
              threshold: float | None = None) -> str:
    """An inline SVG line chart over days; ``None`` values leave gaps; markers are
    vertical lines (with a tooltip) at a day."""
    e = html.escape
    if not dates:
        return "<p>No data.</p>"
    left, right, top, bottom = 50, 10, 10, 40
    x0 = pd.Timestamp(dates[0])
    span = max((pd.Timestamp(dates[-1]) - x0).days, 1)
    vals = [float(v) for _, _, ys in series for v in ys if v is not None and np.isfinite(v)]
    lo = y_min if y_min is not None else min([0.0, *vals])
    hi = y_max if y_max is not None else (max(vals) if vals else 1.0)
    hi = hi if hi > lo else lo + 1.0

    def x(d: str) -> float:
        return left + (pd.Timestamp(d) - x0).days / span * (width - left - right)

    def y(v: float) -> float:
        return top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' role='img'>"]
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
                   "stroke='#eee'/>"
                   f"<text x='{left - 4}' y='{y(v) + 4:.1f}' font-size='10' "
                   f"text-anchor='end'>{v:.3g}</text>")
    for i in range(7):
        d = str((x0 + pd.Timedelta(days=round(span * i / 6))).date())
        out.append(f"<text x='{x(d):.1f}' y='{height - bottom + 14}' font-size='10' "
                   f"text-anchor='middle'>{d}</text>")
    if threshold is not None:
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{y(threshold):.1f}' "
                   f"y2='{y(threshold):.1f}' stroke='#c0392b' stroke-dasharray='4 3'/>")
    for d, color, text in markers:
        if dates[0] <= d <= dates[-1]:
            out.append(f"<line x1='{x(d):.1f}' x2='{x(d):.1f}' y1='{top}' "
                       f"y2='{height - bottom}' stroke='{color}' stroke-width='1.5' "
                       f"opacity='.7'><title>{e(d)}: {e(text)}</title></line>")
    for name, color, ys in series:
        path, pen = [], "M"
        for d, v in zip(dates, ys, strict=True):
            if v is None or not np.isfinite(float(v)):
                pen = "M"
                continue
            path.append(f"{pen}{x(d):.1f},{y(float(v)):.1f}")
            pen = "L"
        if path:
            out.append(f"<path d='{' '.join(path)}' fill='none' stroke='{color}' "
                       f"stroke-width='1.3'><title>{e(name)}</title></path>")
    lx = left
    for name, color, _ in series:
        out.append(f"<rect x='{lx}' y='{height - 14}' width='10' height='6' fill='{color}'/>"
                   f"<text x='{lx + 14}' y='{height - 8}' font-size='11'>{e(name)}</text>")
        lx += 20 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)

