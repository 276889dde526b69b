"""A source with several rows for one target day, issued at different times (a weather
forecast issued 7, 4 and 1 days ahead): a feature reads the latest issue available at
the forecast origin, for training and serving alike."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

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
    lag,
    lookup,
    scheduled,
)

store = Entity("store")
SALES = Source("sales", Contract((Column("store", "str"), Column("date", "date"),
                                  Column("units", "float")), unique=("store", "date")),
               time="date", entity=store)
FORECAST = Source("forecast", Contract((
    Column("date", "date", nullable=False), Column("issued", "timestamp", nullable=False),
    Column("temp", "float")), unique=("date", "issued")), time="date", available_at="issued")


def _model(horizon: str, *features) -> Model:
    return Model("m", store, "sales", "units", features=features, horizon=horizon,
                 baselines=(Baseline("naive", "naive"),))


def test_the_latest_issue_known_at_the_origin_is_used() -> None:
    days = pd.date_range("2024-06-10", periods=3, freq="D")
    rows = [{"date": d, "issued": d - pd.Timedelta(days=k) + pd.Timedelta(hours=6),
             "temp": float(100 * i + k)} for i, d in enumerate(days) for k in (7, 4, 1)]
    table = pa.Table.from_pandas(pd.DataFrame(rows).astype(
        {"date": "datetime64[us]", "issued": "datetime64[us]"}), preserve_index=False)
    sales = pa.table({"store": ["s"], "date": pa.array([days[0]], pa.timestamp("us")),
                      "units": [1.0]})
    for horizon, want in (("2d", [4.0, 104.0, 204.0]), ("5d", [7.0, 107.0, 207.0]),
                          ("0d", [1.0, 101.0, 201.0])):
        model = _model(horizon, scheduled("forecast", "temp", name="temp_forecast"),
                       lag("forecast", "temp", horizon, name="temp_lag"))
        project = Project("p", sources=(SALES, FORECAST), models=(model,))
        assert check_project(project) == []
        pts = points_frame(model, pd.Series(["s"] * 3), pd.Series(days))
        got = feature_frame(project, model, pts, {"sales": sales, "forecast": table})
        assert got["temp_forecast"].tolist() == want, horizon


def test_a_lookup_of_a_global_source_reads_the_latest_known_row() -> None:
    model = _model("1d", lookup("forecast", "temp"))
    assert check_project(Project("p", sources=(SALES, FORECAST), models=(model,))) == []


def test_history_stored_before_a_taxonomy_is_read_in_the_new_codes(tmp_path) -> None:
    """Rows ingested before the regrouping was declared are read with the new codes, so
    a product's features do not split between its old and new code."""
    from datetime import datetime

    from tuesday.data import tables
    from tuesday.project import Taxonomy
    from tuesday.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws")
    before = Source("sales", SALES.contract, time="date", entity=store)
    tables.ingest_frame(ws, before, pd.DataFrame({
        "store": ["old-1", "old-1", "s2"], "date": ["2024-01-01", "2024-01-02", "2024-01-01"],
        "units": ["1", "2", "3"]}), as_of=datetime(2024, 1, 3))
    after = Source("sales", SALES.contract, time="date", entity=store,
                   taxonomy=Taxonomy("store", {"old-1": "s1"}, effective="2024-02-01"))
    got = tables.read_table(ws, after).to_pandas()
    assert sorted(got["store"]) == ["s1", "s1", "s2"]
    assert sorted(tables.read_table(ws, before).to_pandas()["store"]) == ["old-1", "old-1", "s2"]
