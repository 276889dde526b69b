"""Calendars users bring: each store's own regional holidays (the holidays package's
subdivisions, read from a store -> state mapping) and a school calendar per school
board joined to stores through a derived source, as point-in-time features."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import holidays
import pandas as pd

from tuesday.data import derived, tables
from tuesday.data.features import feature_frame, points_frame
from tuesday.project import (
    Baseline,
    Column,
    Contract,
    Entity,
    Model,
    Project,
    Source,
    check_project,
    holiday,
    scheduled,
)
from tuesday.project import (
    derived as derived_source,
)
from tuesday.workspace import open_workspace

store = Entity("store")
SALES = Source("sales", Contract((Column("store", "str"), Column("date", "date"),
                                  Column("units", "float")), unique=("store", "date")),
               time="date", entity=store)
STORES = Source("stores", Contract((Column("store", "str", nullable=False),
                                    Column("state", "str"), Column("board", "str")),
                                   unique=("store",)), entity=store)
TERMS = Source("terms", Contract((Column("board", "str"), Column("date", "date"),
                                  Column("in_term", "bool")), unique=("board", "date")),
               time="date")
STORE_TERMS = derived_source(
    "store_terms", Contract((Column("store", "str"), Column("date", "date"),
                             Column("in_term", "bool"))),
    inputs=("stores", "terms"), time="date", entity=store,
    sql="SELECT s.store, t.date, t.in_term FROM stores s JOIN terms t ON t.board = s.board")
MODEL = Model("m", store, "sales", "units", horizon="1d", baselines=(
    Baseline("naive", "naive"),), features=(
    holiday("DE", "is_holiday", region=("stores", "state"), name="regional_holiday"),
    holiday("DE", "name", region=("stores", "state"), name="regional_holiday_name"),
    scheduled("store_terms", "in_term")))
PROJECT = Project("p", sources=(SALES, STORES, TERMS, STORE_TERMS), models=(MODEL,))


def test_each_store_gets_its_own_region_and_school_board(tmp_path: Path) -> None:
    assert check_project(PROJECT) == []
    ws = open_workspace(tmp_path / "ws")
    at = datetime(2024, 1, 1)
    tables.ingest_frame(ws, STORES, pd.DataFrame({
        "store": ["munich", "cologne", "nowhere"], "state": ["BY", "NW", ""],
        "board": ["b1", "b2", "b1"]}), as_of=at)
    days = pd.date_range("2024-01-04", periods=5, freq="D")
    tables.ingest_frame(ws, TERMS, pd.DataFrame(
        [{"board": b, "date": d.date().isoformat(), "in_term": str(b == "b1" or d.day > 6)}
         for b in ("b1", "b2") for d in days]), as_of=at)
    tables.ingest_frame(ws, SALES, pd.DataFrame({"store": ["munich"], "date": ["2024-01-03"],
                                                 "units": ["1"]}), as_of=at)
    derived.refresh(ws, PROJECT)
    tabs = {s.name: tables.read_table(ws, s) for s in PROJECT.sources}
    keys = ["munich", "cologne", "nowhere"]
    pts = points_frame(MODEL, pd.Series(keys * len(days)),
                       pd.Series([d for d in days for _ in keys]))
    got = feature_frame(PROJECT, MODEL, pts, tabs)
    got["store"], got["date"] = pts["store"], pts["_target_time"]
    for row in got.itertuples():
        state = {"munich": "BY", "cologne": "NW", "nowhere": None}[row.store]
        names = holidays.country_holidays("DE", subdiv=state, years=2024)
        assert row.regional_holiday == float(row.date.date() in names), row
        assert row.regional_holiday_name == names.get(row.date.date(), "(no holiday)")
    epiphany = got[got["date"] == "2024-01-06"].set_index("store")["regional_holiday"]
    assert epiphany.to_dict() == {"munich": 1.0, "cologne": 0.0, "nowhere": 0.0}
    terms = got.set_index(["store", "date"])["in_term"]
    assert terms[("cologne", pd.Timestamp("2024-01-05"))] == 0.0
    assert terms[("cologne", pd.Timestamp("2024-01-07"))] == 1.0
    assert terms[("munich", pd.Timestamp("2024-01-05"))] == 1.0
