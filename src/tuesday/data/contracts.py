"""Validate a batch against its contract: every problem at once, nothing lost.

``validate`` checks every row against every rule, then splits the batch: rows with no
problem are accepted (typed as the contract says), rows with any problem go to
quarantine with their original values and every reason. Always
``accepted + quarantined == received``.

Order of work: the schema policy (unexpected, renamed and missing columns), the type of
every value, the taxonomy mapping (old codes to new), the value checks (null, range,
allowed, format) on the mapped values, uniqueness of the key (within the batch and
against the table), then the batch checks (freshness, volume), which warn or, when
declared with ``on_fail="reject"``, quarantine the whole batch.

The work is columnar: Arrow arrays and numpy masks, no per-row Python except for the few
values no vectorised parser reads (they are parsed one by one, with the same rules).

Example:
    >>> import pandas as pd
    >>> from tuesday.project import Column, Contract
    >>> c = Contract((Column("id", "int", nullable=False), Column("x", "float", min=0)),
    ...              unique=("id",))
    >>> r = validate(pd.DataFrame({"id": ["1", "2", "2"], "x": ["0.5", "-1", "3"]}), c)
    >>> (r.report.received, r.report.accepted, r.report.quarantined)
    (3, 1, 2)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.project import Column, Contract, MinHistory, Taxonomy, duration, parse_time

MAX_EXAMPLES = 5
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
_PHASE = {"extra_column": 0, "missing_column": 0, "type": 1, "null": 1, "range": 1,
          "allowed": 1, "format": 1, "duplicate_key": 2, "existing_key": 2, "freshness": 3,
          "volume": 3}
_COLUMN_CHECKS = ("type", "null", "range", "allowed", "format")


# ------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Problem:
    """One kind of problem on one column, with how many rows and a few examples."""

    check: str
    column: str
    count: int
    message: str
    examples: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "column": self.column, "count": self.count,
                "message": self.message, "examples": list(self.examples)}


@dataclass(frozen=True)
class BatchCheck:
    """The outcome of one check on the batch as a whole.

    Attributes:
        check: ``freshness``, ``volume`` or ``min_history``.
        status: ``ok``; ``warn`` (failed, rows accepted anyway); ``reject`` (failed, every
            row quarantined); ``skipped`` (could not be checked, ``message`` says why).
        message: One sentence for people.
        details: The numbers behind it, as plain JSON.
    """

    check: str
    status: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "message": self.message,
                "details": dict(self.details)}


@dataclass(frozen=True)
class Mapped:
    """Accepted rows whose code a taxonomy replaced."""

    column: str
    old: Any
    new: Any
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "old": self.old, "new": self.new, "rows": self.rows}


@dataclass(frozen=True)
class Report:
    """What a validation found.

    ``problems`` are row problems (they quarantine rows); ``warnings`` are sentences about
    the batch that quarantined nothing; ``batch`` holds every declared batch check with
    its status; ``mapped`` counts the accepted rows a taxonomy re-coded.
    """

    source: str
    received: int
    accepted: int
    quarantined: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    batch: tuple[BatchCheck, ...] = ()
    mapped: tuple[Mapped, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows_mapped(self) -> int:
        return sum(m.rows for m in self.mapped)

    def to_dict(self) -> dict[str, Any]:
        out = {"source": self.source, "received": self.received, "accepted": self.accepted,
               "quarantined": self.quarantined,
               "problems": [p.to_dict() for p in self.problems],
               "warnings": list(self.warnings)}
        if self.batch:
            out["batch_checks"] = [b.to_dict() for b in self.batch]
        if self.mapped:
            out["mapped"] = {"rows": self.rows_mapped,
                             "codes": [m.to_dict() for m in self.mapped]}
        return out

    def summary(self) -> str:
        lines = [f"{self.source}: received {self.received}, accepted {self.accepted}, "
                 f"quarantined {self.quarantined}."]
        for p in self.problems:
            ex = ", ".join(f"row {e['row']}: {e['value']!r}" for e in p.examples)
            lines.append(f"  - {p.check} on {p.column!r}: {p.count} row(s). {p.message}"
                         + (f" Examples: {ex}." if ex else ""))
        if self.mapped:
            codes = ", ".join(f"{m.old}->{m.new}: {m.rows}" for m in self.mapped)
            lines.append(f"  = mapped {self.rows_mapped} accepted row(s) to current codes "
                         f"({codes}).")
        lines.extend(f"  ! {w}" for w in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True)
class Validation:
    """The split batch.

    Attributes:
        typed: Every row of the batch typed by the contract (null where a value was
            missing or unreadable), before the split; ``table`` is its accepted part.
        keep: One flag per row of ``typed``: True if the row is accepted.
        quarantined: ``row`` (row number in the file), ``reasons`` (``check:column``
            joined by ``"; "``), ``values`` (the original values as a JSON object).
        report: What was found.
    """

    typed: pa.Table
    keep: np.ndarray
    quarantined: pd.DataFrame
    report: Report

    @cached_property
    def reasons(self) -> dict[int, list[str]]:
        """Position in the input -> reasons, for each quarantined row (not malformed)."""
        positions = np.flatnonzero(~self.keep).tolist()
        texts = self.quarantined["reasons"].tolist()[:len(positions)]
        return {p: t.split("; ") for p, t in zip(positions, texts, strict=True)}

    @cached_property
    def table(self) -> pa.Table:
        """The accepted rows as Arrow, typed as the contract says."""
        if bool(self.keep.all()):
            return self.typed
        keep = _pa(self.keep)
        return pa.Table.from_arrays([c.filter(keep) for c in self.typed.columns],
                                    schema=self.typed.schema)

    @cached_property
    def accepted(self) -> pd.DataFrame:
        """The accepted rows as pandas: float64, Int64, string, boolean, datetime64[us]."""
        return to_pandas(self.table)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table typed by a contract as pandas, with nullable ints, bools and strings."""
    mapper = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
              pa.string(): pd.StringDtype()}
    return table.to_pandas(types_mapper=mapper.get)


