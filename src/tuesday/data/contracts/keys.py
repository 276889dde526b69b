"""Uniqueness of the contract's key: within the batch and against the table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.arrays import np_mask, valid_mask
from tuesday.data.contracts.findings import Findings
from tuesday.data.contracts.report import to_pandas
from tuesday.project import Column, Contract


def check_keys(st: Findings, contract: Contract, typed: dict[str, pa.Array],
               existing_keys: pd.DataFrame | pa.Table | None) -> None:
    """Flag the rows repeating a key within the batch, or one already in the table."""
    key = [k for k in contract.unique if k in typed]
    if not key or not st.n:
        return
    label = "+".join(key)
    complete = np.ones(st.n, bool)
    for k in key:  # a key with a missing part is a problem of its own, not a duplicate
        complete &= valid_mask(typed[k])

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
        seen = np_mask(pc.is_in(typed[key[0]], value_set=values))
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
