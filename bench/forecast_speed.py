"""Training time: tuesday vs mlforecast + LightGBM on a SYNTHETIC panel, and retraining
time on a sliding window as history grows.

Part 1, one global model on the whole panel. The panel is synthetic (seeded): 500 series
x 730 days with a trend, weekly and yearly seasonality and noise, 20% of them intermittent
(mostly zeros). Both engines build the same features (lags 7/14/21/28, rolling means 7
and 28 at lag 7, day of week / day of year / month) and fit one LightGBM model with
tuesday's LightGBM defaults (400 rounds, 2 threads, seed 7) on the same 365,000 rows
(mlforecast with ``dropna=False``, as tuesday keeps rows whose early lags are missing).
- tuesday, through its real API: the panel is ingested into a temporary workspace
  (``tables.ingest_frame``, not timed), a ``Model`` is declared in a small ``Project``
  built in code; timed: ``training.training_set`` (point-in-time features from the
  versioned table) + ``training.fit``. The full ``training.train`` (backtest of 4 folds,
  baselines, registry) is timed once and reported, not compared.
- mlforecast (its own virtualenv, pandas < 3): ``MLForecast.preprocess`` +
  ``fit_models``, which is what ``MLForecast.fit`` does, from a DataFrame in memory.
Rounds alternate between the engines; the table shows the best and the median round.
Goal: tuesday within 1.2x of mlforecast. Each round also times ``training_set`` with the
lag and window features computed by the SQL used before (``features._FAST_WINDOWS =
False``, the fallback path), after checking that it gives the identical frame, so the
old and new paths are compared in the same run.

Part 2, sliding window: a 50-series panel (synthetic, same generator) with 3, 5, 7 and
10 years of history; ``Model(window="730d")``; time of ``training_set`` + ``fit`` on the
window (what a daily retrain does) and of the full ``train``. Goal: flat in history.
The largest size is profiled with pyinstrument (HTML under ``bench/.cache/speed/``).

    python bench/forecast_speed.py            # ~6 min on 2 cores
    python bench/forecast_speed.py --small    # 100 series, quick check

``OMP_WAIT_POLICY=PASSIVE`` is set unless the environment sets it: on a shared 2-core
machine OpenMP's spin-wait makes 2-thread LightGBM many times slower, in both engines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

from tuesday.data import tables
from tuesday.project import (
    Backtest,
    Baseline,
    Column,
    Contract,
    Entity,
    LoadedProject,
    Model,
    Project,
    Source,
    calendar,
    check_project,
    duration,
    lag,
    window,
)
from tuesday.train import training
from tuesday.workspace import open_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mlforecast_side import CACHE, run_side

CONFIG: dict[str, Any] = {
    "series": 500,
    "days": 730,
    "intermittent": 0.2,  # share of intermittent series
    "end": "2024-12-31",
    "seed": 0,
    "model_seed": 7,
    "repeats": 3,
    "horizon_days": 7,
    "lags": [7, 14, 21, 28],
    "lag_transforms": {7: [("mean", 7), ("mean", 28)]},
    "date_features": ["dayofweek", "dayofyear", "month"],
    # part 2
    "window_series": 50,
    "window_years": [3, 5, 7, 10],
    "window": "730d",
    "window_repeats": 3,
    "backtest_folds": 4,
}
SMALL = {"series": 100, "repeats": 2, "window_years": [3, 10], "window_repeats": 1}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def make_panel(series: int, days: int, *, seed: int, end: str,
               intermittent: float) -> pd.DataFrame:
    """A SYNTHETIC daily panel (item, date, sales >= 0), seeded.

    Each series: a level (log-normal), a linear trend, a weekly profile, a yearly sine
    with its own phase, and multiplicative noise; an ``intermittent`` share of the series
    are mostly zeros (demand on 5-30% of days, Poisson sizes).
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=end, periods=days, freq="D")
    t = np.arange(days) / 365.25
    dow = dates.day_of_week.to_numpy()
    doy = dates.day_of_year.to_numpy()
    level = rng.lognormal(3.0, 1.0, series)[:, None]
    trend = rng.normal(0.0, 0.15, series)[:, None]
    weekly = rng.normal(0.0, 0.25, (series, 7))[:, dow]
    amp = rng.uniform(0.0, 0.4, series)[:, None]
    phase = rng.uniform(0, 2 * np.pi, series)[:, None]
    mean = (level * np.clip(1 + trend * t, 0.2, None) * np.exp(weekly)
            * (1 + amp * np.sin(2 * np.pi * doy / 365.25 + phase)))
    y = mean * rng.lognormal(0.0, 0.15, (series, days))
    sparse = rng.random(series) < intermittent
    rate = rng.uniform(0.05, 0.3, series)[:, None]
    hits = rng.random((series, days)) < rate
    small = rng.poisson(np.minimum(mean, 5.0) + 1.0)
    y = np.where(sparse[:, None], np.where(hits, small, 0.0), np.round(y, 2))
    items = np.array([f"item_{i:04d}" for i in range(series)])
    return pd.DataFrame({"item": np.repeat(items, days), "date": np.tile(dates, series),
                         "sales": y.ravel().astype(float)})