# ---------------------------------------------------------------------- validation


def validate(
    frame: pd.DataFrame | pa.Table,
    contract: Contract,
    *,
    source: str = "batch",
    existing_keys: pd.DataFrame | pa.Table | None = None,
    first_row: int = 1,
    row_numbers: np.ndarray | None = None,
    malformed: tuple[tuple[int, str, str], ...] = (),
    time: str | None = None,
    taxonomy: Sequence[Taxonomy] = (),
    as_of: datetime | pd.Timestamp | None = None,
    recent_volumes: Sequence[int] | None = None,
) -> Validation:
    """Check ``frame`` against ``contract`` and split it into accepted and quarantined.

    Args:
        frame: Raw rows; strings (from CSV) or typed values (from Parquet), as pandas or
            Arrow.
        contract: The rules.
        source: Name used in messages.
        existing_keys: Unique-key values already in the table; a row repeating one is
            quarantined.
        first_row: Number of the first row in the file, for messages.
        row_numbers: The file's row number of each row (overrides ``first_row``).
        malformed: Rows of the file that could not be split into columns:
            (row number, raw text, reason); they are quarantined as they are.
        time: The source's event-time column (for taxonomy dates and freshness).
        taxonomy: Code mappings to apply, oldest ``effective`` first.
        as_of: When the batch is ingested; without it freshness is skipped.
        recent_volumes: Rows received by the last accepted ingests of the source; without
            them volume is skipped.

    Example:
        >>> from tuesday.project import Column, Contract
        >>> v = validate(pd.DataFrame({"code": ["AB-1", "x"]}),
        ...              Contract((Column("code", "str", format=r"[A-Z]{2}-\\d+"),)))
        >>> v.quarantined["reasons"].tolist()
        ['format:code']
    """
    n, raw = _raw_columns(frame)
    rows = np.asarray(row_numbers, dtype="int64") if row_numbers is not None \
        else np.arange(first_row, first_row + n, dtype="int64")
    st = _Checks(n, rows, contract.names)

    columns = _schema(raw, contract, st)
    typed: dict[str, pa.Array] = {}
    for col in contract.columns:
        name = columns.get(col.name)
        if name is None:
            typed[col.name] = pa.nulls(n, ARROW_TYPES[col.dtype])
            continue
        arr, bad, missing = _parse(raw[name], col)
        typed[col.name] = arr
        st.flag("type", col.name, bad, _type_message(col), raw[name].value)
        if not col.nullable:
            st.flag("null", col.name, missing, f"Column {col.name!r} must not be empty.",
                    raw[name].value)
    mapped = _apply_taxonomy(typed, taxonomy, time, contract)
    for col in contract.columns:
        if col.name in columns:
            _value_checks(st, col, typed[col.name], raw[columns[col.name]].value)
    _uniqueness(st, contract, typed, existing_keys)
    received = n + len(malformed)
    batch = (_freshness(st, contract, typed, time, as_of, raw, columns),
             _volume(st, contract, received, recent_volumes))

    any_bad = np.zeros(n, bool)
    for mask in st.bad.values():
        any_bad |= mask
    bad_idx = np.flatnonzero(any_bad)
    reasons = np.full(len(bad_idx), None, dtype=object)
    for key in sorted(st.bad, key=st.rank):
        hit = np.flatnonzero(st.bad[key][bad_idx])
        first = np.asarray([r is None for r in reasons[hit]], dtype=bool)
        reasons[hit[first]] = key
        later = hit[~first]
        if len(later):
            reasons[later] = reasons[later] + f"; {key}"
    quarantined = pd.DataFrame({
        "row": rows[bad_idx].astype("int64"),
        "reasons": reasons.tolist(),
        "values": _json_rows(list(raw.values()), bad_idx),
    })
    problems = [p for _, p in sorted(st.problems, key=lambda rp: rp[0])]
    if malformed:
        problems.append(Problem(
            "malformed_row", "*", len(malformed),
            "These rows could not be split into the header's columns (a stray or missing "
            "separator); they are quarantined as written.",
            tuple({"row": r, "value": text[:200]} for r, text, _ in malformed[:MAX_EXAMPLES])))
        quarantined = pd.concat([quarantined, pd.DataFrame({
            "row": np.array([m[0] for m in malformed], dtype="int64"),
            "reasons": [f"malformed_row: {m[2]}" for m in malformed],
            "values": [json.dumps({"_line": m[1]}) for m in malformed]})], ignore_index=True)
    keep = ~any_bad
    accepted = int(keep.sum())
    checks = tuple(b for b in batch if b is not None)
    warnings = st.warnings + [b.message for b in checks if b.status == "warn"]
    report = Report(source, received, accepted, len(quarantined), tuple(problems),
                    tuple(warnings), checks, _mapped_counts(mapped, keep))
    assert report.accepted + report.quarantined == report.received
    table = pa.Table.from_arrays([typed[c.name] for c in contract.columns],
                                 schema=pa.schema([pa.field(c.name, ARROW_TYPES[c.dtype])
                                                   for c in contract.columns]))
    return Validation(table, keep, quarantined, report)


