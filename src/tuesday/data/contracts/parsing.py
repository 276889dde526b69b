"""The type check: every value read as its column's declared type (null where missing or
unreadable), with the same rules whether it arrives as text (CSV) or typed (Parquet).

Columnar: Arrow casts and numpy over the buffers; only the few values no vectorised
parser reads are parsed one by one in Python, with the same rules."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.arrays import arrow_mask, fixed_values, from_numpy, np_mask, valid_mask
from tuesday.data.contracts.raw import RawColumn
from tuesday.project import Column

ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_(),
               "date": pa.timestamp("us"), "timestamp": pa.timestamp("us")}
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}
_TRUE_FAST = pa.array(sorted({v for t in _TRUE for v in (t, t.upper(), t.capitalize())}))
_FALSE_FAST = pa.array(sorted({v for f in _FALSE for v in (f, f.upper(), f.capitalize())}))
_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUM_PY = re.compile(_NUM, re.ASCII)
_INT_PY = re.compile(r"[+-]?\d+", re.ASCII)
_INT64 = (-(2**63), 2**63 - 1)
_DAY_US = 86_400_000_000
#: years 1 to 9999, the times Python, JSON and most databases can hold
_TIME_RANGE = (-62_135_596_800_000_000, 253_402_300_799_999_999)


def type_message(col: Column) -> str:
    """The message of the type check of ``col``."""
    message = (f"Expected {col.dtype} values in column {col.name!r}; these could not be "
               f"read as {col.dtype}.")
    if col.dtype == "int":
        message += (" A number with a fractional part is not rounded or widened: declare "
                    "the column float to accept such values.")
    elif col.dtype == "date":
        message += (" Expected a date in ISO 8601, e.g. 2016-08-09 (YYYY-MM-DD); other "
                    "forms such as 08/20/2016 are not guessed.")
    elif col.dtype == "timestamp":
        message += (" Expected a timestamp in ISO 8601, e.g. 2016-08-09T14:30:00 (a zone such "
                    "as +02:00 or Z is converted to UTC); other forms such as 08/20/2016 "
                    "2:30 PM are not guessed.")
    return message


def parse_column(raw: RawColumn, col: Column) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Typed values (null where missing or unreadable), the mask of values present but
    not of the type, and the mask of missing values (blank text counts as missing)."""
    if col.dtype == "str":
        text = _text(raw)
        missing = _missing_text(text)
        out = text if text.type == pa.string() else pc.cast(text, pa.string())
        if (missing & valid_mask(out)).any():  # blank text becomes null
            out = pc.if_else(arrow_mask(missing), pa.scalar(None, pa.string()), out)
        return out, np.zeros(len(out), bool), missing
    if col.dtype in ("float", "int"):
        return _parse_number(raw, as_int=col.dtype == "int")
    if col.dtype == "bool":
        return _parse_bool(raw)
    arr, bad, missing = _parse_time(raw)
    values, valid = fixed_values(arr, np.int64)
    wrong = np.zeros(len(values), bool)
    if len(values) and (values.min() < _TIME_RANGE[0] or values.max() > _TIME_RANGE[1]):
        wrong = valid & ((values < _TIME_RANGE[0]) | (values > _TIME_RANGE[1]))
    if col.dtype == "date":
        wrong |= valid & (values % _DAY_US != 0)
    if wrong.any():
        bad = bad | wrong
        arr = from_numpy(values, valid & ~wrong, pa.timestamp("us"))
    return arr, bad, missing


def _text(raw: RawColumn, *, numbers: bool = False) -> pa.Array:
    """The column as Arrow text: strings as they are, other values written as text."""
    if raw.arrow is not None and (pa.types.is_string(raw.arrow.type)
                                  or pa.types.is_large_string(raw.arrow.type)):
        return raw.arrow
    values = raw.arrow.to_pylist() if raw.arrow is not None else raw.objects
    assert values is not None
    return pa.array([_as_text(v, numbers=numbers) for v in values], type=pa.string())


def _as_text(v: Any, *, numbers: bool) -> str | None:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else repr(float(v)) if numbers else str(float(v))
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, datetime | pd.Timestamp):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def _bools_in(raw: RawColumn) -> np.ndarray:
    """Positions holding True/False in a column of Python objects (not numbers here)."""
    n = len(raw.objects) if raw.objects is not None else len(raw.arrow or [])
    if raw.objects is None:
        return np.zeros(n, bool)
    return np.fromiter((isinstance(v, bool | np.bool_) for v in raw.objects), bool, n)


