"""Validate a batch against its contract: every problem at once, nothing lost.

``validate`` checks every row against every rule, then splits the batch: rows with no
problem are accepted (typed as the contract says), rows with any problem go to
quarantine with their original values and every reason. Always
``accepted + quarantined == received``.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tuesday.project import Column, Contract

MAX_EXAMPLES = 5
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


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
class Report:
    """What a validation found."""

    source: str
    received: int
    accepted: int
    quarantined: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "received": self.received, "accepted": self.accepted,
                "quarantined": self.quarantined,
                "problems": [p.to_dict() for p in self.problems],
                "warnings": list(self.warnings)}

    def summary(self) -> str:
        lines = [f"{self.source}: received {self.received}, accepted {self.accepted}, "
                 f"quarantined {self.quarantined}."]
        for p in self.problems:
            ex = ", ".join(f"row {e['row']}: {e['value']!r}" for e in p.examples)
            lines.append(f"  - {p.check} on {p.column!r}: {p.count} row(s). {p.message}"
                         + (f" Examples: {ex}." if ex else ""))
        lines.extend(f"  ! {w}" for w in self.warnings)
        return "\n".join(lines)


@dataclass(frozen=True)
class Validation:
    """The split batch: typed accepted rows, quarantined rows with reasons, the report."""

    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    report: Report
    reasons: dict[int, list[str]] = field(default_factory=dict)


def validate(
    frame: pd.DataFrame,
    contract: Contract,
    *,
    source: str = "batch",
    existing_keys: pd.DataFrame | None = None,
    first_row: int = 1,
    row_numbers: np.ndarray | None = None,
    malformed: tuple[tuple[int, str, str], ...] = (),
) -> Validation:
    """Check ``frame`` against ``contract`` and split it into accepted and quarantined.

    Args:
        frame: Raw rows; strings (from CSV) or typed values (from Parquet).
        contract: The rules.
        source: Name used in messages.
        existing_keys: Unique-key values already in the table; a row repeating one is
            quarantined.
        first_row: Number of the first row in the file, for messages.
        row_numbers: The file's row number of each row (overrides ``first_row``).
        malformed: Rows of the file that could not be split into columns:
            (row number, raw text, reason); they are quarantined as they are.
    """
    n = len(frame)
    frame = frame.reset_index(drop=True)
    rows = np.asarray(row_numbers, dtype="int64") if row_numbers is not None \
        else np.arange(first_row, first_row + n)
    bad: dict[str, np.ndarray] = {}  # reason -> boolean mask
    problems: list[Problem] = []
    warnings: list[str] = []

    def flag(check: str, column: str, mask: np.ndarray, message: str,
             values: pd.Series | None = None) -> None:
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        if not count:
            return
        idx = np.flatnonzero(mask)[:MAX_EXAMPLES]
        vals = values if values is not None else frame.get(column)
        examples = tuple({"row": int(rows[i]), "value": _example(vals.iloc[i]) if vals is not None
                          else None} for i in idx)
        problems.append(Problem(check, column, count, message, examples))
        key = f"{check}:{column}"
        bad[key] = bad[key] | mask if key in bad else mask

    # Columns: missing and unexpected.
    declared = contract.names
    for extra in [c for c in frame.columns if c not in declared]:
        if contract.extra_columns == "drop":
            warnings.append(f"Column {extra!r} is not in the contract and was dropped.")
        else:
            flag("extra_column", str(extra), np.ones(n, bool),
                 f"Column {extra!r} is not in the contract (declared: "
                 f"{', '.join(declared)}); the contract rejects unexpected columns. Remove "
                 "it, declare it, or set extra_columns='drop'.")
    typed: dict[str, pd.Series] = {}
    for col in contract.columns:
        if col.name not in frame.columns:
            if col.nullable:
                warnings.append(f"Optional column {col.name!r} is missing; filled with nulls.")
                typed[col.name] = _empty(col, n)
            else:
                flag("missing_column", col.name, np.ones(n, bool),
                     f"Required column {col.name!r} ({col.dtype}) is missing from the file.",
                     values=pd.Series([None] * n))
                typed[col.name] = _empty(col, n)
            continue
        raw = frame[col.name]
        parsed, type_bad = _parse(raw, col)
        typed[col.name] = parsed
        flag("type", col.name, type_bad,
             f"Expected {col.dtype} values in column {col.name!r}; these could not be read "
             f"as {col.dtype}.")
        null = parsed.isna().to_numpy() & ~type_bad
        if not col.nullable:
            flag("null", col.name, null, f"Column {col.name!r} must not be empty.")
        ok = ~null & ~type_bad
        if col.min is not None:
            flag("range", col.name, ok & (parsed < col.min).fillna(False).to_numpy(bool),
                 f"Values of {col.name!r} must be >= {col.min}.")
        if col.max is not None:
            flag("range", col.name, ok & (parsed > col.max).fillna(False).to_numpy(bool),
                 f"Values of {col.name!r} must be <= {col.max}.")
        if col.allowed is not None:
            outside = ok & ~parsed.isin(list(col.allowed)).to_numpy(bool)
            flag("allowed", col.name, outside,
                 f"Values of {col.name!r} must be one of {list(col.allowed)!r}.")
    out = pd.DataFrame(typed, index=frame.index)

    # Uniqueness of the key, within the batch and against the table.
    key = [k for k in contract.unique if k in out.columns]
    if key and n:
        # a key with a missing part is already a problem of its own, not a duplicate
        complete = out[key].notna().all(axis=1).to_numpy()
        dup = out.duplicated(subset=key, keep=False).to_numpy() & complete
        keys_text = _key_text(out, key)
        flag("duplicate_key", "+".join(key), dup,
             f"Key ({', '.join(key)}) must be unique; these rows repeat a key within the "
             "batch (all copies are quarantined so none is picked silently).",
             values=keys_text)
        if existing_keys is not None and len(existing_keys):
            merged = out[key].merge(existing_keys[key].drop_duplicates(), on=key, how="left",
                                    indicator=True)
            seen = (merged["_merge"] == "both").to_numpy() & complete
            flag("existing_key", "+".join(key), seen,
                 f"Key ({', '.join(key)}) is already in the table; rows are append-only.",
                 values=keys_text)

    any_bad = np.zeros(n, bool)
    for mask in bad.values():
        any_bad |= mask
    reasons = {int(i): [k for k, m in bad.items() if m[i]] for i in np.flatnonzero(any_bad)}
    accepted = out.loc[~any_bad].reset_index(drop=True)
    quarantined = pd.DataFrame({
        "row": rows[any_bad].astype("int64"),
        "reasons": ["; ".join(reasons[int(i)]) for i in np.flatnonzero(any_bad)],
        "values": [json.dumps({str(k): _plain(v) for k, v in frame.iloc[int(i)].items()},
                              default=str) for i in np.flatnonzero(any_bad)],
    })
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
    report = Report(source, n + len(malformed), len(accepted), len(quarantined),
                    tuple(problems), tuple(warnings))
    assert report.accepted + report.quarantined == report.received
    return Validation(accepted, quarantined, report, reasons)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp):
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


def _key_text(frame: pd.DataFrame, key: list[str]) -> pd.Series:
    text = frame[key[0]].astype("string").fillna("<null>")
    for k in key[1:]:
        text = text + "|" + frame[k].astype("string").fillna("<null>")
    return text


def _empty(col: Column, n: int) -> pd.Series:
    return pd.Series(pd.array([None] * n, dtype=_pandas_dtype(col.dtype)))


def _pandas_dtype(dtype: str) -> str:
    return {"float": "float64", "int": "Int64", "str": "string", "bool": "boolean",
            "date": "datetime64[us]", "timestamp": "datetime64[us]"}[dtype]


def _is_missing(raw: pd.Series) -> np.ndarray:
    missing = raw.isna().to_numpy(bool).copy()
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        stripped = raw.astype("string").str.strip()
        missing = missing | (stripped == "").fillna(True).to_numpy(bool)
    return missing


_INT64 = (-(2**63), 2**63 - 1)


def _to_float(raw: pd.Series) -> pd.Series:
    """Numbers as float64 (NaN where unreadable), also for Python ints beyond float range."""
    try:
        return pd.to_numeric(raw, errors="coerce").astype("float64")
    except (OverflowError, TypeError, ValueError):
        def one(v: Any) -> float:
            try:
                return float(v)
            except (OverflowError, TypeError, ValueError):
                return float("nan")
        return pd.Series([one(v) for v in raw], index=raw.index, dtype="float64")


def _ints(raw: pd.Series, num: pd.Series, bad: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """Exact integers: values beyond 2**53 are re-read exactly, beyond int64 refused."""
    vals = num.to_numpy(dtype=float, na_value=np.nan)
    bad = bad | (~np.isnan(vals) & (np.mod(vals, 1) != 0))
    out = np.where(bad | np.isnan(vals), 0, np.clip(vals, -(2.0**62), 2.0**62)).astype("int64")
    big = np.flatnonzero(~bad & ~np.isnan(vals) & (np.abs(vals) >= 2.0**53))
    for i in big:
        exact = _exact_int(raw.iloc[i])
        if exact is None or not _INT64[0] <= exact <= _INT64[1]:
            bad[i] = True
        else:
            out[i] = exact
    ints = pd.array(out, dtype="Int64")
    ints[bad | np.isnan(vals)] = pd.NA
    return pd.Series(ints), bad


def _exact_int(v: Any) -> int | None:
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return int(v)
    try:
        text = str(v).strip()
        return int(text) if text.lstrip("+-").isdigit() else None
    except ValueError:
        return None


def _parse(raw: pd.Series, col: Column) -> tuple[pd.Series, np.ndarray]:
    """Typed values and a mask of values that were present but not of the type."""
    missing = _is_missing(raw)
    if col.dtype == "str":
        parsed = raw.astype("string")
        parsed[missing] = pd.NA
        return parsed, np.zeros(len(raw), bool)
    if col.dtype in ("float", "int"):
        if pd.api.types.is_bool_dtype(raw.dtype):
            num = pd.Series(np.full(len(raw), np.nan))
        else:
            num = _to_float(raw)
        bad = num.isna().to_numpy(bool) & ~missing
        if raw.dtype == object:  # True/False are not numbers here
            bad |= raw.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(bool)
        if col.dtype == "float":
            bad |= np.isinf(num.to_numpy(dtype=float, na_value=np.nan))
            num[bad] = np.nan
            return num, bad
        return _ints(raw, num, bad)
    if col.dtype == "bool":
        if pd.api.types.is_bool_dtype(raw.dtype):
            return raw.astype("boolean"), np.zeros(len(raw), bool)
        text = raw.astype("string").str.strip().str.lower()
        parsed = pd.Series(pd.array([None] * len(raw), dtype="boolean"))
        parsed[text.isin(_TRUE).fillna(False).to_numpy(bool)] = True
        parsed[text.isin(_FALSE).fillna(False).to_numpy(bool)] = False
        bad = parsed.isna().to_numpy(bool) & ~missing
        return parsed, bad
    # date / timestamp: aware times are converted to UTC, naive ones taken as UTC
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        ts = raw.dt.tz_convert("UTC").dt.tz_localize(None) \
            if getattr(raw.dt, "tz", None) is not None else raw
        bad = np.zeros(len(raw), bool)
    else:
        ts = pd.to_datetime(raw.astype("string"), errors="coerce", format="ISO8601", utc=True)
        ts = ts.dt.tz_localize(None)
        bad = ts.isna().to_numpy(bool) & ~missing
    ts = ts.copy()
    if col.dtype == "date":
        bad |= ~ts.isna().to_numpy(bool) & (ts != ts.dt.normalize()).fillna(False).to_numpy(bool)
        ts[bad] = pd.NaT
    return ts.astype("datetime64[us]"), bad