class _Checks:
    """Problems and failing-row masks as they are found."""

    def __init__(self, n: int, rows: np.ndarray, names: tuple[str, ...]) -> None:
        self.n = n
        self.rows = rows
        self.position = {name: i for i, name in enumerate(names)}
        self.problems: list[tuple[tuple[int, ...], Problem]] = []
        self.bad: dict[str, np.ndarray] = {}
        self.ranks: dict[str, tuple[int, ...]] = {}
        self.warnings: list[str] = []

    def rank(self, key: str) -> tuple[int, ...]:
        return self.ranks[key]

    def flag(self, check: str, column: str, mask: np.ndarray, message: str,
             value: Callable[[int], Any] | None = None) -> None:
        count = int(np.count_nonzero(mask))
        if not count:
            return
        idx = _first(mask, min(count, MAX_EXAMPLES))
        examples = tuple({"row": int(self.rows[i]),
                          "value": value(int(i)) if value is not None else None}
                         for i in idx)
        seq = len(self.problems)
        phase = _PHASE.get(check, 3)
        rank = (phase, self.position.get(column, 0) if phase == 1 else seq,
                _COLUMN_CHECKS.index(check) if check in _COLUMN_CHECKS else 0, seq)
        self.problems.append((rank, Problem(check, column, count, message, examples)))
        key = f"{check}:{column}"
        if key in self.bad:
            self.bad[key] = self.bad[key] | mask
        else:
            self.bad[key] = mask
            self.ranks[key] = rank


def _type_message(col: Column) -> str:
    message = (f"Expected {col.dtype} values in column {col.name!r}; these could not be "
               f"read as {col.dtype}.")
    if col.dtype == "int":
        message += (" A number with a fractional part is not rounded or widened: declare "
                    "the column float to accept such values.")
    return message


# -------------------------------------------------------------------- raw columns


class _Raw:
    """One column as received: an Arrow array, or Python objects Arrow cannot type."""

    def __init__(self, name: str, arrow: pa.Array | None = None,
                 objects: pd.Series | None = None) -> None:
        self.name = name
        self.arrow = arrow
        self.objects = objects

    def value(self, i: int) -> Any:
        """The value at position ``i`` as a report shows it."""
        if self.arrow is not None:
            return _example(self.arrow[i].as_py())
        assert self.objects is not None
        return _example(self.objects.iloc[i])


def _raw_columns(frame: pd.DataFrame | pa.Table) -> tuple[int, dict[str, _Raw]]:
    out: dict[str, _Raw] = {}
    if isinstance(frame, pa.Table):
        for name, col in zip(frame.column_names, frame.columns, strict=True):
            arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            out[str(name)] = _Raw(str(name), arrow=_plain_arrow(arr))
        return frame.num_rows, out
    frame = frame.reset_index(drop=True)
    for i, name in enumerate(frame.columns):
        out[str(name)] = _raw_series(str(name), frame.iloc[:, i])
    return len(frame), out


def _plain_arrow(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _raw_series(name: str, s: pd.Series) -> _Raw:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    try:
        if s.dtype == object:  # text with blanks (None, NaN) reads as Arrow strings
            return _Raw(name, arrow=pa.array(s, type=pa.string(), from_pandas=True))
        arr = pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError,
            TypeError, OverflowError):
        return _Raw(name, objects=s.astype(object))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return _Raw(name, arrow=_plain_arrow(arr))


# ------------------------------------------------------------------------ schema


def _schema(raw: dict[str, _Raw], contract: Contract, st: _Checks) -> dict[str, str]:
    """Declared column -> column of the batch, after the rename/extra/missing policy."""
    declared = set(contract.names)
    rename = dict(contract.rename) if contract.extra_columns == "map" else {}
    columns = {name: name for name in raw if name in declared}
    everyone = np.ones(st.n, bool)
    for name, r in raw.items():
        if name in declared:
            continue
        target = rename.get(name)
        if target is not None and target not in raw:
            columns[target] = name
            st.warnings.append(f"Column {name!r} was renamed to {target!r} (declared "
                               "rename).")
        elif target is not None:
            st.flag("extra_column", name, everyone,
                    f"Column {name!r} is declared to be renamed to {target!r}, but the batch "
                    f"also has a column {target!r}; keep only one of them.", r.value)
        elif contract.extra_columns in ("warn", "drop"):
            st.warnings.append(f"Column {name!r} is not in the contract and was dropped.")
        else:
            st.flag("extra_column", name, everyone,
                    f"Column {name!r} is not in the contract (declared: "
                    f"{', '.join(contract.names)}); the contract rejects unexpected columns. "
                    "Remove it, declare it, set extra_columns='warn' to drop it with a "
                    "warning, or extra_columns='map' with rename={...} if it was renamed.",
                    r.value)
    for col in contract.columns:
        if col.name in columns:
            continue
        if col.nullable and contract.missing_columns == "fill":
            st.warnings.append(f"Optional column {col.name!r} is missing; filled with nulls.")
        elif col.nullable:
            st.flag("missing_column", col.name, everyone,
                    f"Optional column {col.name!r} ({col.dtype}) is missing from the file; "
                    "the contract's missing_columns='reject' refuses batches without it.")
        else:
            st.flag("missing_column", col.name, everyone,
                    f"Required column {col.name!r} ({col.dtype}) is missing from the file.")
    return columns


