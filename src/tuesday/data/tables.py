"""Versioned tables: validated ingest into Delta Lake, quarantine, fingerprints, reads.

(Past the usual size: the crash-safe ingest protocol, ``_ingest`` to ``_commit``, is to
move to ``data/ingest.py``; it is kept here until the storage-by-URL and derived-source
changes that both touch it have settled, so the move is one commit of moved code only.)

Every accepted ingest is one immutable Delta version with a content fingerprint that
chains the previous version's fingerprint with the new rows; a run records the versions
it read. Failing rows go to ``quarantine/SOURCE`` with their original values and reasons.

Quarantined rows can be fixed and re-ingested: ``export_quarantine`` writes the open
(unresolved) rows as a CSV of their original values plus three ``_quarantine_*``
columns that name each row's quarantine entry; edit the values, then ``ingest_file``
the CSV. The ingest recognises those columns (they are never data), validates the rows
like any others, and records for each referenced entry that it was resolved by this
ingest (``accepted``, or ``quarantined`` again, in which case the new entry is the open
one). History is never rewritten: the resolution is a separate record, so
``quarantine(ws, source)`` still shows every entry, with ``resolved_by`` and ``outcome``.
A correction is not a delivery: freshness and volume are not checked on it, and it does
not count in the volume history.

Crashes and concurrent writers. An ingest is one fact, whole or absent, however the
process ends (kill -9 included) and whoever else writes:

1. It holds the table's lock (``Workspace.table_lock``, a lock file the kernel releases
   when the process dies) from start to end, so two ingests of one source run one after
   the other and each validates its keys against everything recorded before it.
2. It first reconciles the table (``tuesday.workspace.reconcile``): a Delta commit that
   carries an ingest record but has no metadata yet is adopted; a commit that carries none
   (an older tuesday's crash, another tool) is rolled back by a restore, never adopted.
3. It recognises a retry: the digest of (source, as-of, the file's bytes or the frame's
   values) is recorded in ``ingest_keys``; the same digest again returns the recorded
   result and appends nothing.
4. It validates, then writes the quarantined rows (one Delta commit marked as a part of
   this ingest), then the accepted rows (one Delta commit). The last of these commits
   carries the ingest's whole record in its commit info (``CommitProperties``): the
   ``ingests``, ``table_versions``, ``quarantine_resolutions`` and ``ingest_keys`` rows,
   report and counts included. That commit is the moment the ingest happens.
5. It then writes those rows to the metadata by the same reconcile that recovers a crash.

So a crash before step 4's last commit leaves only quarantine rows of an ingest that never
completed: they are hidden from readers and removed by the next reconcile, and a retry
ingests the file in full. A crash after it leaves a complete ingest whose metadata the
next ingest, or the next ``open_workspace``, writes; a retry then appends nothing. Readers
see the newest recorded version (``read_table``) and the quarantine rows of recorded
ingests only, so they never see half an ingest.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from tuesday import meta
from tuesday.data.contracts import (
    ARROW_TYPES,
    BatchCheck,
    CheckCount,
    Mapped,
    Problem,
    Report,
    Validation,
    history_check,
    validate,
)
from tuesday.data.contracts.taxonomy import current_codes
from tuesday.data.csv_lines import has_line_breaks, read_lines
from tuesday.errors import Conflict, NotFound, TuesdayError, ValidationFailed
from tuesday.project import Model, Project, Source
from tuesday.workspace import Workspace, adopt, fault, ledger, reconcile

_ARROW = ARROW_TYPES
#: Columns of an exported quarantine file that name each row's quarantine entry.
REF_INGEST = "_quarantine_ingest"
REF_ROW = "_quarantine_row"
REF_REASONS = "_quarantine_reasons"
REF_LINE = "_quarantine_line"
_RESERVED = "_quarantine_"


@dataclass(frozen=True)
class IngestResult:
    """The outcome of one ingest; ``repeated`` when the same rows had already been
    ingested for the same source and as-of (this is that ingest's result)."""

    ingest_id: str
    report: Report
    version: int | None
    fingerprint: str | None
    repeated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"ingest_id": self.ingest_id, "table_version": self.version,
                "fingerprint": self.fingerprint, **self.report.to_dict(),
                **({"repeated": True} if self.repeated else {})}


def arrow_schema(source: Source) -> pa.Schema:
    """The stored columns: the contract's, then the flag columns of its checks."""
    return pa.schema([pa.field(c.name, _ARROW[c.dtype]) for c in source.contract.columns]
                     + [pa.field(f, pa.bool_()) for f in source.contract.flag_columns])


