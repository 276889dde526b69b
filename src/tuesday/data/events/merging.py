"""Events into records: the rows of a source as arrays per entity, merged into the
entity's record and pruned to what later requests read (``merge``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tuesday.data.events.aggregates import value
from tuesday.data.events.record import NEVER, Record
from tuesday.data.events.specs import Spec, micros
from tuesday.project import Feature

#: events kept per record; past it the oldest are dropped and windows undercount
MAX_EVENTS = 4096


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _times(column: pd.Series) -> np.ndarray:
    """Microseconds (int64), NaT as the int64 minimum."""
    if not pd.api.types.is_datetime64_dtype(column):
        column = pd.to_datetime(column)
    return column.to_numpy(dtype="datetime64[us]").astype(np.int64)


def event_arrays(sp: Spec, rows: pd.DataFrame) -> Arrays:
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


def grouped_arrays(sp: Spec, rows: pd.DataFrame) -> dict[str, Arrays]:
    """The arrays of the rows of each entity (rows without a key or a time left out)."""
    if sp.key is None:
        keys = np.full(len(rows), "", dtype=object)
    else:
        keys = np.array([None if pd.isna(k) else str(k) for k in rows[sp.key].tolist()],
                        dtype=object)
    ok = keys != None  # noqa: E711 - element-wise
    rows, keys = rows[ok], keys[ok]
    if len(rows) == 1:
        return {str(keys[0]): event_arrays(sp, rows)}
    times, avail, vals = event_arrays(sp, rows)
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
    rec = merge(None, sp, *event_arrays(sp, events), at=micros(at))
    times, avail, cols = rec.times.tolist(), rec.avail.tolist(), rec.values.tolist()
    return [value(sp.compile(f), times, avail, cols, micros(at)) for f in feats]