# ----------------------------------------------------------------------- parsing


def _parse(raw: _Raw, col: Column) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Typed values (null where missing or unreadable), the mask of values present but
    not of the type, and the mask of missing values (blank text counts as missing)."""
    if col.dtype == "str":
        text = _text(raw)
        missing = _missing_text(text)
        out = text if text.type == pa.string() else pc.cast(text, pa.string())
        if (missing & _valid(out)).any():  # blank text becomes null
            out = pc.if_else(_pa(missing), pa.scalar(None, pa.string()), out)
        return out, np.zeros(len(out), bool), missing
    if col.dtype in ("float", "int"):
        return _parse_number(raw, as_int=col.dtype == "int")
    if col.dtype == "bool":
        return _parse_bool(raw)
    arr, bad, missing = _parse_time(raw)
    values, valid = _np_values(arr, np.int64)
    wrong = np.zeros(len(values), bool)
    if len(values) and (values.min() < _TIME_RANGE[0] or values.max() > _TIME_RANGE[1]):
        wrong = valid & ((values < _TIME_RANGE[0]) | (values > _TIME_RANGE[1]))
    if col.dtype == "date":
        wrong |= valid & (values % _DAY_US != 0)
    if wrong.any():
        bad = bad | wrong
        arr = _arrow(values, valid & ~wrong, pa.timestamp("us"))
    return arr, bad, missing


def _text(raw: _Raw, *, numbers: bool = False) -> pa.Array:
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


def _bools_in(raw: _Raw) -> np.ndarray:
    """Positions holding True/False in a column of Python objects (not numbers here)."""
    n = len(raw.objects) if raw.objects is not None else len(raw.arrow or [])
    if raw.objects is None:
        return np.zeros(n, bool)
    return np.fromiter((isinstance(v, bool | np.bool_) for v in raw.objects), bool, n)


def _missing_text(s: pa.Array, *, spaces: bool = True) -> np.ndarray:
    """Null or blank text. With ``spaces=False`` only empty text counts here: a parser
    finds text of spaces among the few values it cannot read, without a pass over all."""
    missing = ~_valid(s)
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
            blank[idx] = _np(pc.utf8_is_space(s.take(pa.array(idx))))
    return missing | blank


def _present(s: pa.Array, present: np.ndarray) -> pa.Array:
    """``s`` with null where a value is not ``present`` (no copy if nothing changes)."""
    if not (~present & _valid(s)).any():
        return s
    return pc.if_else(_pa(present), s, pa.scalar(None, s.type))


def _parse_number(raw: _Raw, *, as_int: bool) -> tuple[pa.Array, np.ndarray, np.ndarray]:
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
            return _arrow(ints, ok, target), bad, missing
        floats, blank = _float_text(text, ~missing & ~flagged)
        missing |= blank
        bad = ~missing & ~np.isfinite(floats)
        return _arrow(floats, ~missing & ~bad, target), bad, missing
    n = len(a)
    if pa.types.is_null(a.type):
        return pa.nulls(n, target), np.zeros(n, bool), np.ones(n, bool)
    if pa.types.is_boolean(a.type) or not (pa.types.is_integer(a.type)
                                           or pa.types.is_floating(a.type)
                                           or pa.types.is_decimal(a.type)):
        missing = ~_valid(a)  # True/False and times are not numbers
        return pa.nulls(n, target), ~missing, missing
    if as_int and pa.types.is_integer(a.type):
        valid = _valid(a)
        if pa.types.is_unsigned_integer(a.type):
            big = valid & (_np_values(pc.cast(a, pa.uint64()), np.uint64)[0] > _INT64[1])
            ints = pc.cast(a, pa.int64(), safe=False)
            return _arrow(_np_values(ints, np.int64)[0], valid & ~big, target), big, ~valid
        ints = a if a.type == pa.int64() else pc.cast(a, pa.int64())
        return ints, np.zeros(n, bool), ~valid
    if not as_int and a.type == pa.float64():  # as stored: NaN is missing, inf is not a number
        values, valid = _np_values(a, np.float64)
        with np.errstate(invalid="ignore"):
            nan, inf = valid & np.isnan(values), valid & np.isinf(values)
        if not nan.any() and not inf.any():
            return a, inf, ~valid
        return _arrow(values, valid & ~nan & ~inf, target), inf, ~valid | nan
    floats = pc.cast(a, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    missing = np.isnan(floats)
    if not as_int:
        bad = np.isinf(floats)
        return _arrow(floats, ~missing & ~bad, target), bad, missing
    with np.errstate(invalid="ignore"):
        bad = ~missing & (~np.isfinite(floats) | (np.mod(floats, 1) != 0)
                          | (np.abs(floats) >= 2.0**53))
    ints = np.where(missing | bad, 0, floats).astype(np.int64)
    return _arrow(ints, ~missing & ~bad, target), bad, missing


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
    plain = _np(pc.match_substring_regex(cand, f"^{_NUM}$")) & present
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
    lengths = _np_values(pc.binary_length(s), np.int32 if s.type == pa.string()
                         else np.int64)[0]
    digits = present & _np(pc.ascii_is_decimal(s)) & (lengths <= 18)
    for mask, pattern in ((digits, None), (present & ~digits, r"^-?\d{1,18}$")):
        if not mask.any():
            continue
        idx = np.flatnonzero(mask)
        sub = s if len(idx) == n else s.take(pa.array(idx))
        if pattern is not None:
            hit = _np(pc.match_substring_regex(sub, pattern))
            idx, sub = idx[hit], sub.filter(_pa(hit))
        if len(idx):
            values[idx] = _np_values(pc.cast(sub, pa.int64()), np.int64)[0]
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


def _parse_bool(raw: _Raw) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    a = raw.arrow
    if a is not None and pa.types.is_boolean(a.type):
        return a, np.zeros(len(a), bool), ~_valid(a)
    if a is not None and pa.types.is_null(a.type):
        return pa.nulls(len(a), pa.bool_()), np.zeros(len(a), bool), np.ones(len(a), bool)
    if a is not None and pa.types.is_floating(a.type):
        missing = np.isnan(pc.cast(a, pa.float64()).to_numpy(zero_copy_only=False))
        return pa.nulls(len(a), pa.bool_()), ~missing, missing  # 1.0 is not a bool here
    s = _text(raw)
    missing = _missing_text(s, spaces=False)
    true = _np(pc.is_in(s, value_set=_TRUE_FAST))
    false = _np(pc.is_in(s, value_set=_FALSE_FAST))
    rest = np.flatnonzero(~missing & ~true & ~false)
    for i, text in zip(rest.tolist(), s.take(pa.array(rest)).to_pylist(), strict=True):
        t = (text or "").strip().lower()
        true[i], false[i], missing[i] = t in _TRUE, t in _FALSE, not t
    ok = true | false
    return _arrow(true, ok, pa.bool_()), ~missing & ~ok, missing


def _parse_time(raw: _Raw) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Timestamps as naive UTC microseconds: aware times are converted, naive ones are
    taken as UTC; text is ISO 8601."""
    a = raw.arrow
    target = pa.timestamp("us")
    if a is not None and pa.types.is_null(a.type):
        return pa.nulls(len(a), target), np.zeros(len(a), bool), np.ones(len(a), bool)
    if a is not None and (pa.types.is_timestamp(a.type) or pa.types.is_date(a.type)):
        out = pc.cast(a, target, safe=False)  # aware -> the UTC instant, without zone
        return out, np.zeros(len(a), bool), ~_valid(out)
    s = _text(raw)
    missing = _missing_text(s, spaces=False)
    present = ~missing
    cand = _present(s, present)
    try:
        out = pc.cast(cand, target)
        return out, present & ~_valid(out), missing
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
    return _arrow(values, ok, target), present & ~ok, missing


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


