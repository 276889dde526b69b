"""Derived sources: tables computed from other sources, versioned with their lineage.

A derived source (``tuesday.project.derived``) is computed by a DuckDB query or a Python
function over its inputs. ``refresh`` brings its table up to date with its inputs: for
each new version of an input, in the order they were ingested, it writes one derived
version that records the input versions it came from (``meta.derived_versions``).

Incremental: the days a new input version touches are read from the Delta files that
version added or removed; only those days (and the ``lookback`` days after them) are
computed again, from the inputs' rows of the days they read, and written as one Delta
commit that replaces those days. That equals computing everything again when the
derivation is day-local, as ``Derive`` asks: the rows of day D read only the inputs'
rows of days D - lookback .. D (and timeless inputs, whose change recomputes every day).
Rows of other days that a query outputs are dropped in both cases.

Point in time: a derived version is dated at the newest as-of of the input versions it
read (never earlier than any of them), so reading "the versions known at T" never
reads input rows ingested after T through a derivation. With ``available_at`` declared,
each derived row is also made available no earlier than the input rows of the days it
read (per entity where the input carries the entity's key): a forecast derived from
weather issued at 06:00 is not known before 06:00. Should an input be ingested with an
as-of before the derived table's newest version, the derived version it gives is dated
at that newest version (it is never dated in the past).

Each derived version is written like an ingest (the commit carries its own record, so a
crash leaves nothing half-done) and its rows are checked by the source's contract: rows
that fail it go to the source's quarantine, with the reasons.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlalchemy as sa
from deltalake import write_deltalake

from tuesday import meta
from tuesday.data import tables
from tuesday.data.contracts import ARROW_TYPES, Report, Validation, to_pandas, validate
from tuesday.errors import TuesdayError
from tuesday.project import Project, Source
from tuesday.project.times import days as _days
from tuesday.workspace import Workspace, ledger, reconcile

_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class DerivedVersion:
    """One derived version written by ``refresh``.

    Attributes:
        source: The derived source.
        version: Its table version.
        as_of: When it counts as known: the newest as-of of its inputs' versions.
        inputs: The input versions it was computed from (None: no version yet).
        mode: ``full`` or ``incremental``.
        days: The days computed again (None for ``full``).
        report: The contract's report on the rows computed.
    """

    source: str
    version: int
    as_of: datetime
    inputs: dict[str, int | None]
    mode: str
    days: int | None
    report: Report

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "version": self.version,
                "as_of": pd.Timestamp(self.as_of).isoformat(), "inputs": self.inputs,
                "mode": self.mode, "days": self.days, "received": self.report.received,
                "accepted": self.report.accepted, "quarantined": self.report.quarantined}


# ------------------------------------------------------------------------ the order


def derived_sources(project: Project, names: Iterable[str] | None = None) -> list[Source]:
    """The derived sources among ``names`` (every one when None) and the derived sources
    they read, inputs before the sources that read them."""
    by_name = {s.name: s for s in project.sources}
    wanted = list(by_name) if names is None else list(names)
    out: list[Source] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        src = by_name.get(name)
        if src is None or src.derive is None or name in seen:
            return
        seen.add(name)
        for i in src.derive.inputs:
            visit(i)
        out.append(src)

    for n in wanted:
        visit(n)
    return out


def readers(project: Project, name: str) -> list[str]:
    """The derived sources that read ``name``, directly or through other derived ones."""
    out: list[str] = []
    for s in derived_sources(project):
        assert s.derive is not None
        if any(i == name or i in out for i in s.derive.inputs):
            out.append(s.name)
    return out


def refresh(ws: Workspace, project: Project, names: Iterable[str] | None = None
            ) -> list[DerivedVersion]:
    """Bring derived sources up to date with their inputs (those named, and the derived
    sources they read; every one when None): one new version per new input version, in
    as-of order. Returns the versions written (none when up to date)."""
    out: list[DerivedVersion] = []
    for src in derived_sources(project, names):
        with ws.table_lock(src.name):
            reconcile(ws, src.name)
            out.extend(_refresh_one(ws, project, src))
    return out


def after_ingest(ws: Workspace, project: Project, name: str) -> list[DerivedVersion]:
    """Refresh the derived sources that read source ``name`` (after an ingest of it)."""
    found = readers(project, name)
    return refresh(ws, project, found) if found else []


# ------------------------------------------------------------------- one source


def lineage(ws: Workspace, name: str) -> dict[str, Any] | None:
    """The newest derived version of ``name``: ``version``, ``inputs``, ``mode``,
    ``days``, ``as_of``; None before the first."""
    d = meta.derived_versions
    with ws.engine().connect() as conn:
        row = conn.execute(sa.select(d).where(d.c.source == name)
                           .order_by(d.c.version.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def _input_versions(ws: Workspace, name: str) -> list[tuple[int, datetime]]:
    tv = meta.table_versions
    with ws.engine().connect() as conn:
        return [(int(v), a) for v, a in conn.execute(
            sa.select(tv.c.version, tv.c.as_of).where(tv.c.source == name)
            .order_by(tv.c.version))]


def _refresh_one(ws: Workspace, project: Project, src: Source) -> list[DerivedVersion]:
    """Every derived version ``src`` is missing, oldest input change first."""
    assert src.derive is not None
    last = lineage(ws, src.name)
    current: dict[str, int | None] = dict(last["inputs"]) if last else {}
    newest = pd.Timestamp(last["as_of"]) if last else None
    history = {i: _input_versions(ws, i) for i in src.derive.inputs}

    def seen(i: str) -> int:
        v = current.get(i)
        return -1 if v is None else int(v)

    steps = sorted({a for i, vs in history.items() for v, a in vs if v > seen(i)})
    out = []
    for step in steps:
        target: dict[str, int | None] = {}
        for i, vs in history.items():
            best = max([v for v, a in vs if a <= step] + [seen(i)])
            target[i] = best if best >= 0 else None
        if last is not None and target == current:
            continue
        as_of = pd.Timestamp(max(a for i, vs in history.items() for v, a in vs
                                 if v == target[i]))
        if newest is not None:
            as_of = max(as_of, newest)
        result = _step(ws, project, src, current if last is not None else None, target,
                       as_of.to_pydatetime())
        if result is None:
            continue
        out.append(result)
        current, last, newest = target, {"inputs": target}, as_of
    return out


def _step(ws: Workspace, project: Project, src: Source, before: dict[str, int | None] | None,
          after: dict[str, int | None], as_of: datetime) -> DerivedVersion | None:
    """Compute the derived version for input versions ``after``, from the state for
    ``before`` (None: compute everything)."""
    assert src.derive is not None
    days: set[int] | None = None
    if before is not None and src.time is not None:
        days = set()
        for i in src.derive.inputs:
            changed = _changed_days(ws, project.source(i), before.get(i), after.get(i))
            if changed is None:
                days = None
                break
            days |= changed
        if days is not None:
            look = _days(src.derive.lookback)
            days = {d + k for d in days for k in range(look + 1)}
            if not days:
                return None
    inputs = {i: _read_input(ws, project.source(i), after.get(i), days,
                             _days(src.derive.lookback)) for i in src.derive.inputs}
    out = compute(src, inputs, project=project)
    if days is not None and src.time is not None and src.time in out.column_names:
        out = out.filter(_day_mask(out.column(src.time), days))
    val = validate(out, replace(src.contract, freshness=None, volume=None),
                   source=src.name, time=src.time, as_of=as_of)
    mode = "full" if days is None else "incremental"
    version = _write(ws, src, val, days, after, as_of, mode)
    return DerivedVersion(src.name, version, as_of, after, mode,
                          None if days is None else len(days), val.report)


# ---------------------------------------------------------------- which days changed


def _changed_days(ws: Workspace, src: Source, old: int | None, new: int | None
                  ) -> set[int] | None:
    """The days (as day numbers) of the rows that differ between two versions of a
    table, read from the Delta files one has and the other has not; None when every day
    may have changed (a timeless source)."""
    if old == new:
        return set()
    if src.time is None:
        return None
    if src.derive is not None and old is not None:
        return _replaced_days(ws, src.name, old, new)

    def files(version: int | None) -> set[str]:
        if version is None:
            return set()
        dt = tables._delta(ws, src.name, version)
        return set(dt.file_uris()) if dt is not None else set()

    changed = files(old) ^ files(new)
    out: set[int] = set()
    for f in sorted(changed):
        col = pq.read_table(f, columns=[src.time]).column(0)
        out |= set(_day_numbers(col).tolist())
    return out


def _replaced_days(ws: Workspace, name: str, old: int, new: int | None) -> set[int] | None:
    """The days the derived versions after ``old`` up to ``new`` replaced (None if one
    of them was computed in full)."""
    d = meta.derived_versions
    q = sa.select(d.c.mode, d.c.replaced).where(d.c.source == name, d.c.version > old)
    if new is not None:
        q = q.where(d.c.version <= new)
    out: set[int] = set()
    with ws.engine().connect() as conn:
        for mode, runs in conn.execute(q):
            if mode == "full" or runs is None:
                return None
            out |= {k for lo, hi in runs for k in range(int(lo), int(hi) + 1)}
    return out


def _day_numbers(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The day number (days since 1970-01-01) of each non-null time."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    arr = arr.drop_null()
    if pa.types.is_date(arr.type):
        return np.unique(arr.cast(pa.date32()).to_numpy(zero_copy_only=False)
                         .astype("datetime64[D]").astype(np.int64))
    us = arr.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
    return np.unique(us.astype("datetime64[D]").astype(np.int64))


def _runs(days: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous runs of day numbers as (first, last)."""
    out: list[tuple[int, int]] = []
    for d in sorted(days):
        if out and d == out[-1][1] + 1:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _day(n: int) -> datetime:
    return datetime.combine(_EPOCH + timedelta(days=int(n)), datetime.min.time())