# ------------------------------------------------------------------------ tuesday

ITEM = Entity("item")
SALES = Source("sales", Contract((
    Column("item", "str", nullable=False),
    Column("date", "date", nullable=False),
    Column("sales", "float", nullable=False, min=0),
), unique=("item", "date")), time="date", entity=ITEM)


def make_project(cfg: dict[str, Any], window_: str | None = None) -> LoadedProject:
    """The same features as mlforecast's, declared the tuesday way."""
    h = f"{cfg['horizon_days']}d"
    feats = (
        *(lag("sales", "sales", f"{k}d") for k in cfg["lags"]),
        *(window("sales", "sales", f"{w}d", lag=f"{g}d", agg=agg)
          for g, specs in cfg["lag_transforms"].items() for agg, w in specs),
        calendar("day_of_week"), calendar("day_of_year"), calendar("month"),
    )
    model = Model(
        name="demand_7d", entity=ITEM, label_source="sales", target="sales", horizon=h,
        features=feats,
        baselines=(Baseline("seasonal_naive", "seasonal_naive", season=7),),
        evaluation=Backtest(folds=cfg["backtest_folds"], step="28d"),
        window=window_, seed=cfg["model_seed"])
    project = Project("bench_speed", sources=(SALES,), models=(model,))
    problems = check_project(project)
    if problems:
        raise SystemExit("\n".join(problems))
    return LoadedProject(project, Path(__file__).resolve(), None)


def ingest(panel: pd.DataFrame, folder: Path, as_of: dt.datetime) -> Any:
    ws = open_workspace(folder)
    res = tables.ingest_frame(ws, SALES, panel, as_of=as_of)
    assert res.report.quarantined == 0, res.report.to_dict()
    return ws


def tuesday_round(ws: Any, loaded: LoadedProject, as_of: dt.datetime) -> dict[str, Any]:
    """``training_set`` then ``fit`` on the training window (all rows if none), as
    ``training.train`` fits its final model."""
    model = loaded.project.models[0]
    t0, c0 = time.perf_counter(), time.process_time()
    ts = training.training_set(ws, loaded.project, model, as_of)
    t1, c1 = time.perf_counter(), time.process_time()
    frame = ts.frame
    keep = np.ones(len(frame), bool)
    if model.window:
        keep = (frame[ts.time] > pd.Timestamp(as_of)
                - duration(model.window, what="window")).to_numpy()
    training.fit(model, frame.loc[keep, list(ts.features)],
                 frame.loc[keep, ts.target].to_numpy(dtype=float))
    t2, c2 = time.perf_counter(), time.process_time()
    return {"features": t1 - t0, "fit": t2 - t1, "total": t2 - t0,
            "features_cpu": c1 - c0, "fit_cpu": c2 - c1, "total_cpu": c2 - c0,
            "rows": int(keep.sum()), "feature_rows": len(frame)}


def sql_features_round(ws: Any, loaded: LoadedProject, as_of: dt.datetime
                       ) -> dict[str, Any]:
    """``training_set`` with lag and window features computed by the SQL used before
    (``features._FAST_WINDOWS = False``), to compare in the same run; the values are
    checked to be identical to the default path's."""
    from tuesday.data import features as F

    model = loaded.project.models[0]
    F._FAST_WINDOWS = False
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        ts = training.training_set(ws, loaded.project, model, as_of)
        t1, c1 = time.perf_counter(), time.process_time()
    finally:
        F._FAST_WINDOWS = True
    fast = training.training_set(ws, loaded.project, model, as_of)
    pd.testing.assert_frame_equal(ts.frame, fast.frame, check_exact=True)
    return {"features": t1 - t0, "features_cpu": c1 - c0}


