"""Forecast accuracy: tuesday vs mlforecast + LightGBM vs seasonal naive, real data.

Clark/Lake daily ridership (thousands of rides), 14 days ahead, rolling origin over the
last two years of the data (as_of 2016-08-28, all history): the example project's model
``ridership_14d`` exactly as declared (features, LightGBM defaults, seed 7, 3650-day
training window, ``Backtest(folds=26, step="28d")``), against the same features in
mlforecast with the same LightGBM parameters and seed, run in its own virtualenv (see
``mlforecast_side.py``).

Same features: lags 14/21/28/35/364 days, rolling mean 7 and 28 and rolling max 28 at
lag 14, day of week / day of year / month, US holiday flag and days to / since the
nearest holiday, home games scheduled that day, and the last temperature known at the
forecast origin. mlforecast's exogenous columns are computed in its own process from the
same tables, and every feature is compared value by value with tuesday's.

What each engine may train on (the one real difference in protocol):
- tuesday's backtest (``gap_horizon``): 26 folds of 28 days; a fold trains on the labels
  known 14 days before its first test day (gap = horizon), so a test day is forecast by
  a model whose newest label is 15 to 42 days old. This is the cadence of a model retrained
  every four weeks.
- mlforecast's ``cross_validation(h=14, n_windows=52, step_size=14, refit=True)``
  (``refit_to_cutoff``): each 14-day window is forecast by a model trained on every label
  up to its cutoff, so the newest label is 1 to 14 days old.
Both protocols give every prediction the same information at the same horizon (all
features are known 14 days ahead, so no recursion); only the freshness of the fitted
model differs. To quantify it each engine is also run on the other's protocol, so the
table has a like-for-like ratio for each. Both use the model's 3650-day training window
(mlforecast: ``input_size`` = 3650 + 364 days of lookback for the 364-day lag).

    python bench/forecast_accuracy.py                  # seed 7 (the spec's), ~6 min
    python bench/forecast_accuracy.py --seeds 7,1,2    # spread over seeds, ~15 min
    python bench/forecast_accuracy.py --expanding      # also mlforecast, all history

The first run creates ``bench/.venv-mlforecast`` (about 2 minutes). LightGBM uses 2
threads in both engines (tuesday's default); on a shared machine the OpenMP spin-wait
makes 2-thread LightGBM many times slower, so ``OMP_WAIT_POLICY=PASSIVE`` is set unless
the environment sets it (it changes speed, not results).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pandas as pd

from tuesday.data import tables
from tuesday.project import Backtest, LoadedProject, Model, duration, load_project
from tuesday.train import training
from tuesday.train.evaluation import mae, rmse
from tuesday.workspace import open_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mlforecast_side import CACHE, lgb_parameters, run_side

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "src/tuesday/examples/ridership/project.py"

CONFIG: dict[str, Any] = {
    "as_of": "2016-08-28",
    "model": "ridership_14d",
    "station": "Clark_Lake",
    # mlforecast's cross-validation: 52 x 14 days = tuesday's 26 x 28 days
    "n_windows": 52,
    "h": 14,
    "step_size": 14,
    # the features of the example's spec, in mlforecast's terms
    "lags": [14, 21, 28, 35, 364],
    "lag_transforms": {14: [("mean", 7), ("mean", 28), ("max", 28)]},
    "date_features": ["dayofweek", "dayofyear", "month"],
    "seeds": [7],
    "expanding": False,
}

#: tuesday feature name -> mlforecast column (exogenous columns keep tuesday's names)
FEATURE_MAP = {
    "rides_lag_14d": "lag14", "rides_lag_21d": "lag21", "rides_lag_28d": "lag28",
    "rides_lag_35d": "lag35", "rides_lag_364d": "lag364",
    "rides_mean_7d_lag_14d": "rolling_mean_lag14_window_size7",
    "rides_mean_28d_lag_14d": "rolling_mean_lag14_window_size28",
    "rides_max_28d_lag_14d": "rolling_max_lag14_window_size28",
    "day_of_week": "dayofweek", "day_of_year": "dayofyear", "month": "month",
    "holiday_is_holiday": "holiday_is_holiday",
    "holiday_days_to_next": "holiday_days_to_next",
    "holiday_days_since_last": "holiday_days_since_last",
    "home_games": "home_games", "temp_last_known": "temp_last_known",
}

GAP, GAP14, REFIT = "gap_horizon", "gap_horizon_14d", "refit_to_cutoff"
#: tuesday's fold layout (gap = horizon): the spec's 26 x 28 days, and 52 x 14 days
GAP_PROTOCOLS = ({"name": GAP, "folds": 26, "step_days": 28},
                 {"name": GAP14, "folds": 52, "step_days": 14})


def n_days(value: str | None) -> int:
    return int(duration(value, what="duration").days) if value else 0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ tuesday


def build_workspace(loaded: LoadedProject, folder: Path, as_of: dt.datetime) -> Any:
    """Ingest every example file known at ``as_of`` into a fresh workspace (as the tests
    and the demo do)."""
    files = loaded.module.example_files(folder / "files", until=as_of.strftime("%Y-%m-%d"))
    ws = open_workspace(folder / "ws")
    for name, path in files.items():
        tables.ingest_file(ws, loaded.project.source(name), path, as_of=as_of)
    return ws


def refit_tasks(model: Model, ts: training.TrainingSet, cfg: dict[str, Any]
                ) -> list[training.FoldTask]:
    """mlforecast's protocol with tuesday's own fold runner: window i trains on the
    labels up to its cutoff (within the model's window) and tests the next 14 days."""
    frame, t = ts.frame, ts.frame[ts.time]
    last = t.max()
    win = duration(model.window, what="window") if model.window else None
    tasks = []
    for i in range(cfg["n_windows"]):
        cut = last - (cfg["n_windows"] - i) * pd.Timedelta(days=cfg["step_size"])
        train = t <= cut
        if win is not None:
            train &= t > cut - win
        test = (t > cut) & (t <= cut + pd.Timedelta(days=cfg["h"]))
        tasks.append(training.FoldTask(model, i, cut.isoformat(), frame.loc[train],
                                       frame.loc[test], ts.features, ts.target, ts.time))
    return tasks


def tuesday_runs(model: Model, ts: training.TrainingSet, cfg: dict[str, Any]
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float], dict[str, Any]]:
    """tuesday's predictions on every protocol for every seed, its baselines, timings
    and the training rows per fold."""
    rows, timings, train_rows = [], {}, {}
    baseline = None
    for seed in cfg["seeds"]:
        m = dataclasses.replace(model, seed=seed)
        for spec in GAP_PROTOCOLS:
            mm = dataclasses.replace(m, evaluation=Backtest(folds=spec["folds"],
                                                            step=f"{spec['step_days']}d"))
            if spec["name"] == GAP:
                assert mm == m, "the example's backtest is no longer 26 folds of 28 days"
            log(f"tuesday: backtest, {spec['folds']} folds of {spec['step_days']} days "
                f"(seed {seed})")
            started = time.perf_counter()
            bt = training.run_backtest(mm, ts)
            timings[f"{spec['name']}/{seed}"] = time.perf_counter() - started
            train_rows[spec["name"]] = [f["train_rows"] for f in bt["folds"]]
            p = bt["predictions"]
            rows.append(pd.DataFrame({"ds": p[ts.time], "y": p[ts.target],
                                      "prediction": p["model"], "protocol": spec["name"],
                                      "seed": seed}))
            if baseline is None:
                baseline = p[[ts.time, ts.target, *(b.name for b in m.baselines)]].rename(
                    columns={ts.time: "ds", ts.target: "y"})
        log(f"tuesday: {cfg['n_windows']} windows refit to the cutoff (seed {seed})")
        started = time.perf_counter()
        results = [training.run_fold(task) for task in refit_tasks(m, ts, cfg)]
        timings[f"{REFIT}/{seed}"] = time.perf_counter() - started
        train_rows[REFIT] = [r[1]["train_rows"] for r in results]
        p = pd.concat([r[0] for r in results], ignore_index=True)
        rows.append(pd.DataFrame({"ds": p[ts.time], "y": p[ts.target],
                                  "prediction": p["model"], "protocol": REFIT, "seed": seed}))
    assert baseline is not None
    return pd.concat(rows, ignore_index=True), baseline, timings, train_rows