# ------------------------------------------------------------------ value checks


def _value_checks(st: _Checks, col: Column, arr: pa.Array,
                  value: Callable[[int], Any]) -> None:
    valid = _valid(arr)
    if (col.min is not None or col.max is not None) and col.dtype in ("float", "int"):
        values = _np_values(arr, np.float64 if col.dtype == "float" else np.int64)[0]
        with np.errstate(invalid="ignore"):
            if col.min is not None:
                st.flag("range", col.name, valid & (values < col.min),
                        f"Values of {col.name!r} must be >= {col.min}.", value)
            if col.max is not None:
                st.flag("range", col.name, valid & (values > col.max),
                        f"Values of {col.name!r} must be <= {col.max}.", value)
    if col.allowed is not None:
        st.flag("allowed", col.name, valid & ~_is_in(arr, tuple(col.allowed)),
                f"Values of {col.name!r} must be one of {list(col.allowed)!r}.", value)
    if col.format is not None and col.dtype == "str":
        st.flag("format", col.name, valid & ~_full_match(arr, col.format),
                f"Values of {col.name!r} must fully match the format {col.format!r}.", value)


def _is_in(arr: pa.Array, allowed: tuple[Any, ...]) -> np.ndarray:
    try:
        value_set = pa.array(list(allowed)).cast(arr.type)
        return _np(pc.is_in(arr, value_set=value_set))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass  # allowed values of another type: compare as Python values
    uniques = pc.unique(arr)
    inside = pa.array([v in allowed for v in uniques.to_pylist()], pa.bool_())
    return _np(pc.is_in(arr, value_set=uniques.filter(inside)))


