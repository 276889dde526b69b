"""Checks of the batch as a whole (freshness, volume) and of the table's history per
entity (``history_check``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.data.contracts.arrays import fixed_values
from tuesday.data.contracts.findings import Findings
from tuesday.data.contracts.raw import RawColumn
from tuesday.data.contracts.report import BatchCheck
from tuesday.project import Contract, MinHistory, duration, parse_time


def freshness_check(st: Findings, contract: Contract, typed: dict[str, pa.Array],
                    time: str | None, as_of: datetime | pd.Timestamp | None,
                    raw: dict[str, RawColumn], columns: dict[str, str]) -> BatchCheck | None:
    """Whether the newest event of the batch is within the contract's ``freshness``
    of ``as_of`` (None when the contract declares no freshness)."""
    rule = contract.freshness
    if rule is None:
        return None
    name = rule.column or time
    if name is None or name not in typed:
        return BatchCheck("freshness", "skipped",
                          f"Freshness of {contract.names and name!r} could not be checked: "
                          "the contract has no such time column.")
    if as_of is None:
        return BatchCheck("freshness", "skipped",
                          "Freshness was not checked: the ingest gave no as_of time.")
    within = duration(rule.within, what="freshness 'within'")
    at = parse_time(as_of) if not isinstance(as_of, pd.Timestamp) else as_of
    values, valid = fixed_values(typed[name], np.int64)
    newest = pd.Timestamp(int(values[valid].max()), unit="us") if valid.any() else None
    details: dict[str, Any] = {"column": name, "within": rule.within,
                               "as_of": at.isoformat(),
                               "newest": newest.isoformat() if newest is not None else None}
    if newest is not None and at - newest <= within:
        return BatchCheck("freshness", "ok",
                          f"The newest {name!r} ({newest.isoformat()}) is within "
                          f"{rule.within} of as_of {at.isoformat()}.", details)
    if newest is None:
        message = (f"Freshness: the batch has no readable {name!r}, so its newest event "
                   f"cannot be within {rule.within} of as_of {at.isoformat()}.")
    else:
        message = (f"Freshness: the newest {name!r} in the batch is {newest.isoformat()}, "
                   f"{_age(at - newest)} before as_of {at.isoformat()}; the contract expects "
                   f"data within {rule.within}. Check that the upstream delivery is not "
                   "stale.")
    if rule.on_fail == "reject":
        message += " The contract rejects stale batches (on_fail='reject'): every row is " \
                   "quarantined; re-ingest when fresh data arrives."
        source = raw[columns[name]].value if name in columns else None
        st.flag("freshness", name, np.ones(st.n, bool), message, source)
    return BatchCheck("freshness", "reject" if rule.on_fail == "reject" else "warn",
                      message, details)


def _age(delta: pd.Timedelta) -> str:
    hours = delta / pd.Timedelta(hours=1)
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours"


def volume_check(st: Findings, contract: Contract, received: int,
                 recent: Sequence[int] | None) -> BatchCheck | None:
    """Whether the rows received are within the contract's ratios of the median of the
    last accepted ingests (None when the contract declares no volume)."""
    rule = contract.volume
    if rule is None:
        return None
    history = [int(v) for v in (recent or ())][:rule.history]
    if not history:
        return BatchCheck("volume", "skipped",
                          "Volume was not checked: no earlier ingest of this source accepted "
                          "rows yet.")
    median = float(np.median(history))
    ratio = received / median if median else math.inf
    details = {"received": received, "median": median, "ratio": round(ratio, 4),
               "history": history, "min_ratio": rule.min_ratio, "max_ratio": rule.max_ratio}
    if rule.min_ratio <= ratio <= rule.max_ratio:
        return BatchCheck("volume", "ok",
                          f"Received {received} rows, {ratio:.2f} times the median {median:g} "
                          f"of the last {len(history)} accepted ingest(s).", details)
    message = (f"Volume: received {received} rows, {ratio:.2f} times the median {median:g} "
               f"of the last {len(history)} accepted ingest(s); the contract expects "
               f"{rule.min_ratio:g} to {rule.max_ratio:g} times. Check for a truncated or "
               "duplicated delivery.")
    if rule.on_fail == "reject":
        message += " The contract rejects such batches (on_fail='reject'): every row is " \
                   "quarantined."
        st.flag("volume", "*", np.ones(st.n, bool), message)
    return BatchCheck("volume", "reject" if rule.on_fail == "reject" else "warn", message,
                      details)


def history_check(table: pa.Table, rule: MinHistory, *, entity: str, time: str,
                  source: str = "batch") -> BatchCheck:
    """Which entities of ``table`` have fewer than ``rule.periods`` distinct event times.

    Example:
        >>> from tuesday.project import MinHistory
        >>> t = pa.table({"s": ["a", "a", "b"], "d": [1, 2, 1]})
        >>> history_check(t, MinHistory(periods=2), entity="s", time="d").details["short"]
        1
    """
    counts = table.select([entity, time]).group_by(entity).aggregate(
        [(time, "count_distinct")])
    names = counts.column(entity).to_pylist()
    periods = counts.column(f"{time}_count_distinct").to_pylist()
    short = sorted((int(p), str(e)) for e, p in zip(names, periods, strict=True)
                   if e is not None and p < rule.periods)
    details = {"entity": entity, "periods": rule.periods, "entities": len(names),
               "short": len(short),
               "examples": [{"entity": e, "periods": p} for p, e in short[:rule.examples]]}
    if not short:
        return BatchCheck("min_history", "ok",
                          f"Every {entity} of {source!r} has at least {rule.periods} periods "
                          "of history.", details)
    shown = ", ".join(f"{e} ({p})" for p, e in short[:rule.examples])
    more = f" and {len(short) - rule.examples} more" if len(short) > rule.examples else ""
    return BatchCheck("min_history", "warn",
                      f"{len(short)} of {len(names)} {entity} value(s) of {source!r} have "
                      f"fewer than {rule.periods} periods of history: {shown}{more}. Their "
                      "features and backtests rest on little data.", details)