def export_inputs(ws: Any, loaded: LoadedProject, ts: training.TrainingSet,
                  folder: Path, station: str) -> None:
    """The tables exactly as tuesday read them (same versions), as Parquet for the
    mlforecast process: the label series, the weather and the game schedule."""
    project = loaded.project
    read = {n: tables.read_table(ws, project.source(n), v).to_pandas()
            for n, v in ts.versions.items()}
    r = read["ridership"]
    r = r[r["station"] == station].sort_values("date")
    pd.DataFrame({"unique_id": station, "ds": r["date"].to_numpy(),
                  "y": r["rides"].to_numpy()}).to_parquet(folder / "series.parquet")
    read["weather"][["date", "available_at", "temp"]].to_parquet(folder / "weather.parquet")
    read["games"][["date", "available_at", "home_games"]].to_parquet(folder / "games.parquet")


# ------------------------------------------------------------------------- report


def feature_parity(ts: training.TrainingSet, mlf: pd.DataFrame, first_test: pd.Timestamp
                   ) -> pd.DataFrame:
    """Per feature: largest absolute difference between the engines' values and the
    number of rows where only one engine has a value, over all rows and test days."""
    missing = [f for f in ts.features if f not in FEATURE_MAP]
    if missing:
        raise SystemExit(f"The example's spec has features this benchmark does not map to "
                         f"mlforecast: {missing}. Update FEATURE_MAP and CONFIG.")
    a = ts.frame[[ts.time, *ts.features]].rename(columns={ts.time: "ds"})
    b = mlf.rename(columns={v: f"mlf:{k}" for k, v in FEATURE_MAP.items()})
    both = a.merge(b, on="ds", how="inner")
    out = []
    for f in ts.features:
        x, y = both[f].to_numpy(float), both[f"mlf:{f}"].to_numpy(float)
        test = (both["ds"] > first_test).to_numpy()
        ok = ~np.isnan(x) & ~np.isnan(y)
        only = np.isnan(x) != np.isnan(y)
        out.append({"feature": f, "mlforecast": FEATURE_MAP[f],
                    "max_abs_diff": float(np.max(np.abs(x[ok] - y[ok]))) if ok.any() else 0,
                    "nan_mismatch_all": int(only.sum()),
                    "nan_mismatch_test": int((only & test).sum())})
    return pd.DataFrame(out)