def full_train(ws: Any, loaded: LoadedProject, as_of: dt.datetime) -> tuple[float, float]:
    """Wall and CPU seconds of the full ``training.train``."""
    t0, c0 = time.perf_counter(), time.process_time()
    training.train(ws, loaded, loaded.project.models[0].name, as_of)
    return time.perf_counter() - t0, time.process_time() - c0


# ------------------------------------------------------------------------- report


def fmt_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])


def summary(rounds: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [r[key] for r in rounds]
    return min(values), statistics.median(values)


# --------------------------------------------------------------------------- parts


def part_panel(cfg: dict[str, Any], folder: Path) -> list[str]:
    as_of = dt.datetime.fromisoformat(cfg["end"])
    panel = make_panel(cfg["series"], cfg["days"], seed=cfg["seed"], end=cfg["end"],
                       intermittent=cfg["intermittent"])
    panel.rename(columns={"item": "unique_id", "date": "ds", "sales": "y"}).to_parquet(
        folder / "panel.parquet")
    loaded = make_project(cfg)
    model = loaded.project.models[0]
    params = training.learner_params(model)
    side_cfg = {**cfg, "folder": str(folder), "repeats": 1, "dropna": False,
                "seed": model.seed,
                "lgb_params": {k: v for k, v in params.items() if k != "seed"}}
    tue: list[dict[str, Any]] = []
    old: list[dict[str, Any]] = []
    mlf: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="tuesday-bench-") as tmp:
        t0 = time.perf_counter()
        ws = ingest(panel, Path(tmp) / "ws", as_of)
        ingest_s = time.perf_counter() - t0
        # warm-up on a small workspace (imports, DuckDB, LightGBM), as mlforecast's side
        warm = panel[panel["item"].isin(panel["item"].unique()[:5])]
        tuesday_round(ingest(warm, Path(tmp) / "warm", as_of), loaded, as_of)
        for r in range(cfg["repeats"]):
            log(f"panel round {r + 1}/{cfg['repeats']}: tuesday")
            tue.append(tuesday_round(ws, loaded, as_of))
            log(f"panel round {r + 1}/{cfg['repeats']}: tuesday training_set, SQL path")
            old.append(sql_features_round(ws, loaded, as_of))
            log(f"panel round {r + 1}/{cfg['repeats']}: mlforecast")
            side = run_side("speed", side_cfg, log=log)
            mlf.extend(side["rounds"])
            versions = side["versions"]
        log("tuesday: full training.train (backtest, baselines, registry)")
        full, _ = full_train(ws, loaded, as_of)
        log("tuesday: profiling one round")
        prof = profile(lambda: tuesday_round(ws, loaded, as_of),
                       folder / "profile-panel-round.html", threshold=0.02)
        log("tuesday: timing each feature query, and variants")
        queries = query_times(ws, loaded, as_of, variants=True)
    rows = []
    for name, key in (("features", "features"), ("LightGBM fit", "fit"),
                      ("features + fit", "total")):
        tb, tm = summary(tue, key)
        mb, mm = summary(mlf, key)
        cb, _ = summary(tue, f"{key}_cpu")
        mc, _ = summary(mlf, f"{key}_cpu")
        rows.append([name, f"{tb:.2f}", f"{mb:.2f}", f"{tb / mb:.2f}x",
                     f"{tm:.2f}", f"{mm:.2f}", f"{tm / mm:.2f}x",
                     f"{cb:.2f}", f"{mc:.2f}", f"{cb / mc:.2f}x"])
    # the features as computed before (lags and windows in DuckDB SQL), same rounds
    tb, tm = summary(old, "features")
    mb, mm = summary(mlf, "features")
    cb, _ = summary(old, "features_cpu")
    mc, _ = summary(mlf, "features_cpu")
    rows.append(["features, previous SQL path", f"{tb:.2f}", f"{mb:.2f}", f"{tb / mb:.2f}x",
                 f"{tm:.2f}", f"{mm:.2f}", f"{tm / mm:.2f}x", f"{cb:.2f}", f"{mc:.2f}",
                 f"{cb / mc:.2f}x"])
    tb, _ = summary(tue, "total")
    mb, _ = summary(mlf, "total")
    cb, _ = summary(tue, "total_cpu")
    mc, _ = summary(mlf, "total_cpu")
    n = cfg["series"] * cfg["days"]
    return [
        f"SYNTHETIC panel: {cfg['series']} series x {cfg['days']} days = {n:,} rows "
        f"({cfg['intermittent']:.0%} intermittent), seed {cfg['seed']}; features: lags "
        f"{cfg['lags']}, rolling mean {[w for _, w in cfg['lag_transforms'][7]]} at lag 7, "
        f"{', '.join(cfg['date_features'])}; LightGBM "
        f"{params['num_boost_round']} rounds, {params['num_threads']} threads, seed "
        f"{model.seed}; rows fitted: tuesday {tue[0]['rows']:,}, mlforecast "
        f"{mlf[0]['rows']:,}; {cfg['repeats']} rounds each, alternating.",
        "",
        fmt_table(rows, ["step (seconds)", "tuesday best", "mlforecast best",
                         "ratio best", "tuesday median", "mlforecast median",
                         "ratio median", "tuesday CPU s (best)", "mlforecast CPU s (best)",
                         "ratio CPU"]),
        "",
        f"Goal: tuesday features + fit within 1.2x of mlforecast: best-round wall ratio "
        f"{tb / mb:.2f}x, CPU ratio {cb / mc:.2f}x -> "
        f"{'MET' if max(tb / mb, cb / mc) <= 1.2 else 'NOT MET'}.",
        f"Not compared: ingesting the panel into the workspace (contract validation, Delta "
        f"append) {ingest_s:.1f} s; full training.train with a {cfg['backtest_folds']}-"
        f"fold backtest, baselines and registry {full:.1f} s.",
        "mlforecast side: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        "Where tuesday's time goes in one round, training_set + fit (pyinstrument, frames "
        "over 2%):",
        "",
        *prof,
        "",
        "Inside feature_frame, each lag and window step on its own (diagnostic, best of 3), "
        "and the same group through the SQL it ran before (now only the fallback for "
        "column types the numpy path does not handle), compared value by value:",
        "",
        *query_table(queries),
    ]


