"""Validate a batch against its contract: every problem at once, nothing lost.

``validate`` checks every row against every rule, then splits the batch: rows with no
problem are accepted (typed as the contract says), rows with any problem go to
quarantine with their original values and every reason. Always
``accepted + quarantined == received``.

Order of work: the schema policy (unexpected, renamed and missing columns), the type of
every value, the taxonomy mapping (old codes to new), the value checks (null, range,
allowed, format) on the mapped values, uniqueness of the key (within the batch and
against the table), then the batch checks (freshness, volume), which warn or, when
declared with ``on_fail="reject"``, quarantine the whole batch. ``history_check`` checks
a table's history per entity (``min_history``).

The work is columnar: Arrow arrays and numpy masks, no per-row Python except for the few
values no vectorised parser reads (they are parsed one by one, with the same rules).

Modules: ``engine`` (``validate``: the steps in order), ``report`` (what it returns),
``findings`` (problems as they are found), ``raw`` (columns as received), ``schema``,
``parsing`` (types), ``taxonomy``, ``values`` (range, allowed, format), ``keys``
(uniqueness), ``batch`` (freshness, volume, history), ``quarantine``, ``arrays`` (masks
and values between numpy and Arrow).

Example:
    >>> import pandas as pd
    >>> from tuesday.project import Column, Contract
    >>> c = Contract((Column("id", "int", nullable=False), Column("x", "float", min=0)),
    ...              unique=("id",))
    >>> r = validate(pd.DataFrame({"id": ["1", "2", "2"], "x": ["0.5", "-1", "3"]}), c)
    >>> (r.report.received, r.report.accepted, r.report.quarantined)
    (3, 1, 2)
"""

from tuesday.data.contracts.batch import history_check
from tuesday.data.contracts.engine import validate
from tuesday.data.contracts.findings import MAX_EXAMPLES
from tuesday.data.contracts.parsing import ARROW_TYPES
from tuesday.data.contracts.report import (
    BatchCheck,
    CheckCount,
    Mapped,
    Problem,
    Report,
    Validation,
    to_pandas,
)

__all__ = ["ARROW_TYPES", "MAX_EXAMPLES", "BatchCheck", "CheckCount", "Mapped", "Problem", "Report",
           "Validation", "history_check", "to_pandas", "validate"]
