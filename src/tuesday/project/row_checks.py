"""Checks across rows and over time, declared in a contract's ``checks``.

A column check looks at one value; these look at groups of rows (a receipt, an invoice),
pairs of rows, references between rows, and a series over time. Each has a kind (the
name the validation report counts it under), an optional ``name`` (default: the kind;
unique in a contract) and an ``action``, what happens to the rows it finds:

- ``"quarantine"``: the rows go to quarantine, the reason ``KIND:NAME``;
- ``"flag"``: the rows are kept, with True in the boolean column ``flag_NAME`` that the
  table gains (every other row holds False), so a derived source or a model can use it;
- ``"drop_copy"`` (duplicate groups): one copy is kept, every other copy goes to
  quarantine, so received = accepted + quarantined still holds row for row;
- ``"repair"``: the value is replaced (a spike by the mean of its neighbours, a
  spelling by its canonical value), and the report counts what was repaired.

Example:
    >>> from tuesday.project import Column, Contract
    >>> c = Contract((Column("receipt", "str"), Column("line", "int"), Column("qty", "int")),
    ...              checks=(DuplicateGroups(("receipt",), sequence="line", label="receipts"),))
    >>> c.checks[0].kind
    'duplicate_group'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

#: what a check may do with the rows it finds
ACTIONS = ("quarantine", "flag", "drop_copy", "repair", "report")


@dataclass(frozen=True)
class DuplicateGroups:
    """Groups posted more than once: a whole receipt or invoice that arrives twice.

    Rows are compared as groups, never one by one, so a receipt that legitimately holds
    the same line twice is kept. A posting is a run of consecutive rows with the same
    ``group`` key (a new run starts where ``sequence``, a line number, does not increase);
    a group already in the table counts as its first posting. A later posting equal to
    an earlier one (the same rows, in any order) is a copy; one that differs is a
    conflict: all its rows are quarantined (``duplicate_group_conflict:NAME``).

    Attributes:
        group: The columns naming a group (``("receipt",)``).
        sequence: A line-number column, so that a copy posted right after its original
            is told apart from one longer receipt.
        label: What the report calls a group (``"receipts"``).
        action: ``"drop_copy"`` (default), ``"quarantine"`` (every copy but the first)
            or ``"flag"``.
    """

    group: tuple[str, ...]
    sequence: str | None = None
    label: str = "groups"
    action: str = "drop_copy"
    name: str = ""
    kind: ClassVar[str] = "duplicate_group"
    actions: ClassVar[tuple[str, ...]] = ("drop_copy", "quarantine", "flag")


@dataclass(frozen=True)
class OffsettingPairs:
    """A line and its exact reversal: +q then -q of ``value`` within one ``group`` (the
    same receipt and item), the reversal carrying no ``reference``. Both rows are found.

    Attributes:
        group: The columns both rows share (``("receipt", "item")``).
        value: The column that is reversed (``"qty"``).
        reference: A column that, when filled, makes a negative row a refund instead
            (see ``References``); such rows are never paired.
        action: ``"flag"`` (default) or ``"quarantine"`` (both rows).
    """

    group: tuple[str, ...]
    value: str
    reference: str | None = None
    label: str = "pairs"
    action: str = "flag"
    name: str = ""
    kind: ClassVar[str] = "offsetting_pair"
    actions: ClassVar[tuple[str, ...]] = ("flag", "quarantine")


@dataclass(frozen=True)
class References:
    """Rows whose ``column`` is filled must point at an earlier row whose ``to`` column
    holds that value (in the batch or the table): a refund refers to the receipt it
    refunds. A row that does is counted (and flagged with ``action="flag"``); one whose
    target is missing or not earlier is ``reference_missing:NAME``, quarantined unless
    ``missing="flag"``.

    Attributes:
        column: The referring column (``"ref_receipt"``).
        to: The referred column (``"receipt"``).
        time: The column that says "earlier"; defaults to the source's time.
        label: What the report calls a target (``"receipts"``).
        action: For a valid reference: ``"flag"`` (default) or ``"report"`` (counted).
        missing: For a missing target: ``"quarantine"`` (default) or ``"flag"``.
    """

    column: str
    to: str
    time: str | None = None
    label: str = "references"
    action: str = "flag"
    missing: str = "quarantine"
    name: str = ""
    kind: ClassVar[str] = "reference"
    actions: ClassVar[tuple[str, ...]] = ("flag", "report")


@dataclass(frozen=True)
class Spike:
    """One-period spikes that revert: a value far from both its neighbours in its series
    while they are close to each other (a typo in one night's stock count).

    A value x between neighbours p and n is a spike when ``min(|x-p|, |x-n|)`` is at
    least ``min_jump`` and more than ``factor`` times ``|n-p|``. The neighbours come from
    the batch and the table; the last value of a series, whose next value has not arrived
    yet, is not judged (the report counts such values as undecided).

    Attributes:
        column: The numeric column.
        series: The columns naming a series (``("item",)``).
        time: The time column; defaults to the source's time.
        factor: How much farther from its neighbours than they are from each other.
        min_jump: The smallest jump that counts (in the column's units).
        label: What the report calls a group of the count (``"days"``).
        action: ``"quarantine"`` (default), ``"flag"``, or ``"repair"`` (replaced by the
            mean of its neighbours, rounded for an int column).
    """

    column: str
    series: tuple[str, ...]
    time: str | None = None
    factor: float = 5.0
    min_jump: float = 0.0
    label: str = "series"
    action: str = "quarantine"
    name: str = ""
    kind: ClassVar[str] = "spike"
    actions: ClassVar[tuple[str, ...]] = ("quarantine", "flag", "repair")


@dataclass(frozen=True)
class Gaps:
    """Missing periods in a series that should have one row every ``every``: reported
    (periods missing, series with gaps), never a reason to refuse rows.

    Attributes:
        series: The columns naming a series (``("item",)``).
        every: The period (``"1d"``).
        time: The time column; defaults to the source's time.
    """

    series: tuple[str, ...]
    every: str = "1d"
    time: str | None = None
    label: str = "series"
    action: str = "report"
    name: str = ""
    kind: ClassVar[str] = "gap"
    actions: ClassVar[tuple[str, ...]] = ("report",)


@dataclass(frozen=True)
class Repair:
    """Spellings mapped to canonical values before the value checks (``allowed``),
    counted per spelling. With ``fold`` a value equal to one of the column's ``allowed``
    values up to case and surrounding spaces is mapped to it as well.

    Attributes:
        column: A ``str`` column.
        mapping: ``{spelling: canonical}``.
        fold: Also map case and space variants of the allowed values.
    """

    column: str
    mapping: Mapping[str, str] = field(default_factory=dict)
    fold: bool = False
    label: str = "spellings"
    action: str = "repair"
    name: str = ""
    kind: ClassVar[str] = "repair"
    actions: ClassVar[tuple[str, ...]] = ("repair",)


@dataclass(frozen=True)
class Condition:
    """Rows for which a DuckDB SQL condition over the contract's columns holds, e.g.
    ``"hour(ts) = 0"`` (a till line whose hour was overwritten) or ``"book_stock < 0"``.
    The kind the report counts is ``name``.

    Attributes:
        name: The check's name (and its flag column's, ``flag_NAME``).
        where: The condition; a row where it is null does not match.
        message: Why such rows are suspicious, for the report.
        action: ``"flag"`` (default: the row is real, keep it) or ``"quarantine"``.
    """

    name: str
    where: str
    message: str = ""
    label: str = "rows"
    action: str = "flag"
    kind: ClassVar[str] = "condition"
    actions: ClassVar[tuple[str, ...]] = ("flag", "quarantine")


RowCheck = DuplicateGroups | OffsettingPairs | References | Spike | Gaps | Repair | Condition
ROW_CHECKS = (DuplicateGroups, OffsettingPairs, References, Spike, Gaps, Repair, Condition)


def check_name(check: Any) -> str:
    """The name a check is reported and flagged under: its ``name``, else its kind."""
    return str(getattr(check, "name", "") or check.kind)


def flag_column(check: Any) -> str:
    """The boolean column a flagging check adds to the table."""
    return f"flag_{check_name(check)}"


def flags(checks: tuple[Any, ...]) -> tuple[str, ...]:
    """The flag columns of a contract's checks, in their order."""
    out: list[str] = []
    for c in checks:
        if c.action == "flag":
            out.append(flag_column(c))
        if isinstance(c, References) and c.missing == "flag":
            out.append(f"{flag_column(c)}_missing")
    return tuple(dict.fromkeys(out))