def _day_filter(column: str, days: set[int]) -> ds.Expression | None:
    """A dataset filter: the rows of ``column`` on one of ``days``."""
    expr = None
    for lo, hi in _runs(days):
        part = (ds.field(column) >= pa.scalar(_day(lo), pa.timestamp("us"))) & \
            (ds.field(column) < pa.scalar(_day(hi + 1), pa.timestamp("us")))
        expr = part if expr is None else expr | part
    return expr


def _day_mask(col: pa.ChunkedArray, days: set[int]) -> pa.Array:
    arr = col.combine_chunks().cast(pa.timestamp("us"))
    us = arr.to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64)
    keep = np.isin(us, np.fromiter(days, np.int64)) & ~np.asarray(arr.is_null())
    return pa.array(keep)


def _predicate(column: str, days: set[int]) -> str:
    """The Delta predicate that selects the rows of ``days`` (to replace them)."""
    q = '"' + column.replace('"', '""') + '"'
    return " OR ".join(f"({q} >= '{_day(lo):%Y-%m-%d %H:%M:%S}' AND {q} < "
                       f"'{_day(hi + 1):%Y-%m-%d %H:%M:%S}')" for lo, hi in _runs(days))


# ---------------------------------------------------------------------- computing


def _read_input(ws: Workspace, src: Source, version: int | None, days: set[int] | None,
                lookback: int) -> pa.Table:
    """An input at a version: the rows of the days that the ``days`` to compute read
    (every row when None, and for a timeless input)."""
    if version is None:
        return tables.arrow_schema(src).empty_table()
    if days is None or src.time is None:
        return tables.read_table(ws, src, version)
    dt = tables._delta(ws, src.name, version)
    assert dt is not None
    reads = {d - k for d in days for k in range(lookback + 1)}
    return dt.to_pyarrow_dataset().to_table(filter=_day_filter(src.time, reads))


