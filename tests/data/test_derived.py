"""Derived sources: computed by SQL or a function, versioned with their lineage,
recomputed incrementally, point in time through the derivation.

Oracles: a plain DuckDB query over the same inputs read whole; the generator's clean
truth; and a property test that incremental refreshes equal one full computation."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuesday import meta
from tuesday.data import derived, tables
from tuesday.errors import TuesdayError
from tuesday.examples.store import shop
from tuesday.project import (
    Column,
    Contract,
    Entity,
    Project,
    Source,
    check_project,
)
from tuesday.project import derived as derived_source
from tuesday.workspace import open_workspace

item = Entity("item")

TILL = Source("till_lines", Contract((
    Column("receipt", "str", nullable=False), Column("line", "int", nullable=False),
    Column("ts", "timestamp", nullable=False), Column("item", "str", nullable=False),
    Column("qty", "int", nullable=False), Column("price", "float"),
    Column("ref_receipt", "str"))), time="ts", entity=item)
STOCK = Source("stock", Contract((
    Column("date", "date", nullable=False), Column("item", "str", nullable=False),
    Column("book_stock", "int")), unique=("item", "date")), time="date", entity=item)

DAILY_SQL = """
SELECT s.item, s.date, coalesce(sum(t.qty), 0) AS units
FROM stock s LEFT JOIN till_lines t
  ON t.item = s.item AND CAST(t.ts AS DATE) = CAST(s.date AS DATE)
