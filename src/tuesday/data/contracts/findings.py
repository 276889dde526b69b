"""The problems and failing-row masks of one validation as the checks find them, and
values as a report shows them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from tuesday.data.contracts.arrays import first_positions
from tuesday.data.contracts.report import Problem

MAX_EXAMPLES = 5
_PHASE = {"extra_column": 0, "missing_column": 0, "type": 1, "null": 1, "range": 1,
          "allowed": 1, "format": 1, "duplicate_key": 2, "existing_key": 2, "freshness": 3,
          "volume": 3}
_COLUMN_CHECKS = ("type", "null", "range", "allowed", "format")


class Findings:
    """Problems and failing-row masks as they are found."""

    def __init__(self, n: int, rows: np.ndarray, names: tuple[str, ...]) -> None:
        self.n = n
        self.rows = rows
        self.position = {name: i for i, name in enumerate(names)}
        self.problems: list[tuple[tuple[int, ...], Problem]] = []
        self.bad: dict[str, np.ndarray] = {}
        self.ranks: dict[str, tuple[int, ...]] = {}
        self.warnings: list[str] = []

    def rank(self, key: str) -> tuple[int, ...]:
        return self.ranks[key]

    def flag(self, check: str, column: str, mask: np.ndarray, message: str,
             value: Callable[[int], Any] | None = None) -> None:
        count = int(np.count_nonzero(mask))
        if not count:
            return
        idx = first_positions(mask, min(count, MAX_EXAMPLES))
        examples = tuple({"row": int(self.rows[i]),
                          "value": value(int(i)) if value is not None else None}
                         for i in idx)
        seq = len(self.problems)
        phase = _PHASE.get(check, 3)
        rank = (phase, self.position.get(column, 0) if phase == 1 else seq,
                _COLUMN_CHECKS.index(check) if check in _COLUMN_CHECKS else 0, seq)
        self.problems.append((rank, Problem(check, column, count, message, examples)))
        key = f"{check}:{column}"
        if key in self.bad:
            self.bad[key] = self.bad[key] | mask
        else:
            self.bad[key] = mask
            self.ranks[key] = rank



def plain_value(v: Any) -> Any:
    """A value as plain JSON-able Python (None for every kind of missing)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and np.isnan(v):
            return None
    if isinstance(v, datetime | pd.Timestamp):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return v if isinstance(v, int | float | str | bool) else str(v)


def example_value(v: Any) -> Any:
    """A value as shown in a report: strict JSON (no infinity, no 400-digit number)."""
    v = plain_value(v)
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**63:
        return str(v)
    return v