def compute(src: Source, inputs: Mapping[str, pa.Table], *,
            project: Project | None = None) -> pa.Table:
    """Run a derived source's query or function over ``inputs`` (Arrow tables by source
    name) and return its rows, typed as its contract says where a cast is exact.

    Example:
        >>> from tuesday.project import Column, Contract, derived
        >>> s = derived("n", Contract((Column("k", "str"), Column("n", "int"))),
        ...             inputs=("t",), sql="SELECT k, count(*) AS n FROM t GROUP BY k")
        >>> compute(s, {"t": pa.table({"k": ["a", "a", "b"]})}).sort_by("k").to_pydict()
        {'k': ['a', 'b'], 'n': [2, 1]}
    """
    d = src.derive
    assert d is not None
    if d.sql is not None:
        con = duckdb.connect()
        try:
            con.execute("SET threads TO 2")
            for name, table in inputs.items():
                con.register(name, table)
            out = con.sql(d.sql).to_arrow_table()
        except duckdb.Error as exc:
            raise TuesdayError(
                f"The query of derived source {src.name!r} failed: {exc}",
                fix=f"Fix the sql of {src.name!r}; it reads the tables "
                    f"{', '.join(inputs)} (one per input, named after it).") from exc
        finally:
            con.close()
    else:
        assert d.fn is not None
        args = {n: (t if d.frames == "arrow" else to_pandas(t)) for n, t in inputs.items()}
        try:
            res = d.fn(**args)
        except Exception as exc:  # the user's function failed: say where
            raise TuesdayError(
                f"The function of derived source {src.name!r} raised "
                f"{type(exc).__name__}: {exc}",
                fix=f"Fix the function; it is called with keyword arguments "
                    f"{', '.join(inputs)} (one {d.frames} frame per input).") from exc
        out = _as_table(src, res)
    out = _typed(src, out)
    if src.available_at and project is not None:
        out = _availability(src, out, {i: (project.source(i), inputs[i]) for i in inputs})
    return out


