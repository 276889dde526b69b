"""Versioned tables: validated ingest, quarantine, versions, fingerprints, time travel."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuesday import meta
from tuesday.data import tables
from tuesday.data.contracts import Report
from tuesday.errors import Conflict, NotFound, TuesdayError, ValidationFailed
from tuesday.project import (
    Column,
    Contract,
    Entity,
    Freshness,
    MinHistory,
    Source,
    Taxonomy,
    Volume,
)
from tuesday.workspace import Workspace, open_workspace

COLUMNS = (
    Column("id", "int", nullable=False),
    Column("station", "str", nullable=False),
    Column("day", "date", nullable=False),
    Column("temp", "float", min=-50, max=60),
    Column("ok", "bool"),
)
READINGS = Source("readings", Contract(COLUMNS, unique=("id",)), time="day",
                  entity=Entity("station"))
READINGS_DROP = Source("readings", Contract(COLUMNS, unique=("id",), extra_columns="drop"),
                       time="day", entity=Entity("station"))
T0 = datetime(2024, 2, 1)
T1 = datetime(2024, 2, 2)
T2 = datetime(2024, 2, 3)
T3 = datetime(2024, 2, 4)

HEADER = "id,station,day,temp,ok"
# The "bad file": a required column (station) is absent, an unexpected column (comment)
# is present, a wrong type (row 2), an out-of-range value (row 3) and a key repeated
# (rows 4 and 5). Rows are numbered from 1, the first data row.
BAD_FILE = """id,station,day,temp,ok,comment
1,a,2024-01-01,1.5,true,fine
2,b,not-a-date,2.0,false,
3,c,2024-01-03,99,true,hot
4,d,2024-01-04,3.0,,x
4,d,2024-01-05,4.0,yes,y
"""
# A file without a required column: refused as a whole, nothing quarantined.
NO_STATION = """id,day,temp,ok
1,2024-01-01,1.5,true
2,2024-01-02,2.0,false
"""
# The same row-level problems in a file whose columns are right: the good rows land.
BAD_ROWS = f"""{HEADER}
1,a,2024-01-01,1.5,true
2,b,not-a-date,2.0,false
3,c,2024-01-03,99,true
4,d,2024-01-04,3.0,
4,e,2024-01-05,4.0,yes
5,f,2024-01-06,-7.25,no
6,g,2024-01-07,,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def csv_rows(ids: range, *, station: str = "s") -> str:
    lines = [HEADER] + [f"{i},{station}{i},2024-01-{i:02d},{i / 2},{'true' if i % 2 else 'no'}"
                        for i in ids]
    return "\n".join(lines) + "\n"


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def problem_table(report: Report) -> list[tuple[str, str, int, list[int], list[Any]]]:
    return [(p.check, p.column, p.count, [e["row"] for e in p.examples],
             [e["value"] for e in p.examples]) for p in report.problems]


def quarantine_rows(ws: Workspace, ingest_id: str | None = None
                    ) -> dict[int, tuple[list[str], dict[str, Any]]]:
    q = tables.quarantine(ws, READINGS)
    if ingest_id is not None:
        q = q[q["ingest_id"] == ingest_id]
    return {int(r): (s.split("; "), json.loads(v))
            for r, s, v in zip(q["row"], q["reasons"], q["values"], strict=True)}


def table_frame(ws: Workspace, version: int | None = None) -> pd.DataFrame:
    return (tables.read_table(ws, READINGS, version=version).to_pandas()
            .sort_values("id").reset_index(drop=True))


def original_records(text: str) -> list[dict[str, Any]]:
    """The rows of a CSV text as the quarantine should keep them (blank = null)."""
    lines = text.strip().splitlines()
    names = lines[0].split(",")
    return [{k: (v if v != "" else None) for k, v in zip(names, line.split(","), strict=True)}
            for line in lines[1:]]


# -------------------------------------------------------------------- the bad file


def test_file_missing_a_required_column_is_refused_once(ws: Workspace,
                                                         tmp_path: Path) -> None:
    """One schema problem is one error, not one quarantine entry per row."""
    path = write(tmp_path / "bad.csv", NO_STATION)
    with pytest.raises(ValidationFailed, match=r"missing required column\(s\) 'station'"):
        tables.ingest_file(ws, READINGS, path, as_of=T0)
    assert tables.quarantine(ws, READINGS).empty
    assert tables.latest_version(ws, "readings") is None


