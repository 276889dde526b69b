"""Quarantine export, one file per ingest: each batch's own columns and line endings, so
fix-and-re-ingest works in one step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.test_tables import BAD_FILE, BAD_ROWS, READINGS, T0, T1, T2
from tuesday.data import tables
from tuesday.workspace import Workspace, open_workspace


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def test_each_ingest_exports_its_own_columns_and_line_endings(ws: Workspace,
                                                               tmp_path: Path) -> None:
    crlf = tmp_path / "rows.csv"
    crlf.write_bytes(BAD_ROWS.replace("\n", "\r\n").encode())
    first = tables.ingest_file(ws, READINGS, crlf, as_of=T0)
    (tmp_path / "other.csv").write_text(BAD_FILE)
    second = tables.ingest_file(ws, READINGS, tmp_path / "other.csv", as_of=T1)
    files = tables.export_quarantine_files(ws, READINGS, tmp_path / "fix.csv")
    assert [(i, f.name) for i, f, _ in files] == [
        (first.ingest_id, f"fix-{first.ingest_id}.csv"),
        (second.ingest_id, f"fix-{second.ingest_id}.csv")]
    one, two = (f.read_bytes() for _, f, _ in files)
    # the first batch's columns, in its order, with its CRLF line endings
    assert one.startswith(b"_quarantine_ingest,_quarantine_row,_quarantine_reasons,"
                          b"id,station,day,temp,ok\r\n")
    assert one.count(b"\r\n") == one.count(b"\n")
    # the second batch: its own extra comment column, LF
    assert two.startswith(b"_quarantine_ingest,_quarantine_row,_quarantine_reasons,"
                          b"id,station,day,temp,ok,comment\n")
    assert b"\r" not in two
    # fix the first file in place (date, temperature, one copy of key 4) and re-ingest it
    lines = one.decode().split("\r\n")
    fixed = [lines[0], lines[1].replace("not-a-date", "2024-01-02"),
             lines[2].replace(",99,", ",29,"), lines[3]]
    files[0][1].write_bytes(("\r\n".join(fixed) + "\r\n").encode())
    again = tables.ingest_file(ws, READINGS, files[0][1], as_of=T2)
    assert (again.report.accepted, again.report.quarantined) == (3, 0)
    q = tables.quarantine(ws, READINGS)
    mine = q[q["ingest_id"] == first.ingest_id].set_index("row")
    assert mine.loc[[2, 3, 4], "resolved_by"].tolist() == [again.ingest_id] * 3
    assert set(mine.loc[[2, 3, 4], "outcome"]) == {"accepted"}
    # one ingest asked for, or only one with open rows: exactly the file named
    out = tmp_path / "only.csv"
    assert tables.export_quarantine_files(ws, READINGS, out, second.ingest_id) == [
        (second.ingest_id, out, 5)]


def test_cli_export_lists_a_file_per_ingest(tmp_path: Path) -> None:
    project = tmp_path / "project.py"
    project.write_text(
        "from tuesday.project import Column, Contract, Entity, Project, Source\n"
        "readings = Source('readings', Contract((Column('id', 'int', nullable=False),"
        " Column('station', 'str', nullable=False), Column('day', 'date', nullable=False),"
        " Column('temp', 'float', min=-50, max=60), Column('ok', 'bool')), unique=('id',)),"
        " time='day', entity=Entity('station'))\n"
        "project = Project('p', sources=(readings,), models=())\n")
    (tmp_path / "rows.csv").write_text(BAD_ROWS)
    (tmp_path / "other.csv").write_text(BAD_FILE)
    base = [sys.executable, "-m", "tuesday", "--project", str(project)]
    for f, t in (("rows.csv", "2024-02-01"), ("other.csv", "2024-02-02")):
        subprocess.run([*base, "ingest", "readings", str(tmp_path / f), "--as-of", t],
                       capture_output=True, check=False)
    out = subprocess.run([*base, "quarantine", "readings", "--export",
                          str(tmp_path / "fix.csv"), "--json"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["exported"] == 4 + 5 and len(d["files"]) == 2
    assert all(Path(f["file"]).exists() for f in d["files"])
