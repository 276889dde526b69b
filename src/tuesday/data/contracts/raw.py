"""The batch's columns as received: Arrow arrays, or Python objects Arrow cannot type."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from tuesday.data.contracts.findings import example_value


class RawColumn:
    """One column as received: an Arrow array, or Python objects Arrow cannot type."""

    def __init__(self, name: str, arrow: pa.Array | None = None,
                 objects: pd.Series | None = None) -> None:
        self.name = name
        self.arrow = arrow
        self.objects = objects

    def value(self, i: int) -> Any:
        """The value at position ``i`` as a report shows it."""
        if self.arrow is not None:
            return example_value(self.arrow[i].as_py())
        assert self.objects is not None
        return example_value(self.objects.iloc[i])


def raw_columns(frame: pd.DataFrame | pa.Table) -> tuple[int, dict[str, RawColumn]]:
    """The number of rows and every column of the batch, by name."""
    out: dict[str, RawColumn] = {}
    if isinstance(frame, pa.Table):
        for name, col in zip(frame.column_names, frame.columns, strict=True):
            arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            out[str(name)] = RawColumn(str(name), arrow=_plain_arrow(arr))
        return frame.num_rows, out
    frame = frame.reset_index(drop=True)
    for i, name in enumerate(frame.columns):
        out[str(name)] = _raw_series(str(name), frame.iloc[:, i])
    return len(frame), out


def _plain_arrow(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _raw_series(name: str, s: pd.Series) -> RawColumn:
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    try:
        if s.dtype == object:  # text with blanks (None, NaN) reads as Arrow strings
            return RawColumn(name, arrow=pa.array(s, type=pa.string(), from_pandas=True))
        arr = pa.array(s, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError,
            TypeError, OverflowError):
        return RawColumn(name, objects=s.astype(object))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return RawColumn(name, arrow=_plain_arrow(arr))
