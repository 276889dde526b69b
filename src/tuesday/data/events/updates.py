"""The write paths of the online state: events applied as they arrive (``apply``,
``update``) and every record rebuilt from the offline table (``rebuild``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tuesday.data import online, tables
from tuesday.data.events.merging import grouped_arrays, merge
from tuesday.data.events.record import decode, encode
from tuesday.data.events.specs import Spec, micros, spec
from tuesday.data.online import Space, Store
from tuesday.errors import Conflict, NotFound
from tuesday.project import Project, Source
from tuesday.workspace import Workspace


@dataclass(frozen=True)
class ApplyResult:
    """The outcome of applying a batch of events."""

    ingest: tables.IngestResult
    online: str  # updated | no event features | nothing accepted | not built | ...
    entities: int = 0
    events: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.ingest.to_dict(),
                "online": {"status": self.online, "entities": self.entities,
                           "events": self.events}}


def _fill_available(src: Source, frame: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    col = src.available_at
    if not col:
        return frame
    frame = frame.copy()
    stamp = pd.Timestamp(as_of)
    if col not in frame.columns:
        frame[col] = stamp.isoformat()
    elif frame[col].isna().any():
        fill: Any = stamp if pd.api.types.is_datetime64_any_dtype(frame[col]) \
            else stamp.isoformat()
        frame[col] = frame[col].astype(object).where(frame[col].notna(), fill)
    return frame


def _appended(ws: Workspace, src: Source, version: int) -> pd.DataFrame:
    """The rows one ingest appended, as stored (typed by the contract): the files its
    Delta commit added, read from the commit (JSON lines, part of the Delta protocol),
    which is much faster than loading two snapshots and comparing them."""
    store = ws.storage
    base = ("tables", src.name)
    raw = store.read(*base, "_delta_log", f"{version:020d}.json")
    if raw is None:
        raise NotFound(f"Version {version} of table {src.name!r} has no commit file.",
                       fix="Run `tuesday tables` to list the versions that exist.")
    actions = [json.loads(line) for line in raw.decode().splitlines() if line]
    files = [unquote(a["add"]["path"]) for a in actions if "add" in a]
    schema = tables.arrow_schema(src)
    if not files:
        return schema.empty_table().to_pandas()
    parts = [pq.read_table(pa.py_buffer(store.read(*base, *f.split("/")) or b""))
             .select(schema.names).cast(schema) for f in files]
    return pa.concat_tables(parts).to_pandas()


def apply(ws: Workspace, project: Project, source: str | Source, frame: pd.DataFrame,
          as_of: datetime, *, store: Store | None = None) -> ApplyResult:
    """Validate events against the source's contract, append the accepted ones to the
    offline table (quarantining the rest), then merge them into the online state of each
    affected entity.

    A source with ``available_at`` gets it filled with ``as_of`` (the arrival time) for
    events that do not carry one.

    Example:
        >>> # events.apply(ws, project, "transactions", pd.DataFrame(rows), as_of=now)
    """
    src = source if isinstance(source, Source) else project.source(source)
    frame = _fill_available(src, frame, as_of)
    fresh = tables.latest_version(ws, src.name) is None
    result = tables.ingest_frame(ws, src, frame, as_of=as_of, file="events")
    sp = spec(project, src.name)
    if sp is None:
        return ApplyResult(result, "no event features")
    if result.report.accepted == 0 or result.version is None:
        return ApplyResult(result, "nothing accepted")
    rows = _appended(ws, src, result.version)
    own = store is None
    st: Store = store if store is not None else online.open_store(ws)
    try:
        status, n = update(st, sp, rows, as_of, version=result.version, fresh=fresh)
    finally:
        if own:
            st.close()
    return ApplyResult(result, status, n, len(rows) if status == "updated" else 0)


def update(store: Store, sp: Spec, rows: pd.DataFrame, as_of: datetime, *, version: int,
           fresh: bool = False) -> tuple[str, int]:
    """Merge rows of the source (as stored in its table version ``version``) into the
    state of their entities, in one atomic read-modify-write of their records.

    ``fresh`` says the table was empty before this version, so a space never built may
    be created now (there is no history it could miss). Returns the status and the
    number of entities updated.
    """
    at = micros(as_of)
    groups = grouped_arrays(sp, rows)
    outcome = ["updated"]

    def fn(space: Space | None, current: dict[str, bytes]
           ) -> tuple[Space | None, dict[str, bytes]]:
        new_space = None
        if space is None:
            if not fresh:
                outcome[0] = "not built: run `tuesday materialize MODEL` to build it"
                return None, {}
            space = new_space = Space(sp.source, sp.schema, -1, pd.Timestamp(as_of).isoformat())
        if space.schema != sp.schema:
            outcome[0] = ("built for other feature definitions: run `tuesday materialize "
                          "MODEL` to rebuild it")
            return None, {}
        if version <= space.built_version:
            outcome[0] = "already in the state built by materialize"
            return None, {}
        out = {}
        for key, g in groups.items():
            blob = current.get(key)
            rec = decode(blob)[0] if blob is not None else None
            out[key] = encode(merge(rec, sp, *g, at=at), sp.schema_id)
        return new_space, out

    store.update(sp.source, list(groups), fn)
    return outcome[0], len(groups) if outcome[0] == "updated" else 0


def rebuild(ws: Workspace, project: Project, source: str, as_of: datetime, *,
            store: Store | None = None) -> dict[str, Any]:
    """Recompute the online state of every entity of an event source from its offline
    table as of ``as_of`` and replace the stored state (``tuesday materialize``)."""
    sp = spec(project, source)
    if sp is None:
        raise NotFound(f"Source {source!r} is read by no event feature, so it has no online "
                       "state.", fix="Declare window features over it in a model with "
                       "horizon '0d'.")
    src = project.source(source)
    own = store is None
    st: Store = store if store is not None else online.open_store(ws)
    try:
        for _attempt in range(5):
            latest = tables.latest_version(ws, source)
            version = int(latest["version"]) if latest else -1
            if latest is not None and pd.Timestamp(latest["as_of"]) > pd.Timestamp(as_of):
                raise Conflict(
                    f"Source {source!r} has events ingested at "
                    f"{pd.Timestamp(latest['as_of']).isoformat()}, after the as-of "
                    f"{pd.Timestamp(as_of).isoformat()}; the online state holds every event "
                    "received.", fix="Materialize with an --as-of at or after it (default: "
                                     "now).")
            table = tables.read_table(ws, src, version if version >= 0 else None)
            rows = table.to_pandas()
            at = micros(as_of)
            items = [(key, encode(merge(None, sp, *g, at=at), sp.schema_id))
                     for key, g in grouped_arrays(sp, rows).items()]
            space = Space(source, sp.schema, version, pd.Timestamp(as_of).isoformat())

            def unchanged(v: int = version) -> bool:
                now = tables.latest_version(ws, source)
                return (int(now["version"]) if now else -1) == v

            if st.replace(space, items, unchanged):
                return {"source": source, "entities": len(items), "events": len(rows),
                        "table_version": version, "schema": sp.schema}
        raise Conflict(f"Events of {source!r} kept arriving while the online state was "
                       "rebuilt.", fix="Run `tuesday materialize` again.")
    finally:
        if own:
            st.close()