def part_window(cfg: dict[str, Any], folder: Path) -> list[str]:
    end = cfg["end"]
    as_of = dt.datetime.fromisoformat(end)
    loaded = make_project(cfg, window_=cfg["window"])
    rows = []
    results = []
    per_size: list[tuple[int, list[dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory(prefix="tuesday-bench-") as tmp:
        for years in cfg["window_years"]:
            days = round(years * 365.25)
            panel = make_panel(cfg["window_series"], days, seed=cfg["seed"], end=end,
                               intermittent=cfg["intermittent"])
            ws = ingest(panel, Path(tmp) / f"ws{years}", as_of)
            log(f"sliding window: {years} years ({len(panel):,} rows)")
            rounds = [tuesday_round(ws, loaded, as_of) for _ in range(cfg["window_repeats"])]
            fulls = [full_train(ws, loaded, as_of) for _ in range(cfg["window_repeats"])]
            full = min(w for w, _ in fulls)
            full_cpu = min(c for _, c in fulls)
            best = {k: min(r[k] for r in rounds)
                    for k in ("features", "fit", "total", "features_cpu", "total_cpu")}
            results.append((years, best, full, full_cpu))
            per_size.append((years, query_times(ws, loaded, as_of, repeats=7,
                                                variants=years == cfg["window_years"][-1])))
            rows.append([str(years), f"{len(panel):,}", f"{rounds[0]['feature_rows']:,}",
                         f"{rounds[0]['rows']:,}", f"{best['features']:.2f}",
                         f"{best['fit']:.2f}", f"{best['total']:.2f}",
                         f"{best['features_cpu']:.2f}", f"{best['total_cpu']:.2f}",
                         f"{full:.2f}", f"{full_cpu:.2f}"])
        biggest = cfg["window_years"][-1]
        ws = open_workspace(Path(tmp) / f"ws{biggest}")
        prof = profile(lambda: training.train(ws, loaded, "demand_7d", as_of),
                       folder / f"profile-train-{biggest}y.html")
    first, last = results[0], results[-1]
    growth = last[1]["total"] / first[1]["total"]
    growth_cpu = last[1]["total_cpu"] / first[1]["total_cpu"]
    growth_ts = last[1]["features_cpu"] / first[1]["features_cpu"]
    growth_full = last[2] / first[2]
    growth_full_cpu = last[3] / first[3]
    return [
        f"SYNTHETIC panel, {cfg['window_series']} series, Model(window="
        f"\"{cfg['window']}\"), same features; best of {cfg['window_repeats']} round(s). "
        "training_set + fit = what a daily retrain does before registering; full train "
        f"adds the {cfg['backtest_folds']}-fold backtest, baselines and registry.",
        "",
        fmt_table(rows, ["years of history", "table rows", "training-set rows (features "
                         "computed)", "rows fitted (window)", "training_set s", "fit s",
                         "training_set + fit s", "training_set CPU s",
                         "training_set + fit CPU s", "full train s", "full train CPU s"]),
        "",
        f"Goal: flat in history ({last[0]} vs {first[0]} years, flat = within 1.2x): "
        f"training_set + fit {growth:.2f}x wall, {growth_cpu:.2f}x CPU (training_set "
        f"alone {growth_ts:.2f}x CPU); full train {growth_full:.2f}x wall, "
        f"{growth_full_cpu:.2f}x CPU -> judged on CPU time (the machine is shared): "
        f"{'MET' if max(growth_cpu, growth_full_cpu) <= 1.2 else 'NOT MET'}.",
        "",
        f"Where the time goes, full training.train at {biggest} years (pyinstrument, "
        "frames over 3% of the run):",
        "",
        *prof,
        "",
        "What grows: each lag and window step of training_set on its own, by years of "
        "history (diagnostic, best of 7 s; the source rows sorted are those some point's "
        "lag or window can reach):",
        "",
        *growth_table(per_size),
        "",
        f"The same steps at {biggest} years, and through the SQL used before:",
        "",
        *query_table(per_size[-1][1]),
    ]


def query_times(ws: Any, loaded: LoadedProject, as_of: dt.datetime, *,
                variants: bool = False, repeats: int = 3) -> list[dict[str, Any]]:
    """DIAGNOSTIC (reads tuesday internals, so it may need updating when they change):
    for the training set's points, the seconds (best of ``repeats``) of each step
    ``features.feature_frame`` runs for the lag and window features: sorting the source
    rows once (``_Rows.prepare``), then each lag and window group on the sorted rows
    (its binary searches uncached). With ``variants``, the same group through the SQL
    that computed it before (``features._sql``, still the fallback for column types the
    numpy path does not handle), checked against it: max |difference| and NaN
    mismatches.
    """
    import duckdb

    from tuesday.data import features as F
    from tuesday.train import baselines

    project = loaded.project
    model = project.models[0]
    ts = training.training_set(ws, project, model, as_of)
    table = tables.read_table(ws, SALES)
    pts = F.points_frame(model, ts.frame[ITEM.key], ts.frame[SALES.time or "date"])
    feats = F._dedupe(model.features + baselines.features(model))
    per_entity = table.num_rows / max(1, len(set(table.column(ITEM.key).to_pylist())))
    con = None
    if variants:
        con = duckdb.connect()
        F._register(con, project, feats, pts, {"sales": table})

    def best(fn: Any) -> tuple[float, Any]:
        secs, res = float("inf"), None
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = fn()
            secs = min(secs, time.perf_counter() - t0)
        return secs, res

    mine = [f for f in feats if f.source == SALES.name]
    secs, rows = best(lambda: F._Rows.prepare(pts, table, SALES, ITEM.key, mine))
    assert rows is not None, "the numpy path does not handle this source"
    out: list[dict[str, Any]] = [{"query": "sort source rows (once)", "seconds": secs,
                                  "points": len(pts), "source_rows": len(rows.comb)}]
    for group, members in F._groups(feats).items():
        kind = group[0]

        def run(kind: str = kind, members: list[Any] = members,
                group: tuple[str, ...] = group) -> Any:
            rows.cache.clear()
            return rows.windows(members, group) if kind == "window" else rows.lags(members)

        secs, res = best(run)
        name = f"window {group[3]} at lag {group[2]}" if kind == "window" else \
            f"{kind} {group[2]}"
        row: dict[str, Any] = {"query": name, "seconds": secs, "points": len(pts)}
        if kind == "window":
            row["pairs_probed"] = len(pts) * per_entity
            row["rows_joined"] = len(pts) * _days_of(group[3])
        if con is not None:
            sql = F._sql(kind, SALES, members, ITEM.key, group)
            s_secs, r = best(lambda sql=sql: con.execute(sql).df())
            r = r.set_index(F.ROW).reindex(np.arange(len(pts)))
            diff, nan = 0.0, 0
            for f in members:
                ref = r[f.name].to_numpy(dtype=float)
                got = np.asarray(res[f.name], dtype=float)
                both = ~np.isnan(ref) & ~np.isnan(got)
                if both.any():
                    diff = max(diff, float(np.max(np.abs(ref[both] - got[both]))))
                nan += int((np.isnan(ref) != np.isnan(got)).sum())
            row["sql"] = (s_secs, diff, nan)
        out.append(row)
    if con is not None:
        con.close()
    return out


def _days_of(value: str) -> int:
    return int(duration(value, what="duration") / pd.Timedelta(days=1))


def query_table(queries: list[dict[str, Any]]) -> list[str]:
    rows = []
    for q in queries:
        sql = q.get("sql")
        rows.append([
            q["query"], f"{q['seconds']:.3f}", f"{q['points']:,}",
            f"{q['source_rows']:,}" if "source_rows" in q else "-",
            f"{q['rows_joined']:,}" if "rows_joined" in q else "-",
            f"{sql[0]:.3f}" if sql else "-",
            f"{sql[0] / q['seconds']:.0f}x" if sql else "-",
            f"{sql[1]:.1g}, {sql[2]}" if sql else "-"])
    return [fmt_table(rows, ["step", "numpy s", "points", "source rows sorted",
                             "rows in windows", "SQL s (before)", "SQL / numpy",
                             "max \\|diff\\|, NaN mismatches"])]


def growth_table(per_size: list[tuple[int, list[dict[str, Any]]]]) -> list[str]:
    names = [q["query"] for q in per_size[0][1]]
    rows = []
    for i, name in enumerate(names):
        row = [name]
        for _, qs in per_size:
            q = qs[i]
            extra = f", {q['source_rows']:,} rows" if "source_rows" in q else ""
            row.append(f"{q['seconds']:.4f}{extra}")
        first, last = per_size[0][1][i]["seconds"], per_size[-1][1][i]["seconds"]
        rows.append([*row, f"{last / first:.1f}x"])
    return [fmt_table(rows, ["step", *(f"{y} years" for y, _ in per_size),
                             f"{per_size[-1][0]} / {per_size[0][0]} years"])]


def profile(fn: Any, html: Path, threshold: float = 0.03) -> list[str]:
    """Run ``fn()`` under pyinstrument; the call tree (frames over ``threshold`` of the
    run) as text lines, and the full profile as HTML in ``html``."""
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    profiler = Profiler(interval=0.005)
    profiler.start()
    fn()
    profiler.stop()
    html.write_text(profiler.output_html())
    session = profiler.last_session
    assert session is not None
    text = ConsoleRenderer(unicode=False, color=False, short_mode=True,
                           processor_options={"filter_threshold": threshold}).render(session)
    lines = [ln.rstrip().removeprefix(".").removeprefix("  ") for ln in text.splitlines()]
    keep = [ln for ln in lines if ln.strip(" .") and not ln.startswith(
        ("pyinstrument", "Profile at", "Recorded", "Samples", "Duration", "CPU", "Program"))]
    return ["```", *keep[:60], "```",
            f"(full profile: {html.relative_to(CACHE.parent.parent)})"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="a quick run on smaller data")
    ap.add_argument("--part", choices=("panel", "window", "both"), default="both")
    args = ap.parse_args(argv)
    cfg = {**CONFIG, **(SMALL if args.small else {})}
    folder = CACHE / "speed"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    out: list[str] = []
    if args.part in ("panel", "both"):
        out += ["### Training time, one model on the whole panel", "", *part_panel(cfg, folder),
                ""]
    if args.part in ("window", "both"):
        out += ["### Retraining on a 730-day sliding window as history grows", "",
                *part_window(cfg, folder), ""]
    out.append(f"tuesday {training._version('tuesday')}, lightgbm "
               f"{training._version('lightgbm')}, pandas {training._version('pandas')}, "
               f"python {platform.python_version()}, {os.cpu_count()} cores, "
               f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; whole run "
               f"{time.perf_counter() - started:.0f} s.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
