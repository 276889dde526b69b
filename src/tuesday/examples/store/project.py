"""A small shop's daily units per item, forecast a day ahead, from its till export.

SYNTHETIC DATA, labelled as such: ``shop.export`` generates a seeded point-of-sale
export with the paperwork dirt of a real one and a ledger of what it injected. The
project declares the checks that find that dirt, and the daily-units target as a
derived source, so no glue runs outside this file.
"""

from __future__ import annotations

from pathlib import Path

from tuesday.examples.store import shop
from tuesday.project import (
    Backtest,
    Baseline,
    Censored,
    Column,
    Condition,
    Contract,
    DuplicateGroups,
    Entity,
    Gaps,
    Model,
    OffsettingPairs,
    Project,
    References,
    Repair,
    Source,
    Spike,
    calendar,
    derived,
    holiday,
    lag,
    lookup,
    window,
)

item = Entity("item")

till_lines = Source("till_lines", Contract((
    Column("receipt", "str", nullable=False), Column("line", "int", nullable=False, min=1),
    Column("ts", "timestamp", nullable=False), Column("item", "str", nullable=False),
    Column("qty", "int", nullable=False), Column("price", "float", min=0),
    Column("ref_receipt", "str"),
), checks=(
    DuplicateGroups(("receipt",), sequence="line", label="receipts", name="retried_receipt"),
    OffsettingPairs(("receipt", "item"), "qty", reference="ref_receipt", name="void"),
    References("ref_receipt", "receipt", label="receipts", name="refund"),
    Condition("hour_zero", "hour(ts) = 0", message="The hour was overwritten with 0 (the "
              "shop opens at 8); the sale is real, so it is kept."),
)), time="ts", entity=item)

stock = Source("stock", Contract((
    Column("date", "date", nullable=False), Column("item", "str", nullable=False),
    Column("book_stock", "int", nullable=False),
), unique=("item", "date"), checks=(
    Spike("book_stock", ("item",), factor=4, min_jump=25, label="items", name="stock_typo",
          action="repair"),
    Condition("sold_out", "book_stock <= 0", message="Nothing left on the shelf at closing "
              "(a negative book stock: sales booked before the delivery)."),
    Gaps(("item",), "1d", label="items", name="missing_snapshot"),
)), time="date", entity=item)

deliveries = Source("deliveries", Contract((
    Column("invoice", "str", nullable=False), Column("date", "date", nullable=False),
    Column("item", "str", nullable=False), Column("qty", "int", min=0),
    Column("cost", "float", min=0),
), checks=(DuplicateGroups(("invoice",), label="invoices", name="duplicate_invoice"),)),
    time="date", entity=item)

items = Source("items", Contract((
    Column("item", "str", nullable=False), Column("name", "str"),
    Column("category", "str", allowed=tuple(shop.CATEGORIES.values())),
), unique=("item",), checks=(
    Repair("category", {"Diary": "Dairy"}, fold=True, name="category_spelling"),)),
    entity=item)

prices = Source("prices", Contract((
    Column("item", "str", nullable=False), Column("valid_from", "date", nullable=False),
    Column("price", "float", nullable=False, min=0)), unique=("item", "valid_from")),
    time="valid_from", entity=item)

calendar_days = Source("calendar", Contract((
    Column("date", "date", nullable=False), Column("holiday", "str"),
    Column("school_break", "bool")), unique=("date",)), time="date")

weather = Source("weather", Contract((
    Column("date", "date", nullable=False), Column("temp_c", "float", min=-40, max=50),
    Column("rain_mm", "float", min=0)), unique=("date",)), time="date")

writeoffs = Source("writeoffs", Contract((
    Column("date", "date", nullable=False), Column("item", "str", nullable=False),
    Column("qty", "int", min=0), Column("reason", "str"))), time="date", entity=item)

#: units sold per item and day (refunds are not negative demand), zero-filled over the
#: items the stock table lists that day
daily_units = derived("daily_units", Contract((
    Column("item", "str", nullable=False), Column("date", "date", nullable=False),
    Column("units", "float", nullable=False, min=0),
), unique=("item", "date")), inputs=("till_lines", "stock"), time="date", entity=item,
    sql="""
    SELECT s.item, s.date, coalesce(sum(t.qty) FILTER (WHERE NOT t.flag_refund), 0) AS units
    FROM stock s LEFT JOIN till_lines t
      ON t.item = s.item AND CAST(t.ts AS DATE) = CAST(s.date AS DATE)
    GROUP BY s.item, s.date
    """)

units_1d = Model(
    name="units_1d",
    entity=item,
    label_source="daily_units",
    target="units",
    horizon="1d",
    features=(
        lag("daily_units", "units", "1d"),
        lag("daily_units", "units", "7d"),
        window("daily_units", "units", "7d", lag="1d"),
        window("daily_units", "units", "28d", lag="1d"),
        calendar("day_of_week"),
        holiday("DE-BY", "is_holiday"),  # the shop is closed on Bavaria's holidays
        holiday("DE-BY", "name"),  # a category: LightGBM's own
        lookup("items", "category", dtype="category"),
        lookup("prices", "price"),
    ),
    baselines=(Baseline("seasonal_naive", "seasonal_naive", season=7),
               Baseline("moving_average_28d", "moving_average", window=28)),
    evaluation=Backtest(folds=3, step="14d"),
    metrics=("mae", "rmse", "wape", "bias"),
    # a sold-out day's units are not its demand: left out of training, scored both ways
    censored=Censored(source="stock", column="book_stock", at_most=0),
    seed=3,
)

project = Project("store", sources=(till_lines, stock, deliveries, items, prices,
                                    calendar_days, weather, writeoffs, daily_units),
                  models=(units_1d,))


def example_files(folder: str | Path, *, until: str | None = None,
                  since: str | None = None) -> dict[str, Path]:
    """Write the synthetic export (seed 7, 120 days from 2024-01-01) as CSV files: the
    rows dated in ``(since, until]``."""
    return shop.export(seed=7).write(folder, until=until, since=since)
