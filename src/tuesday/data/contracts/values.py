"""The value checks on typed (and re-coded) values: range, allowed values, format."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.arrays import fixed_values, np_mask, valid_mask
from tuesday.data.contracts.findings import Findings
from tuesday.project import Column


def value_checks(st: Findings, col: Column, arr: pa.Array,
                 value: Callable[[int], Any]) -> None:
    """Flag the values of ``col`` outside its range, allowed values or format."""
    valid = valid_mask(arr)
    if (col.min is not None or col.max is not None) and col.dtype in ("float", "int"):
        values = fixed_values(arr, np.float64 if col.dtype == "float" else np.int64)[0]
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
        return np_mask(pc.is_in(arr, value_set=value_set))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass  # allowed values of another type: compare as Python values
    uniques = pc.unique(arr)
    inside = pa.array([v in allowed for v in uniques.to_pylist()], pa.bool_())
    return np_mask(pc.is_in(arr, value_set=uniques.filter(inside)))


def _full_match(arr: pa.Array, pattern: str) -> np.ndarray:
    try:
        return np_mask(pc.match_substring_regex(arr, f"^(?:{pattern})$"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # a pattern RE2 does not take (look-around, back-references): use Python's re
    rx = re.compile(pattern, re.ASCII)
    uniques = pc.unique(arr)
    inside = pa.array([v is not None and rx.fullmatch(v) is not None
                       for v in uniques.to_pylist()], pa.bool_())
    return np_mask(pc.is_in(arr, value_set=uniques.filter(inside)))