def _as_table(src: Source, res: Any) -> pa.Table:
    if isinstance(res, pa.Table):
        return res
    if isinstance(res, pd.DataFrame):
        return pa.Table.from_pandas(res.reset_index(drop=True), preserve_index=False)
    raise TuesdayError(f"The function of derived source {src.name!r} returned "
                       f"{type(res).__name__}; expected a pandas DataFrame or an Arrow "
                       "table.", fix="Return a frame with the contract's columns.")


def _typed(src: Source, out: pa.Table) -> pa.Table:
    """Cast each declared column to the contract's type where the cast is exact (DuckDB
    sums are decimals, its dates date32); anything else is left for the contract to
    report."""
    cols = []
    for name, col in zip(out.column_names, out.columns, strict=True):
        c = src.contract.column(name)
        want = ARROW_TYPES.get(c.dtype) if c is not None else None
        if want is not None and col.type != want and not pa.types.is_string(col.type):
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError,
                                     pa.ArrowTypeError):
                col = pc.cast(col, want)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=out.column_names)


def _availability(src: Source, out: pa.Table, inputs: Mapping[str, tuple[Source, pa.Table]]
                  ) -> pa.Table:
    """``out`` with its ``available_at`` column no earlier than the latest known time of
    the input rows of the days each row reads (per entity where the input carries the
    derived source's entity key)."""
    assert src.available_at is not None and src.derive is not None
    if src.time is None or src.time not in out.column_names or not out.num_rows:
        return out
    look = _days(src.derive.lookback)
    key = src.entity.key if src.entity is not None else None
    t = pd.to_datetime(pd.Series(out.column(src.time).to_pandas())).dt.normalize()
    best = pd.Series(pd.NaT, index=t.index, dtype="datetime64[us]")
    if src.available_at in out.column_names:
        best = pd.to_datetime(pd.Series(out.column(src.available_at).to_pandas()))
        best = best.astype("datetime64[us]")
    for isrc, table in inputs.values():
        if isrc.time is None or not table.num_rows:
            continue
        known = isrc.available_at or isrc.time
        by = [key] if key is not None and key in table.column_names and \
            key in out.column_names else []
        frame = table.select([*by, isrc.time, known]).to_pandas()
        frame["_d"] = pd.to_datetime(frame[isrc.time]).dt.normalize()
        frame["_k"] = pd.to_datetime(frame[known])
        per = frame.groupby([*by, "_d"])["_k"].max()
        for k in range(look + 1):
            probe = pd.DataFrame({"_d": t - pd.Timedelta(days=k)})
            for b in by:
                probe[b] = out.column(b).to_pandas()
            got = probe.join(per, on=[*by, "_d"])["_k"].astype("datetime64[us]")
            best = best.where(~(got > best) & best.notna(), got.where(got.notna(), best))
    best = best.where(best.notna(), t.astype("datetime64[us]"))
    arr = pa.array(best.to_numpy(dtype="datetime64[us]"), pa.timestamp("us"))
    if src.available_at in out.column_names:
        return out.set_column(out.column_names.index(src.available_at), src.available_at, arr)
    return out.append_column(src.available_at, arr)