def _full_match(arr: pa.Array, pattern: str) -> np.ndarray:
    try:
        return _np(pc.match_substring_regex(arr, f"^(?:{pattern})$"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # a pattern RE2 does not take (look-around, back-references): use Python's re
    rx = re.compile(pattern, re.ASCII)
    uniques = pc.unique(arr)
    inside = pa.array([v is not None and rx.fullmatch(v) is not None
                       for v in uniques.to_pylist()], pa.bool_())
    return _np(pc.is_in(arr, value_set=uniques.filter(inside)))


# -------------------------------------------------------------------- taxonomy


def _apply_taxonomy(typed: dict[str, pa.Array], taxonomy: Sequence[Taxonomy],
                    time: str | None, contract: Contract
                    ) -> list[tuple[str, list[Any], list[Any], np.ndarray, np.ndarray]]:
    """Re-code old codes in place; for each taxonomy: column, old codes, new codes, the
    index of the old code per row (-1 if not mapped) and the mapped-row mask."""
    out = []
    for t in taxonomy:
        arr = typed.get(t.column)
        col = contract.column(t.column)
        if arr is None or col is None:
            continue
        old = list(t.mapping)
        new = [t.mapping[k] for k in old]
        found = pc.index_in(arr, value_set=pa.array(old, type=arr.type))
        idx = np.where(_valid(found), _np_values(found, np.int32)[0], -1).astype(np.int64)
        hit = idx >= 0
        if t.effective is not None and time is not None and time in typed:
            cutoff = parse_time(t.effective, what="taxonomy effective").value // 1000
            times, valid = _np_values(typed[time], np.int64)
            hit &= valid & (times < cutoff)
        if hit.any():
            codes = pa.array(new, type=arr.type).take(pa.array(np.where(hit, idx, 0)))
            typed[t.column] = pc.if_else(_pa(hit), codes, arr)
        out.append((t.column, old, new, np.where(hit, idx, -1), hit))
    return out


def _mapped_counts(mapped: list[tuple[str, list[Any], list[Any], np.ndarray, np.ndarray]],
                   keep: np.ndarray) -> tuple[Mapped, ...]:
    out: list[Mapped] = []
    for column, old, new, idx, hit in mapped:
        counts = np.bincount(idx[hit & keep], minlength=len(old))
        out.extend(Mapped(column, _plain(old[i]), _plain(new[i]), int(c))
                   for i, c in enumerate(counts.tolist()) if c)
    return tuple(out)


# ------------------------------------------------------------------ uniqueness


def _uniqueness(st: _Checks, contract: Contract, typed: dict[str, pa.Array],
                existing_keys: pd.DataFrame | pa.Table | None) -> None:
    key = [k for k in contract.unique if k in typed]
    if not key or not st.n:
        return
    label = "+".join(key)
    complete = np.ones(st.n, bool)
    for k in key:  # a key with a missing part is a problem of its own, not a duplicate
        complete &= _valid(typed[k])

    def text(i: int) -> str:
        return "|".join(_key_part(typed[k][i].as_py(), contract.column(k)) for k in key)

    frame = to_pandas(pa.table({k: typed[k] for k in key}))
    dup = frame.duplicated(subset=key, keep=False).to_numpy() & complete
    st.flag("duplicate_key", label, dup,
            f"Key ({', '.join(key)}) must be unique; these rows repeat a key within the "
            "batch (all copies are quarantined so none is picked silently).", text)
    if existing_keys is None or not len(existing_keys):
        return
    existing = existing_keys if isinstance(existing_keys, pa.Table) else \
        pa.Table.from_pandas(existing_keys[key], preserve_index=False)
    if len(key) == 1:
        values = existing.column(key[0]).combine_chunks().cast(typed[key[0]].type)
        seen = _np(pc.is_in(typed[key[0]], value_set=values))
    else:
        theirs = to_pandas(pa.table({k: existing.column(k).combine_chunks().cast(typed[k].type)
                                     for k in key})).drop_duplicates()
        merged = frame.merge(theirs, on=key, how="left", indicator=True)
        seen = (merged["_merge"] == "both").to_numpy()
    st.flag("existing_key", label, seen & complete,
            f"Key ({', '.join(key)}) is already in the table; rows are append-only.", text)


def _key_part(v: Any, col: Column | None) -> str:
    if v is None:
        return "<null>"
    if isinstance(v, datetime):
        ts = pd.Timestamp(v)
        return ts.strftime("%Y-%m-%d") if col is not None and col.dtype == "date" else str(ts)
    return str(v)


# ----------------------------------------------------------------- batch checks


def _freshness(st: _Checks, contract: Contract, typed: dict[str, pa.Array],
               time: str | None, as_of: datetime | pd.Timestamp | None,
               raw: dict[str, _Raw], columns: dict[str, str]) -> BatchCheck | None:
    rule = contract.freshness
    if rule is None:
        return None
    name = rule.column or time
    if name is None or name not in typed:
        return BatchCheck("freshness", "skipped",
                          f"Freshness of {contract.names and name!r} could not be checked: "
                          "the contract has no such time column.")
    if as_of is None:
        return BatchCheck("freshness", "skipped",
                          "Freshness was not checked: the ingest gave no as_of time.")
    within = duration(rule.within, what="freshness 'within'")
    at = parse_time(as_of) if not isinstance(as_of, pd.Timestamp) else as_of
    values, valid = _np_values(typed[name], np.int64)
    newest = pd.Timestamp(int(values[valid].max()), unit="us") if valid.any() else None
    details: dict[str, Any] = {"column": name, "within": rule.within,
                               "as_of": at.isoformat(),
                               "newest": newest.isoformat() if newest is not None else None}
    if newest is not None and at - newest <= within:
        return BatchCheck("freshness", "ok",
                          f"The newest {name!r} ({newest.isoformat()}) is within "
                          f"{rule.within} of as_of {at.isoformat()}.", details)
    if newest is None:
        message = (f"Freshness: the batch has no readable {name!r}, so its newest event "
                   f"cannot be within {rule.within} of as_of {at.isoformat()}.")
    else:
        message = (f"Freshness: the newest {name!r} in the batch is {newest.isoformat()}, "
                   f"{_age(at - newest)} before as_of {at.isoformat()}; the contract expects "
                   f"data within {rule.within}. Check that the upstream delivery is not "
                   "stale.")
    if rule.on_fail == "reject":
        message += " The contract rejects stale batches (on_fail='reject'): every row is " \
                   "quarantined; re-ingest when fresh data arrives."
        source = raw[columns[name]].value if name in columns else None
        st.flag("freshness", name, np.ones(st.n, bool), message, source)
    return BatchCheck("freshness", "reject" if rule.on_fail == "reject" else "warn",
                      message, details)


def _age(delta: pd.Timedelta) -> str:
    hours = delta / pd.Timedelta(hours=1)
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


def _volume(st: _Checks, contract: Contract, received: int,
            recent: Sequence[int] | None) -> BatchCheck | None:
    rule = contract.volume
    if rule is None:
        return None
    history = [int(v) for v in (recent or ())][:rule.history]
    if not history:
        return BatchCheck("volume", "skipped",
                          "Volume was not checked: no earlier ingest of this source accepted "
                          "rows yet.")
    median = float(np.median(history))
    ratio = received / median if median else math.inf
    details = {"received": received, "median": median, "ratio": round(ratio, 4),
               "history": history, "min_ratio": rule.min_ratio, "max_ratio": rule.max_ratio}
    if rule.min_ratio <= ratio <= rule.max_ratio:
        return BatchCheck("volume", "ok",
                          f"Received {received} rows, {ratio:.2f} times the median {median:g} "
                          f"of the last {len(history)} accepted ingest(s).", details)
    message = (f"Volume: received {received} rows, {ratio:.2f} times the median {median:g} "
               f"of the last {len(history)} accepted ingest(s); the contract expects "
               f"{rule.min_ratio:g} to {rule.max_ratio:g} times. Check for a truncated or "
               "duplicated delivery.")
    if rule.on_fail == "reject":
        message += " The contract rejects such batches (on_fail='reject'): every row is " \
                   "quarantined."
        st.flag("volume", "*", np.ones(st.n, bool), message)
    return BatchCheck("volume", "reject" if rule.on_fail == "reject" else "warn", message,
                      details)


def history_check(table: pa.Table, rule: MinHistory, *, entity: str, time: str,
                  source: str = "batch") -> BatchCheck:
    """Which entities of ``table`` have fewer than ``rule.periods`` distinct event times.

    Example:
        >>> from tuesday.project import MinHistory
        >>> t = pa.table({"s": ["a", "a", "b"], "d": [1, 2, 1]})
        >>> history_check(t, MinHistory(periods=2), entity="s", time="d").details["short"]
        1
    """
    counts = table.select([entity, time]).group_by(entity).aggregate(
        [(time, "count_distinct")])
    names = counts.column(entity).to_pylist()
    periods = counts.column(f"{time}_count_distinct").to_pylist()
    short = sorted((int(p), str(e)) for e, p in zip(names, periods, strict=True)
                   if e is not None and p < rule.periods)
    details = {"entity": entity, "periods": rule.periods, "entities": len(names),
               "short": len(short),
               "examples": [{"entity": e, "periods": p} for p, e in short[:rule.examples]]}
    if not short:
        return BatchCheck("min_history", "ok",
                          f"Every {entity} of {source!r} has at least {rule.periods} periods "
                          "of history.", details)
    shown = ", ".join(f"{e} ({p})" for p, e in short[:rule.examples])
    more = f" and {len(short) - rule.examples} more" if len(short) > rule.examples else ""
    return BatchCheck("min_history", "warn",
                      f"{len(short)} of {len(names)} {entity} value(s) of {source!r} have "
                      f"fewer than {rule.periods} periods of history: {shown}{more}. Their "
                      "features and backtests rest on little data.", details)


# ---------------------------------------------------------------- quarantine JSON


def _json_rows(raws: list[_Raw], idx: np.ndarray) -> list[str]:
    """The original values of rows ``idx`` as JSON objects, one string per row."""
    if not len(idx):
        return []
    take = pa.array(idx, pa.int64())
    parts = [pc.binary_join_element_wise(pa.scalar(json.dumps(r.name) + ": "),
                                         _json_column(r, idx, take), pa.scalar(""))
             for r in raws]
    if not parts:
        return ["{}"] * len(idx)
    body = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts,
                                                                         pa.scalar(", "))
    return pc.binary_join_element_wise(pa.scalar("{"), body, pa.scalar("}"),
                                       pa.scalar("")).to_pylist()


def _json_column(r: _Raw, idx: np.ndarray, take: pa.Array) -> pa.Array:
    if r.arrow is None:
        assert r.objects is not None
        return _json_python(r.objects.iloc[idx].tolist())
    a = r.arrow.take(take)
    t = a.type
    null = pa.scalar("null")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        a = a.cast(pa.string())
        special = _np(pc.match_substring_regex(a, '["\\\\\\x00-\\x1f]'))
        text = a
        if special.any():
            text = pc.replace_substring(pc.replace_substring(a, "\\", "\\\\"), '"', '\\"')
        out = pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'), pa.scalar(""))
        control = special & _np(pc.match_substring_regex(a, "[\\x00-\\x1f]"))
        if control.any():  # rare: let json escape control characters
            fixed = out.to_pylist()
            for i in np.flatnonzero(control).tolist():
                fixed[i] = json.dumps(a[i].as_py())
            out = pa.array(fixed, pa.string())
        return pc.fill_null(out, null)
    if pa.types.is_integer(t):
        return pc.fill_null(pc.cast(a, pa.string()), null)
    if pa.types.is_floating(t):
        f = pc.cast(a, pa.float64())
        values = f.to_numpy(zero_copy_only=False)
        text = pc.replace_substring_regex(pc.cast(f, pa.string()), "^(-?[0-9]+)$", "\\1.0")
        text = pc.if_else(_pa(np.isposinf(values)), pa.scalar("Infinity"), text)
        text = pc.if_else(_pa(np.isneginf(values)), pa.scalar("-Infinity"), text)
        return pc.if_else(_pa(np.isnan(values)), null, text)
    if pa.types.is_boolean(t):
        return pc.fill_null(pc.if_else(a, pa.scalar("true"), pa.scalar("false")), null)
    if pa.types.is_timestamp(t) and t.tz is None:
        text = pc.cast(pc.cast(a, pa.timestamp("us"), safe=False), pa.string())
        text = pc.replace_substring_regex(pc.replace_substring(text, " ", "T",
                                                               max_replacements=1),
                                          "\\.000000$", "")
        return pc.fill_null(pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'),
                                                        pa.scalar("")), null)
    if pa.types.is_date(t):
        text = pc.cast(pc.cast(a, pa.date32()), pa.string())
        return pc.fill_null(pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'),
                                                        pa.scalar("")), null)
    if pa.types.is_null(t):
        return pa.array(["null"] * len(a), pa.string())
    return _json_python(a.to_pylist())


