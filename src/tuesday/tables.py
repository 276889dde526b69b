"""Versioned tables: validated ingest into Delta Lake, quarantine, fingerprints, reads.

Every accepted ingest is one immutable Delta version with a content fingerprint that
chains the previous version's fingerprint with the new rows; a run records the versions
it read. Failing rows go to ``quarantine/SOURCE`` with their original values and reasons.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from tuesday import meta
from tuesday.contracts import Report, Validation, validate
from tuesday.errors import Conflict, NotFound, TuesdayError, ValidationFailed
from tuesday.project import Column, Source
from tuesday.workspace import Workspace

_ARROW = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_(),
          "date": pa.timestamp("us"), "timestamp": pa.timestamp("us")}


@dataclass(frozen=True)
class IngestResult:
    """The outcome of one ingest."""

    ingest_id: str
    report: Report
    version: int | None
    fingerprint: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"ingest_id": self.ingest_id, "table_version": self.version,
                "fingerprint": self.fingerprint, **self.report.to_dict()}


def arrow_schema(source: Source) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW[c.dtype]) for c in source.contract.columns])


@dataclass(frozen=True)
class RawBatch:
    """Rows as read from a file, before validation.

    Attributes:
        frame: The rows that could be split into the header's columns.
        rows: The data-row number in the file of each row of ``frame`` (1 = first row).
        malformed: Rows that could not be split: (row number, raw text, reason).
    """

    frame: pd.DataFrame
    rows: np.ndarray
    malformed: tuple[tuple[int, str, str], ...] = ()


def read_file(path: str | Path) -> RawBatch:
    """Read a CSV (every value as text, so the contract decides the types) or Parquet.

    A CSV row with more or fewer fields than the header is kept aside as malformed (it
    goes to quarantine), never shifted into the wrong columns.
    """
    p = Path(path)
    if p.is_dir():
        raise TuesdayError(f"Input path {str(p)!r} is a folder; expected a CSV or Parquet file.",
                           fix="Pass the path of one file.")
    if not p.is_file():
        raise TuesdayError(f"Input file {str(p)!r} does not exist.",
                           fix="Check the path; CSV and Parquet files are accepted.")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pq.read_table(p).to_pandas()
            return RawBatch(frame, np.arange(1, len(frame) + 1))
        if suffix in (".csv", ".txt", ".gz"):
            return _read_csv(p)
    except TuesdayError:
        raise
    except Exception as exc:
        raise TuesdayError(f"Input file {str(p)!r} could not be read as {suffix[1:]}: {exc}.",
                           fix="Check that the file is a well-formed CSV or Parquet file."
                           ) from exc
    raise TuesdayError(f"Input file {str(p)!r} has suffix {suffix!r}; expected .csv or "
                       ".parquet.", fix="Convert the file to CSV or Parquet.")


def _read_csv(p: Path) -> RawBatch:
    with (gzip.open(p, "rt", newline="") if p.suffix.lower() == ".gz"
          else open(p, newline="")) as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise TuesdayError(f"Input file {str(p)!r} is empty; expected a header line.",
                           fix="Write the column names on the first line.")
    bad: list[Any] = []

    def keep_aside(row: Any) -> str:
        bad.append(row)
        return "skip"

    table = pacsv.read_csv(
        p, read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_aside),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True,
            null_values=[""]))
    malformed = tuple(
        (int(r.number) - 1, str(r.text),
         f"row has {r.actual_columns} field(s); the header has {r.expected_columns}")
        for r in bad)
    taken = {m[0] for m in malformed}
    rows = np.array([i for i in range(1, table.num_rows + len(taken) + 1) if i not in taken],
                    dtype="int64")
    return RawBatch(table.to_pandas(), rows, malformed)


def ingest_frame(ws: Workspace, source: Source, frame: pd.DataFrame | RawBatch, *,
                 as_of: datetime, file: str = "<frame>") -> IngestResult:
    """Validate rows, append accepted rows as a new version, quarantine the rest."""
    batch = frame if isinstance(frame, RawBatch) else \
        RawBatch(frame, np.arange(1, len(frame) + 1))
    frame = batch.frame
    last = latest_version(ws, source.name)
    if last is not None and pd.Timestamp(as_of) < pd.Timestamp(last["as_of"]):
        raise Conflict(
            f"Table {source.name!r} already has version {last['version']} as of "
            f"{pd.Timestamp(last['as_of']).isoformat()}; an ingest as of "
            f"{pd.Timestamp(as_of).isoformat()} would rewrite what was known back then.",
            fix="Ingest with an --as-of at or after the latest version's.")
    existing = _existing_keys(ws, source, frame)
    val = validate(frame, source.contract, source=source.name, existing_keys=existing,
                   row_numbers=batch.rows, malformed=batch.malformed)
    ingest_id = uuid.uuid4().hex
    version, fingerprint = _append(ws, source, val, ingest_id=ingest_id, as_of=as_of)
    _quarantine(ws, source, val, ingest_id=ingest_id, as_of=as_of)
    with ws.engine().begin() as conn:
        conn.execute(meta.ingests.insert().values(
            ingest_id=ingest_id, source=source.name, file=file, as_of=as_of,
            received=val.report.received, accepted=val.report.accepted,
            quarantined=val.report.quarantined, table_version=version,
            report=val.report.to_dict()))
    return IngestResult(ingest_id, val.report, version, fingerprint)


def ingest_file(ws: Workspace, source: Source, path: str | Path, *,
                as_of: datetime) -> IngestResult:
    """Read and ingest one file (see ``ingest_frame``)."""
    return ingest_frame(ws, source, read_file(path), as_of=as_of, file=str(path))


def _existing_keys(ws: Workspace, source: Source, frame: pd.DataFrame) -> pd.DataFrame | None:
    key = list(source.contract.unique)
    if not key or not all(k in frame.columns for k in key):
        return None
    dt = _delta(ws.table_path(source.name))
    if dt is None:
        return None
    return dt.to_pyarrow_table(columns=key).to_pandas()


def _append(ws: Workspace, source: Source, val: Validation, *, ingest_id: str,
            as_of: datetime) -> tuple[int | None, str | None]:
    path = ws.table_path(source.name)
    if val.accepted.empty:
        last = latest_version(ws, source.name)
        return (last["version"], last["fingerprint"]) if last else (None, None)
    table = _to_arrow(val.accepted, source.contract.columns)
    prev = latest_version(ws, source.name)
    digest = hashlib.sha256((prev["fingerprint"] if prev else "").encode())
    digest.update(_ipc_bytes(table))
    fingerprint = digest.hexdigest()
    write_deltalake(str(path), table, mode="append",
                    commit_properties=None, configuration=None)
    dt = DeltaTable(str(path))
    version = int(dt.version())
    total = (prev["total_rows"] if prev else 0) + table.num_rows
    with ws.engine().begin() as conn:
        conn.execute(meta.table_versions.insert().values(
            source=source.name, version=version, rows=table.num_rows, total_rows=total,
            fingerprint=fingerprint, ingest_id=ingest_id, as_of=as_of))
    return version, fingerprint


def _quarantine(ws: Workspace, source: Source, val: Validation, *, ingest_id: str,
                as_of: datetime) -> None:
    if val.quarantined.empty:
        return
    q = val.quarantined.assign(ingest_id=ingest_id, as_of=pd.Timestamp(as_of))
    table = pa.Table.from_pandas(q, preserve_index=False).cast(pa.schema([
        ("row", pa.int64()), ("reasons", pa.string()), ("values", pa.string()),
        ("ingest_id", pa.string()), ("as_of", pa.timestamp("us"))]))
    write_deltalake(str(ws.quarantine_path(source.name)), table, mode="append")


def _to_arrow(frame: pd.DataFrame, columns: tuple[Column, ...]) -> pa.Table:
    arrays = []
    for c in columns:
        s = frame[c.name]
        if c.dtype in ("date", "timestamp"):
            arrays.append(pa.array(s.astype("datetime64[us]"), type=_ARROW[c.dtype],
                                   from_pandas=True))
        else:
            arrays.append(pa.array(s, type=_ARROW[c.dtype], from_pandas=True))
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _delta(path: Path, version: int | None = None) -> DeltaTable | None:
    try:
        return DeltaTable(str(path), version=version)
    except TableNotFoundError:
        return None
    except DeltaError as exc:
        if version is None:
            raise
        raise NotFound(f"Table {path.name!r} has no version {version}.",
                       fix=f"Run `tuesday tables` to list the versions of {path.name!r}."
                       ) from exc


def latest_version(ws: Workspace, name: str) -> dict[str, Any] | None:
    """The newest recorded version of a table, or None when nothing was accepted yet."""
    tv = meta.table_versions
    with ws.engine().connect() as conn:
        row = conn.execute(sa.select(tv).where(tv.c.source == name)
                           .order_by(tv.c.version.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def versions_as_of(ws: Workspace, names: list[str], as_of: datetime) -> dict[str, int]:
    """For each table, the newest version ingested at or before ``as_of``."""
    tv = meta.table_versions
    out: dict[str, int] = {}
    with ws.engine().connect() as conn:
        for name in names:
            v = conn.execute(sa.select(sa.func.max(tv.c.version)).where(
                tv.c.source == name, tv.c.as_of <= as_of)).scalar()
            if v is not None:
                out[name] = int(v)
    return out


def read_table(ws: Workspace, source: Source, version: int | None = None,
               columns: list[str] | None = None) -> pa.Table:
    """Read a table (optionally at a version) as Arrow; an empty typed table if none."""
    dt = _delta(ws.table_path(source.name), version)
    if dt is None:
        if version is not None:
            raise NotFound(f"Table {source.name!r} has no version {version}.",
                           fix=f"Run `tuesday tables` to list the versions of {source.name!r}.")
        schema = arrow_schema(source)
        table = schema.empty_table()
        return table.select(columns) if columns else table
    return dt.to_pyarrow_table(columns=columns)


def quarantine(ws: Workspace, source: Source) -> pd.DataFrame:
    """Every quarantined row of a source, with its reasons and original values."""
    dt = _delta(ws.quarantine_path(source.name))
    if dt is None:
        return pd.DataFrame(columns=["row", "reasons", "values", "ingest_id", "as_of"])
    return dt.to_pyarrow_table().to_pandas()


def list_versions(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    tv = meta.table_versions
    q = sa.select(tv).order_by(tv.c.source, tv.c.version)
    if name:
        q = q.where(tv.c.source == name)
    with ws.engine().connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def require_rows(ws: Workspace, source: Source) -> None:
    if latest_version(ws, source.name) is None:
        raise ValidationFailed(
            f"Source {source.name!r} has no accepted rows in workspace {ws.root}.",
            fix=f"Run `tuesday ingest {source.name} FILE` first.")
