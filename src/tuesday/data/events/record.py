"""The state record of one entity and its binary format: ``encode`` / ``decode`` for
the write path, ``View`` for the request path (layout in the package docstring)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from tuesday.errors import TuesdayError

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
    min and max with one lookup (``suffix_aggregates``).
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
        parts += [suffix_aggregates(col).astype("<f8").tobytes() for col in rec.values.tolist()]
    return b"".join(parts)


def suffix_aggregates(values: list[float]) -> np.ndarray:
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


def unpacker(n: int, code: str) -> struct.Struct:
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
        self.times: tuple[int, ...] = unpacker(n, "q").unpack_from(blob, o)
        o += 8 * n if same else 16 * n
        self.values: tuple[float, ...] = unpacker(n * ncols, "d").unpack_from(blob, o)
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
        return unpacker(n, "q").unpack_from(self._blob, HEADER.size + 8 * n)

    @property
    def cols(self) -> list[tuple[float, ...]]:
        n = len(self.times)
        return [self.values[c * n:(c + 1) * n] for c in range(len(self.values) // max(n, 1))]
