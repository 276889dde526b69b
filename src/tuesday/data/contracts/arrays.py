"""Masks and values between numpy and Arrow without a pass in Python: the validity
and value buffers read and written directly."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def first_positions(mask: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` positions where ``mask`` is True (at least ``k`` exist)."""
    size = 4096
    while True:
        found = np.flatnonzero(mask[:size])
        if len(found) >= k or size >= len(mask):
            return found[:k]
        size *= 8


def np_mask(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
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


def arrow_mask(mask: np.ndarray) -> pa.BooleanArray:
    """An Arrow boolean array from a numpy bool array (no copy of the values per bit)."""
    buf = pa.py_buffer(np.packbits(mask, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, buf])


def valid_mask(a: pa.Array) -> np.ndarray:
    """The validity of each value of ``a`` as numpy (True: not null)."""
    if not a.null_count:
        return np.ones(len(a), bool)
    if pa.types.is_null(a.type):
        return np.zeros(len(a), bool)
    bits = np.frombuffer(a.buffers()[0], np.uint8)
    return np.unpackbits(bits, bitorder="little", count=a.offset + len(a))[a.offset:] \
        .view(bool)


def fixed_values(a: pa.Array, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """The values buffer of a fixed-width array as numpy (garbage where null), and the
    validity mask."""
    n = len(a)
    if pa.types.is_null(a.type) or not n:
        return np.zeros(n, dtype), np.zeros(n, bool)
    values: np.ndarray = np.frombuffer(a.buffers()[1], dtype)[a.offset:a.offset + n]
    return values, valid_mask(a)


def from_numpy(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
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