def score_table(preds: pd.DataFrame, baseline: pd.DataFrame, days: pd.Index
                ) -> pd.DataFrame:
    """RMSE and MAE of every (engine, protocol), seed by seed, on ``days``."""
    rows = []
    for (engine, protocol, seed), g in preds.groupby(["engine", "protocol", "seed"]):
        g = g.set_index("ds").loc[days]
        y, p = g["y"].to_numpy(float), g["prediction"].to_numpy(float)
        rows.append({"engine": engine, "protocol": protocol, "seed": seed,
                     "rmse": rmse(y, p), "mae": mae(y, p)})
    b = baseline.set_index("ds").loc[days]
    for name in [c for c in baseline.columns if c not in ("ds", "y")]:
        y, p = b["y"].to_numpy(float), b[name].to_numpy(float)
        rows.append({"engine": name, "protocol": "-", "seed": 0,
                     "rmse": rmse(y, p), "mae": mae(y, p)})
    return pd.DataFrame(rows)


def fmt_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])


PROTOCOLS = {  # name: (layout, days between the newest training label and a test day)
    GAP: ("26 x 28 d, gap = horizon (tuesday's backtest)", "15-42"),
    GAP14: ("52 x 14 d, gap = horizon", "15-28"),
    REFIT: ("52 x 14 d, refit to cutoff (mlforecast's cross_validation)", "1-14"),
    "refit_to_cutoff_expanding": ("52 x 14 d, refit to cutoff, all history", "1-14"),
}