# ----------------------------------------------------------------------- writing


def _write(ws: Workspace, src: Source, val: Validation, days: set[int] | None,
           inputs: dict[str, int | None], as_of: datetime, mode: str) -> int:
    """Write one derived version as one commit that carries its record (rows that fail
    the contract first, to the quarantine); returns its version."""
    prev = tables.latest_version(ws, src.name)
    table = val.table
    removed = 0
    if prev is not None:
        dt = tables._delta(ws, src.name, int(prev["version"]))
        assert dt is not None
        if days is None:
            removed = int(prev["total_rows"])
        elif src.time is not None:
            removed = dt.to_pyarrow_dataset().count_rows(filter=_day_filter(src.time, days))
    ingest_id = uuid.uuid4().hex
    digest = hashlib.sha256((prev["fingerprint"] if prev else "").encode())
    digest.update(repr(sorted(days) if days is not None else "full").encode())
    digest.update(tables._ipc_bytes(tables._canonical(table)))
    report = val.report
    described = ", ".join(f"{i} v{v}" if v is not None else f"{i} (none)"
                          for i, v in inputs.items())
    record: dict[str, Any] = {"kind": "ingest", "ingest_id": ingest_id, "rows": {
        "ingests": [{"ingest_id": ingest_id, "source": src.name,
                     "file": f"derived from {described}", "as_of": as_of,
                     "received": report.received, "accepted": report.accepted,
                     "quarantined": report.quarantined, "table_version": None,
                     "report": {**report.to_dict(), "derived": {
                         "inputs": inputs, "mode": mode,
                         "days": None if days is None else len(days)}}}],
        "table_versions": [{"source": src.name, "rows": table.num_rows,
                            "total_rows": (int(prev["total_rows"]) if prev else 0)
                            - removed + table.num_rows,
                            "fingerprint": digest.hexdigest(), "ingest_id": ingest_id,
                            "as_of": as_of}],
        "derived_versions": [{"source": src.name, "inputs": inputs, "mode": mode,
                              "days": None if days is None else len(days),
                              "replaced": None if days is None else _runs(days),
                              "as_of": as_of}]},
        "at_version": [["table_versions", "version"], ["ingests", "table_version"],
                       ["derived_versions", "version"]]}
    if not val.quarantined.empty:
        tables._quarantine(ws, src, val, ingest_id=ingest_id, as_of=as_of,
                           props=ledger({"kind": "part", "ingest_id": ingest_id}))
    props = ledger(record)
    if prev is None:
        tables._append(ws, src, table, props=props)
    elif days is None:
        write_deltalake(ws.table_uri(src.name), table, mode="overwrite",
                        commit_properties=props, storage_options=ws.storage_options)
    else:
        assert src.time is not None
        write_deltalake(ws.table_uri(src.name), table, mode="overwrite",
                        predicate=_predicate(src.time, days), commit_properties=props,
                        storage_options=ws.storage_options)
    reconcile(ws, src.name)
    got = tables.latest_version(ws, src.name)
    assert got is not None and got["ingest_id"] == ingest_id
    return int(got["version"])
