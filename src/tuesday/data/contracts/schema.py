"""The schema policy: unexpected, renamed and missing columns."""

from __future__ import annotations

import numpy as np

from tuesday.data.contracts.findings import Findings
from tuesday.data.contracts.raw import RawColumn
from tuesday.project import Contract


def match_schema(raw: dict[str, RawColumn], contract: Contract, st: Findings) -> dict[str, str]:
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
