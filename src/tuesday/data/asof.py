"""Exact as-of joins over Arrow and numpy arrays: the point-in-time lookup, fast.

For each left row (an entity key and a time, e.g. a label row and its forecast origin)
the as-of match is the right row with the same key and the greatest right time at or
before the left time. It is how a training set reads "the latest value of the entity
known at the origin" without looking into the future.

``asof_indices`` returns the matched right row of every left row (``-1`` for none);
``asof_join`` gathers the right columns for every left row. Both are exact (no float
arithmetic on times, no sampling), deterministic and keep every left row in its order:

* A right row matches only if its key equals the left key and its time is ``<=`` the
  left time. Null keys and null times never match (as in SQL).
* Among right rows of one key with the same greatest time, the match is the LAST of them
  in right order (row position in the right input), as in ``pandas.merge_asof``. DuckDB's
  ``ASOF JOIN`` leaves that choice unspecified.
* Keys may be strings, integers or anything Arrow can hash; keys of different kinds (text
  on one side, numbers on the other) are compared as text. Times may be ``datetime64`` /
  Arrow timestamps of any unit (converted to the finer one), Arrow dates, or integers.
  Timezone-aware times compare as instants; aware and naive times cannot be mixed.

How it is fast: keys become dense integer codes; code and time combine into one sortable
int64, so one integer sort of the right side (a stable radix sort by code alone when the
right side is already in time order, as append-only tables are) and one binary search
(``np.searchsorted``) per left row, on left rows sorted first so that the searches walk
memory in order, replace the join. No Python loop touches rows. Threads only split work
whose result does not depend on the split (independent sorts of disjoint key ranges,
gathers of separate columns), so the result is the same for any ``threads``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["asof_indices", "asof_join", "key_codes"]

_NULL = np.iinfo(np.int64).min
_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_PARALLEL_SORT_MIN = 1 << 20  # below this many right rows one sort beats splitting
_DENSE_CODES = 1 << 16  # integer keys spanning at most this many values are codes as is

T = TypeVar("T")
Frame = TypeVar("Frame", pa.Table, pd.DataFrame)


def asof_indices(
    left_keys: Any,
    left_times: Any,
    right_keys: Any,
    right_times: Any,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """For each left row, the position of its as-of match among the right rows.

    Args:
        left_keys: Entity keys of the left rows (numpy, pandas or Arrow array, or a list).
            ``None`` for no key: every row is one series.
        left_times: Times of the left rows (``datetime64``, Arrow timestamp or date, int).
        right_keys: Entity keys of the right rows, or ``None`` (with ``left_keys=None``).
        right_times: Times of the right rows, same kind as ``left_times``.
        threads: Worker threads (default: the CPU count, at most 8). The result does not
            depend on it.

    Returns:
        An int64 array as long as the left side: the position (0-based, in the right
        input's order) of the right row with the same key and the greatest time at or
        before the left time, the last such row in right order on ties; ``-1`` when no
        right row qualifies (unknown or null key, null time, or every right time of the
        key after the left time).

    Raises:
        ValueError: If the key and time arrays of one side differ in length, or only one
            side has keys.
        TypeError: If times are not dates, timestamps or integers, or mix timezone-aware
            and naive values.

    Example:
        >>> t = np.array(["2024-01-01", "2024-01-03", "2024-01-02"], dtype="datetime64[D]")
        >>> asof_indices(["a", "a", "b"], t, ["a", "a", "b"],
        ...              np.array(["2024-01-02", "2024-01-01", "2024-01-03"], "datetime64[D]"))
        array([ 1,  0, -1])
    """
    if (left_keys is None) != (right_keys is None):
        raise ValueError(
            "asof_indices needs keys on both sides or on neither: got "
            f"left_keys={'None' if left_keys is None else 'keys'} and "
            f"right_keys={'None' if right_keys is None else 'keys'}. "
            "Pass None for both to match on time alone.")
    lt, rt = _times(left_times, right_times)
    lk, rk, ncodes = _codes(left_keys, right_keys, lt, rt)
    n_threads = _threads(threads)
    if n_threads > 1 and len(rt) >= _PARALLEL_SORT_MIN:
        with ThreadPoolExecutor(n_threads) as pool:
            return _match(lk, lt, rk, rt, ncodes, pool, n_threads)
    return _match(lk, lt, rk, rt, ncodes, None, 1)


def asof_join(
    left: Frame,
    right: pa.Table | pd.DataFrame,
    on_key: str | tuple[str, str] | None,
    left_time: str,
    right_time: str,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    *,
    threads: int | None = None,
) -> Frame:
    """Add to every left row the right columns of its as-of match (see ``asof_indices``).

    Every left row is kept, in its order (a pandas index is kept as is); rows with no
    match get nulls (NaN / NaT / None in pandas; integer columns become float there, as
    with ``pandas.merge_asof``). Values are copied exactly, never interpolated.

    Args:
        left: The rows to complete (``pa.Table`` or ``pd.DataFrame``); the result is of
            the same type.
        right: The rows to look up (``pa.Table`` or ``pd.DataFrame``), in any order.
        on_key: The key column, the same name on both sides, or ``(left_name,
            right_name)``, or ``None`` to match on time alone.
        left_time: The time column of ``left`` (e.g. the forecast origin).
        right_time: The time column of ``right`` from which a row counts as known (its
            event time, or its ``available_at`` time).
        columns: The right columns to add: names, or a mapping ``{right_name:
            output_name}``. Default: every right column but the key and the time.
        threads: Worker threads (default: the CPU count, at most 8); the result does not
            depend on it.

    Returns:
        ``left`` with the added columns.

    Raises:
        KeyError: If a named column is missing.
        ValueError: If an added column's name is already a left column.

    Example:
        >>> days = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
        >>> left = pd.DataFrame({"id": ["a", "a", "b"], "origin": days[[0, 2, 2]]})
        >>> right = pd.DataFrame({"id": ["a", "a", "b"], "x": [1.0, 2.0, 3.0],
        ...                       "t": days[[1, 0, 3]]})
        >>> asof_join(left, right, "id", "origin", "t", ["x"])["x"].tolist()
        [2.0, 1.0, nan]
    """
    lkey, rkey = (on_key, on_key) if isinstance(on_key, str) or on_key is None else on_key
    names = _output_names(left, right, lkey, rkey, left_time, right_time, columns)
    idx = asof_indices(
        _column(left, lkey) if lkey is not None else None, _column(left, left_time),
        _column(right, rkey) if rkey is not None else None, _column(right, right_time),
        threads=threads)
    missing = idx < 0
    safe = np.where(missing, 0, idx) if missing.any() else idx
    src = {c: _arrow(_column(right, c)) for c in names}
    n_threads = _threads(threads)

    def gather(c: str) -> pa.Array | pa.ChunkedArray:
        return _take(src[c], safe, missing)

    taken = _map(gather, list(names), n_threads if len(idx) >= 100_000 else 1)
    return _with_columns(left, [names[c] for c in names], taken)


def _output_names(left: pa.Table | pd.DataFrame, right: pa.Table | pd.DataFrame,
                  lkey: str | None, rkey: str | None, left_time: str, right_time: str,
                  columns: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """The right columns to add, ``{right_name: output_name}``, after checking that every
    named column exists and that no output name is already a left column."""
    if isinstance(columns, Mapping):
        names = dict(columns)
    else:
        skip = {rkey, right_time}
        cols = list(columns) if columns is not None else [
            c for c in _column_names(right) if c not in skip]
        names = {c: c for c in cols}
    _check_columns(left, "left", [c for c in (lkey, left_time) if c is not None])
    _check_columns(right, "right", [c for c in (rkey, right_time) if c is not None]
                   + list(names))
    clash = sorted(set(names.values()) & set(_column_names(left)))
    if clash:
        raise ValueError(
            f"asof_join would add columns {clash} that the left side already has. Pass "
            "columns as a mapping {right_name: new_name} to rename them.")
    return names


def _with_columns(left: Frame, names: list[str],
                  taken: list[pa.Array | pa.ChunkedArray]) -> Frame:
    """``left`` with the gathered columns added under ``names``, of ``left``'s type."""
    if isinstance(left, pa.Table):
        out = left
        for name, arr in zip(names, taken, strict=True):
            out = out.append_column(name, arr)
        return out
    added = pa.table(dict(zip(names, taken, strict=True))).to_pandas()
    result = left.copy(deep=False)
    for name in added.columns:
        result[name] = added[name].array  # positional: the left index may repeat
    return result


# ------------------------------------------------------------------------ matching


def _codes(left_keys: Any, right_keys: Any, lt: np.ndarray, rt: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """Both sides' key codes (all 0 without keys) and how many codes, after checking
    one key per time on each side."""
    if left_keys is None:
        lk = np.zeros(len(lt), dtype=np.int64)
        rk = np.zeros(len(rt), dtype=np.int64)
        ncodes = 1
    else:
        lk, rk, ncodes = key_codes(left_keys, right_keys)
    for side, k, t in (("left", lk, lt), ("right", rk, rt)):
        if len(k) != len(t):
            raise ValueError(
                f"The {side} keys and times must have one value per row: got {len(k)} "
                f"keys and {len(t)} times.")
    return lk, rk, ncodes


def _match(lk: np.ndarray, lt: np.ndarray, rk: np.ndarray, rt: np.ndarray, ncodes: int,
           pool: Executor | None, n_threads: int) -> np.ndarray:
    result = np.full(len(lt), -1, dtype=np.int64)
    rvalid = (rk >= 0) & (rt != _NULL)
    lvalid = (lk >= 0) & (lt != _NULL)
    if not rvalid.any() or not lvalid.any():
        return result
    rpos = None if rvalid.all() else np.flatnonzero(rvalid)
    if rpos is not None:
        rk, rt = rk[rpos], rt[rpos]
    lpos = None if lvalid.all() else np.flatnonzero(lvalid)
    if lpos is not None:
        lk, lt = lk[lpos], lt[lpos]
    tmin, tmax = int(rt.min()), int(rt.max())
    stride = tmax - tmin + 2  # right offsets 1..span+1, left offsets 0..span+1
    if ncodes * stride < 2**62:
        rcomb = np.multiply(rk, stride)
        rcomb += rt
        rcomb -= tmin - 1
        lcomb = np.clip(lt, tmin - 1, tmax)
        lcomb -= tmin - 1
        lcomb += lk * stride
    else:
        # times too spread for one int64 with the key: use their ranks among right times
        uniq = np.unique(rt)
        stride = len(uniq) + 1
        rcomb = rk * stride + (np.searchsorted(uniq, rt) + 1)
        lcomb = lk * stride + np.searchsorted(uniq, lt, side="right")
    # sorting the left rows makes the binary searches walk memory in order (>10x faster)
    lorder_f = pool.submit(_near_order, lcomb) if pool is not None else None
    rorder = _sort_right(rcomb, rk, rt, ncodes, pool, n_threads)
    rsorted = rcomb if rorder is None else np.take(rcomb, rorder)
    lorder = lorder_f.result() if lorder_f is not None else _near_order(lcomb)
    lsorted = np.take(lcomb, lorder)
    pos = np.searchsorted(rsorted, lsorted, side="right") - 1
    # the last right row at or before the left (code, time): a match if of the same code
    hit = pos >= 0
    hit[hit] = rsorted[pos[hit]] > lk[lorder[hit]] * stride
    found = pos[hit] if rorder is None else rorder[pos[hit]]
    if rpos is not None:
        found = rpos[found]
    target = lorder[hit] if lpos is None else lpos[lorder[hit]]
    result[target] = found
    return result


def _sort_right(comb: np.ndarray, codes: np.ndarray, times: np.ndarray, ncodes: int,
                pool: Executor | None, n_threads: int) -> np.ndarray | None:
    """A stable sort order of the right rows by (code, time); None if already sorted."""
    if len(comb) < 2 or bool((comb[1:] >= comb[:-1]).all()):
        return None
    if bool((times[1:] >= times[:-1]).all()):
        # in time order already (an append-only table): a stable sort by code suffices,
        # and numpy sorts 16-bit integers stably by radix in linear time
        dtype = np.uint16 if ncodes <= 1 << 16 else np.int64
        return np.argsort(codes.astype(dtype, copy=False), kind="stable")
    if pool is None or n_threads < 2:
        return _stable_order(comb)
    # split by code into disjoint ranges of about equal size, sort them side by side and
    # concatenate: codes are the high part of comb, so the result is the same total order
    counts = np.bincount(codes, minlength=ncodes)
    cum = np.cumsum(counts)
    bounds = np.searchsorted(cum, np.arange(1, n_threads) * (len(comb) / n_threads))
    lut = np.zeros(ncodes, dtype=np.uint8)
    for b in bounds:
        lut[b + 1:] += 1
    part = lut[codes]
    groups = np.argsort(part, kind="stable")  # radix sort; rows keep their order per part
    sizes = np.bincount(part, minlength=n_threads)
    edges = np.concatenate(([0], np.cumsum(sizes)))
    chunks = [groups[edges[i]:edges[i + 1]] for i in range(n_threads)]

    def sort_part(rows: np.ndarray) -> np.ndarray:
        return rows[_stable_order(comb[rows])]

    return np.concatenate(list(pool.map(sort_part, chunks)))


def _stable_order(comb: np.ndarray) -> np.ndarray:
    """``np.argsort(comb, kind="stable")`` for non-negative int64, about twice as fast.

    Sorting values is much faster than sorting indices (SIMD sorts), so the row number is
    packed into the low bits of each value and the packed values sorted. When the values
    need more bits than are left, they are cut to their high bits first, and the few runs
    of rows whose cut values collide are then put in exact order among themselves.
    """
    n = len(comb)
    ibits = max(1, (n - 1).bit_length())
    shift = max(0, int(comb.max()).bit_length() - (63 - ibits))
    packed = np.right_shift(comb, shift)
    packed <<= ibits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    order = packed & ((1 << ibits) - 1)
    if shift == 0:
        return order
    packed >>= ibits
    same = packed[1:] == packed[:-1]
    if not same.any():
        return order
    member = np.zeros(n, dtype=bool)
    member[:-1] = same
    member[1:] |= same
    first = member.copy()
    first[1:] &= ~same
    pos = np.flatnonzero(member)
    run = np.cumsum(first)[pos]
    rows = order[pos]
    order[pos] = rows[np.lexsort((rows, comb[rows], run))]
    return order


def _near_order(comb: np.ndarray) -> np.ndarray:
    """An order of non-negative int64 values that is sorted up to their high bits.

    Enough to make binary searches of the values walk memory in order, which is all the
    left side's order is for: the search results do not depend on it.
    """
    n = len(comb)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ibits = max(1, (n - 1).bit_length())
    shift = max(0, int(comb.max()).bit_length() - (63 - ibits))
    packed = np.right_shift(comb, shift)
    packed <<= ibits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << ibits) - 1
    return packed


def _take(arr: pa.Array | pa.ChunkedArray, safe: np.ndarray,
          missing: np.ndarray) -> pa.Array | pa.ChunkedArray:
    """Rows ``safe`` of ``arr``, null where ``missing`` (or where the source is null)."""
    t = arr.type
    width = t.bit_width if pa.types.is_primitive(t) and not pa.types.is_boolean(t) else 0
    if width not in (8, 16, 32, 64) or len(arr) == 0:
        return pc.take(arr, pa.array(safe, mask=missing) if missing.any() else safe)
    # fixed-width values: one numpy gather of the value bytes and one of the validity bits,
    # much faster than Arrow's general take
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    dtype = np.dtype(f"u{width // 8}")
    values = np.concatenate([
        np.frombuffer(ch.buffers()[1], dtype, count=ch.offset + len(ch))[ch.offset:]
        for ch in chunks]) if len(chunks) != 1 else np.frombuffer(
        chunks[0].buffers()[1], dtype, count=chunks[0].offset + len(chunks[0]))[chunks[0].offset:]
    out = np.take(values, safe)
    valid = ~missing
    if arr.null_count:
        bits = np.concatenate([_valid_bits(ch) for ch in chunks]) if len(chunks) != 1 else (
            _valid_bits(chunks[0]))
        valid &= np.take(bits, safe)
    nulls = len(valid) - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    return pa.Array.from_buffers(t, len(out), [bitmap, pa.py_buffer(out)], null_count=nulls)


def _valid_bits(ch: pa.Array) -> np.ndarray:
    if ch.null_count == 0:
        return np.ones(len(ch), dtype=bool)
    raw = np.frombuffer(ch.buffers()[0], np.uint8)
    return np.unpackbits(raw, bitorder="little", count=ch.offset + len(ch))[ch.offset:].view(bool)


# ----------------------------------------------------------------------- keys, times


def key_codes(left: Any, right: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense int64 codes of both sides' keys (-1 for null or, on the left, unknown)."""
    la, ra = _arrow(left), _arrow(right)
    if pa.types.is_dictionary(la.type):
        la = la.cast(la.type.value_type)
    if pa.types.is_dictionary(ra.type):
        ra = ra.cast(ra.type.value_type)
    if pa.types.is_integer(la.type) and pa.types.is_integer(ra.type):
        lv, rv = _ints(la), _ints(ra)
        rvalid = rv != _NULL
        if not rvalid.any():
            return np.full(len(lv), -1, np.int64), np.full(len(rv), -1, np.int64), 1
        lo, hi = int(rv[rvalid].min()), int(rv[rvalid].max())
        if hi - lo < max(_DENSE_CODES, 2 * len(rv)):
            rcodes = np.where(rvalid, rv - lo, -1)
            lin = (lv >= lo) & (lv <= hi)  # also false for null (INT64_MIN)
            lcodes = np.where(lin, lv - lo, -1)
            return lcodes, rcodes, hi - lo + 1
        la, ra = la.cast(pa.int64()), ra.cast(pa.int64())
    elif la.type != ra.type:
        la, ra = _common_key_type(la, ra)
    enc = pc.dictionary_encode(ra)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.unify_dictionaries()
        dictionary = enc.chunk(0).dictionary if enc.num_chunks else pa.array([], ra.type)
        indices = pa.chunked_array([c.indices for c in enc.chunks], pa.int32())
    else:
        dictionary, indices = enc.dictionary, enc.indices
    rcodes = _fill(indices, -1)
    lcodes = _fill(pc.index_in(la, value_set=dictionary), -1)
    return lcodes, rcodes, max(len(dictionary), 1)


def _common_key_type(la: Any, ra: Any) -> tuple[Any, Any]:
    def texty(t: pa.DataType) -> bool:
        return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                    or pa.types.is_string_view(t))

    if texty(la.type) or texty(ra.type):
        return la.cast(pa.large_string()), ra.cast(pa.large_string())
    try:
        common = pa.unify_schemas([pa.schema([("k", la.type)]), pa.schema([("k", ra.type)])],
                                  promote_options="permissive").field("k").type
        return la.cast(common), ra.cast(common)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return la.cast(pa.large_string()), ra.cast(pa.large_string())


def _times(left: Any, right: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' times as int64 in one unit, nulls as INT64_MIN."""
    (lv, lunit, ltz), (rv, runit, rtz) = _time_values(left, "left"), _time_values(right, "right")
    if (lunit is None) != (runit is None):
        raise TypeError(
            "Left and right times must both be dates/timestamps or both be integers: got "
            f"{'integers' if lunit is None else 'timestamps'} on the left and "
            f"{'integers' if runit is None else 'timestamps'} on the right.")
    if ltz != rtz:
        raise TypeError(
            "Left and right times must both be timezone-aware or both naive: got "
            f"{'aware' if ltz else 'naive'} on the left and "
            f"{'aware' if rtz else 'naive'} on the right. Convert one side, e.g. with "
            "Series.dt.tz_localize('UTC').")
    if lunit is not None and runit is not None and lunit != runit:
        fine = max(lunit, runit, key=lambda u: _UNITS[u])
        lv = _rescale(lv, _UNITS[fine] // _UNITS[lunit])
        rv = _rescale(rv, _UNITS[fine] // _UNITS[runit])
    return lv, rv


def _rescale(v: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return v
    return np.where(v == _NULL, _NULL, v * factor)


def _time_values(x: Any, side: str) -> tuple[np.ndarray, str | None, bool]:
    if not isinstance(x, pa.Array | pa.ChunkedArray):
        if isinstance(x, pd.Series | pd.Index):
            dtype = x.dtype
            if isinstance(dtype, pd.DatetimeTZDtype):
                naive = pd.Series(x).dt.tz_convert("UTC").dt.tz_localize(None)
                v, unit, _ = _time_values(naive.to_numpy(), side)
                return v, unit, True
            if not isinstance(dtype, pd.ArrowDtype):
                x = x.to_numpy()
        if isinstance(x, np.ndarray) and x.dtype.kind == "M":
            unit = np.datetime_data(x.dtype)[0]
            if unit in _UNITS:
                return np.ascontiguousarray(x).view(np.int64), unit, False
            return x.astype("datetime64[s]").view(np.int64), "s", False  # days, weeks...
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            return x.astype(np.int64, copy=False), None, False
    a = _arrow(x)
    t = a.type
    if pa.types.is_timestamp(t):
        return _ints(a.cast(pa.int64())), t.unit, t.tz is not None
    if pa.types.is_date(t):
        return _ints(a.cast(pa.timestamp("s")).cast(pa.int64())), "s", False
    if pa.types.is_integer(t):
        return _ints(a), None, False
    raise TypeError(
        f"The {side} times must be dates, timestamps (datetime64) or integers: got values "
        f"of type {t}. Convert them, e.g. with pandas.to_datetime.")


# ----------------------------------------------------------------------------- misc


def _arrow(x: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(x, pa.Array | pa.ChunkedArray):
        return x
    if isinstance(x, pd.Series | pd.Index):
        return pa.array(x, from_pandas=True)
    return pa.array(np.asarray(x) if not isinstance(x, list) else x, from_pandas=True)


def _ints(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """int64 numpy values of an Arrow integer array, nulls as INT64_MIN."""
    if a.type != pa.int64():
        a = a.cast(pa.int64())
    if a.null_count:
        a = pc.fill_null(a, _NULL)
    return np.asarray(a.to_numpy(), dtype=np.int64)


def _fill(a: pa.Array | pa.ChunkedArray, value: int) -> np.ndarray:
    if a.null_count:
        a = pc.fill_null(a, value)
    return np.asarray(a.to_numpy(), dtype=np.int64)


def _threads(threads: int | None) -> int:
    if threads is None:
        return max(1, min(8, os.cpu_count() or 1))
    if threads < 1:
        raise ValueError(f"threads must be a positive integer: got {threads}.")
    return threads


def _map(fn: Callable[[str], T], items: list[str], n_threads: int) -> list[T]:
    if n_threads < 2 or len(items) < 2:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(n_threads, len(items))) as pool:
        return list(pool.map(fn, items))


def _column_names(frame: pa.Table | pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.column_names] if isinstance(frame, pa.Table) else [
        str(c) for c in frame.columns]


def _column(frame: pa.Table | pd.DataFrame, name: str) -> Any:
    return frame.column(name) if isinstance(frame, pa.Table) else frame[name]


def _check_columns(frame: pa.Table | pd.DataFrame, side: str, names: list[str]) -> None:
    have = set(_column_names(frame))
    missing = [c for c in names if c not in have]
    if missing:
        raise KeyError(
            f"asof_join: the {side} side has no column(s) {missing}; it has "
            f"{sorted(have)}.")