def _json_python(values: list[Any]) -> pa.Array:
    return pa.array([json.dumps(_plain(v), default=str) for v in values], pa.string())


# -------------------------------------------------------------------- helpers


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and np.isnan(v):
            return None
    if isinstance(v, datetime | pd.Timestamp):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v if isinstance(v, int | float | str | bool) else str(v)


def _example(v: Any) -> Any:
    """A value as shown in a report: strict JSON (no infinity, no 400-digit number)."""
    v = _plain(v)
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**63:
        return str(v)
    return v


def _first(mask: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` positions where ``mask`` is True (at least ``k`` exist)."""
    size = 4096
    while True:
        found = np.flatnonzero(mask[:size])
        if len(found) >= k or size >= len(mask):
            return found[:k]
        size *= 8


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy bool array from an Arrow boolean array; null counts as False."""
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    if mask.null_count:
        mask = pc.fill_null(mask, False)
    n = len(mask)
    if not n:
        return np.zeros(0, bool)
    bits = np.frombuffer(mask.buffers()[1], np.uint8)
    return np.unpackbits(bits, bitorder="little", count=mask.offset + n)[mask.offset:] \
        .view(bool)


def _pa(mask: np.ndarray) -> pa.BooleanArray:
    """An Arrow boolean array from a numpy bool array (no copy of the values per bit)."""
    buf = pa.py_buffer(np.packbits(mask, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, buf])


def _valid(a: pa.Array) -> np.ndarray:
    if not a.null_count:
        return np.ones(len(a), bool)
    if pa.types.is_null(a.type):
        return np.zeros(len(a), bool)
    bits = np.frombuffer(a.buffers()[0], np.uint8)
    return np.unpackbits(bits, bitorder="little", count=a.offset + len(a))[a.offset:] \
        .view(bool)


def _np_values(a: pa.Array, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """The values buffer of a fixed-width array as numpy (garbage where null), and the
    validity mask."""
    n = len(a)
    if pa.types.is_null(a.type) or not n:
        return np.zeros(n, dtype), np.zeros(n, bool)
    values: np.ndarray = np.frombuffer(a.buffers()[1], dtype)[a.offset:a.offset + n]
    return values, _valid(a)


def _arrow(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    """An Arrow array over numpy ``values`` with nulls where not ``valid``."""
    n = len(values)
    validity = None if bool(valid.all()) else pa.py_buffer(np.packbits(valid,
                                                                       bitorder="little"))
    if typ == pa.bool_():
        data = pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))
    else:
        data = pa.py_buffer(np.ascontiguousarray(values))
    return pa.Array.from_buffers(typ, n, [validity, data],
                                 null_count=-1 if validity is not None else 0)
