"""The validation engine: every check in its order, then the split of the batch.

Order of work (each step is a module of this package): the schema policy (``schema``),
the type of every value (``parsing``), the taxonomy mapping (``taxonomy``), the value
checks on the mapped values (``values``), uniqueness of the key (``keys``), then the
batch checks (``batch``); the rows with any problem go to quarantine (``quarantine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.data.contracts.batch import freshness_check, volume_check
from tuesday.data.contracts.findings import Findings
from tuesday.data.contracts.keys import check_keys
from tuesday.data.contracts.parsing import ARROW_TYPES, parse_column, type_message
from tuesday.data.contracts.quarantine import malformed_problem, quarantine_frame
from tuesday.data.contracts.raw import RawColumn, raw_columns
from tuesday.data.contracts.report import BatchCheck, CheckCount, Report, Validation
from tuesday.data.contracts.rows import Existing, apply_repairs, row_checks
from tuesday.data.contracts.schema import match_schema
from tuesday.data.contracts.taxonomy import TaxonomyHits, apply_taxonomy, mapped_counts
from tuesday.data.contracts.values import value_checks
from tuesday.project import Contract, Taxonomy
from tuesday.project.row_checks import check_name


def validate(
    frame: pd.DataFrame | pa.Table,
    contract: Contract,
    *,
    source: str = "batch",
    existing_keys: pd.DataFrame | pa.Table | None = None,
    first_row: int = 1,
    row_numbers: np.ndarray | None = None,
    malformed: tuple[tuple[int, str, str], ...] = (),
    time: str | None = None,
    taxonomy: Sequence[Taxonomy] = (),
    as_of: datetime | pd.Timestamp | None = None,
    recent_volumes: Sequence[int] | None = None,
    existing: Existing | None = None,
) -> Validation:
    """Check ``frame`` against ``contract`` and split it into accepted and quarantined.

    Args:
        frame: Raw rows; strings (from CSV) or typed values (from Parquet), as pandas or
            Arrow.
        contract: The rules.
        source: Name used in messages.
        existing_keys: Unique-key values already in the table; a row repeating one is
            quarantined.
        first_row: Number of the first row in the file, for messages.
        row_numbers: The file's row number of each row (overrides ``first_row``).
        malformed: Rows of the file that could not be split into columns:
            (row number, raw text, reason); they are quarantined as they are.
        time: The source's event-time column (for taxonomy dates and freshness).
        taxonomy: Code mappings to apply, oldest ``effective`` first.
        as_of: When the batch is ingested; without it freshness is skipped.
        recent_volumes: Rows received by the last accepted ingests of the source; without
            them volume is skipped.
        existing: Reads the table's rows for the checks across rows (a group posted
            before, a referenced receipt, a series' neighbours); without it they see the
            batch alone.

    Example:
        >>> from tuesday.project import Column, Contract
        >>> v = validate(pd.DataFrame({"code": ["AB-1", "x"]}),
        ...              Contract((Column("code", "str", format=r"[A-Z]{2}-\\d+"),)))
        >>> v.quarantined["reasons"].tolist()
        ['format:code']
    """
    n, raw = raw_columns(frame)
    rows = np.asarray(row_numbers, dtype="int64") if row_numbers is not None \
        else np.arange(first_row, first_row + n, dtype="int64")
    st = Findings(n, rows, contract.names)
    columns = match_schema(raw, contract, st)
    typed = _typed_columns(st, contract, raw, columns)
    mapped = apply_taxonomy(typed, taxonomy, time, contract)
    repaired = apply_repairs(typed, contract)
    for col in contract.columns:
        if col.name in columns:
            value_checks(st, col, typed[col.name], raw[columns[col.name]].value)
    check_keys(st, contract, typed, existing_keys)
    flags, counts = row_checks(st, contract, typed, time=time, existing=existing)
    checks = _in_order(contract, [*repaired, *counts])
    received = n + len(malformed)
    batch = (freshness_check(st, contract, typed, time, as_of, raw, columns),
             volume_check(st, contract, received, recent_volumes))
    keep, quarantined = quarantine_frame(st, list(raw.values()), malformed)
    report = _report(st, source, received, keep, len(quarantined), malformed,
                     tuple(b for b in batch if b is not None), mapped)
    report = replace(report, checks=checks)
    return Validation(_table(contract, typed, flags), keep, quarantined, report)


def _in_order(contract: Contract, counts: list[CheckCount]) -> tuple[CheckCount, ...]:
    """The counts in the order the contract declares its checks."""
    order = {check_name(c): i for i, c in enumerate(contract.checks)}
    return tuple(sorted(counts, key=lambda c: order.get(c.name, len(order))))


def _typed_columns(st: Findings, contract: Contract, raw: dict[str, RawColumn],
                   columns: dict[str, str]) -> dict[str, pa.Array]:
    """Every declared column typed (all null when the batch lacks it), with the type and
    null checks flagged."""
    typed: dict[str, pa.Array] = {}
    for col in contract.columns:
        name = columns.get(col.name)
        if name is None:
            typed[col.name] = pa.nulls(st.n, ARROW_TYPES[col.dtype])
            continue
        arr, bad, missing = parse_column(raw[name], col)
        typed[col.name] = arr
        st.flag("type", col.name, bad, type_message(col), raw[name].value)
        if not col.nullable:
            st.flag("null", col.name, missing, f"Column {col.name!r} must not be empty.",
                    raw[name].value)
    return typed


def _report(st: Findings, source: str, received: int, keep: np.ndarray, quarantined: int,
            malformed: tuple[tuple[int, str, str], ...], checks: tuple[BatchCheck, ...],
            mapped: TaxonomyHits) -> Report:
    """The report: row problems in check order (malformed rows last), the warnings, the
    batch checks and the accepted rows a taxonomy re-coded."""
    problems = [p for _, p in sorted(st.problems, key=lambda rp: rp[0])]
    if malformed:
        problems.append(malformed_problem(malformed))
    warnings = st.warnings + [b.message for b in checks if b.status == "warn"]
    report = Report(source, received, int(keep.sum()), quarantined, tuple(problems),
                    tuple(warnings), checks, mapped_counts(mapped, keep))
    assert report.accepted + report.quarantined == report.received
    return report


def _table(contract: Contract, typed: dict[str, pa.Array],
           flags: dict[str, np.ndarray]) -> pa.Table:
    """Every row typed by the contract, columns in its order, then the flag columns."""
    n = len(next(iter(typed.values()))) if typed else 0
    arrays = [typed[c.name] for c in contract.columns] + [
        pa.array(flags.get(f, np.zeros(n, bool)), pa.bool_()) for f in contract.flag_columns]
    fields = [pa.field(c.name, ARROW_TYPES[c.dtype]) for c in contract.columns] + [
        pa.field(f, pa.bool_()) for f in contract.flag_columns]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
