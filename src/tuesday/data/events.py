"""Event features: online state kept up to date from events, values computed at request time.

A model scored at request time (horizon ``"0d"``) may declare window features over an
event source: ``window(..., agg=...)`` with ``count``, ``sum``, ``mean``, ``min``, ``max``
or ``last``, and ``time_since_last(...)``. One definition gives both values:

- batch (training, backtests): ``features.feature_frame`` computes them point in time with
  DuckDB over the versioned table;
- online (serving): ``apply`` keeps a small state per (source, entity) as events arrive,
  and ``Plan.values`` computes each feature for the request's time from that state.

tests/test_online.py proves the two agree on generated event streams (out of order,
duplicate times, missing values, entities without history): exactly for counts, min, max,
last and times, to 1e-9 for sums and means (DuckDB adds in time order, the online path
with ``math.fsum``).

Semantics, the same in both paths. The value at request time ``T`` reads the events whose
time is in ``(T - lag - window, T - lag]`` and that were available at ``T``
(``available_at <= T`` when the source declares ``available_at``; otherwise an event is
available from its own time). Missing values are skipped. Without events the feature
takes its declared ``default`` (a count is 0). ``last`` is the value at the latest time
(the largest if several events share it); ``time_since_last`` is the number of seconds
from ``T - lag`` back to the latest event. So a count over the last hour decays between
events, and the transaction being scored is not in its own features when its
``available_at`` (when it was recorded) is after the time it is scored at.

The state is ONE record per (source, entity): a blob, read with one point query. Layout
(little-endian): a 48-byte header (magic ``TEV1``, number of value columns, format
version, number of events ``n``, ``ref`` in microseconds, the largest ``available_at``,
a bit mask of the columns holding missing values, the feature-set schema hash, the number
of events dropped by the size bound), then ``n`` event times and ``n`` availability times
(int64 microseconds, sorted by time; format 2 leaves the second out when every event was
available at its own time) and one float64 array of ``n`` values per column read by the
source's event features (missing = NaN); then (flag ``SUFFIXES``, formats 5 and 6)
per column ``n`` triples ``(fsum, min, max)`` of the values from each position to the
newest, bit for bit what the slice aggregates give (``_suffixes``). A reader
(``_reader``, compiled once per plan) unpacks the times with ``struct`` (in C), bisects
them, and reads a window reaching the newest event with one lookup per (window, column);
a back-dated request, a lagged window or a record without suffixes (formats 1 and 2,
still read) slices the values instead. 21 events and two columns take about 1.6 KB
(0.55 KB without the suffixes); a month of a card with three transactions a day about
7 KB, past the ~4 KB a SQLite page holds in place.

What the record keeps (``merge``). ``ref`` is how far the entity's stream has been seen:
``max(previous ref, min(as_of of the apply, newest event time))``. Values are exact for
every request time ``T >= ref`` (a server scores "now", after the events it has):

- windows (count/sum/mean/min/max) need the events newer than ``ref - longest (lag +
  window)``; older ones are dropped;
- ``last`` and ``time_since_last`` need the latest event already usable at ``ref`` (the
  "anchor") and anything newer; events older than the anchor are dropped;
- the record holds at most ``MAX_EVENTS`` events (oldest dropped first, counted in the
  header); past that bound windows undercount: the only approximate case.

Late and out-of-order events. An event is merged at its time, whatever its arrival order,
so requests after it arrived see it exactly as the batch path does. Requests served before
it arrived could not: if the source declares ``available_at`` (``apply`` fills it with the
arrival time when the sender leaves it out) the batch path also leaves the event out at
those times, so training sees exactly what serving saw. Without ``available_at`` the
batch path, run later, includes the late event at times before it arrived: training then
sees slightly more than serving did (a count may be higher by the late events).

Rows reach the offline table first (``tables.ingest_frame``: validated by the contract,
quarantined with reasons, nothing lost), then the online state. Rows ingested from files
(``tuesday ingest``) reach the online state at the next ``rebuild``
(``tuesday materialize MODEL``), which recomputes every record from the table.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import struct
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tuesday.data import online, tables
from tuesday.data.features import horizon
from tuesday.data.online import Space, SQLiteStore, Store
from tuesday.errors import Conflict, NotFound, TuesdayError
from tuesday.project import Feature, Model, Project, Source, duration
from tuesday.workspace import Workspace

#: events kept per record; past it the oldest are dropped and windows undercount
MAX_EVENTS = 4096
#: window aggregates answered from the latest event only
LATEST_AGGS = ("last", "time_since_last")
HEADER = struct.Struct("<4sHHIqqQQI")
MAGIC = b"TEV1"
FORMAT = 1  # times, availability times, values
SAME_TIMES = 2  # times, values: every event available at its own time
#: flag on FORMAT / SAME_TIMES (formats 5 and 6): suffix aggregates follow the values
SUFFIXES = 4
FORMATS = frozenset({FORMAT, SAME_TIMES, FORMAT | SUFFIXES, SAME_TIMES | SUFFIXES})
#: values past this (or not finite) leave the suffix aggregates out of a record: their
#: running exact sums could overflow where ``math.fsum`` of a window would not
SUFFIX_BOUND = 2.0 ** 1000
NEVER = np.iinfo(np.int64).max  # availability of a row whose available_at is missing


def _us(t: Any) -> int:
    """Microseconds since the epoch (floor), as the batch path's ``datetime64[us]``."""
    if type(t) is not pd.Timestamp:
        t = pd.Timestamp(t)
    return int(t.value // 1000)


# --------------------------------------------------------------------- declarations


def event_features(model: Model) -> tuple[Feature, ...]:
    """The features of ``model`` computed at request time from the event state: its window
    features, when the model is scored at request time (horizon 0)."""
    if horizon(model) > pd.Timedelta(0):
        return ()
    return tuple(f for f in model.features if f.kind == "window")


@dataclass(frozen=True)
class Compiled:
    """One event feature, ready to compute: durations in microseconds, column by index."""

    name: str
    agg: str
    col: int  # index into Spec.columns; -1: no column (time_since_last of any event)
    lag: int
    window: int
    default: float | None
    fast: Callable[..., float | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast", FAST[self.agg])


@dataclass(frozen=True)
class Spec:
    """What the state of one event source keeps, for every event feature over it.

    Attributes:
        source: Source name (the store's space).
        key: Entity key column, or None for a source of global rows (one record, key '').
        time: Event-time column.
        available_at: Availability column, if the source declares one.
        columns: Value columns kept per event.
        retention: Longest lag + window of the count/sum/mean/min/max features (us).
        anchors: (column index or -1, lag in us) of the last/time_since_last features.
    """

    source: str
    key: str | None
    time: str
    available_at: str | None
    columns: tuple[str, ...]
    retention: int
    anchors: tuple[tuple[int, int], ...]

    @cached_property
    def schema(self) -> str:
        """A hash of everything that shapes the records: stored in each of them."""
        text = json.dumps([self.source, self.key, self.time, self.available_at,
                           self.columns, self.retention, self.anchors])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def schema_id(self) -> int:
        return int(self.schema, 16)

    def compile(self, f: Feature) -> Compiled:
        col = self.columns.index(f.column) if f.column else -1
        return Compiled(f.name, f.agg, col, _dur(f.lag), _dur(f.window), f.default)


def _dur(value: str) -> int:
    return int(duration(value, what="duration") / pd.Timedelta(microseconds=1))


def spec(project: Project, source: str) -> Spec | None:
    """The state spec of ``source`` over every model's event features (None if none)."""
    src = project.source(source)
    feats = [f for m in project.models for f in event_features(m) if f.source == src.name]
    if not feats or src.time is None:
        return None
    columns = tuple(sorted({f.column for f in feats if f.column}))
    windows = [_dur(f.lag) + _dur(f.window) for f in feats if f.agg not in LATEST_AGGS]
    anchors = sorted({(columns.index(f.column) if f.column else -1, _dur(f.lag))
                      for f in feats if f.agg in LATEST_AGGS})
    return Spec(src.name, src.entity.key if src.entity else None, src.time,
                src.available_at, columns, max(windows, default=0), tuple(anchors))


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    """The state of one entity: its retained events, sorted by time."""

    times: np.ndarray  # int64 us
    avail: np.ndarray  # int64 us (NEVER when unknown)
    values: np.ndarray  # float64, one row per column
    ref: int
    dropped: int = 0

    @staticmethod
    def empty(ncols: int) -> Record:
        return Record(np.empty(0, np.int64), np.empty(0, np.int64),
                      np.empty((ncols, 0), np.float64), np.iinfo(np.int64).min)

    def __len__(self) -> int:
        return len(self.times)


def encode(rec: Record, schema_id: int, *, suffixes: bool = True) -> bytes:
    """The record as one blob (see the module docstring for the layout).

    With ``suffixes`` (and every value finite, below ``SUFFIX_BOUND``) the blob ends with
    the suffix aggregates of each column (format flag ``SUFFIXES``): for every position
    ``i``, ``(fsum, min, max)`` of the values ``i..n-1`` exactly as the request path
    computes them on a slice, so a window reaching the newest event reads its sum, mean,
    min and max with one lookup (``_suffixes``).
    """
    n, ncols = len(rec.times), rec.values.shape[0]
    nulls = np.isnan(rec.values).any(axis=1) if n else np.zeros(ncols, bool)
    mask = sum(1 << i for i in range(ncols) if nulls[i])
    max_avail = int(rec.avail.max()) if n else np.iinfo(np.int64).min
    same = bool(np.array_equal(rec.avail, rec.times))
    fmt = SAME_TIMES if same else FORMAT
    if suffixes and n and bool((np.abs(rec.values) < SUFFIX_BOUND).all()):
        fmt |= SUFFIXES
    head = HEADER.pack(MAGIC, ncols, fmt, n, rec.ref, max_avail, mask, schema_id,
                       rec.dropped)
    parts = [head, rec.times.astype("<i8").tobytes()]
    if not same:
        parts.append(rec.avail.astype("<i8").tobytes())
    parts.append(np.ascontiguousarray(rec.values, dtype="<f8").tobytes())
    if fmt & SUFFIXES:
        parts += [_suffixes(col).astype("<f8").tobytes() for col in rec.values.tolist()]
    return b"".join(parts)


def _suffixes(values: list[float]) -> np.ndarray:
    """``(n, 3)``: for each ``i``, ``math.fsum``, ``min`` and ``max`` of ``values[i:]``,
    bit for bit what those functions return on the slice (finite values).

    The sums: Shewchuk's exact partials (the algorithm of ``math.fsum``), added from the
    right; their ``fsum`` is the correctly rounded exact sum of the suffix, which is what
    ``fsum`` of the suffix returns, in O(n) partial updates instead of O(n^2). min / max:
    the leftmost extreme, as the builtins keep it (``0.0`` vs ``-0.0``).
    """
    n = len(values)
    out = np.empty((n, 3), np.float64)
    partials: list[float] = []
    lo = hi = 0.0
    for i in range(n - 1, -1, -1):
        x = v = values[i]
        j = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            total = x + y
            err = y - (total - x)
            if err:
                partials[j] = err
                j += 1
            x = total
        partials[j:] = [x]
        if i == n - 1:
            lo = hi = v
        else:
            lo = v if v <= lo else lo
            hi = v if v >= hi else hi
        out[i] = (math.fsum(partials), lo, hi)
    return out


def decode(blob: bytes) -> tuple[Record, int]:
    """A blob back to a record and its schema id (the write path)."""
    magic, ncols, fmt, n, ref, _max_avail, _mask, schema_id, dropped = \
        HEADER.unpack_from(blob)
    if magic != MAGIC or fmt not in FORMATS:
        raise TuesdayError(f"An online event record has format {magic!r}/{fmt}; expected "
                           f"{MAGIC!r}/one of {sorted(FORMATS)}.",
                           fix="Run `tuesday materialize MODEL` to rebuild the online state.")
    o = HEADER.size
    times = np.frombuffer(blob, "<i8", n, o).astype(np.int64)
    if fmt & ~SUFFIXES == SAME_TIMES:  # the suffix aggregates are derived: not read
        avail, o = times.copy(), o + 8 * n
    else:
        avail, o = np.frombuffer(blob, "<i8", n, o + 8 * n).astype(np.int64), o + 16 * n
    values = np.frombuffer(blob, "<f8", n * ncols, o).astype(np.float64)
    return Record(times, avail, values.reshape(ncols, n), ref, dropped), schema_id


_FORMATS: dict[tuple[int, str], struct.Struct] = {}


def _array(n: int, code: str) -> struct.Struct:
    fmt = _FORMATS.get((n, code))
    if fmt is None:
        fmt = _FORMATS[(n, code)] = struct.Struct(f"<{n}{code}")
    return fmt


class View:
    """A read-only view of a blob for the request path: tuples unpacked in C, no numpy.

    ``values`` holds the columns one after the other: column ``c`` is
    ``values[c * n:(c + 1) * n]``.
    """

    __slots__ = ("_blob", "nulls", "ref", "schema_id", "settled_before", "times", "values")

    def __init__(self, blob: bytes) -> None:
        magic, ncols, fmt, n, ref, max_avail, mask, schema_id, _ = HEADER.unpack_from(blob)
        if magic != MAGIC or fmt not in FORMATS:
            raise TuesdayError(f"An online event record has format {magic!r}/{fmt}.",
                               fix="Run `tuesday materialize MODEL` to rebuild it.")
        o = HEADER.size
        same = fmt & ~SUFFIXES == SAME_TIMES
        self._blob = None if same else blob
        self.times: tuple[int, ...] = _array(n, "q").unpack_from(blob, o)
        o += 8 * n if same else 16 * n
        self.values: tuple[float, ...] = _array(n * ncols, "d").unpack_from(blob, o)
        self.nulls = mask  # bit c: column c holds a missing value
        self.ref = ref
        self.settled_before = max_avail  # every event is available at times >= this
        self.schema_id = schema_id

    @property
    def avail(self) -> tuple[int, ...]:
        """Availability times (read only when some event is not yet available)."""
        if self._blob is None:
            return self.times
        n = len(self.times)
        return _array(n, "q").unpack_from(self._blob, HEADER.size + 8 * n)

    @property
    def cols(self) -> list[tuple[float, ...]]:
        n = len(self.times)
        return [self.values[c * n:(c + 1) * n] for c in range(len(self.values) // max(n, 1))]


# ----------------------------------------------------------------- the pure function
#
# One definition in two paths: the fast one when every event of the window is available
# at the request time and the column has no missing value (the usual case: one small
# function per aggregate over a slice), the general one otherwise. ``value`` picks the
# path; the parity tests run both against the SQL of ``features.feature_frame``.


def _f_count(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
             default: float | None) -> float | None:
    return float(i1 - i0)


def _f_sum(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
           default: float | None) -> float | None:
    return math.fsum(vals) if i1 > i0 else default


def _f_mean(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
            default: float | None) -> float | None:
    return math.fsum(vals) / (i1 - i0) if i1 > i0 else default


def _f_min(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
           default: float | None) -> float | None:
    return float(min(vals)) if i1 > i0 else default


def _f_max(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
           default: float | None) -> float | None:
    return float(max(vals)) if i1 > i0 else default


def _f_last(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
            default: float | None) -> float | None:
    if i1 <= i0:
        return default
    t, j = times[i1 - 1], i1 - 1
    while j > i0 and times[j - 1] == t:  # ties at the latest time: the largest value
        j -= 1
    return float(max(vals[j - i0:]))


def _f_since(times: Sequence[int], vals: Sequence[float], i0: int, i1: int, hi: int,
             default: float | None) -> float | None:
    return (hi - times[i1 - 1]) / 1_000_000 if i1 > i0 else default


FAST: dict[str, Callable[..., float | None]] = {
    "count": _f_count, "sum": _f_sum, "mean": _f_mean, "min": _f_min, "max": _f_max,
    "last": _f_last, "time_since_last": _f_since}


def _general(f: Compiled, i0: int, i1: int, hi: int, times: Sequence[int],
             col: Sequence[float] | None, avail: Sequence[int], at: int) -> float | None:
    """Any window: only events available at ``at`` and values not missing count."""
    rows = [i for i in range(i0, i1) if avail[i] <= at and (col is None or col[i] == col[i])]
    if f.col < 0 or col is None:  # time_since_last of any event
        return (hi - times[rows[-1]]) / 1_000_000 if rows else f.default
    times_k = [times[i] for i in rows]
    return FAST[f.agg](times_k, [col[i] for i in rows], 0, len(rows), hi, f.default)


def value(f: Compiled, times: Sequence[int], avail: Sequence[int],
          cols: Sequence[Sequence[float]], at: int, *, settled: bool = False,
          dense: Sequence[bool] = ()) -> float | None:
    """The value of one event feature at time ``at`` (us) from events sorted by time.

    This is the online definition; ``features.feature_frame`` computes the same in SQL.
    ``settled`` (every event available at ``at``) and ``dense`` (no missing value per
    column) only select the faster path, with the same result.

    Example:
        >>> f = Compiled("n_1h", "count", 0, 0, 3_600_000_000, None)
        >>> value(f, [0, 1_800_000_000], [0, 1_800_000_000], [[1.0, 2.0]], 3_600_000_000)
        1.0
    """
    hi = at - f.lag
    i1 = bisect_right(times, hi)
    i0 = bisect_right(times, hi - f.window, 0, i1)
    col = cols[f.col] if f.col >= 0 else None
    if settled and (col is None or bool(dense and dense[f.col])):
        return FAST[f.agg](times, col[i0:i1] if col is not None else (), i0, i1, hi,
                           f.default)
    return _general(f, i0, i1, hi, times, col, avail, at)


def values_from_events(sp: Spec, feats: Sequence[Feature], events: pd.DataFrame,
                       at: Any) -> list[float | None]:
    """Every feature at ``at`` from one entity's events (a frame of the source's rows):
    the online definition applied to a whole history, without a store.

    Example:
        >>> from tuesday.project import window
        >>> sp = Spec("tx", "card", "ts", None, ("amount",), 3_600_000_000, ())
        >>> ev = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:30"]),
        ...                    "amount": [5.0, 7.0]})
        >>> values_from_events(sp, [window("tx", "amount", "1h", lag="0d", agg="sum")], ev,
        ...                    "2024-01-01 10:45")
        [12.0]
    """
    rec = merge(None, sp, *_arrays(sp, events), at=_us(at))
    times, avail, cols = rec.times.tolist(), rec.avail.tolist(), rec.values.tolist()
    return [value(sp.compile(f), times, avail, cols, _us(at)) for f in feats]


# -------------------------------------------------------------------------- merging


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _times(column: pd.Series) -> np.ndarray:
    """Microseconds (int64), NaT as the int64 minimum."""
    if not pd.api.types.is_datetime64_dtype(column):
        column = pd.to_datetime(column)
    return column.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _arrays(sp: Spec, rows: pd.DataFrame) -> Arrays:
    """(times, availability, values) of rows; rows without a time are left out, as the
    batch path's joins leave them out."""
    times = _times(rows[sp.time])
    ok = times != np.iinfo(np.int64).min
    times = times[ok]
    if sp.available_at:
        avail = _times(rows[sp.available_at])[ok]
        avail[avail == np.iinfo(np.int64).min] = NEVER
    else:
        avail = times.copy()
    vals = np.empty((len(sp.columns), len(times)), np.float64)
    for i, c in enumerate(sp.columns):
        col = rows[c]
        if not pd.api.types.is_float_dtype(col):
            col = pd.to_numeric(col, errors="coerce")
        vals[i] = col.to_numpy(dtype="float64", na_value=np.nan)[ok]
    return times, avail, vals


def _grouped(sp: Spec, rows: pd.DataFrame) -> dict[str, Arrays]:
    """The arrays of the rows of each entity (rows without a key or a time left out)."""
    if sp.key is None:
        keys = np.full(len(rows), "", dtype=object)
    else:
        keys = np.array([None if pd.isna(k) else str(k) for k in rows[sp.key].tolist()],
                        dtype=object)
    ok = keys != None  # noqa: E711 - element-wise
    rows, keys = rows[ok], keys[ok]
    if len(rows) == 1:
        return {str(keys[0]): _arrays(sp, rows)}
    times, avail, vals = _arrays(sp, rows)
    keys = keys[_times(rows[sp.time]) != np.iinfo(np.int64).min]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    cuts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    out: dict[str, Arrays] = {}
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(keys)], strict=True):
        idx = order[lo:hi]
        out[str(keys[lo])] = (times[idx], avail[idx], vals[:, idx])
    return out


def merge(rec: Record | None, sp: Spec, times: np.ndarray, avail: np.ndarray,
          values: np.ndarray, *, at: int) -> Record:
    """The record after adding events (any order) as of ``at`` (us): sorted by time,
    then pruned to what requests at or after the new ``ref`` can read (module docstring).
    """
    old = rec if rec is not None else Record.empty(len(sp.columns))
    t = np.concatenate([old.times, times])
    a = np.concatenate([old.avail, avail])
    v = np.concatenate([old.values, values], axis=1)
    order = np.argsort(t, kind="stable")  # ties keep arrival order
    t, a, v = t[order], a[order], v[:, order]
    ref = old.ref if not len(t) else max(old.ref, min(at, int(t[-1])))
    keep = t > ref - sp.retention if sp.retention > 0 else np.zeros(len(t), bool)
    for col, lag in sp.anchors:
        has = ~np.isnan(v[col]) if col >= 0 else np.ones(len(t), bool)
        usable = has & (t <= ref - lag) & (a <= ref)
        if usable.any():
            keep |= has & (t >= t[usable][-1])
        else:
            keep |= has
    dropped = old.dropped
    idx = np.flatnonzero(keep)
    if len(idx) > MAX_EVENTS:
        dropped += len(idx) - MAX_EVENTS
        idx = idx[-MAX_EVENTS:]
    return Record(t[idx], a[idx], v[:, idx], ref, dropped)


# ---------------------------------------------------------------------- write paths


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
    root = ws.table_path(src.name)
    commit = root / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines() if line]
    files = [str(root / unquote(a["add"]["path"])) for a in actions if "add" in a]
    schema = tables.arrow_schema(src)
    if not files:
        return schema.empty_table().to_pandas()
    parts = [pq.read_table(f).select(schema.names).cast(schema) for f in files]
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
    st: Store = store if store is not None else SQLiteStore(online.connect(ws))
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
    at = _us(as_of)
    groups = _grouped(sp, rows)
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
    st: Store = store if store is not None else SQLiteStore(online.connect(ws))
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
            at = _us(as_of)
            items = [(key, encode(merge(None, sp, *g, at=at), sp.schema_id))
                     for key, g in _grouped(sp, rows).items()]
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


# ------------------------------------------------------------------------ read path


Member = tuple[str, Callable[..., "float | None"], int, "float | None", Compiled]


@dataclass(frozen=True)
class Group:
    """The event features of one model over one source, grouped by window.

    ``windows``: (lag, window, members) with members (name, fast function, column
    index, default, compiled feature): what the request path loops over.
    """

    spec: Spec
    feats: tuple[Compiled, ...]
    windows: tuple[tuple[int, int, tuple[Member, ...]], ...]

    @staticmethod
    def of(sp: Spec, feats: Sequence[Compiled]) -> Group:
        windows: dict[tuple[int, int], list[Member]] = {}
        for f in feats:
            windows.setdefault((f.lag, f.window), []).append(
                (f.name, f.fast, f.col, f.default, f))
        return Group(sp, tuple(feats), tuple((lag, w, tuple(m))
                                             for (lag, w), m in sorted(windows.items())))

    def defaults(self) -> dict[str, float | None]:
        """The values of an entity without history."""
        return {f.name: 0.0 if f.agg == "count" else f.default for f in self.feats}


@dataclass(frozen=True)
class Plan:
    """How to compute a model's event features at request time: one record per source.

    Attributes:
        names: The event features, in the model's order.
        vectors: Whether the model also has features read from materialized vectors.
        groups: Per source: its spec and features.
    """

    model: str
    names: tuple[str, ...]
    vectors: bool
    groups: tuple[Group, ...]
    #: per group: (source, keyed, reader), the reader compiled once per plan (_reader)
    readers: tuple[tuple[str, bool, Reader], ...] = field(init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "readers", tuple(
            (g.spec.source, g.spec.key is not None, _reader(g, self.model))
            for g in self.groups))

    @property
    def features(self) -> bool:
        return bool(self.names)

    def _check(self, store: Store, sp: Spec) -> None:
        """An entity without a record has no history only if the space was built (one
        more point query, only for entities without a record)."""
        space = store.space(sp.source)
        if space is None:
            raise NotFound(f"The online state of source {sp.source!r} (read by model "
                           f"{self.model!r}) was never built.",
                           fix=f"Run `tuesday materialize {self.model}`.")
        if space.schema != sp.schema:
            raise NotFound(f"The online state of source {sp.source!r} was built for other "
                           f"feature definitions than model {self.model!r} declares now.",
                           fix=f"Run `tuesday materialize {self.model}` to rebuild it.")

    def values(self, store: Store | sqlite3.Connection, entity: str, at: Any
               ) -> dict[str, float | None]:
        """Every event feature of one entity at time ``at``: one read per source."""
        st = SQLiteStore(store) if isinstance(store, sqlite3.Connection) else store
        t = _us(at)
        if len(self.readers) == 1:  # the usual case: one source, one record
            source, keyed, read = self.readers[0]
            blob = st.get(source, entity if keyed else "")
            if blob is not None:
                return read(blob, t)
        out: dict[str, float | None] = {}
        for g, (source, keyed, read) in zip(self.groups, self.readers, strict=True):
            blob = st.get(source, entity if keyed else "")
            if blob is None:
                self._check(st, g.spec)
                out.update(g.defaults())
            else:
                out.update(read(blob, t))
        return out

    def values_many(self, store: Store, entities: Sequence[str], at: Any
                    ) -> list[dict[str, float | None]]:
        """Event features of many entities at one time: one query per source."""
        t = _us(at)
        out: list[dict[str, float | None]] = [{} for _ in entities]
        for g, (source, keyed, read) in zip(self.groups, self.readers, strict=True):
            keys = entities if keyed else [""] * len(entities)
            for i, blob in enumerate(store.get_many(source, keys)):
                if blob is None:
                    self._check(store, g.spec)
                    out[i].update(g.defaults())
                else:
                    out[i].update(read(blob, t))
        return out


def _compute(g: Group, model: str, view: View, at: int) -> dict[str, float | None]:
    """``value`` of every feature of one source for one record (the request path)."""
    if view.schema_id != g.spec.schema_id:
        raise NotFound(f"The online state of source {g.spec.source!r} was built for other "
                       f"feature definitions than model {model!r} declares now.",
                       fix=f"Run `tuesday materialize {model}` to rebuild it.")
    times, values, nulls = view.times, view.values, view.nulls
    n = len(times)
    settled = view.settled_before <= at
    out: dict[str, float | None] = {}
    if settled and not nulls:  # the usual case: every feature on the fast path
        for lag, window, members in g.windows:  # one bisect per window
            hi = at - lag
            i1 = bisect_right(times, hi)
            i0 = bisect_right(times, hi - window, 0, i1)
            for name, fast, c, default, _ in members:
                out[name] = fast(times, values[c * n + i0:c * n + i1] if c >= 0 else (),
                                 i0, i1, hi, default)
        return out
    for lag, window, members in g.windows:
        hi = at - lag
        i1 = bisect_right(times, hi)
        i0 = bisect_right(times, hi - window, 0, i1)
        for name, fast, c, default, f in members:
            if settled and (c < 0 or not (nulls >> c) & 1):
                out[name] = fast(times, values[c * n + i0:c * n + i1] if c >= 0 else (),
                                 i0, i1, hi, default)
            else:
                col = values[c * n:(c + 1) * n] if c >= 0 else None
                out[name] = _general(f, i0, i1, hi, times, col, view.avail, at)
    return out


Reader = Callable[[bytes, int], "dict[str, float | None]"]


def _reader(g: Group, model: str) -> Reader:
    """The request path of one group, ``blob, at -> values``, as one function compiled
    once per plan: the blob unpacked in place, one bisect per window end and start, every
    aggregate inlined (no call per feature, no loop, no ``View``); keys in the order
    ``_compute`` gives them (by window).

    Two bodies. When the record has suffix aggregates and every window ends at or after
    the newest event (a request at or after it, the usual case), only the times are
    unpacked and each (window, column) reads its ``(fsum, min, max)`` at the window's
    start: one bisect and one lookup. Otherwise (a back-dated request, a window with a
    lag, an older record) one slice per (window, column) of the unpacked values. Both
    give exactly what ``_compute`` gives, and hand over to it when the record is not on
    the fast path: an event not yet available at ``at``, a missing value, another schema
    or format (``_compute`` raises for those).
    """
    ns: dict[str, Any] = {"bisect_right": bisect_right, "fsum": math.fsum,
                          "unpack_head": HEADER.unpack_from, "array": _array,
                          "FORMATS": FORMATS, "SAME_TIMES": SAME_TIMES, "SUFFIXES": SUFFIXES,
                          "MAGIC": MAGIC, "SCHEMA": g.spec.schema_id, "HEAD": HEADER.size,
                          "triple": struct.Struct("<3d").unpack_from,
                          "last_tied": _last_tied, "tie_start": _tie_start,
                          "slow": lambda blob, at: _compute(g, model, View(blob), at)}
    reach = max((lag for lag, _, _ in g.windows), default=0)
    lines = ["def read(blob, at):",
             "    magic, ncols, fmt, n, _ref, max_avail, nulls, schema, _d = "
             "unpack_head(blob)",
             "    if nulls or max_avail > at or schema != SCHEMA or magic != MAGIC "
             "or fmt not in FORMATS:",
             "        return slow(blob, at)",
             "    times = array(n, 'q').unpack_from(blob, HEAD)",
             "    vo = HEAD + (8 * n if fmt & ~SUFFIXES == SAME_TIMES else 16 * n)",
             f"    if fmt & SUFFIXES and times[n - 1] <= at - {reach}:",
             *_body(g, ns, suffixes=True),
             "    vals = array(n * ncols, 'd').unpack_from(blob, vo)",
             *_body(g, ns, suffixes=False)]
    # generated from the plan's own values only (names as reprs, defaults by name)
    exec(compile("\n".join(lines), f"<tuesday.events reader {g.spec.source}>", "exec"), ns)
    fn: Reader = ns["read"]
    fn.__doc__ = "\n".join(lines)  # the generated source, for debugging
    return fn


def _body(g: Group, ns: dict[str, Any], *, suffixes: bool) -> list[str]:
    """The lines computing every feature of ``g`` (see ``_reader``), indented under
    ``if`` (suffixes) or the function (slices)."""
    pad = "        " if suffixes else "    "
    cols = sorted({c for _, _, members in g.windows for _, _, c, _, _ in members if c >= 0})
    if suffixes:  # q{c}: where the (fsum, min, max) of column c start
        lines = [f"{pad}so = vo + 8 * n * ncols",
                 *(f"{pad}q{c} = so + 24 * n * {c}" for c in cols)]
    else:  # o{c}: where column c starts in vals
        lines = [f"{pad}o{c} = {c} * n" for c in cols]
    lags: dict[int, str] = {}
    items: list[str] = []
    for w, (lag, window, members) in enumerate(g.windows):
        if lag not in lags:
            lags[lag] = f"{len(lags)}"
            lines += [f"{pad}hi{lags[lag]} = at - {lag}",
                      f"{pad}e{lags[lag]} = " + ("n" if suffixes else
                                                 f"bisect_right(times, hi{lags[lag]})")]
        hi, e = f"hi{lags[lag]}", f"e{lags[lag]}"
        lines += [f"{pad}a{w} = bisect_right(times, {hi} - {window}, 0, {e})",
                  f"{pad}k{w} = {e} > a{w}"]
        done: set[int] = set()
        summed: set[int] = set()
        for m, (name, _fast, c, default, f) in enumerate(members):
            d = f"d{w}_{m}"
            ns[d] = default
            s = f"s{w}_{c}"
            if f.agg in ("sum", "mean", "min", "max") and c not in done:
                done.add(c)
                lines.append(f"{pad}{s} = triple(blob, q{c} + 24 * a{w}) if k{w} else ()"
                             if suffixes else f"{pad}{s} = vals[o{c} + a{w}:o{c} + {e}]")
            if f.agg in ("sum", "mean") and c not in summed and not suffixes:
                summed.add(c)
                lines.append(f"{pad}f{w}_{c} = fsum({s})")
            if suffixes:
                expr = {
                    "sum": f"{s}[0] if k{w} else {d}",
                    "mean": f"{s}[0] / ({e} - a{w}) if k{w} else {d}",
                    "min": f"{s}[1] if k{w} else {d}",
                    "max": f"{s}[2] if k{w} else {d}",
                    "last": (f"triple(blob, q{c} + 24 * tie_start(times, a{w}, n))[2] "
                             f"if k{w} else {d}"),
                }.get(f.agg, "")
            else:
                expr = {
                    "sum": f"f{w}_{c} if k{w} else {d}",
                    "mean": f"f{w}_{c} / ({e} - a{w}) if k{w} else {d}",
                    "min": f"min({s}) if k{w} else {d}",
                    "max": f"max({s}) if k{w} else {d}",
                    "last": (f"(vals[o{c} + {e} - 1] if {e} - 1 == a{w} or "
                             f"times[{e} - 2] != times[{e} - 1] else "
                             f"last_tied(times, vals, o{c}, a{w}, {e})) if k{w} else {d}"),
                }.get(f.agg, "")
            expr = expr or {
                "count": f"float({e} - a{w})",
                "time_since_last": f"({hi} - times[{e} - 1]) / 1_000_000 if k{w} else {d}",
            }[f.agg]
            items.append(f"{pad}    {name!r}: {expr},")
    return [*lines, f"{pad}return {{", *items, f"{pad}}}"]


def _tie_start(times: Sequence[int], i0: int, n: int) -> int:
    """The first of the events at the latest time (not before ``i0``): ``last`` is the
    largest of them, the suffix maximum there."""
    t, j = times[n - 1], n - 1
    while j > i0 and times[j - 1] == t:
        j -= 1
    return j


def _last_tied(times: Sequence[int], vals: Sequence[float], o: int, i0: int, i1: int
               ) -> float:
    """``last`` when several events share the latest time: the largest value (as
    ``_f_last``)."""
    t, j = times[i1 - 1], i1 - 1
    while j > i0 and times[j - 1] == t:
        j -= 1
    return float(max(vals[o + j:o + i1]))


_PLANS: dict[tuple[int, str], tuple[Project, Plan]] = {}


def plan(project: Project, model: Model) -> Plan:
    """The (cached) request-time plan of ``model``'s event features."""
    cached = _PLANS.get((id(project), model.name))
    if cached is not None and cached[0] is project:
        return cached[1]
    feats = event_features(model)
    names = {f.name for f in feats}
    groups = []
    for source in sorted({f.source or "" for f in feats}):
        sp = spec(project, source)
        assert sp is not None
        groups.append(Group.of(sp, [sp.compile(f) for f in feats if f.source == source]))
    vectors = not feats or any(f.kind != "request" and f.name not in names
                               for f in model.features)
    result = Plan(model.name, tuple(f.name for f in feats), vectors, tuple(groups))
    _PLANS[(id(project), model.name)] = (project, result)
    return result
