"""The schema policy: unexpected, renamed and missing columns."""

from __future__ import annotations

import numpy as np

from tuesday.data.contracts.findings import Findings
from tuesday.data.contracts.raw import RawColumn
from tuesday.errors import ValidationFailed
from tuesday.project import Column, Contract


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
    refused = []
    for col in contract.columns:
        if col.name in columns:
            continue
        if col.nullable and contract.missing_columns == "fill":
            st.warnings.append(f"Optional column {col.name!r} is missing; filled with nulls.")
        else:
            refused.append(col)
    if refused and st.n:
        _refuse_missing(refused, contract, raw)
    return columns


def _refuse_missing(refused: list[Column], contract: Contract, raw: dict[str, RawColumn]
                    ) -> None:
    """One schema problem is one error for the whole batch, not one quarantine entry per
    row: nothing is ingested or quarantined (``ValidationFailed``, exit 7)."""
    required = [c for c in refused if not c.nullable]
    optional = [c for c in refused if c.nullable]
    parts = []
    if required:
        parts.append("required column(s) " + ", ".join(f"{c.name!r} ({c.dtype})"
                                                       for c in required))
    if optional:
        parts.append("optional column(s) " + ", ".join(f"{c.name!r} ({c.dtype})"
                                                       for c in optional)
                     + " (the contract's missing_columns='reject' refuses batches without "
                       "them)")
    got = ", ".join(map(repr, raw)) or "none"
    raise ValidationFailed(
        f"The batch is missing {' and '.join(parts)}; its columns are {got}. Nothing was "
        "ingested or quarantined.",
        fix="Add the missing column(s) to the file (check the header's spelling), or "
            "declare a renamed column with extra_columns='map' and rename={...}.",
        details={"missing_columns": [c.name for c in refused]})