def _missing_text(s: pa.Array, *, spaces: bool = True) -> np.ndarray:
    """Null or blank text. With ``spaces=False`` only empty text counts here: a parser
    finds text of spaces among the few values it cannot read, without a pass over all."""
    missing = ~valid_mask(s)
    n = len(s)
    if not n or s.buffers()[2] is None:
        return np.ones(n, bool)
    offsets = np.frombuffer(s.buffers()[1], np.int64 if pa.types.is_large_string(s.type)
                            else np.int32)[s.offset:s.offset + n + 1]
    lengths = np.diff(offsets)
    blank = lengths == 0
    data = np.frombuffer(s.buffers()[2], np.uint8)
    if spaces and len(data):  # a blank text starts with a space (or a byte >= 0x80)
        first = data[np.minimum(offsets[:-1], len(data) - 1)]
        maybe = ~blank & ~missing & ((first <= 32) | (first >= 128))
        if maybe.any():
            idx = np.flatnonzero(maybe)
            blank[idx] = np_mask(pc.utf8_is_space(s.take(pa.array(idx))))
    return missing | blank


def _present(s: pa.Array, present: np.ndarray) -> pa.Array:
    """``s`` with null where a value is not ``present`` (no copy if nothing changes)."""
    if not (~present & valid_mask(s)).any():
        return s
    return pc.if_else(arrow_mask(present), s, pa.scalar(None, s.type))