GROUP BY s.item, s.date
"""
UNITS = Contract((Column("item", "str", nullable=False), Column("date", "date", nullable=False),
                  Column("units", "float", nullable=False)), unique=("item", "date"))
DAILY = derived_source("daily_units", UNITS, inputs=("till_lines", "stock"), sql=DAILY_SQL,
                       time="date", entity=item)


def _weekly(frame: pd.DataFrame) -> pd.DataFrame:
    """The units of the 7 days up to each day, per item: a plain pandas function."""
    parts = [pd.DataFrame({"item": it, "date": r.index, "units_7d": r.to_numpy()})
             for it, g in frame.groupby("item")
             for r in [g.set_index("date").sort_index()["units"].rolling("7D").sum()]]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"item": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[us]"),
         "units_7d": pd.Series(dtype=float)})


WEEKLY = derived_source(
    "weekly_units", Contract((Column("item", "str"), Column("date", "date"),
                              Column("units_7d", "float"))),
    inputs=("daily_units",), fn=lambda daily_units: _weekly(daily_units), time="date",
    entity=item, lookback="6d")
PROJECT = Project("shop", sources=(TILL, STOCK, DAILY, WEEKLY), models=())


@pytest.fixture(scope="module")
def export() -> shop.Export:
    return shop.export(seed=11, days=42, items=6, dirt=0)


def _oracle(till: pa.Table, stock: pa.Table) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("till_lines", till)
    con.register("stock", stock)
    out = con.sql(DAILY_SQL).df()
    con.close()
    return _sorted(out)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[us]")
    out["units"] = out["units"].astype(float)
    return out.sort_values(["date", "item"]).reset_index(drop=True)[["item", "date", "units"]]


def _ingest_weeks(ws, export: shop.Export, weeks: int) -> list[datetime]:
    start = pd.Timestamp(export.truth["date"].min())
    times = []
    for w in range(weeks):
        lo = None if w == 0 else (start + pd.Timedelta(days=7 * w - 1)).date().isoformat()
        hi = (start + pd.Timedelta(days=7 * w + 6)).date().isoformat()
        at = (pd.Timestamp(hi) + pd.Timedelta(hours=23)).to_pydatetime()
        for name in ("till_lines", "stock"):
            part = shop.rows_between(export.frames[name], since=lo, until=hi)
            tables.ingest_frame(ws, PROJECT.source(name), part.astype(str), as_of=at)
        times.append(at)
    return times


def test_project_checks_derived_declarations() -> None:
    assert check_project(PROJECT) == []
    bad = Project("bad", sources=(TILL, derived_source(
        "x", UNITS, inputs=("till_lines", "nowhere"), time="date", entity=item),
        derived_source("y", UNITS, inputs=("y",), sql="SELECT 1", fn=len, time="date",
                       lookback="soon")), models=())
    problems = "\n".join(check_project(bad))
    assert "reads 'nowhere', which is not declared" in problems
    assert "needs sql= or fn=" in problems
    assert "both sql= and fn=" in problems
    assert "reads itself" in problems
    assert "lookback" in problems


def test_daily_units_equal_the_duckdb_oracle_and_the_generator_truth(
        tmp_path: Path, export: shop.Export) -> None:
    ws = open_workspace(tmp_path / "ws")
    times = _ingest_weeks(ws, export, 6)
    written = derived.refresh(ws, PROJECT)
    # one derived version per input change (two inputs ingested at each of six times)
    daily = [w for w in written if w.source == "daily_units"]
    assert len(daily) == 6 and daily[0].mode == "full"
    assert {w.mode for w in daily[1:]} == {"incremental"}
    assert [w.as_of for w in daily] == times
    got = _sorted(tables.read_table(ws, DAILY).to_pandas())
    oracle = _oracle(tables.read_table(ws, TILL), tables.read_table(ws, STOCK))
    pd.testing.assert_frame_equal(got, oracle)
    truth = _sorted(export.truth)
    pd.testing.assert_frame_equal(got, truth)
    # lineage: each version names the input versions it was computed from
    last = derived.lineage(ws, "daily_units")
    assert last is not None
    assert last["inputs"] == {"till_lines": tables.latest_version(ws, "till_lines")["version"],
                              "stock": tables.latest_version(ws, "stock")["version"]}
    # a second refresh has nothing to do
    assert derived.refresh(ws, PROJECT) == []


def test_derived_versions_are_point_in_time(tmp_path: Path, export: shop.Export) -> None:
    """Read as of the third week, the derived table holds exactly what its inputs held
    then: nothing ingested later reaches it through the derivation."""
    ws = open_workspace(tmp_path / "ws")
    times = _ingest_weeks(ws, export, 5)
    derived.refresh(ws, PROJECT)
    at = times[2] + timedelta(hours=1)
    v = tables.versions_as_of(ws, ["till_lines", "stock", "daily_units"], at)
    got = _sorted(tables.read_table(ws, DAILY, v["daily_units"]).to_pandas())
    oracle = _oracle(tables.read_table(ws, TILL, v["till_lines"]),
                     tables.read_table(ws, STOCK, v["stock"]))
    pd.testing.assert_frame_equal(got, oracle)
    assert got["date"].max() == pd.Timestamp(times[2]).normalize()
    d = meta.derived_versions
    with ws.engine().connect() as conn:
        rows = conn.execute(d.select().where(d.c.source == "daily_units")).mappings().all()
    assert all(pd.Timestamp(r["as_of"]) >= max(
        tables.list_versions(ws, i)[v_i]["as_of"]
        for i, v_i in r["inputs"].items() if v_i is not None) for r in rows)


def test_function_derivation_with_lookback_reads_a_derived_input(
        tmp_path: Path, export: shop.Export) -> None:
    ws = open_workspace(tmp_path / "ws")
    _ingest_weeks(ws, export, 4)
    derived.refresh(ws, PROJECT, ["weekly_units"])
    got = tables.read_table(ws, WEEKLY).to_pandas().sort_values(["item", "date"])
    want = _weekly(tables.read_table(ws, DAILY).to_pandas()).sort_values(["item", "date"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                  check_dtype=False)


def test_a_derived_source_is_not_ingested(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    with pytest.raises(TuesdayError, match="is derived from till_lines, stock"):
        tables.ingest_frame(ws, DAILY, pd.DataFrame({"item": ["a"]}),
                            as_of=datetime(2024, 1, 1))


def test_a_failing_query_names_the_source(tmp_path: Path, export: shop.Export) -> None:
    ws = open_workspace(tmp_path / "ws")
    _ingest_weeks(ws, export, 1)
    broken = derived_source("broken", UNITS, inputs=("stock",), time="date", entity=item,
                            sql="SELECT nothing FROM stock")
    with pytest.raises(TuesdayError, match="query of derived source 'broken' failed"):
        derived.refresh(ws, Project("p", sources=(TILL, STOCK, broken), models=()))


# -------------------------------------------- incremental equals full recomputation

_DAYS = pd.date_range("2024-03-01", periods=12, freq="D")


@st.composite
def _deliveries(draw: st.DrawFn) -> list[pd.DataFrame]:
    """Batches of till lines and stock rows in any day order, late rows included."""
    n = draw(st.integers(2, 4))
    stock_days = draw(st.permutations(list(range(len(_DAYS)))))
    cuts = sorted(draw(st.lists(st.integers(1, len(_DAYS) - 1), min_size=n - 1,
                                max_size=n - 1)))
    parts = [stock_days[a:b] for a, b in zip([0, *cuts], [*cuts, len(_DAYS)], strict=True)]
    batches = []
    for k, days in enumerate(parts):
        stock = pd.DataFrame([{"date": _DAYS[d].date().isoformat(), "item": i,
                               "book_stock": "5"} for d in days for i in ("a", "b")])
        lines = draw(st.lists(st.tuples(st.sampled_from(range(len(_DAYS))),
                                        st.sampled_from(["a", "b", "c"]),
                                        st.integers(-2, 4)), max_size=12))
        till = pd.DataFrame([{"receipt": f"r{k}-{j}", "line": "1",
                              "ts": (_DAYS[d] + pd.Timedelta(hours=9 + j % 8)).isoformat(),
                              "item": it, "qty": str(q), "price": "1.0", "ref_receipt": ""}
                             for j, (d, it, q) in enumerate(lines)],
                            columns=["receipt", "line", "ts", "item", "qty", "price",
                                     "ref_receipt"])
        batches.append((stock, till))
    return batches


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(batches=_deliveries())
def test_incremental_refresh_equals_full_recomputation(tmp_path_factory, batches) -> None:
    ws = open_workspace(tmp_path_factory.mktemp("prop"))
    project = Project("p", sources=(TILL, STOCK, DAILY, WEEKLY), models=())
    at = datetime(2024, 4, 1)
    for k, (stock, till) in enumerate(batches):
        t = at + timedelta(days=k)
        tables.ingest_frame(ws, STOCK, stock, as_of=t)
        if len(till):
            tables.ingest_frame(ws, TILL, till, as_of=t)
        derived.refresh(ws, project)  # after every delivery: incremental
    full = derived.compute(DAILY, {"till_lines": tables.read_table(ws, TILL),
                                   "stock": tables.read_table(ws, STOCK)})
    got = _sorted(tables.read_table(ws, DAILY).to_pandas())
    pd.testing.assert_frame_equal(got, _sorted(full.to_pandas()))
    weekly = derived.compute(WEEKLY, {"daily_units": tables.read_table(ws, DAILY)})
    w_got = tables.read_table(ws, WEEKLY).to_pandas().sort_values(["item", "date"])
    w_full = weekly.to_pandas().sort_values(["item", "date"])
    pd.testing.assert_frame_equal(w_got.reset_index(drop=True), w_full.reset_index(drop=True),
                                  check_dtype=False)


def test_rows_are_available_no_earlier_than_the_rows_they_come_from(tmp_path: Path) -> None:
    """A forecast issued 7, 4 and 1 days ahead: the derived daily mean is known when its
    last issue was, per day; a query that claims an earlier time is overruled."""
    forecast = Source("forecast", Contract((
        Column("date", "date", nullable=False),
        Column("issued", "timestamp", nullable=False),
        Column("temp", "float"))), time="date", available_at="issued")
    mean = derived_source(
        "forecast_mean", Contract((Column("date", "date"), Column("temp", "float"),
                                   Column("known", "timestamp"))),
        inputs=("forecast",), time="date", available_at="known",
        sql="SELECT date, avg(temp) AS temp, min(issued) AS known FROM forecast GROUP BY date")
    project = Project("w", sources=(forecast, mean), models=())
    assert check_project(project) == []
    days = pd.date_range("2024-05-01", periods=4, freq="D")
    rows = pd.DataFrame([{"date": d.date().isoformat(),
                          "issued": (d - pd.Timedelta(days=k, hours=-6)).isoformat(),
                          "temp": str(10.0 + k)} for d in days for k in (7, 4, 1)])
    ws = open_workspace(tmp_path / "ws")
    tables.ingest_frame(ws, forecast, rows, as_of=datetime(2024, 5, 10))
    derived.refresh(ws, project)
    got = tables.read_table(ws, mean).to_pandas().sort_values("date")
    assert got["known"].tolist() == [d - pd.Timedelta(days=1, hours=-6) for d in days]
    assert got["temp"].tolist() == [14.0] * 4
    forgot = Project("w", sources=(forecast, derived_source(
        "m", Contract((Column("date", "date"),)), inputs=("forecast",), time="date",
        sql="SELECT date FROM forecast")), models=())
    assert any("declare available_at=" in p for p in check_project(forgot))
