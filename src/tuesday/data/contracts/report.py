"""What a validation returns: the problems, batch checks and re-coded codes found
(``Report``), and the split batch (``Validation``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.data.contracts.arrays import arrow_mask


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
class CheckCount:
    """What one check across rows found (``tuesday.project.row_checks``).

    Attributes:
        kind: ``duplicate_group``, ``offsetting_pair``, ``reference``, ``spike``, ``gap``,
            ``repair`` or ``condition``.
        name: The check's name (its flag column is ``flag_NAME``).
        action: What happened to the rows found: ``drop_copy``, ``quarantine``,
            ``flag``, ``repair`` or ``report``.
        rows: Rows found (for a gap: periods missing).
        groups: Groups they form, counted in ``label``: receipts, invoices, series.
        label: What a group is.
        message: One sentence for people.
        details: More numbers (conflicts, missing references, undecided values...).
    """

    kind: str
    name: str
    action: str
    rows: int
    groups: int
    label: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action,
                "rows": self.rows, "groups": self.groups, "label": self.label,
                "message": self.message, "details": dict(self.details)}


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
    its status; ``mapped`` counts the accepted rows a taxonomy re-coded; ``checks`` has
    one count per check across rows the contract declares (every kind, found or not).
    """

    source: str
    received: int
    accepted: int
    quarantined: int
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    batch: tuple[BatchCheck, ...] = ()
    mapped: tuple[Mapped, ...] = ()
    checks: tuple[CheckCount, ...] = ()

    def check(self, name: str) -> CheckCount:
        """The count of the check across rows named ``name`` (its kind by default)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"No check {name!r} in the report of {self.source!r}; checks: "
                       f"{', '.join(c.name for c in self.checks) or 'none'}.")

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
        if self.checks:
            out["checks"] = [c.to_dict() for c in self.checks]
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
        lines.extend(f"  ~ {c.kind} {c.name!r}: {c.rows} row(s), {c.groups} {c.label} "
                     f"({c.action}). {c.message}" for c in self.checks)
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
        keep = arrow_mask(self.keep)
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