@dataclass(frozen=True)
class RawBatch:
    """Rows as read from a file, before validation.

    Attributes:
        frame: The rows that could be split into the header's columns (Arrow from files,
            pandas from callers).
        rows: The data-row number in the file of each row of ``frame`` (1 = first row).
        malformed: Rows that could not be split: (row number, raw text, reason).
    """

    frame: pd.DataFrame | pa.Table
    rows: np.ndarray
    malformed: tuple[tuple[int, str, str], ...] = ()


def read_file(path: str | Path) -> RawBatch:
    """Read a CSV (every value as text, so the contract decides the types) or Parquet.

    A CSV row with more or fewer fields than the header is kept aside as malformed (it
    goes to quarantine), never shifted into the wrong columns; a stray quote that would
    swallow the lines after it is kept aside alone, naming its line
    (``tuesday.data.csv_lines``).
    """
    p = _input_file(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(p).combine_chunks()
            return RawBatch(table, np.arange(1, table.num_rows + 1))
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


def _input_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        raise TuesdayError(f"Input path {str(p)!r} is a folder; expected a CSV or Parquet file.",
                           fix="Pass the path of one file.")
    if not p.is_file():
        raise TuesdayError(f"Input file {str(p)!r} does not exist.",
                           fix="Check the path; CSV and Parquet files are accepted.")
    return p


def _read_csv(p: Path) -> RawBatch:
    with (gzip.open(p, "rt", newline="") if p.suffix.lower() == ".gz"
          else open(p, newline="")) as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise TuesdayError(f"Input file {str(p)!r} is empty; expected a header line.",
                           fix="Write the column names on the first line.")
    sep = next((c for c in ";\t|" if len(header) == 1 and c in header[0]), None)
    if sep is not None:
        shown = {";": "';'", "\t": "a tab", "|": "'|'"}[sep]
        raise TuesdayError(
            f"Input file {str(p)!r} has a header of one column, {header[0][:80]!r}: its "
            f"columns look separated by {shown}, but tuesday reads comma-separated CSV.",
            fix="Save it as CSV with commas, and a dot for decimals (Excel: Save As 'CSV "
                "UTF-8 (Comma delimited)' with '.' as the decimal separator), or convert it "
                "with pandas: pd.read_csv(IN, sep=SEPARATOR, decimal=',').to_csv(OUT, "
                "index=False).")
    bad: list[Any] = []

    def keep_aside(row: Any) -> str:
        bad.append(row)
        return "skip"

    table = pacsv.read_csv(
        p, read_options=pacsv.ReadOptions(use_threads=False),
        # a blank line is an empty value in a one-column file, and nothing in others
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_aside,
                                         ignore_empty_lines=len(header) > 1),
        convert_options=pacsv.ConvertOptions(
            column_types={h: pa.string() for h in header}, strings_can_be_null=True,
            null_values=[""]))
    if has_line_breaks(table, [str(r.text) for r in bad]):  # a quote ran over lines?
        lined, numbers, kept_aside = read_lines(p, header)
        return RawBatch(lined, numbers, kept_aside)
    malformed = tuple(
        (int(r.number) - 1, str(r.text),
         f"row has {r.actual_columns} field(s); the header has {r.expected_columns}")
        for r in bad)
    taken = {m[0] for m in malformed}
    rows = np.array([i for i in range(1, table.num_rows + len(taken) + 1) if i not in taken],
                    dtype="int64")
    return RawBatch(table.combine_chunks(), rows, malformed)


def ingest_frame(ws: Workspace, source: Source, frame: pd.DataFrame | pa.Table | RawBatch, *,
                 as_of: datetime, file: str = "<frame>") -> IngestResult:
    """Validate rows, append accepted rows as a new version, quarantine the rest.

    The report carries every row problem, the taxonomy mapping, and the batch checks the
    contract declares (freshness, volume, and counting the new rows, min_history). A batch
    carrying ``_quarantine_*`` columns (an edited ``export_quarantine`` file) resolves the
    quarantine entries it names. The same rows ingested again for the same source and
    ``as_of`` (a retry) return the first ingest's result and append nothing.
    """
    batch = frame if isinstance(frame, RawBatch) else \
        RawBatch(frame, np.arange(1, len(frame) + 1))
    return _ingest(ws, source, lambda: batch, as_of=as_of, file=file,
                   digest=_batch_digest(batch))


