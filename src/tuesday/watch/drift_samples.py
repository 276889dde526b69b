"""The samples of one column as the drift statistics take them, and the error of inputs
they cannot be computed on.

Nulls and ``±inf`` are dropped first. Numeric samples become float64 values, sorted;
categorical ones ``pandas.factorize`` codes (Arrow strings coded by Arrow) and counts of
every value of either sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tuesday.errors import TuesdayError

__all__ = ["DriftInputError", "as_series", "categorical_codes", "finite_numeric",
           "is_numeric_dtype", "sorted_samples", "union_counts"]

_NUMERIC_INFERRED = frozenset(
    {"integer", "floating", "mixed-integer-float", "decimal", "boolean", "empty"}
)


class DriftInputError(TuesdayError, ValueError):
    """Drift was asked of inputs it cannot be computed on (also a ``ValueError``)."""

    kind = "invalid"

    def __init__(self, message: str, *, fix: str = "", details: Any = None) -> None:
        TuesdayError.__init__(self, message, fix=fix, details=details)


def as_series(values: Any, name: str, label: str) -> pd.Series:
    """The sample as a Series (a Series as it is, a 1-D array without a copy)."""
    if isinstance(values, pd.Series):
        return values
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DriftInputError(
            f"Column '{name}': the {label} sample must be 1-D, got shape {arr.shape}.",
            fix="Pass one column (a Series or a 1-D array).",
        )
    return pd.Series(arr, copy=False)


def is_numeric_dtype(dtype: Any) -> bool:
    """Numeric and not boolean (booleans are compared as categories, as Evidently does)."""
    return bool(pd.api.types.is_numeric_dtype(dtype)) and not pd.api.types.is_bool_dtype(dtype)


def _empty_error(name: str, label: str, received: int) -> DriftInputError:
    what = (
        "an empty sample (0 rows)"
        if received == 0
        else f"{received} rows, all of them null or infinite"
    )
    return DriftInputError(
        f"Column '{name}': the {label} sample has no values to compare after dropping nulls; "
        f"received {what}.",
        fix=f"Pass a {label} sample with at least one non-null value, or leave the column out.",
    )


def finite_numeric(s: pd.Series, name: str, label: str) -> np.ndarray:
    """The finite values of ``s`` as float64 (possibly a view of the caller's data)."""
    if not pd.api.types.is_numeric_dtype(s.dtype):
        if pd.api.types.infer_dtype(s, skipna=True) not in _NUMERIC_INFERRED:
            bad = next(
                (v for v in s if not pd.isna(v) and not isinstance(v, (int, float, np.number))),
                None,
            )
            raise DriftInputError(
                f"Column '{name}' is numeric, but the {label} sample holds non-numeric values "
                f"(dtype {s.dtype}, e.g. {bad!r}).",
                fix="Clean the values, or pass kind='categorical' for this column.",
            )
        s = pd.to_numeric(s)
    arr: np.ndarray = np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan))
    finite = np.isfinite(arr)
    out: np.ndarray = arr if finite.all() else arr[finite]
    if out.size == 0:
        raise _empty_error(name, label, len(s))
    return out


def categorical_codes(s: pd.Series, name: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (``pandas.factorize``) of the non-null values of ``s``, and the values coded.

    Nulls (and ``±inf`` in float or object columns) are left out. String, categorical,
    integer and boolean columns are coded as they are (Arrow strings by Arrow itself),
    without making an array of Python objects first.
    """
    kept = s
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype):
        kept = s[s.notna()]
        kept = kept[~kept.isin([np.inf, -np.inf])]
    codes, uniques = pd.factorize(kept)
    if codes.size and codes.min() < 0:  # -1: a null pandas.factorize left out
        codes = codes[codes >= 0]
    if codes.size == 0:
        raise _empty_error(name, label, len(s))
    return np.asarray(codes), np.asarray(uniques)


def union_counts(
    ref_codes: np.ndarray, ref_uniques: np.ndarray, cur_codes: np.ndarray, cur_uniques: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of every value of either sample, in order of first appearance in reference
    then current (the order ``pandas.factorize`` gives the two samples concatenated)."""
    union_codes, uniques = pd.factorize(np.concatenate((ref_uniques, cur_uniques)))
    k = len(uniques)
    n_ref_values = len(ref_uniques)
    ref_counts = np.zeros(k, dtype=np.int64)
    cur_counts = np.zeros(k, dtype=np.int64)
    np.add.at(
        ref_counts, union_codes[:n_ref_values], np.bincount(ref_codes, minlength=n_ref_values)
    )
    np.add.at(
        cur_counts,
        union_codes[n_ref_values:],
        np.bincount(cur_codes, minlength=len(cur_uniques)),
    )
    return ref_counts, cur_counts, np.asarray(uniques)


def sorted_samples(ref_s: pd.Series, cur_s: pd.Series, name: str) -> tuple[np.ndarray, int]:
    """The finite reference values, sorted, then the finite current values, sorted, in
    one new buffer (never the caller's data), and the number of reference values."""
    ref = finite_numeric(ref_s, name, "reference")
    cur = finite_numeric(cur_s, name, "current")
    both = np.concatenate((ref, cur))
    n_ref = ref.size
    both[:n_ref].sort()
    both[n_ref:].sort()
    return both, n_ref