def test_bad_file_reports_every_problem_and_loses_nothing(ws: Workspace,
                                                          tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", BAD_FILE)
    res = tables.ingest_file(ws, READINGS, path, as_of=T0)
    r = res.report

    assert (r.source, r.received, r.accepted, r.quarantined) == ("readings", 5, 0, 5)
    assert r.accepted + r.quarantined == r.received
    assert not r.ok
    assert problem_table(r) == [
        ("extra_column", "comment", 5, [1, 2, 3, 4, 5], ["fine", None, "hot", "x", "y"]),
        ("type", "day", 1, [2], ["not-a-date"]),
        ("range", "temp", 1, [3], ["99"]),
        ("duplicate_key", "id", 2, [4, 5], ["4", "4"]),
    ]
    messages = {p.check: p.message for p in r.problems}
    assert "'comment' is not in the contract" in messages["extra_column"]
    assert "Expected date values in column 'day'" in messages["type"]
    assert "must be <= 60" in messages["range"]
    assert "Key (id) must be unique" in messages["duplicate_key"]
    summary = r.summary()
    for check in ("extra_column", "type", "range", "duplicate_key"):
        assert check in summary

    # Quarantine holds every row, with every reason and the values as they were in the file.
    base = ["extra_column:comment"]
    records = original_records(BAD_FILE)
    assert quarantine_rows(ws) == {
        1: (base, records[0]),
        2: ([*base, "type:day"], records[1]),
        3: ([*base, "range:temp"], records[2]),
        4: ([*base, "duplicate_key:id"], records[3]),
        5: ([*base, "duplicate_key:id"], records[4]),
    }
    q = tables.quarantine(ws, READINGS)
    assert set(q["ingest_id"]) == {res.ingest_id}
    assert set(q["as_of"]) == {pd.Timestamp(T0)}

    # Nothing was accepted: no version, and the table holds no rows.
    assert (res.version, res.fingerprint) == (None, None)
    assert tables.latest_version(ws, "readings") is None
    empty = tables.read_table(ws, READINGS)
    assert empty.num_rows == 0
    assert empty.schema == tables.arrow_schema(READINGS)


def test_bad_rows_are_quarantined_and_the_table_holds_exactly_the_good_ones(
        ws: Workspace, tmp_path: Path) -> None:
    path = write(tmp_path / "bad_rows.csv", BAD_ROWS)
    res = tables.ingest_file(ws, READINGS, path, as_of=T0)
    r = res.report
    assert (r.received, r.accepted, r.quarantined) == (7, 3, 4)
    assert problem_table(r) == [
        ("type", "day", 1, [2], ["not-a-date"]),
        ("range", "temp", 1, [3], ["99"]),
        ("duplicate_key", "id", 2, [4, 5], ["4", "4"]),
    ]
    records = original_records(BAD_ROWS)
    assert quarantine_rows(ws) == {
        2: (["type:day"], records[1]),
        3: (["range:temp"], records[2]),
        4: (["duplicate_key:id"], records[3]),
        5: (["duplicate_key:id"], records[4]),
    }
    assert res.version == 0
    table = tables.read_table(ws, READINGS)
    assert table.schema == tables.arrow_schema(READINGS)
    expected = pd.DataFrame({
        "id": [1, 5, 6],
        "station": ["a", "f", "g"],
        "day": pd.to_datetime(["2024-01-01", "2024-01-06", "2024-01-07"]).astype(
            "datetime64[us]"),
        "temp": [1.5, -7.25, None],
        "ok": [True, False, None],
    })
    got = table_frame(ws)
    assert got["id"].tolist() == [1, 5, 6]
    assert got["station"].tolist() == ["a", "f", "g"]
    assert got["day"].tolist() == expected["day"].tolist()
    assert got["temp"].iloc[:2].tolist() == [1.5, -7.25] and pd.isna(got["temp"].iloc[2])
    assert got["ok"].iloc[:2].tolist() == [True, False] and pd.isna(got["ok"].iloc[2])
    v = tables.latest_version(ws, "readings")
    assert v is not None
    assert (v["version"], v["rows"], v["total_rows"], v["fingerprint"]) == (
        0, 3, 3, res.fingerprint)


def test_quarantine_accumulates_across_ingests(ws: Workspace, tmp_path: Path) -> None:
    first = tables.ingest_file(ws, READINGS, write(tmp_path / "bad.csv", BAD_FILE), as_of=T0)
    second = tables.ingest_file(ws, READINGS, write(tmp_path / "rows.csv", BAD_ROWS),
                                as_of=T1)
    q = tables.quarantine(ws, READINGS)
    assert len(q) == first.report.quarantined + second.report.quarantined == 9
    assert sorted(quarantine_rows(ws, first.ingest_id)) == [1, 2, 3, 4, 5]
    assert sorted(quarantine_rows(ws, second.ingest_id)) == [2, 3, 4, 5]
    with ws.engine().connect() as conn:
        ingests = {r["ingest_id"]: r for r in conn.execute(sa.select(meta.ingests)).mappings()}
    assert ingests[first.ingest_id]["file"] == str(tmp_path / "bad.csv")
    assert (ingests[first.ingest_id]["received"], ingests[first.ingest_id]["accepted"],
            ingests[first.ingest_id]["quarantined"],
            ingests[first.ingest_id]["table_version"]) == (5, 0, 5, None)
    assert (ingests[second.ingest_id]["received"], ingests[second.ingest_id]["accepted"],
            ingests[second.ingest_id]["quarantined"],
            ingests[second.ingest_id]["table_version"]) == (7, 3, 4, 0)
    assert ingests[second.ingest_id]["report"] == json.loads(json.dumps(
        second.report.to_dict()))


def test_extra_column_is_dropped_when_the_contract_says_so(ws: Workspace,
                                                           tmp_path: Path) -> None:
    text = BAD_ROWS.replace(HEADER, HEADER + ",comment").replace("\n", ",c\n")
    text = text.replace(HEADER + ",comment,c", HEADER + ",comment")
    res = tables.ingest_file(ws, READINGS_DROP, write(tmp_path / "extra.csv", text), as_of=T0)
    assert (res.report.received, res.report.accepted, res.report.quarantined) == (7, 3, 4)
    assert res.report.warnings == ("Column 'comment' is not in the contract and was dropped.",)
    assert [p.check for p in res.report.problems] == ["type", "range", "duplicate_key"]
    assert tables.read_table(ws, READINGS).column_names == [c.name for c in COLUMNS]
    assert table_frame(ws)["id"].tolist() == [1, 5, 6]
    # The quarantine keeps the dropped column's original value too.
    assert quarantine_rows(ws)[2][1]["comment"] == "c"


# ------------------------------------------------------------ versions, fingerprints


def test_each_accepted_ingest_creates_a_new_version(ws: Workspace, tmp_path: Path) -> None:
    results = [tables.ingest_file(ws, READINGS, write(tmp_path / f"{n}.csv", csv_rows(ids)),
                                  as_of=t)
               for n, ids, t in (("a", range(1, 3), T0), ("b", range(3, 6), T1),
                                 ("c", range(6, 7), T2))]
    assert [r.version for r in results] == [0, 1, 2]
    versions = tables.list_versions(ws, "readings")
    assert [(v["version"], v["rows"], v["total_rows"], v["as_of"]) for v in versions] == [
        (0, 2, 2, T0), (1, 3, 5, T1), (2, 1, 6, T2)]
    assert [v["fingerprint"] for v in versions] == [r.fingerprint for r in results]
    assert [v["ingest_id"] for v in versions] == [r.ingest_id for r in results]
    fps = [r.fingerprint for r in results]
    assert len(set(fps)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{64}", fp or "") for fp in fps)
    assert tables.read_table(ws, READINGS).num_rows == 6


def test_fingerprints_are_identical_for_identical_content(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", csv_rows(range(1, 4)))
    b = write(tmp_path / "b.csv", csv_rows(range(4, 6)))
    ws1 = open_workspace(tmp_path / "ws1")
    ws2 = open_workspace(tmp_path / "ws2")
    ws3 = open_workspace(tmp_path / "ws3")
    fp1 = [tables.ingest_file(ws1, READINGS, f, as_of=T0).fingerprint for f in (a, b)]
    # Another workspace, another day: the fingerprint depends on content only.
    fp2 = [tables.ingest_file(ws2, READINGS, f, as_of=T3).fingerprint for f in (a, b)]
    assert fp1 == fp2
    assert fp1[0] != fp1[1]
    # The fingerprint chains the previous version: b alone is not b after a.
    fp3 = tables.ingest_file(ws3, READINGS, b, as_of=T0).fingerprint
    assert fp3 not in fp1


def test_csv_and_parquet_with_the_same_content_have_the_same_fingerprint(
        tmp_path: Path) -> None:
    csv = write(tmp_path / "a.csv", "id,station,day,temp,ok\n1,a,2024-01-01,1.5,true\n"
                                    "2,b,2024-01-02,,\n")
    frame = pd.DataFrame({"id": [1, 2], "station": ["a", "b"],
                          "day": pd.to_datetime(["2024-01-01", "2024-01-02"]),
                          "temp": [1.5, None], "ok": [True, None]})
    parquet = tmp_path / "a.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet)
    fp_csv = tables.ingest_file(open_workspace(tmp_path / "w1"), READINGS, csv, as_of=T0)
    fp_pq = tables.ingest_file(open_workspace(tmp_path / "w2"), READINGS, parquet, as_of=T0)
    assert fp_csv.report.ok and fp_pq.report.ok
    assert fp_csv.fingerprint == fp_pq.fingerprint


def test_reingesting_the_same_file_quarantines_every_row_and_adds_no_version(
        ws: Workspace, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", csv_rows(range(1, 5)))
    first = tables.ingest_file(ws, READINGS, path, as_of=T0)
    again = tables.ingest_file(ws, READINGS, path, as_of=T1)
    r = again.report
    assert (r.received, r.accepted, r.quarantined) == (4, 0, 4)
    assert problem_table(r) == [("existing_key", "id", 4, [1, 2, 3, 4], ["1", "2", "3", "4"])]
    assert "already in the table" in r.problems[0].message
    assert (again.version, again.fingerprint) == (first.version, first.fingerprint) == (
        0, first.fingerprint)
    assert len(tables.list_versions(ws, "readings")) == 1
    assert tables.read_table(ws, READINGS).num_rows == 4
    records = original_records(csv_rows(range(1, 5)))
    assert quarantine_rows(ws, again.ingest_id) == {
        i: (["existing_key:id"], records[i - 1]) for i in range(1, 5)}


def test_partly_new_file_accepts_only_new_keys(ws: Workspace, tmp_path: Path) -> None:
    tables.ingest_file(ws, READINGS, write(tmp_path / "a.csv", csv_rows(range(1, 4))),
                       as_of=T0)
    res = tables.ingest_file(ws, READINGS, write(tmp_path / "b.csv", csv_rows(range(2, 6))),
                             as_of=T1)
    assert (res.report.accepted, res.report.quarantined, res.version) == (2, 2, 1)
    assert problem_table(res.report) == [("existing_key", "id", 2, [1, 2], ["2", "3"])]
    assert table_frame(ws)["id"].tolist() == [1, 2, 3, 4, 5]


def test_read_table_time_travels(ws: Workspace, tmp_path: Path) -> None:
    for n, ids, t in (("a", range(1, 3), T0), ("b", range(3, 6), T1), ("c", range(6, 8), T2)):
        tables.ingest_file(ws, READINGS, write(tmp_path / f"{n}.csv", csv_rows(ids)), as_of=t)
    assert table_frame(ws, 0)["id"].tolist() == [1, 2]
    assert table_frame(ws, 1)["id"].tolist() == [1, 2, 3, 4, 5]
    assert table_frame(ws, 2)["id"].tolist() == list(range(1, 8))
    assert table_frame(ws)["id"].tolist() == list(range(1, 8))
    cols = tables.read_table(ws, READINGS, version=1, columns=["id", "temp"])
    assert cols.column_names == ["id", "temp"] and cols.num_rows == 5


def test_read_table_before_any_ingest(ws: Workspace) -> None:
    t = tables.read_table(ws, READINGS)
    assert t.num_rows == 0 and t.schema == tables.arrow_schema(READINGS)
    assert tables.read_table(ws, READINGS, columns=["day"]).column_names == ["day"]
    with pytest.raises(NotFound, match="'readings' has no version 0"):
        tables.read_table(ws, READINGS, version=0)


def test_read_table_unknown_version_is_not_found(ws: Workspace, tmp_path: Path) -> None:
    tables.ingest_file(ws, READINGS, write(tmp_path / "a.csv", csv_rows(range(1, 3))),
                       as_of=T0)
    with pytest.raises(NotFound, match="no version 7"):
        tables.read_table(ws, READINGS, version=7)


def test_versions_as_of_picks_by_as_of(ws: Workspace, tmp_path: Path) -> None:
    for n, ids, t in (("a", range(1, 3), T0), ("b", range(3, 6), T1)):
        tables.ingest_file(ws, READINGS, write(tmp_path / f"{n}.csv", csv_rows(ids)), as_of=t)
    # A fully quarantined ingest at T2 creates no version.
    tables.ingest_file(ws, READINGS, tmp_path / "a.csv", as_of=T2)
    tables.ingest_file(ws, READINGS, write(tmp_path / "c.csv", csv_rows(range(6, 8))), as_of=T3)
    names = ["readings", "other"]
    assert tables.versions_as_of(ws, names, datetime(2024, 1, 31)) == {}
    assert tables.versions_as_of(ws, names, T0) == {"readings": 0}
    assert tables.versions_as_of(ws, names, datetime(2024, 2, 1, 23, 59)) == {"readings": 0}
    assert tables.versions_as_of(ws, names, T1) == {"readings": 1}
    assert tables.versions_as_of(ws, names, T2) == {"readings": 1}
    assert tables.versions_as_of(ws, names, T3) == {"readings": 2}
    assert tables.versions_as_of(ws, names, datetime(2030, 1, 1)) == {"readings": 2}
    picked = tables.versions_as_of(ws, ["readings"], T2)["readings"]
    assert table_frame(ws, picked)["id"].tolist() == [1, 2, 3, 4, 5]


def test_backdated_ingest_does_not_leak_later_rows(ws: Workspace, tmp_path: Path) -> None:
    tables.ingest_file(ws, READINGS, write(tmp_path / "late.csv", csv_rows(range(1, 3))),
                       as_of=T3)
    with pytest.raises(Conflict, match="would rewrite what was known back then"):
        tables.ingest_file(ws, READINGS, write(tmp_path / "early.csv", csv_rows(range(3, 5))),
                           as_of=T1)
    assert tables.versions_as_of(ws, ["readings"], T1) == {}
    assert [v["version"] for v in tables.list_versions(ws, "readings")] == [0]


# -------------------------------------------------------------------- file formats


def test_parquet_input(ws: Workspace, tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "id": [10, 11, 12, 11],
        "station": ["p", "q", None, "r"],
        "day": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]),
        "temp": [20.5, 75.0, 1.0, 2.0],
        "ok": [True, False, None, True],
    })
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    res = tables.ingest_file(ws, READINGS, path, as_of=T0)
    assert (res.report.received, res.report.accepted, res.report.quarantined) == (4, 1, 3)
    assert problem_table(res.report) == [
        ("null", "station", 1, [3], [None]),
        ("range", "temp", 1, [2], [75.0]),
        ("duplicate_key", "id", 2, [2, 4], ["11", "11"]),
    ]
    got = table_frame(ws)
    assert got["id"].tolist() == [10]
    assert got["day"].tolist() == [pd.Timestamp("2024-03-01")]
    assert got["temp"].tolist() == [20.5] and got["ok"].tolist() == [True]
    # Typed originals keep their JSON types in quarantine.
    assert quarantine_rows(ws)[2] == (["range:temp", "duplicate_key:id"], {
        "id": 11, "station": "q", "day": "2024-03-02T00:00:00", "temp": 75.0, "ok": False})


def test_parquet_with_string_columns_is_validated_like_csv(ws: Workspace,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({"id": ["1", "x"], "station": ["a", "b"],
                             "day": ["2024-01-01", "2024-01-02"], "temp": ["1", "2"],
                             "ok": ["yes", "no"]}), path)
    res = tables.ingest_file(ws, READINGS, path, as_of=T0)
    assert problem_table(res.report) == [("type", "id", 1, [2], ["x"])]
    assert table_frame(ws)["ok"].tolist() == [True]


def test_missing_file_is_named(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(TuesdayError, match=re.escape(f"Input file '{path}' does not exist")):
        tables.ingest_file(ws, READINGS, path, as_of=T0)
    with pytest.raises(TuesdayError, match=re.escape(str(tmp_path))):
        tables.read_file(tmp_path)  # a folder is not a file either


@pytest.mark.parametrize(("name", "content", "why"), [
    ("broken.parquet", b"this is not parquet", "could not be read as parquet"),
    ("latin1.csv", "id,station\n1,S\xe3o Paulo\n".encode("latin-1"), "could not be read as csv"),
    ("empty.csv", b"", "is empty; expected a header line"),
])
def test_unreadable_file_is_named(ws: Workspace, tmp_path: Path, name: str, content: bytes,
                                  why: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TuesdayError, match=re.escape(f"Input file '{path}' {why}")):
        tables.ingest_file(ws, READINGS, path, as_of=T0)
    assert tables.latest_version(ws, "readings") is None
    assert tables.quarantine(ws, READINGS).empty


@pytest.mark.parametrize("name", ["data.json", "data.xlsx", "data"])
def test_wrong_suffix_is_named(ws: Workspace, tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, csv_rows(range(1, 2)))
    with pytest.raises(TuesdayError, match=re.escape(f"Input file '{path}' has suffix")
                       + ".*expected .csv or .parquet"):
        tables.ingest_file(ws, READINGS, path, as_of=T0)


def test_ragged_rows_are_quarantined_not_shifted(ws: Workspace, tmp_path: Path) -> None:
    """A row with a stray separator is kept aside as written; the others keep their row
    numbers."""
    path = write(tmp_path / "ragged.csv", "id,station,day,temp,ok\n"
                 "1,a,2024-03-01,1.5,true\n"
                 "2,b,x,2024-03-02,2.5,true\n"
                 "3,c,2024-03-03\n"
                 "4,d,2024-03-04,3.5,false\n")
    res = tables.ingest_file(ws, READINGS, path, as_of=T0)
    r = res.report
    assert (r.received, r.accepted, r.quarantined) == (4, 2, 2)
    (p,) = [p for p in r.problems if p.check == "malformed_row"]
    assert p.count == 2 and [e["row"] for e in p.examples] == [2, 3]
    q = tables.quarantine(ws, READINGS).sort_values("row")
    assert q["row"].tolist() == [2, 3]
    assert json.loads(q["values"].iloc[0]) == {"_line": "2,b,x,2024-03-02,2.5,true"}
    assert "6 field(s); the header has 5" in q["reasons"].iloc[0]
    assert table_frame(ws, res.version)["id"].tolist() == [1, 4]


# ------------------------------------------------------- quarantine: fix and re-ingest


def test_export_fix_and_reingest_resolves_the_quarantine(ws: Workspace,
                                                         tmp_path: Path) -> None:
    first = tables.ingest_file(ws, READINGS, write(tmp_path / "rows.csv", BAD_ROWS), as_of=T0)
    out = tmp_path / "fix.csv"
    assert tables.export_quarantine(ws, READINGS, out) == 4
    lines = out.read_text().splitlines()
    assert lines[0] == ("_quarantine_ingest,_quarantine_row,_quarantine_reasons,"
                        "id,station,day,temp,ok")
    assert lines[1] == f"{first.ingest_id},2,type:day,2,b,not-a-date,2.0,false"
    assert lines[3] == f"{first.ingest_id},4,duplicate_key:id,4,d,2024-01-04,3.0,"
    # The user fixes the date and the temperature, keeps one copy of key 4 and deletes
    # the other, and leaves row 5 as it was.
    fixed = [lines[0], lines[1].replace("not-a-date", "2024-01-02"),
             lines[2].replace(",99,", ",29,"), lines[3]]
    write(out, "\n".join(fixed) + "\n")
    again = tables.ingest_file(ws, READINGS, out, as_of=T1)
    r = again.report
    assert (r.received, r.accepted, r.quarantined) == (3, 3, 0)
    assert any("corrects 3 quarantined row(s): 3 accepted" in w for w in r.warnings)
    assert table_frame(ws)["id"].tolist() == [1, 2, 3, 4, 5, 6]
    # History is not rewritten: every entry stays, three are now resolved by the fix.
    q = tables.quarantine(ws, READINGS)
    assert len(q) == 4
    resolved = q.set_index("row")[["resolved_by", "outcome"]].to_dict("index")
    assert resolved == {2: {"resolved_by": again.ingest_id, "outcome": "accepted"},
                        3: {"resolved_by": again.ingest_id, "outcome": "accepted"},
                        4: {"resolved_by": again.ingest_id, "outcome": "accepted"},
                        5: {"resolved_by": None, "outcome": None}}
    still = tables.quarantine(ws, READINGS, open_only=True)
    assert still["row"].tolist() == [5]
    # Re-ingesting the same fix resolves nothing twice: its keys are now in the table.
    third = tables.ingest_file(ws, READINGS, out, as_of=T2)
    assert third.report.accepted == 0
    assert any("do not exist or were already resolved" in w for w in third.report.warnings)
    assert tables.export_quarantine(ws, READINGS, tmp_path / "left.csv",
                                    ingest_id=first.ingest_id) == 1


def test_a_fix_that_fails_again_reopens_under_the_new_ingest(ws: Workspace,
                                                             tmp_path: Path) -> None:
    first = tables.ingest_file(ws, READINGS, write(tmp_path / "bad.csv", BAD_FILE), as_of=T0)
    out = tmp_path / "fix.csv"
    assert tables.export_quarantine(ws, READINGS, out) == 5
    header = out.read_text().splitlines()[0]
    assert header == ("_quarantine_ingest,_quarantine_row,_quarantine_reasons,"
                      "id,station,day,temp,ok,comment")
    again = tables.ingest_file(ws, READINGS, out, as_of=T1)  # unchanged: still bad
    assert (again.report.accepted, again.report.quarantined) == (0, 5)
    q = tables.quarantine(ws, READINGS)
    old = q[q["ingest_id"] == first.ingest_id]
    assert set(old["outcome"]) == {"quarantined"} and set(old["resolved_by"]) == {
        again.ingest_id}
    # the open rows are now the new entries, with the values as re-ingested
    open_rows = tables.quarantine(ws, READINGS, open_only=True)
    assert set(open_rows["ingest_id"]) == {again.ingest_id}
    assert json.loads(open_rows["values"].iloc[0])["comment"] == "fine"
    assert tables.export_quarantine(ws, READINGS, tmp_path / "again.csv") == 5


def test_export_carries_malformed_lines(ws: Workspace, tmp_path: Path) -> None:
    path = write(tmp_path / "ragged.csv", "id,station,day,temp,ok\n1,a,2024-03-01,1.5,true\n"
                 "2,b,x,2024-03-02,2.5,true\n")
    first = tables.ingest_file(ws, READINGS, path, as_of=T0)
    out = tmp_path / "fix.csv"
    assert tables.export_quarantine(ws, READINGS, out) == 1
    rows = out.read_text().splitlines()
    assert rows[0].endswith(",_quarantine_line")
    assert rows[1].startswith(f"{first.ingest_id},2,malformed_row: row has 6 field(s)")
    assert rows[1].endswith('"2,b,x,2024-03-02,2.5,true"')
    # the user fills in the columns; the raw line column is ignored on re-ingest
    pd.DataFrame({"_quarantine_ingest": [first.ingest_id], "_quarantine_row": [2],
                  "_quarantine_line": ["whatever"], "id": [2], "station": ["b"],
                  "day": ["2024-03-02"], "temp": [2.5], "ok": [True]}).to_csv(out, index=False)
    fixed = tables.ingest_file(ws, READINGS, out, as_of=T1)
    assert (fixed.report.accepted, fixed.report.quarantined) == (1, 0)
    assert tables.quarantine(ws, READINGS, open_only=True).empty


def test_export_errors_name_the_thing(ws: Workspace, tmp_path: Path) -> None:
    tables.ingest_file(ws, READINGS, write(tmp_path / "rows.csv", BAD_ROWS), as_of=T0)
    with pytest.raises(NotFound, match="has no ingest 'nope'"):
        tables.export_quarantine(ws, READINGS, tmp_path / "x.csv", ingest_id="nope")
    with pytest.raises(TuesdayError, match="does not exist"):
        tables.export_quarantine(ws, READINGS, tmp_path / "no" / "x.csv")
    assert tables.export_quarantine(ws, READINGS_DROP, tmp_path / "x.csv") == 4


# ------------------------------------------------------------------ batch checks

DAILY_COLUMNS = (Column("store", "str", nullable=False), Column("day", "date", nullable=False),
                 Column("sales", "float", min=0))


def daily_source(**contract: Any) -> Source:
    return Source("sales", Contract(DAILY_COLUMNS, unique=("store", "day"), **contract),
                  time="day", entity=Entity("store"))


def daily_csv(path: Path, days: range, stores: tuple[str, ...] = ("a", "b"),
              month: int = 1) -> Path:
    lines = ["store,day,sales"] + [f"{s},2024-{month:02d}-{d:02d},1.5" for d in days
                                   for s in stores]
    return write(path, "\n".join(lines) + "\n")


def test_stale_delivery_warns_or_is_rejected(ws: Workspace, tmp_path: Path) -> None:
    warn = daily_source(freshness=Freshness("2d"))
    res = tables.ingest_file(ws, warn, daily_csv(tmp_path / "a.csv", range(1, 4)),
                             as_of=datetime(2024, 1, 10))
    assert res.report.accepted == 6 and res.version == 0
    (check,) = res.report.batch
    assert (check.check, check.status) == ("freshness", "warn")
    with ws.engine().connect() as conn:
        stored = conn.execute(sa.select(meta.ingests.c.report)).scalar_one()
    assert stored["batch_checks"][0]["status"] == "warn"
    assert check.message in stored["warnings"]

    reject = daily_source(freshness=Freshness("2d", on_fail="reject"))
    res = tables.ingest_file(ws, reject, daily_csv(tmp_path / "b.csv", range(4, 6)),
                             as_of=datetime(2024, 1, 10))
    assert (res.report.accepted, res.report.quarantined, res.version) == (0, 4, 0)
    q = tables.quarantine(ws, reject)
    assert set(q[q["ingest_id"] == res.ingest_id]["reasons"]) == {"freshness:day"}


def test_volume_compares_with_recent_deliveries_not_corrections(ws: Workspace,
                                                                tmp_path: Path) -> None:
    src = daily_source(volume=Volume(min_ratio=0.5, max_ratio=2.0, history=3))
    days = iter(range(1, 29))

    def deliver(stores: int, at: datetime) -> Any:
        names = tuple(f"s{i}" for i in range(stores))
        return tables.ingest_file(ws, src, daily_csv(tmp_path / f"{at:%d%H}.csv",
                                                     range(next(days), next(days) - 1 + 1),
                                                     names), as_of=at).report

    first = deliver(10, datetime(2024, 2, 1))
    assert [b.status for b in first.batch] == ["skipped"]
    assert [b.status for b in deliver(10, datetime(2024, 2, 2)).batch] == ["ok"]
    small = deliver(3, datetime(2024, 2, 3))
    (check,) = small.batch
    assert check.status == "warn" and check.details["median"] == 10.0
    assert small.accepted == 3
    # a correction of quarantined rows is neither checked nor counted
    bad = tables.ingest_file(ws, src, write(tmp_path / "bad.csv", "store,day,sales\n"
                                            "x,2024-01-30,-1\n"), as_of=datetime(2024, 2, 4))
    assert bad.report.accepted == 0
    out = tmp_path / "fix.csv"
    tables.export_quarantine(ws, src, out)
    write(out, out.read_text().replace(",-1", ",1"))
    fix = tables.ingest_file(ws, src, out, as_of=datetime(2024, 2, 5)).report
    assert fix.batch == () and fix.accepted == 1
    assert tables._recent_volumes(ws, "sales", 5) == [3, 10, 10]


def test_min_history_names_entities_with_short_history(ws: Workspace,
                                                       tmp_path: Path) -> None:
    src = daily_source(min_history=MinHistory(periods=5, examples=1))
    tables.ingest_file(ws, src, daily_csv(tmp_path / "a.csv", range(1, 5), ("a", "b")),
                       as_of=T0)
    res = tables.ingest_file(ws, src, daily_csv(tmp_path / "b.csv", range(5, 6), ("a", "c")),
                             as_of=T1)
    (check,) = res.report.batch
    assert check.check == "min_history" and check.status == "warn"
    assert (check.details["short"], check.details["entities"]) == (2, 3)
    assert check.details["examples"] == [{"entity": "c", "periods": 1}]
    assert "2 of 3 store value(s) of 'sales' have fewer than 5 periods" in check.message
    assert "and 1 more" in check.message
    assert res.report.ok  # a report item, nothing quarantined


def test_taxonomy_maps_history_at_ingest(ws: Workspace, tmp_path: Path) -> None:
    src = Source("sales", Contract(DAILY_COLUMNS, unique=("store", "day")), time="day",
                 entity=Entity("store"),
                 taxonomy=Taxonomy("store", {"old_a": "a", "old_b": "a"},
                                   effective="2024-01-03"))
    path = write(tmp_path / "a.csv", "store,day,sales\nold_a,2024-01-01,1\nold_a,2024-01-02,1\n"
                 "old_b,2024-01-02,2\nold_a,2024-01-03,3\na,2024-01-03,4\n")
    res = tables.ingest_file(ws, src, path, as_of=T0)
    r = res.report
    assert (r.accepted, r.quarantined, r.rows_mapped) == (3, 2, 1)
    assert [p.check for p in r.problems] == ["duplicate_key"]  # old_a and old_b on the 2nd
    got = tables.read_table(ws, src).to_pandas().sort_values(["day", "store"])
    assert got["store"].tolist() == ["a", "a", "old_a"]  # from the 3rd, codes are as sent
    # a later file repeating a mapped day is caught against the table, after mapping
    again = tables.ingest_file(ws, src, write(tmp_path / "b.csv",
                                              "store,day,sales\nold_b,2024-01-01,9\n"), as_of=T1)
    assert [p.check for p in again.report.problems] == ["existing_key"]


def test_renamed_upstream_column_through_ingest(ws: Workspace, tmp_path: Path) -> None:
    src = daily_source(extra_columns="map", rename={"revenue": "sales"})
    path = write(tmp_path / "a.csv", "store,day,revenue\na,2024-01-01,2.5\n")
    res = tables.ingest_file(ws, src, path, as_of=T0)
    assert res.report.ok and res.report.accepted == 1
    assert tables.read_table(ws, src).column("sales").to_pylist() == [2.5]


# ----------------------------------------------------- property: bad files, nothing lost

CSV_CELL = st.one_of(st.sampled_from(["", " ", "1", "-3", "2.5", "x", "2024-01-05", "yes",
                                      "true", "s", "99", "1e3", '"a,b"', "2024-02-30"]),
                     st.integers(-5, 70).map(str))


@st.composite
def bad_files(draw: st.DrawFn) -> tuple[str, int]:
    """A CSV with the right, missing or extra columns, ragged rows and bad values; and
    how many data rows it has."""
    header = list(draw(st.permutations(["id", "station", "day", "temp", "ok"])))
    if draw(st.booleans()):
        header = header[:draw(st.integers(1, 5))]
    if draw(st.booleans()):
        header.append("comment")
    lines = [",".join(header)]
    n = draw(st.integers(0, 12))
    for _ in range(n):
        width = len(header) + (draw(st.sampled_from([-1, 1])) if draw(st.integers(0, 5)) == 0
                               else 0)
        cells = [str(draw(st.integers(0, 8))) if h == "id" else draw(CSV_CELL)
                 for h in [*header, "extra"][:max(width, 1)]]
        line = ",".join(cells)
        lines.append(" " if not line and len(header) > 1 else line)  # no blank lines
    return "\n".join(lines) + "\n", n


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(bad_files(), min_size=1, max_size=3),
       st.sampled_from(["reject", "warn", "map"]), st.booleans())
def test_property_every_row_of_every_bad_file_is_kept_or_quarantined(
        tmp_path: Path, files: list[tuple[str, int]], policy: str, fix: bool) -> None:
    """Whatever the files hold, each ingest accounts for every data row, the table holds
    exactly the accepted rows and the quarantine exactly the quarantined ones; a
    re-ingest of the exported quarantine resolves entries and loses nothing either."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    ws = open_workspace(folder / "ws")
    src = Source("readings", Contract(
        COLUMNS, unique=("id",), extra_columns=policy,
        rename={"comment": "station"} if policy == "map" else {},
        freshness=Freshness("1d", on_fail="reject"), volume=Volume(history=2)),
        time="day", entity=Entity("station"),
        taxonomy=Taxonomy("station", {"s": "S"}, effective="2024-01-03"))
    accepted = quarantined = 0
    for k, (text, n) in enumerate(files):
        try:
            res = tables.ingest_file(ws, src, write(folder / f"{k}.csv", text),
                                     as_of=datetime(2024, 1, 6 + k))
        except ValidationFailed as exc:  # a required column is missing: nothing is kept
            assert "missing required column" in exc.message and n > 0
            assert tables.read_table(ws, src).num_rows == accepted
            assert len(tables.quarantine(ws, src)) == quarantined
            continue
        r = res.report
        assert r.received == n
        assert r.accepted + r.quarantined == r.received
        accepted += r.accepted
        quarantined += r.quarantined
        assert tables.read_table(ws, src).num_rows == accepted
        assert len(tables.quarantine(ws, src)) == quarantined
    if fix and quarantined:
        out = folder / "fix.csv"
        files = tables.export_quarantine_files(ws, src, out)  # one per ingest
        exported = sum(n for _, _, n in files)
        assert exported == quarantined
        got = [tables.ingest_file(ws, src, f, as_of=datetime(2024, 2, 1)).report
               for _, f, _ in files]
        ok, again = sum(r.accepted for r in got), sum(r.quarantined for r in got)
        assert ok + again == sum(r.received for r in got) == exported
        assert tables.read_table(ws, src).num_rows == accepted + ok
        q = tables.quarantine(ws, src)
        assert len(q) == quarantined + again
        assert q["resolved_by"].notna().sum() == exported
        assert len(tables.quarantine(ws, src, open_only=True)) == again


def _ridership_lines(n: int) -> list[str]:
    return ["id,station,day,temp,ok"] + [
        f"{i},s{i},2024-01-{i % 28 + 1:02d},1.5,true" for i in range(1, n + 1)]


@pytest.mark.parametrize("closed", [False, True])
def test_stray_quote_is_kept_aside_alone_with_its_line(ws: Workspace, tmp_path: Path,
                                                       closed: bool) -> None:
    """A quote at a line's start would swallow the lines after it (until the end of the
    file, or until another quote further down): only that line is quarantined, naming
    it, and every other row keeps its number."""
    lines = _ridership_lines(3_000)
    lines[100] = '"' + lines[100]  # row 100, line 101
    if closed:
        lines[2_900] = 'x"' + lines[2_900]  # another stray quote closes the field
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(lines) + "\n")
    res = tables.ingest_file(ws, READINGS, path, as_of=T0)
    r = res.report
    bad_rows = {100, 2_900} if closed else {100}
    assert (r.received, r.quarantined) == (3_000, len(bad_rows))
    malformed = [p for p in r.problems if p.check == "malformed_row"]
    assert malformed and "line 101 has a quote that opens a field" in malformed[0].message
    q = tables.quarantine(ws, READINGS)
    assert set(q["row"]) == bad_rows
    got = tables.read_table(ws, READINGS).to_pandas()
    assert len(got) == 3_000 - len(bad_rows)
    assert set(got["id"]) == set(range(1, 3_001)) - bad_rows


def test_quoted_field_over_two_lines_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('a,b\n1,"two\nlines"\n3,4\n')
    batch = tables.read_file(path)
    assert batch.frame.to_pylist() == [{"a": "1", "b": "two\nlines"}, {"a": "3", "b": "4"}]
    assert batch.rows.tolist() == [1, 2] and batch.malformed == ()