def ingest_file(ws: Workspace, source: Source, path: str | Path, *,
                as_of: datetime, progress: Progress | None = None) -> IngestResult:
    """Read and ingest one file (see ``ingest_frame``); an edited ``export_quarantine``
    file resolves the quarantine entries it names. The same file (same bytes) ingested
    again for the same source and ``as_of`` appends nothing and returns the first
    ingest's result. ``progress(message)`` names each step as it starts, and
    ``progress("MB read", done, total)`` counts the megabytes of a file of 8 MB or more."""
    report = progress or _silent
    p = _input_file(path)
    digest = hashlib.sha256()
    total = max(1, -(-p.stat().st_size // (1 << 20)))
    counted = total >= 8  # a small file is read in a blink: no count
    if counted:
        report("MB read", 0, total)
    with open(p, "rb") as fh:
        for k, block in enumerate(iter(lambda: fh.read(1 << 20), b""), 1):
            digest.update(block)
            if counted:
                report("MB read", min(k, total), total)

    def load() -> RawBatch:
        report(f"parsing {p.name}")
        return read_file(p)

    return _ingest(ws, source, load, as_of=as_of, file=str(path),
                   digest="file:" + digest.hexdigest(), progress=report)


#: what a long step reports to: ``progress(message)`` or ``progress(what, done, total)``
Progress = Callable[..., None]


def _silent(*args: Any) -> None:
    return None


def _ingest(ws: Workspace, source: Source, load: Callable[[], RawBatch], *,
            as_of: datetime, file: str, digest: str,
            progress: Progress = _silent) -> IngestResult:
    """One ingest: a recorded retry returns at once; otherwise, under the table's lock,
    reconcile, recognise a retry again, validate, write the quarantine and data commits
    (the last one carries the ingest's record), then record it in the metadata from
    those commits."""
    if source.derive is not None:
        raise TuesdayError(
            f"Source {source.name!r} is derived from {', '.join(source.derive.inputs)}; its "
            f"rows are computed, not ingested ({file!r} was not read).",
            fix="Ingest its inputs instead; the derived table follows them.")
    key = hashlib.sha256(json.dumps(
        [source.name, pd.Timestamp(as_of).isoformat(), digest]).encode()).hexdigest()
    done = _ingest_with_key(ws, source.name, key)
    if done is not None:  # a recorded ingest is final: no lock needed
        return _recorded_result(ws, done, repeated=True)
    batch = load()
    with ws.table_lock(source.name):
        notes = reconcile(ws, source.name)
        done = _ingest_with_key(ws, source.name, key)
        if done is not None:
            return _recorded_result(ws, done, repeated=True)
        ingest_id = uuid.uuid4().hex
        progress(f"checking {len(batch.rows):,} rows against the contract of {source.name!r}")
        val, report, resolutions = _check(ws, source, batch, as_of=as_of)
        report = replace(report, warnings=(*report.warnings, *(
            f"Before this ingest: {n}" for n in notes)))
        record = _record(ws, source, val, report, resolutions, ingest_id=ingest_id,
                         as_of=as_of, file=file, key=key)
        fault("ingest:after_validate")
        progress(f"writing {report.accepted:,} accepted and {report.quarantined:,} "
                 f"quarantined rows")
        _commit(ws, source, val, record, ingest_id=ingest_id, as_of=as_of)
        reconcile(ws, source.name)  # the same path that recovers from a crash
        fault("ingest:after_metadata")
        if _ingest_with_key(ws, source.name, key) != ingest_id:
            raise Conflict(
                f"Table {source.name!r} was written by another tool during this ingest of "
                f"{file!r}, so the ingest was rolled back and nothing was recorded.",
                fix="Write to tuesday's tables only through `tuesday ingest`, then ingest "
                    "the file again.")
    return _recorded_result(ws, ingest_id)


def _check(ws: Workspace, source: Source, batch: RawBatch, *, as_of: datetime
           ) -> tuple[Validation, Report, list[dict[str, Any]]]:
    """Validate a batch against the table as recorded; the report, with the batch checks
    and the quarantine entries a correction resolves."""
    data, refs = _split_refs(batch.frame)
    last = latest_version(ws, source.name)
    if last is not None and pd.Timestamp(as_of) < pd.Timestamp(last["as_of"]):
        raise Conflict(
            f"Table {source.name!r} already has version {last['version']} as of "
            f"{pd.Timestamp(last['as_of']).isoformat()}; an ingest as of "
            f"{pd.Timestamp(as_of).isoformat()} would rewrite what was known back then.",
            fix="Ingest with an --as-of at or after the latest version's.")
    correction = refs is not None and any(r is not None for r in refs)
    c = source.contract
    if correction:  # not a delivery: its freshness and volume say nothing
        c = replace(c, freshness=None, volume=None)
    recent = None if c.volume is None else _recent_volumes(ws, source.name, c.volume.history)
    val = validate(data, c, source=source.name, existing_keys=_existing_keys(ws, source),
                   row_numbers=batch.rows, malformed=batch.malformed, time=source.time,
                   taxonomy=source.taxonomies, as_of=as_of, recent_volumes=recent,
                   existing=existing_rows(ws, source) if c.checks else None)
    report = val.report
    resolutions: list[dict[str, Any]] = []
    if correction:
        assert refs is not None
        report, resolutions = _resolve(ws, source, refs, val, report, as_of=as_of)
    if c.min_history is not None and source.time is not None:
        entity = c.min_history.entity or (source.entity.key if source.entity else "")
        cols = [entity, source.time]
        old = read_table(ws, source, columns=cols)
        new = val.table.select(cols).cast(old.schema) if val.table.num_rows else None
        check = history_check(pa.concat_tables([old, new]) if new is not None else old,
                              c.min_history, entity=entity, time=source.time,
                              source=source.name)
        report = replace(report, batch=(*report.batch, check), warnings=(
            *report.warnings, *((check.message,) if check.status == "warn" else ())))
    return val, report, resolutions


def _record(ws: Workspace, source: Source, val: Validation, report: Report,
            resolutions: list[dict[str, Any]], *, ingest_id: str, as_of: datetime,
            file: str, key: str) -> dict[str, Any]:
    """The ingest's record: every metadata row it writes, for the ledger."""
    prev = latest_version(ws, source.name)
    ingest = {"ingest_id": ingest_id, "source": source.name, "file": file, "as_of": as_of,
              "received": report.received, "accepted": report.accepted,
              "quarantined": report.quarantined,
              "table_version": prev["version"] if prev else None,
              "report": report.to_dict()}
    rows: dict[str, list[dict[str, Any]]] = {
        "ingests": [ingest],
        "quarantine_resolutions": [{**r, "resolved_by": ingest_id} for r in resolutions],
        "ingest_keys": [{"source": source.name, "content_key": key, "ingest_id": ingest_id}]}
    record: dict[str, Any] = {"kind": "ingest", "ingest_id": ingest_id, "rows": rows}
    if val.keep.any():
        table = val.table
        digest = hashlib.sha256((prev["fingerprint"] if prev else "").encode())
        digest.update(_ipc_bytes(_canonical(table)))
        rows["table_versions"] = [{
            "source": source.name, "rows": table.num_rows,
            "total_rows": (prev["total_rows"] if prev else 0) + table.num_rows,
            "fingerprint": digest.hexdigest(), "ingest_id": ingest_id, "as_of": as_of}]
        record["at_version"] = [["table_versions", "version"], ["ingests", "table_version"]]
    return record


def _commit(ws: Workspace, source: Source, val: Validation, record: dict[str, Any], *,
            ingest_id: str, as_of: datetime) -> None:
    """Write the quarantined rows, then the accepted rows: the last commit carries the
    record; an ingest with no rows at all is recorded in the metadata alone."""
    accepted = bool(val.keep.any())
    if not val.quarantined.empty:
        _quarantine(ws, source, val, ingest_id=ingest_id, as_of=as_of, props=ledger(
            record if not accepted else {"kind": "part", "ingest_id": ingest_id}))
        fault("ingest:after_quarantine_commit")
    if accepted:
        _append(ws, source, val.table, props=ledger(record))
        fault("ingest:after_delta_commit")
    elif val.quarantined.empty:
        adopt(ws, [(None, record)])


def _ingest_with_key(ws: Workspace, name: str, key: str) -> str | None:
    k = meta.ingest_keys
    with ws.engine().connect() as conn:
        return conn.execute(sa.select(k.c.ingest_id).where(
            k.c.source == name, k.c.content_key == key)).scalar()


def _recorded_result(ws: Workspace, ingest_id: str, *, repeated: bool = False
                     ) -> IngestResult:
    """An ingest's result as its metadata records it."""
    i, tv = meta.ingests, meta.table_versions
    with ws.engine().connect() as conn:
        row = conn.execute(sa.select(i).where(i.c.ingest_id == ingest_id)).mappings().one()
        fp = None if row["table_version"] is None else conn.execute(
            sa.select(tv.c.fingerprint).where(tv.c.source == row["source"],
                                              tv.c.version == row["table_version"])).scalar()
    report = _report(row["report"])
    if repeated:
        report = replace(report, warnings=(*report.warnings, (
            f"The same rows were already ingested into {row['source']!r} as of "
            f"{pd.Timestamp(row['as_of']).isoformat()} by ingest {ingest_id} (from "
            f"{row['file']!r}); nothing was appended again.")))
    return IngestResult(ingest_id, report, row["table_version"], fp, repeated)


def _report(d: dict[str, Any]) -> Report:
    """A report from its ``to_dict`` form."""
    return Report(
        d["source"], int(d["received"]), int(d["accepted"]), int(d["quarantined"]),
        problems=tuple(Problem(p["check"], p["column"], p["count"], p["message"],
                               tuple(p.get("examples", ()))) for p in d.get("problems", ())),
        warnings=tuple(d.get("warnings", ())),
        batch=tuple(BatchCheck(b["check"], b["status"], b["message"], b.get("details", {}))
                    for b in d.get("batch_checks", ())),
        mapped=tuple(Mapped(m["column"], m["old"], m["new"], m["rows"])
                     for m in d.get("mapped", {}).get("codes", ())),
        checks=tuple(CheckCount(c["kind"], c["name"], c["action"], int(c["rows"]),
                                int(c["groups"]), c["label"], c["message"],
                                c.get("details", {})) for c in d.get("checks", ())))


def _batch_digest(batch: RawBatch) -> str:
    """A digest of a batch's values, row numbers and malformed rows."""
    h = hashlib.sha256()
    frame = batch.frame
    try:
        table = frame if isinstance(frame, pa.Table) else \
            pa.Table.from_pandas(frame, preserve_index=False)
        h.update(_ipc_bytes(table))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # values Arrow cannot hold (mixed types, huge integers): the contract says what
        # is wrong with them; here they only need a digest
        assert isinstance(frame, pd.DataFrame)
        h.update(json.dumps(frame.to_dict(orient="split"), default=repr).encode())
    h.update(np.asarray(batch.rows, dtype="int64").tobytes())
    h.update(json.dumps(batch.malformed).encode())
    return "rows:" + h.hexdigest()


def _split_refs(frame: pd.DataFrame | pa.Table
                ) -> tuple[pd.DataFrame | pa.Table, list[tuple[str, int] | None] | None]:
    """The data columns, and per row the quarantine entry it corrects (if the batch
    carries ``_quarantine_*`` columns)."""
    names = [str(c) for c in (frame.column_names if isinstance(frame, pa.Table)
                              else frame.columns)]
    reserved = [n for n in names if n.startswith(_RESERVED)]
    if not reserved:
        return frame, None
    if isinstance(frame, pa.Table):
        data: pd.DataFrame | pa.Table = frame.drop_columns(reserved)
        ingests = frame.column(REF_INGEST).to_pylist() if REF_INGEST in names else None
        rows = frame.column(REF_ROW).to_pylist() if REF_ROW in names else None
    else:
        data = frame.drop(columns=[c for c in frame.columns if str(c) in reserved])
        ingests = frame[REF_INGEST].tolist() if REF_INGEST in names else None
        rows = frame[REF_ROW].tolist() if REF_ROW in names else None
    if ingests is None or rows is None:
        return data, None
    refs: list[tuple[str, int] | None] = []
    for ingest, row in zip(ingests, rows, strict=True):
        try:
            refs.append((str(ingest).strip(), int(str(row).strip()))
                        if ingest is not None and str(ingest).strip() else None)
        except ValueError:
            refs.append(None)
    return data, refs


def _recent_volumes(ws: Workspace, name: str, history: int) -> list[int]:
    """Rows received by the last ``history`` ingests that accepted rows (not corrections),
    newest first."""
    i, r = meta.ingests, _resolutions(ws)
    corrections = sa.select(r.c.resolved_by).where(r.c.source == name)
    q = (sa.select(i.c.received).where(i.c.source == name, i.c.accepted > 0,
                                       i.c.ingest_id.not_in(corrections))
         .order_by(i.c.as_of.desc()).limit(history))
    with ws.engine().connect() as conn:
        return [int(v) for v in conn.execute(q).scalars()]


def existing_rows(ws: Workspace, source: Source
                  ) -> Callable[[list[str], str | None, list[Any] | None], pa.Table]:
    """A reader of the table's recorded rows for the checks across rows: the columns
    asked for, of the rows whose ``key`` column holds one of ``values`` (all rows when
    ``key`` is None)."""
    import pyarrow.dataset as ds

    def read(columns: list[str], key: str | None, values: list[Any] | None) -> pa.Table:
        last = latest_version(ws, source.name)
        dt = None if last is None else _delta(ws, source.name, int(last["version"]))
        if dt is None:
            return arrow_schema(source).empty_table().select(columns)
        flt = None
        if key is not None and values is not None:
            typ = arrow_schema(source).field(key).type
            flt = ds.field(key).isin(pa.array(values).cast(typ))
        return dt.to_pyarrow_dataset().to_table(columns=columns, filter=flt)

    return read


def _existing_keys(ws: Workspace, source: Source) -> pa.Table | None:
    key = list(source.contract.unique)
    if not key or latest_version(ws, source.name) is None:
        return None
    return read_table(ws, source, columns=key)


def _append(ws: Workspace, source: Source, table: pa.Table, *, props: CommitProperties
            ) -> None:
    """Append accepted rows as one Delta commit that carries the ingest's record.

    The first recorded version replaces whatever the Delta table holds: with no version
    recorded, reconcile left it empty (a stray commit rolled back), perhaps with a
    stray schema.
    """
    uri, opts = ws.table_uri(source.name), ws.storage_options
    dt = _delta(ws, source.name)
    if latest_version(ws, source.name) is None and dt is not None:
        write_deltalake(uri, table, mode="overwrite", schema_mode="overwrite",
                        commit_properties=props, storage_options=opts)
        return
    # a check that flags, declared after the table began, adds its flag column (older
    # versions read it as missing)
    stored = set(pa.schema(dt.schema().to_arrow()).names) if dt is not None else \
        set(table.column_names)
    new = set(table.column_names) - stored
    merge = bool(new) and new <= set(source.contract.flag_columns)
    write_deltalake(uri, table, mode="append", commit_properties=props,
                    schema_mode="merge" if merge else None, storage_options=opts)


def _canonical(table: pa.Table) -> pa.Table:
    """The table with zeroed bytes under nulls, so that equal content hashes equally
    whatever reader or parser produced it."""
    cols = []
    for col in table.columns:
        arr = col.combine_chunks()
        if arr.null_count and pa.types.is_primitive(arr.type) and not arr.offset:
            zero = pa.scalar(False) if pa.types.is_boolean(arr.type) else \
                pa.scalar(0, pa.int64()).cast(arr.type)
            filled = pc.fill_null(arr, zero)
            if not filled.offset:
                arr = pa.Array.from_buffers(arr.type, len(arr),
                                            [arr.buffers()[0], filled.buffers()[1]],
                                            null_count=arr.null_count)
        cols.append(arr)
    return pa.Table.from_arrays(cols, schema=table.schema)


def _quarantine(ws: Workspace, source: Source, val: Validation, *, ingest_id: str,
                as_of: datetime, props: CommitProperties) -> None:
    """Append the quarantined rows as one Delta commit, before the data commit."""
    q = val.quarantined.assign(ingest_id=ingest_id, as_of=pd.Timestamp(as_of))
    table = pa.Table.from_pandas(q, preserve_index=False).cast(pa.schema([
        ("row", pa.int64()), ("reasons", pa.string()), ("values", pa.string()),
        ("ingest_id", pa.string()), ("as_of", pa.timestamp("us"))]))
    write_deltalake(ws.quarantine_uri(source.name), table, mode="append",
                    commit_properties=props, storage_options=ws.storage_options)


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _delta(ws: Workspace, name: str, version: int | None = None, *,
           quarantine: bool = False) -> DeltaTable | None:
    uri = ws.quarantine_uri(name) if quarantine else ws.table_uri(name)
    try:
        return DeltaTable(uri, version=version, storage_options=ws.storage_options)
    except TableNotFoundError:
        return None
    except DeltaError as exc:
        if version is None:
            raise
        raise NotFound(f"Table {name!r} has no version {version}.",
                       fix=f"Run `tuesday tables` to list the versions of {name!r}."
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
    """Read a table (optionally at a version) as Arrow; an empty typed table if none.

    Without a version it reads the newest version the metadata records, so a reader never
    sees rows whose ingest is not complete. The source's taxonomies are applied to the
    rows read, so history stored before a mapping was declared is read in today's codes
    too (the stored rows keep the codes they had).
    """
    if version is None:
        last = latest_version(ws, source.name)
        if last is None:
            table = arrow_schema(source).empty_table()
            return table.select(columns) if columns else table
        version = int(last["version"])
    dt = _delta(ws, source.name, version)
    if dt is None:
        if version is not None:
            raise NotFound(f"Table {source.name!r} has no version {version}.",
                           fix=f"Run `tuesday tables` to list the versions of {source.name!r}.")
        schema = arrow_schema(source)
        table = schema.empty_table()
        return table.select(columns) if columns else table
    return current_codes(source, dt.to_pyarrow_table(columns=columns))


def quarantine(ws: Workspace, source: Source, *, open_only: bool = False) -> pd.DataFrame:
    """Every quarantined row of a source, with its reasons and original values.

    Columns: ``row``, ``reasons``, ``values`` (JSON), ``ingest_id``, ``as_of``,
    ``resolved_by`` (the ingest that re-ingested the row, or None) and ``outcome``
    (``accepted`` or ``quarantined`` again, or None). ``open_only`` keeps the rows not
    resolved yet.
    """
    columns = ["row", "reasons", "values", "ingest_id", "as_of", "resolved_by", "outcome"]
    dt = _delta(ws, source.name, quarantine=True)
    if dt is None:
        return pd.DataFrame(columns=columns)
    q = dt.to_pyarrow_table().to_pandas()
    r = _resolutions(ws)
    with ws.engine().connect() as conn:
        recorded = set(conn.execute(sa.select(meta.ingests.c.ingest_id).where(
            meta.ingests.c.source == source.name)).scalars())
        done = pd.DataFrame([dict(m) for m in conn.execute(
            sa.select(r.c.ingest_id, r.c.row, r.c.resolved_by, r.c.outcome)
            .where(r.c.source == source.name)).mappings()],
            columns=["ingest_id", "row", "resolved_by", "outcome"])
    done["row"] = done["row"].astype("int64")
    q = q[q["ingest_id"].isin(recorded)]  # rows of an ingest still under way are not shown
    q = q.merge(done, on=["ingest_id", "row"], how="left")
    q = q.astype({"resolved_by": object, "outcome": object})
    q[["resolved_by", "outcome"]] = q[["resolved_by", "outcome"]].where(
        q[["resolved_by", "outcome"]].notna(), None)
    if open_only:
        q = q[q["resolved_by"].isna()].reset_index(drop=True)
    return q[columns]


def export_quarantine(ws: Workspace, source: Source, path: str | Path,
                      ingest_id: str | None = None) -> int:
    """Write the open quarantined rows of ``source`` as CSV to fix and re-ingest, one
    file per ingest (see :func:`export_quarantine_files`); returns the rows written.

    Example:
        >>> # n = tables.export_quarantine(ws, source, "fix.csv"); edit fix.csv, then:
        >>> # tables.ingest_file(ws, source, "fix.csv", as_of=now)
    """
    return sum(n for _, _, n in export_quarantine_files(ws, source, path, ingest_id))


def export_quarantine_files(ws: Workspace, source: Source, path: str | Path,
                            ingest_id: str | None = None) -> list[tuple[str, Path, int]]:
    """Write the open quarantined rows of ``source`` to fix and re-ingest: one CSV per
    ingest (``ingest_id``: that ingest only), each with its batch's own columns in their
    original order and the line endings of the file it came from (when that file is still
    there; else ``\\n``), so a fixed file re-ingests as the original did.

    A file holds ``_quarantine_ingest``, ``_quarantine_row`` and ``_quarantine_reasons``
    (which entry each row is and why it failed), then the original values, and
    ``_quarantine_line`` with the raw text of rows that could not be split into columns.
    Edit the values, delete rows you do not want, then ``ingest_file`` the file: the rows
    are validated again and the entries they name are marked resolved by that ingest.
    With rows from one ingest the file is ``path``; with several, ``path`` gets each
    ingest's id before its suffix (``fix-<id>.csv``). Returns (ingest id, file, rows)
    per file written.
    """
    q = quarantine(ws, source, open_only=True)
    with ws.engine().connect() as conn:
        files = dict(conn.execute(sa.select(meta.ingests.c.ingest_id, meta.ingests.c.file)
                                  .where(meta.ingests.c.source == source.name)).all())
    if ingest_id is not None:
        if ingest_id not in files:
            raise NotFound(f"Source {source.name!r} has no ingest {ingest_id!r}.",
                           fix="Pass an ingest id from `tuesday quarantine "
                               f"{source.name} --json`, or none to export every open row.")
        q = q[q["ingest_id"] == ingest_id]
    target = Path(path)
    if not target.parent.is_dir():
        raise TuesdayError(f"Cannot write {str(target)!r}: folder {str(target.parent)!r} "
                           "does not exist.", fix="Create the folder or pick another path.")
    q = q.sort_values(["as_of", "ingest_id", "row"], kind="stable")
    batches = list(dict.fromkeys(q["ingest_id"])) or [ingest_id or ""]
    out = []
    for batch in batches:
        rows = q[q["ingest_id"] == batch]
        file = target if len(batches) == 1 else target.with_name(
            f"{target.stem}-{batch}{target.suffix}")
        _write_export(source, rows, file, _line_ending(files.get(batch)))
        out.append((batch, file, len(rows)))
    return out


def _write_export(source: Source, q: pd.DataFrame, target: Path, newline: str) -> None:
    """One ingest's open rows as CSV: the columns in the order the batch had them."""
    values = [json.loads(v) for v in q["values"]]
    fields: list[str] = []
    for v in values:
        fields.extend(k for k in v if k != "_line" and k not in fields)
    if not fields:  # only unsplittable lines: the declared columns to fill in
        fields = list(source.contract.names)
    lines = any("_line" in v for v in values)
    with open(target, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator=newline)
        w.writerow([REF_INGEST, REF_ROW, REF_REASONS, *fields, *([REF_LINE] if lines else [])])
        for (ingest, row, reasons), v in zip(
                q[["ingest_id", "row", "reasons"]].itertuples(index=False), values,
                strict=True):
            w.writerow([ingest, int(row), reasons, *(_cell(v.get(f)) for f in fields),
                        *([v.get("_line", "")] if lines else [])])


def _line_ending(file: str | None) -> str:
    """The line ending of an ingested CSV file (``\\r\\n`` or ``\\n``), read from the file
    when it is still there; ``\\n`` otherwise (frames, Parquet, moved files)."""
    if not file:
        return "\n"
    try:
        with open(file, "rb") as fh:
            magic = fh.read(4)
        if magic == b"PAR1":
            return "\n"
        gz = magic[:2] == b"\x1f\x8b"
        with (gzip.open(file, "rb") if gz else open(file, "rb")) as fh:
            head = fh.read(1 << 16)
    except (OSError, EOFError):
        return "\n"
    first = head.find(b"\n")
    return "\r\n" if first > 0 and head[first - 1:first] == b"\r" else "\n"


def _cell(v: Any) -> str:
    """A JSON value as CSV text that reads back as the same value."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, int | str):
        return str(v)
    return json.dumps(v)


def _resolutions(ws: Workspace) -> sa.Table:
    return meta.quarantine_resolutions


def _resolve(ws: Workspace, source: Source, refs: Sequence[tuple[str, int] | None],
             val: Validation, report: Report, *, as_of: datetime
             ) -> tuple[Report, list[dict[str, Any]]]:
    """Which open quarantine entries this correction resolves: the report with a note,
    and the ``quarantine_resolutions`` rows (``resolved_by`` is filled in by the
    caller's record)."""
    open_rows = quarantine(ws, source, open_only=True)
    waiting = set(zip(open_rows["ingest_id"], open_rows["row"].astype(int), strict=True))
    records, unknown = [], 0
    for pos, ref in enumerate(refs):
        if ref is None:
            continue
        if ref not in waiting:
            unknown += 1
            continue
        waiting.discard(ref)
        records.append({"source": source.name, "ingest_id": ref[0], "row": ref[1],
                        "as_of": as_of,
                        "outcome": "accepted" if val.keep[pos] else "quarantined"})
    accepted = sum(r["outcome"] == "accepted" for r in records)
    notes = [f"This batch corrects {len(records)} quarantined row(s): {accepted} accepted, "
             f"{len(records) - accepted} quarantined again (their new entries are the open "
             "ones). Freshness and volume are not checked on corrections."]
    if unknown:
        notes.append(f"{unknown} row(s) name quarantine entries of {source.name!r} that do "
                     "not exist or were already resolved; they were validated as new rows.")
    return replace(report, warnings=(*report.warnings, *notes)), records


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


# --------------------------------------------------------- a model's tables as of a time


def sources_used(project: Project, model: Model) -> list[str]:
    names = {model.label_source}
    names.update(f.source for f in model.features if f.source)
    names.update(f.region[0] for f in model.features if f.region)
    if model.censored is not None and model.censored.source:
        names.add(model.censored.source)
    return sorted(names)


def read_tables(ws: Workspace, project: Project, names: list[str],
                versions: dict[str, int]) -> dict[str, pa.Table]:
    return {n: read_table(ws, project.source(n), versions.get(n)) for n in names}
