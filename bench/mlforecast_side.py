"""The mlforecast side of the forecasting benchmarks, run inside its own virtualenv.

mlforecast needs pandas < 3 and tuesday uses pandas 3, so mlforecast runs in
``bench/.venv-mlforecast`` (created on first use by ``ensure_venv``, called from
``forecast_accuracy.py`` and ``forecast_speed.py``). The two processes exchange Parquet
files under ``bench/.cache/`` and one JSON config; this file never imports tuesday.

At module level only the standard library is imported, so the main-process scripts can
import ``ensure_venv`` and ``run_side`` from here; mlforecast, LightGBM and pandas are
imported inside the functions that run in the virtualenv.

    bench/.venv-mlforecast/bin/python bench/mlforecast_side.py accuracy CONFIG.json
    bench/.venv-mlforecast/bin/python bench/mlforecast_side.py speed CONFIG.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-mlforecast"
CACHE = BENCH / ".cache"
MLFORECAST = "mlforecast==1.1.0"


def _same_as_main(package: str) -> str:
    """``package==X`` pinned to the version the main environment has, so both engines
    run the same LightGBM and the same holiday calendar."""
    try:
        return f"{package}=={metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return package


def requirements() -> list[str]:
    return [MLFORECAST, _same_as_main("lightgbm"), _same_as_main("holidays"), "pyarrow"]


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(log: Any = print) -> Path:
    """Create ``bench/.venv-mlforecast`` with mlforecast (pandas < 3), the main
    environment's LightGBM and holidays versions, and pyarrow; reuse it when its
    recorded requirements match. Returns its python."""
    want = requirements()
    stamp = VENV / "bench-requirements.json"
    if venv_python().exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return venv_python()
    log(f"creating {VENV.relative_to(BENCH.parent)} with {' '.join(want)} (first use, ~2 min)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(venv_python()), "-m", "pip", "install", "--quiet", *want], check=True)
    stamp.write_text(json.dumps(want))
    return venv_python()


def run_side(command: str, config: dict[str, Any], *, log: Any = print) -> dict[str, Any]:
    """Run ``command`` of this file in the virtualenv with ``config``; return its JSON
    result (written next to the config)."""
    python = ensure_venv(log)
    folder = Path(config["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / f"{command}-config.json"
    cfg.write_text(json.dumps(config, indent=1, default=str))
    subprocess.run([str(python), str(Path(__file__).resolve()), command, str(cfg)],
                   check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    out: dict[str, Any] = json.loads((folder / f"{command}-result.json").read_text())
    return out


# --------------------------------------------------------------- in the virtualenv


def lgbm_regressor(params: dict[str, Any], seed: int) -> Any:
    """LightGBM's scikit-learn regressor with tuesday's LightGBM defaults.

    tuesday calls ``lgb.train(params, num_boost_round=...)`` with LightGBM's own names;
    the scikit-learn wrapper takes its aliases, mapped one to one here (so LightGBM sees
    the same parameters, without alias warnings).
    """
    import lightgbm as lgb

    p = dict(params)
    names = {"num_boost_round": "n_estimators", "min_data_in_leaf": "min_child_samples",
             "feature_fraction": "colsample_bytree", "bagging_fraction": "subsample",
             "lambda_l2": "reg_lambda", "num_threads": "n_jobs"}
    kwargs = {names.get(k, k): v for k, v in p.items() if k not in ("seed", "objective")}
    kwargs["objective"] = p.get("objective", "regression")
    kwargs["random_state"] = seed
    return lgb.LGBMRegressor(**kwargs)


def make_forecaster(cfg: dict[str, Any], seed: int) -> Any:
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMax, RollingMean

    kinds = {"mean": RollingMean, "max": RollingMax}
    transforms = {int(lag): [kinds[agg](window_size=int(w)) for agg, w in specs]
                  for lag, specs in cfg["lag_transforms"].items()}
    return MLForecast(models={"lgb": lgbm_regressor(cfg["lgb_params"], seed)}, freq="D",
                      lags=[int(x) for x in cfg["lags"]], lag_transforms=transforms,
                      date_features=list(cfg["date_features"]), num_threads=1)


def ridership_frame(cfg: dict[str, Any]) -> Any:
    """Clark/Lake as one series plus the exogenous columns tuesday's spec uses, each
    computed here, independently of tuesday, as known 14 days before the target day:

    - US holidays of the target day (the ``holidays`` package): is_holiday, days to the
      next and since the last holiday (0 on a holiday, capped at 366);
    - home games scheduled on the target day (published 60 days ahead; 0 if none);
    - the last temperature known at the forecast origin (target day - 14 days, at
      midnight): a day's weather is published the next morning (``available_at`` =
      day + 1 day 6 h), so this is the temperature 16 days before the target day.
    """
    import holidays
    import numpy as np
    import pandas as pd

    folder = Path(cfg["folder"])
    y, weather, games = (_read(folder / f"{n}.parquet") for n in ("series", "weather", "games"))
    df = y.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    ds = df["ds"]
    years = range(ds.dt.year.min() - 1, ds.dt.year.max() + 2)
    hol = np.array(sorted(np.datetime64(d, "D") for d in
                          holidays.country_holidays("US", years=years)))
    days = ds.to_numpy().astype("datetime64[D]")
    nxt = hol[np.searchsorted(hol, days, side="left")]
    prev = hol[np.searchsorted(hol, days, side="right") - 1]
    df["holiday_is_holiday"] = (nxt == days).astype(float)
    df["holiday_days_to_next"] = np.minimum((nxt - days).astype(int), 366).astype(float)
    df["holiday_days_since_last"] = np.minimum((days - prev).astype(int), 366).astype(float)
    g = games[games["available_at"] <= games["date"] - pd.Timedelta(days=cfg["horizon"])]
    df["home_games"] = (df["ds"].map(g.set_index("date")["home_games"])
                        .fillna(0).astype(float))
    origin = pd.DataFrame({"origin": ds - pd.Timedelta(days=cfg["horizon"]),
                           "row": np.arange(len(df))})
    w = weather.sort_values("available_at")[["available_at", "temp"]]
    known = pd.merge_asof(origin.sort_values("origin"), w, left_on="origin",
                          right_on="available_at", direction="backward")
    df["temp_last_known"] = known.set_index("row")["temp"].reindex(origin["row"]).to_numpy()
    return df


def _read(path: Path) -> Any:
    """A Parquet file with every timestamp column as datetime64[ns] (pandas 2's unit)."""
    import pandas as pd

    df = pd.read_parquet(path)
    for c in df.columns:
        if pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = df[c].astype("datetime64[ns]")
    return df


def accuracy(cfg: dict[str, Any]) -> dict[str, Any]:
    """Clark/Lake, 14 days ahead, mlforecast + LightGBM, on several protocols:

    ``refit_to_cutoff``: ``MLForecast.cross_validation(h=14, n_windows=52, step_size=14,
    refit=True)``: every 14-day window is forecast by a model trained on every label up to
    its cutoff (the last ``window_days`` target days, via ``input_size``).

    ``gap_protocols``: tuesday's backtest layout (26 folds of 28 days, and 52 of 14);
    each fold's model trains on the ``window_days`` target days ending ``horizon`` days
    before the fold's first test day. Features from ``MLForecast.preprocess`` (every lag
    is at least the horizon, so a test row's features are known 14 days before it, no
    recursion), fit with ``MLForecast.fit_models`` on the fold's training rows.
    """
    import pandas as pd

    folder = Path(cfg["folder"])
    df = ridership_frame(cfg)
    lookback = max(int(x) for x in cfg["lags"])
    out: dict[str, Any] = {"versions": _versions(), "timings": {}}
    prep = make_forecaster(cfg, cfg["seeds"][0]).preprocess(df, static_features=[],
                                                            dropna=False)
    prep.to_parquet(folder / "mlforecast_features.parquet")
    features = [c for c in prep.columns if c not in ("unique_id", "ds", "y")]
    out["features"] = features
    preds = []
    for seed in cfg["seeds"]:
        # protocol 1: cross_validation with refit at every window
        started = time.perf_counter()
        fcst = make_forecaster(cfg, seed)
        cv = fcst.cross_validation(
            df, n_windows=cfg["n_windows"], h=cfg["h"], step_size=cfg["step_size"],
            refit=True, static_features=[], fitted=True,
            input_size=cfg["window_days"] + lookback if cfg["window_days"] else None)
        out["timings"][f"refit_to_cutoff/{seed}"] = time.perf_counter() - started
        out["train_rows"] = {"refit_to_cutoff": [
            int(n) for n in fcst.cross_validation_fitted_values().groupby("fold").size()]}
        preds.append(pd.DataFrame({"ds": cv["ds"], "cutoff": cv["cutoff"], "y": cv["y"],
                                   "prediction": cv["lgb"], "protocol": "refit_to_cutoff",
                                   "seed": seed}))
        if cfg.get("expanding"):
            started = time.perf_counter()
            cv = make_forecaster(cfg, seed).cross_validation(
                df, n_windows=cfg["n_windows"], h=cfg["h"], step_size=cfg["step_size"],
                refit=True, static_features=[])
            out["timings"][f"refit_to_cutoff_expanding/{seed}"] = \
                time.perf_counter() - started
            preds.append(pd.DataFrame({"ds": cv["ds"], "cutoff": cv["cutoff"], "y": cv["y"],
                                       "prediction": cv["lgb"],
                                       "protocol": "refit_to_cutoff_expanding",
                                       "seed": seed}))
        # gap protocols: tuesday's fold layout (gap = horizon) with fold lengths as given
        for spec in cfg["gap_protocols"]:
            started = time.perf_counter()
            fcst = make_forecaster(cfg, seed)
            fcst.preprocess(df, static_features=[], dropna=False)  # fit_models needs it
            preds.extend(gap_folds(fcst, prep, features, cfg, spec, seed))
            out["timings"][f"{spec['name']}/{seed}"] = time.perf_counter() - started
    out["lgb_parameters"] = lgb_parameters(fcst.models_["lgb"].booster_.model_to_string())
    pd.concat(preds, ignore_index=True).to_parquet(folder / "mlforecast_predictions.parquet")
    return out


def gap_folds(fcst: Any, prep: Any, features: list[str], cfg: dict[str, Any],
              spec: dict[str, Any], seed: int) -> list[Any]:
    """tuesday's rolling-origin folds on mlforecast's features: ``spec["folds"]`` test
    windows of ``spec["step_days"]`` ending at the last day; each trains on the
    ``window_days`` target days ending ``horizon`` days before its first test day."""
    import numpy as np
    import pandas as pd

    last = pd.Timestamp(cfg["last"])
    step = pd.Timedelta(days=spec["step_days"])
    gap = pd.Timedelta(days=cfg["horizon"])
    win = pd.Timedelta(days=cfg["window_days"]) if cfg["window_days"] else None
    out = []
    for i in range(spec["folds"]):
        cut = last - (spec["folds"] - i) * step
        train = prep["ds"] <= cut - gap
        if win is not None:
            train &= prep["ds"] > cut - gap - win
        tr = prep[train].dropna(subset=[*features, "y"])  # what fit(dropna=True) keeps
        te = prep[(prep["ds"] > cut) & (prep["ds"] <= cut + step)]
        fcst.fit_models(tr[features], tr["y"].to_numpy())
        p = fcst.models_["lgb"].predict(te[features])
        out.append(pd.DataFrame({"ds": te["ds"].to_numpy(), "cutoff": cut,
                                 "y": te["y"].to_numpy(), "prediction": np.asarray(p),
                                 "protocol": spec["name"], "seed": seed,
                                 "train_rows": len(tr)}))
    return out


def speed(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time building the features and fitting one LightGBM model on the whole panel:
    ``preprocess`` (features) then ``fit_models`` (LightGBM), as ``MLForecast.fit`` does,
    each timed; ``repeats`` rounds after one warm-up on a small slice."""

    folder = Path(cfg["folder"])
    df = _read(folder / "panel.parquet")
    seed = cfg["seed"]
    warm = df[df["unique_id"].isin(df["unique_id"].unique()[:5])]
    fcst = make_forecaster(cfg, seed)
    fcst.fit(warm, static_features=[], dropna=cfg["dropna"])
    rounds = []
    for _ in range(cfg["repeats"]):
        fcst = make_forecaster(cfg, seed)
        t0, c0 = time.perf_counter(), time.process_time()
        x = fcst.preprocess(df, static_features=[], dropna=cfg["dropna"])
        t1, c1 = time.perf_counter(), time.process_time()
        features = [c for c in x.columns if c not in ("unique_id", "ds", "y")]
        fcst.fit_models(x[features], x["y"].to_numpy())
        t2, c2 = time.perf_counter(), time.process_time()
        rounds.append({"features": t1 - t0, "fit": t2 - t1, "total": t2 - t0,
                       "features_cpu": c1 - c0, "fit_cpu": c2 - c1, "total_cpu": c2 - c0,
                       "rows": len(x), "columns": features})
    return {"versions": _versions(), "rounds": rounds}


def lgb_parameters(model_text: str) -> list[str]:
    """The ``parameters:`` section of a LightGBM model file: every parameter LightGBM
    actually trained with, aliases resolved."""
    lines = model_text.splitlines()
    start, end = lines.index("parameters:"), lines.index("end of parameters")
    return lines[start + 1:end]


def _versions() -> dict[str, str]:
    names = ("mlforecast", "coreforecast", "lightgbm", "pandas", "numpy", "holidays")
    return {n: metadata.version(n) for n in names}


def main(argv: list[str]) -> None:
    command, path = argv
    cfg = json.loads(Path(path).read_text())
    result = {"accuracy": accuracy, "speed": speed}[command](cfg)
    (Path(cfg["folder"]) / f"{command}-result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