def _parse_number(raw: RawColumn, *, as_int: bool) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    target = pa.int64() if as_int else pa.float64()
    a = raw.arrow
    if a is None or pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        text = _text(raw, numbers=True)
        flagged = _bools_in(raw)
        missing = _missing_text(text, spaces=False) & ~flagged
        if as_int:
            ints, ok, blank = _int_text(text, ~missing & ~flagged)
            missing |= blank
            bad = ~missing & ~ok
            return from_numpy(ints, ok, target), bad, missing
        floats, blank = _float_text(text, ~missing & ~flagged)
        missing |= blank
        bad = ~missing & ~np.isfinite(floats)
        return from_numpy(floats, ~missing & ~bad, target), bad, missing
    n = len(a)
    if pa.types.is_null(a.type):
        return pa.nulls(n, target), np.zeros(n, bool), np.ones(n, bool)
    if pa.types.is_boolean(a.type) or not (pa.types.is_integer(a.type)
                                           or pa.types.is_floating(a.type)
                                           or pa.types.is_decimal(a.type)):
        missing = ~valid_mask(a)  # True/False and times are not numbers
        return pa.nulls(n, target), ~missing, missing
    if as_int and pa.types.is_integer(a.type):
        valid = valid_mask(a)
        if pa.types.is_unsigned_integer(a.type):
            big = valid & (fixed_values(pc.cast(a, pa.uint64()), np.uint64)[0] > _INT64[1])
            ints = pc.cast(a, pa.int64(), safe=False)
            return from_numpy(fixed_values(ints, np.int64)[0], valid & ~big, target), big, ~valid
        ints = a if a.type == pa.int64() else pc.cast(a, pa.int64())
        return ints, np.zeros(n, bool), ~valid
    if not as_int and a.type == pa.float64():  # as stored: NaN is missing, inf is not a number
        values, valid = fixed_values(a, np.float64)
        with np.errstate(invalid="ignore"):
            nan, inf = valid & np.isnan(values), valid & np.isinf(values)
        if not nan.any() and not inf.any():
            return a, inf, ~valid
        return from_numpy(values, valid & ~nan & ~inf, target), inf, ~valid | nan
    floats = pc.cast(a, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    missing = np.isnan(floats)
    if not as_int:
        bad = np.isinf(floats)
        return from_numpy(floats, ~missing & ~bad, target), bad, missing
    with np.errstate(invalid="ignore"):
        bad = ~missing & (~np.isfinite(floats) | (np.mod(floats, 1) != 0)
                          | (np.abs(floats) >= 2.0**53))
    ints = np.where(missing | bad, 0, floats).astype(np.int64)
    return from_numpy(ints, ~missing & ~bad, target), bad, missing


def _float_text(s: pa.Array, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floats from text (NaN where unreadable or absent; text of +-inf reads as inf), and
    the mask of text made of spaces only."""
    blank = np.zeros(len(s), bool)
    cand = _present(s, present)
    try:
        values = pc.cast(cand, pa.float64()).to_numpy(zero_copy_only=False)
        return (values if values.flags.writeable else values.copy()), blank
    except pa.ArrowInvalid:
        pass  # some text is not a plain number: read the plain ones at once, then the rest
    plain = np_mask(pc.match_substring_regex(cand, f"^{_NUM}$")) & present
    values = pc.cast(_present(cand, plain), pa.float64()).to_numpy(zero_copy_only=False).copy()
    rest = np.flatnonzero(present & ~plain)
    for i, text in zip(rest.tolist(), s.take(pa.array(rest)).to_pylist(), strict=True):
        values[i] = _py_float(text)
        blank[i] = not (text or "").strip()
    return values, blank


def _py_float(text: str | None) -> float:
    t = (text or "").strip()
    if not _NUM_PY.fullmatch(t):
        return math.nan
    try:
        return float(t)
    except (OverflowError, ValueError):
        return math.nan


def _int_text(s: pa.Array, present: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact int64 values from text, the mask of those read, and the mask of text made of
    spaces only. ``'2.0'`` and ``'1e3'`` are whole numbers; beyond 2**53 only digits are
    read exactly; beyond int64, nothing."""
    n = len(s)
    values = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    blank = np.zeros(n, bool)
    lengths = fixed_values(pc.binary_length(s), np.int32 if s.type == pa.string()
                         else np.int64)[0]
    digits = present & np_mask(pc.ascii_is_decimal(s)) & (lengths <= 18)
    for mask, pattern in ((digits, None), (present & ~digits, r"^-?\d{1,18}$")):
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        sub = s if len(idx) == n else s.take(pa.array(idx))
        if pattern is not None:
            hit = np_mask(pc.match_substring_regex(sub, pattern))
            idx, sub = idx[hit], sub.filter(arrow_mask(hit))
        if len(idx):
            values[idx] = fixed_values(pc.cast(sub, pa.int64()), np.int64)[0]
            ok[idx] = True
    rest = np.flatnonzero(present & ~ok)
    for i, text in zip(rest.tolist(), s.take(pa.array(rest)).to_pylist(), strict=True):
        v = _py_int(text)
        if v is not None:
            values[i], ok[i] = v, True
        blank[i] = not (text or "").strip()
    return values, ok, blank


def _py_int(text: str | None) -> int | None:
    t = (text or "").strip()
    if _INT_PY.fullmatch(t):
        v = int(t)
        return v if _INT64[0] <= v <= _INT64[1] else None
    if _NUM_PY.fullmatch(t):
        try:
            f = float(t)
        except (OverflowError, ValueError):
            return None
        if math.isfinite(f) and f == int(f) and abs(f) < 2.0**53:
            return int(f)
    return None


def _parse_bool(raw: RawColumn) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    a = raw.arrow
    if a is not None and pa.types.is_boolean(a.type):
        return a, np.zeros(len(a), bool), ~valid_mask(a)
    if a is not None and pa.types.is_null(a.type):
        return pa.nulls(len(a), pa.bool_()), np.zeros(len(a), bool), np.ones(len(a), bool)
    if a is not None and pa.types.is_floating(a.type):
        missing = np.isnan(pc.cast(a, pa.float64()).to_numpy(zero_copy_only=False))
        return pa.nulls(len(a), pa.bool_()), ~missing, missing  # 1.0 is not a bool here
    s = _text(raw)
    missing = _missing_text(s, spaces=False)
    true = np_mask(pc.is_in(s, value_set=_TRUE_FAST))
    false = np_mask(pc.is_in(s, value_set=_FALSE_FAST))
    rest = np.flatnonzero(~missing & ~true & ~false)
    for i, text in zip(rest.tolist(), s.take(pa.array(rest)).to_pylist(), strict=True):
        t = (text or "").strip().lower()
        true[i], false[i], missing[i] = t in _TRUE, t in _FALSE, not t
    ok = true | false
    return from_numpy(true, ok, pa.bool_()), ~missing & ~ok, missing


def _parse_time(raw: RawColumn) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Timestamps as naive UTC microseconds: aware times are converted, naive ones are
    taken as UTC; text is ISO 8601."""
    a = raw.arrow
    target = pa.timestamp("us")
    if a is not None and pa.types.is_null(a.type):
        return pa.nulls(len(a), target), np.zeros(len(a), bool), np.ones(len(a), bool)
    if a is not None and (pa.types.is_timestamp(a.type) or pa.types.is_date(a.type)):
        out = pc.cast(a, target, safe=False)  # aware -> the UTC instant, without zone
        return out, np.zeros(len(a), bool), ~valid_mask(out)
    s = _text(raw)
    missing = _missing_text(s, spaces=False)
    present = ~missing
    cand = _present(s, present)
    try:
        out = pc.cast(cand, target)
        return out, present & ~valid_mask(out), missing
    except pa.ArrowInvalid:
        pass  # some text is not plain ISO: read the fixed-width forms, then the rest
    values, ok = _iso_fixed(s, present)
    rest = np.flatnonzero(present & ~ok)
    if len(rest):
        texts = pd.Series(s.take(pa.array(rest)).to_pylist(), dtype=object)
        blank = texts.map(lambda t: not str(t).strip()).to_numpy(bool)
        missing[rest[blank]], present[rest[blank]] = True, False
        rest, texts = rest[~blank], texts[~blank]
        ts = pd.to_datetime(texts, errors="coerce", format="ISO8601", utc=True)
        got = ts.notna().to_numpy()
        us = ts.dt.tz_localize(None).astype("datetime64[us]").to_numpy().view(np.int64)
        values[rest[got]] = us[got]
        ok[rest[got]] = True
    return from_numpy(values, ok, target), present & ~ok, missing


_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _iso_fixed(s: pa.Array, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``YYYY-MM-DD`` and ``YYYY-MM-DD[T ]HH:MM:SS`` read straight from the bytes, with
    every field checked (no roll-over of 30 February); other forms are left unread."""
    n = len(s)
    values = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    if s.buffers()[2] is None:
        return values, ok
    wide = pa.types.is_large_string(s.type)
    offsets = np.frombuffer(s.buffers()[1], np.int64 if wide else np.int32)[
        s.offset:s.offset + n + 1]
    data = np.frombuffer(s.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    for width in (10, 19):
        idx = np.flatnonzero(present & (lengths == width))
        if not len(idx):
            continue
        starts = offsets[idx]

        def byte(pos: int, starts: np.ndarray = starts) -> np.ndarray:
            return data[starts + pos]

        def number(*positions: int, starts: np.ndarray = starts
                   ) -> tuple[np.ndarray, np.ndarray]:
            total = np.zeros(len(starts), np.int32)
            good = np.ones(len(starts), bool)
            for pos in positions:
                d = data[starts + pos] - np.uint8(48)  # wraps below '0': > 9 is no digit
                good &= d <= 9
                total = total * 10 + d
            return total, good

        year, g1 = number(0, 1, 2, 3)
        month, g2 = number(5, 6)
        day, g3 = number(8, 9)
        good = g1 & g2 & g3 & (byte(4) == 45) & (byte(7) == 45)
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        m = np.clip(month, 1, 12) - 1
        good &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) \
            & (day <= _MONTH_DAYS[m] + (leap & (m == 1)))
        seconds = np.zeros(len(idx), np.int64)
        if width == 19:
            hh, g4 = number(11, 12)
            mm, g5 = number(14, 15)
            ss, g6 = number(17, 18)
            sep = byte(10)
            good &= g4 & g5 & g6 & ((sep == 84) | (sep == 32)) & (byte(13) == 58) \
                & (byte(16) == 58) & (hh < 24) & (mm < 60) & (ss < 60)
            seconds = hh.astype(np.int64) * 3600 + mm * 60 + ss
        months = ((np.where(good, year, 1970) - 1970) * 12 + m).astype("datetime64[M]")
        days = months.astype("datetime64[D]").astype(np.int64) + day - 1
        values[idx] = days * _DAY_US + seconds * 1_000_000
        ok[idx] = good
    return values, ok
