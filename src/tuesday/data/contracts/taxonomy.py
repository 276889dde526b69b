"""The taxonomy mapping: old codes re-coded to new ones before the value checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.arrays import arrow_mask, fixed_values, valid_mask
from tuesday.data.contracts.findings import plain_value
from tuesday.data.contracts.report import Mapped
from tuesday.project import Contract, Source, Taxonomy, parse_time

#: per taxonomy: column, old codes, new codes, index of the old code per row (-1 if not
#: mapped), mapped-row mask
TaxonomyHits = list[tuple[str, list[Any], list[Any], np.ndarray, np.ndarray]]


def apply_taxonomy(typed: dict[str, pa.Array], taxonomy: Sequence[Taxonomy],
                   time: str | None, contract: Contract) -> TaxonomyHits:
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
        idx = np.where(valid_mask(found), fixed_values(found, np.int32)[0], -1).astype(np.int64)
        hit = idx >= 0
        if t.effective is not None and time is not None and time in typed:
            cutoff = parse_time(t.effective, what="taxonomy effective").value // 1000
            times, valid = fixed_values(typed[time], np.int64)
            hit &= valid & (times < cutoff)
        if hit.any():
            codes = pa.array(new, type=arr.type).take(pa.array(np.where(hit, idx, 0)))
            typed[t.column] = pc.if_else(arrow_mask(hit), codes, arr)
        out.append((t.column, old, new, np.where(hit, idx, -1), hit))
    return out


def mapped_counts(mapped: TaxonomyHits, keep: np.ndarray) -> tuple[Mapped, ...]:
    """How many accepted rows each old code was re-coded in, per taxonomy."""
    out: list[Mapped] = []
    for column, old, new, idx, hit in mapped:
        counts = np.bincount(idx[hit & keep], minlength=len(old))
        out.extend(Mapped(column, plain_value(old[i]), plain_value(new[i]), int(c))
                   for i, c in enumerate(counts.tolist()) if c)
    return tuple(out)


def current_codes(source: Source, table: pa.Table) -> pa.Table:
    """``table`` with the source's taxonomies applied (old codes mapped to new ones)."""
    tax = [t for t in source.taxonomies if t.column in table.column_names]
    if not tax or not table.num_rows:
        return table
    names = {t.column for t in tax} | ({source.time} if source.time in table.column_names
                                       else set())
    typed = {n: table.column(n).combine_chunks() for n in names if n is not None}
    apply_taxonomy(typed, tax, source.time if source.time in typed else None,
                   source.contract)
    for t in tax:
        table = table.set_column(table.column_names.index(t.column), t.column,
                                 typed[t.column])
    return table