def report(scores: pd.DataFrame, parity: pd.DataFrame, days: pd.Index,
           train_rows: dict[str, dict[str, list[int]]], timings: dict[str, float],
           versions: dict[str, str], cfg: dict[str, Any], seconds: float,
           same_params: str) -> str:
    agg = (scores.groupby(["engine", "protocol"])
           .agg(rmse=("rmse", "mean"), rmse_sd=("rmse", "std"), mae=("mae", "mean"),
                seeds=("seed", "count")).reset_index())

    def get(engine: str, protocol: str, col: str = "rmse") -> float:
        row = agg[(agg["engine"] == engine) & (agg["protocol"] == protocol)]
        return float(row[col].iloc[0]) if len(row) else float("nan")

    def rmse_text(engine: str, protocol: str) -> str:
        row = agg[(agg["engine"] == engine) & (agg["protocol"] == protocol)].iloc[0]
        sd = f" ± {row['rmse_sd']:.3f}" if row["seeds"] > 1 else ""
        return f"{row['rmse']:.3f}{sd}"

    sn, sn_mae = get("seasonal_naive", "-"), get("seasonal_naive", "-", "mae")
    rows = []
    for protocol, (layout, age) in PROTOCOLS.items():
        for engine in ("tuesday", "mlforecast"):
            if np.isnan(get(engine, protocol)):
                continue
            n = train_rows.get(engine, {}).get(protocol, [])
            rows.append([engine, layout, age, f"{min(n)}-{max(n)}" if n else "?",
                         rmse_text(engine, protocol), f"{get(engine, protocol, 'mae'):.3f}",
                         f"{1 - get(engine, protocol) / sn:+.1%}",
                         f"{1 - get(engine, protocol, 'mae') / sn_mae:+.1%}"])
    for name, label in (("seasonal_mean_4w", "seasonal mean of the last 4 same weekdays "
                         "known 14 days ahead (tuesday baseline)"),
                        ("seasonal_naive", "seasonal naive: same weekday, 14 days before")):
        rows.append([name, label, "-", "-", f"{get(name, '-'):.3f}",
                     f"{get(name, '-', 'mae'):.3f}", f"{1 - get(name, '-') / sn:+.1%}",
                     f"{1 - get(name, '-', 'mae') / sn_mae:+.1%}"])
    ratio_rows = []
    for protocol, (layout, _) in PROTOCOLS.items():
        t, m = get("tuesday", protocol), get("mlforecast", protocol)
        if np.isnan(t) or np.isnan(m):
            continue
        mae_ratio = get("tuesday", protocol, "mae") / get("mlforecast", protocol, "mae")
        ratio_rows.append([layout, f"{t:.3f}", f"{m:.3f}", f"{t / m:.3f}",
                           f"{mae_ratio:.3f}"])
    head, mlf_cv = get("tuesday", GAP), get("mlforecast", REFIT)
    same = get("tuesday", GAP) / get("mlforecast", GAP)
    lift = 1 - head / sn
    seeds = ", ".join(str(s) for s in cfg["seeds"])
    parity_rows = [[r.feature, r.mlforecast, f"{r.max_abs_diff:.2g}", r.nan_mismatch_all,
                    r.nan_mismatch_test] for r in parity.itertuples()]
    out = [
        f"Clark/Lake ridership (thousands of rides a day), 14 days ahead; every row is "
        f"scored on the same {len(days)} target days {days.min():%Y-%m-%d} .. "
        f"{days.max():%Y-%m-%d} (the intersection); as_of {cfg['as_of']}, all history; "
        f"3650-day training window; LightGBM seed(s) {seeds}"
        f"{' (RMSE: mean ± sd over seeds)' if len(cfg['seeds']) > 1 else ''}.",
        "",
        fmt_table(rows, ["engine", "protocol", "days from newest training label to "
                         "test day", "training rows per fold", "RMSE", "MAE",
                         "RMSE lift vs seasonal naive", "MAE lift vs seasonal naive"]),
        "",
        "Same protocol, tuesday / mlforecast (below 1 = tuesday better):",
        "",
        fmt_table(ratio_rows, ["protocol", "tuesday RMSE", "mlforecast RMSE", "RMSE ratio",
                               "MAE ratio"]),
        "",
        f"Headline, each engine's own protocol (tuesday's backtest vs mlforecast's "
        f"cross_validation): RMSE {head:.3f} vs {mlf_cv:.3f}, ratio {head / mlf_cv:.3f}. "
        f"The protocol alone moves RMSE by tuesday {head / get('tuesday', REFIT):.3f}x, "
        f"mlforecast {get('mlforecast', GAP) / mlf_cv:.3f}x (26 x 28 d gap = horizon vs "
        f"refit to cutoff).",
        "",
        "Goals:",
        f"- RMSE at least 30% below seasonal naive (tuesday's backtest): lift {lift:.1%} "
        f"-> {'MET' if lift >= 0.30 else 'NOT MET'}",
        f"- not worse than mlforecast on the same protocol (tuesday's backtest): ratio "
        f"{same:.3f} -> {'MET' if same <= 1 else 'NOT MET'}; each on its own protocol: "
        f"{head / mlf_cv:.3f} -> {'MET' if head <= mlf_cv else 'NOT MET'} (see the gap)",
        "",
        f"LightGBM parameters (the parameters section LightGBM writes into each engine's "
        f"model file, seed {cfg['seeds'][-1]}): {same_params}.",
        "",
        "Feature parity (tuesday's point-in-time features vs mlforecast's, joined on the "
        "target day, over the rows of tuesday's training set; max |difference| where both "
        "have a value; rows where only one has a value):",
        "",
        fmt_table(parity_rows, ["tuesday feature", "mlforecast column", "max abs diff",
                                "NaN mismatch, all rows", "NaN mismatch, test days"]),
        "",
        "Wall time of each protocol, seconds (informational, machine shared): "
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        + f"; whole run {seconds:.0f} s.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default=",".join(str(s) for s in CONFIG["seeds"]),
                    help="LightGBM seeds, comma separated (default: the spec's seed 7)")
    ap.add_argument("--expanding", action="store_true",
                    help="also run mlforecast's cross_validation on all history")
    args = ap.parse_args(argv)
    cfg = {**CONFIG, "seeds": [int(s) for s in args.seeds.split(",")],
           "expanding": args.expanding}
    started = time.perf_counter()
    as_of = dt.datetime.fromisoformat(cfg["as_of"])
    loaded = load_project(PROJECT)
    model = loaded.project.model(cfg["model"])
    folder = CACHE / "accuracy"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuesday-bench-") as tmp:
        log("tuesday: ingesting the example data into a temporary workspace")
        ws = build_workspace(loaded, Path(tmp), as_of)
        ts = training.training_set(ws, loaded.project, model, as_of)
        export_inputs(ws, loaded, ts, folder, cfg["station"])
    preds, baseline, timings, tue_rows = tuesday_runs(model, ts, cfg)
    preds["engine"] = "tuesday"
    params = training.learner_params(model)
    side_cfg = {**cfg, "folder": str(folder), "last": str(ts.frame[ts.time].max()),
                "horizon": n_days(model.horizon), "window_days": n_days(model.window),
                "gap_protocols": list(GAP_PROTOCOLS),
                "lgb_params": {k: v for k, v in params.items() if k != "seed"}}
    log("mlforecast: every protocol in bench/.venv-mlforecast")
    side = run_side("accuracy", side_cfg, log=log)
    timings = {**{f"tuesday {k}": v for k, v in timings.items()},
               **{f"mlforecast {k}": v for k, v in side["timings"].items()}}
    mlf = pd.read_parquet(folder / "mlforecast_predictions.parquet")
    mlf["engine"] = "mlforecast"
    mlf_rows = {**side["train_rows"],
                **{k: g.groupby("cutoff")["train_rows"].first().astype(int).tolist()
                   for k, g in mlf[mlf["seed"] == cfg["seeds"][0]].groupby("protocol")
                   if g["train_rows"].notna().all()}}
    for frame in (mlf, preds, baseline):
        frame["ds"] = pd.to_datetime(frame["ds"]).astype("datetime64[us]")
    allp = pd.concat([preds, mlf[preds.columns]], ignore_index=True)
    # the same target days for everything: the intersection of every prediction set
    days = pd.Index(sorted(set(baseline["ds"])))
    for _, g in allp.groupby(["engine", "protocol", "seed"]):
        days = days.intersection(pd.Index(g["ds"]))
    check = allp.merge(baseline[["ds", "y"]], on="ds", suffixes=("", "_tuesday"))
    if not np.allclose(check["y"], check["y_tuesday"]):
        raise SystemExit("mlforecast's actuals differ from tuesday's: the inputs disagree.")
    mlf_feats = pd.read_parquet(folder / "mlforecast_features.parquet")
    mlf_feats["ds"] = pd.to_datetime(mlf_feats["ds"]).astype("datetime64[us]")
    parity = feature_parity(ts, mlf_feats, days.min() - pd.Timedelta(days=1))
    scores = score_table(allp, baseline, days)
    scores.to_csv(folder / "scores.csv", index=False)
    versions = {"tuesday": training._version("tuesday"),
                "lightgbm (both)": training._version("lightgbm"),
                "pandas (tuesday)": training._version("pandas"),
                **{(f"{k} (mlforecast side)" if k in ("pandas", "numpy") else k): v
                   for k, v in side["versions"].items() if k != "lightgbm"},
                "python": platform.python_version()}
    # the parameters LightGBM trained with, from each engine's model file
    sample = ts.frame.tail(500)
    fitted = training.fit(dataclasses.replace(model, seed=cfg["seeds"][-1]),
                          sample[list(ts.features)],
                          sample[ts.target].to_numpy(dtype=float))
    ours = lgb_parameters(fitted.dumps().decode())
    theirs = side["lgb_parameters"]
    differ = [f"{a} vs {b}" for a, b in zip(ours, theirs, strict=False) if a != b]
    if len(ours) != len(theirs):
        differ.append(f"{len(ours)} vs {len(theirs)} parameters")
    same_params = ("identical in both model files (" + str(len(ours)) + " parameters)"
                   if not differ else "DIFFERENT: " + "; ".join(differ))
    print(report(scores, parity, days, {"tuesday": tue_rows, "mlforecast": mlf_rows},
                 timings, versions, cfg, time.perf_counter() - started, same_params))


if __name__ == "__main__":
    main()
