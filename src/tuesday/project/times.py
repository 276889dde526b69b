"""Durations and times as a project writes them ('14d', '6h', ISO 8601 times)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tuesday.errors import TuesdayError

if TYPE_CHECKING:
    import pandas as pd

_DURATION = re.compile(r"^(\d+)([dh])$")


def duration(value: str | int, *, what: str) -> pd.Timedelta:
    """Parse a duration like ``'14d'`` or ``'6h'`` (an int means days) to a pandas
    Timedelta, for the stages that compute with pandas.

    Example:
        >>> duration("14d", what="horizon")
        Timedelta('14 days 00:00:00')
    """
    import pandas as pd  # declarations are checked without pandas: see timedelta_of

    return pd.Timedelta(timedelta_of(value, what=what))


def timedelta_of(value: str | int, *, what: str) -> timedelta:
    """Parse a duration like ``'14d'`` or ``'6h'`` (an int means days), without pandas.

    Example:
        >>> timedelta_of("36h", what="lag")
        datetime.timedelta(days=1, seconds=43200)
    """
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        if value < 0:
            raise TuesdayError(
                f"The {what} must be a non-negative duration like '14d'. Got {value} instead."
            )
        return timedelta(days=value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise TuesdayError(
            f"The {what} must be a duration like '14d' (days) or '6h' (hours). "
            f"Got {value!r} instead."
        )
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(days=n) if unit == "d" else timedelta(hours=n)


#: ISO 8601 as users write it: a date, optionally a time (``T`` or one space) to the
#: minute, second or fraction, optionally ``Z`` or an offset. Nothing else: '08/09/2016'
#: is August 9 in one country and September 8 in another, so it is refused.
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}"
                  r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$")


def parse_time(value: Any, *, what: str = "as_of") -> pd.Timestamp:
    """Parse a time given by a user: an ISO 8601 string (``'2016-06-30'``,
    ``'2016-06-30T06:00'``, ``'2016-06-30T06:00+02:00'``, ``'...Z'``) or a datetime.
    Aware times become naive UTC. Every other spelling ('08/09/2016', 'now') is refused
    with an error that names ``what`` and the value received.

    Example:
        >>> parse_time("2016-06-30T08:00+02:00")
        Timestamp('2016-06-30 06:00:00')
    """
    import numpy as np  # only where a time is parsed: declaring a project needs neither
    import pandas as pd

    ts = None
    if isinstance(value, datetime | date | np.datetime64) and not isinstance(value, bool):
        ts = pd.Timestamp(value)
    elif isinstance(value, str) and _ISO.match(value.strip()):
        try:
            ts = pd.Timestamp(value.strip().replace("Z", "+00:00"))
        except (ValueError, TypeError, OverflowError):
            ts = None
    if ts is None or pd.isna(ts):
        raise TuesdayError(f"{what} must be a date or time in ISO 8601, e.g. 2016-08-09 or "
                           f"2016-08-09T06:00 (optionally with Z or an offset like +02:00); "
                           f"got {value!r}.",
                           fix=f"Give {what} as an ISO 8601 date, e.g. 2016-08-09.")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def days(value: str | int) -> int:
    return int(timedelta_of(value, what="duration") / timedelta(days=1))


def norm_days(value: str | int) -> str:
    """``'14d'`` for 14 or '14d', ``'36h'`` for '36h' (whole days as days: '48h' is
    '2d'); a value that is not a duration is kept as given, and ``check_project`` reports
    it with every other problem."""
    try:
        hours = int(timedelta_of(value, what="duration") / timedelta(hours=1))
    except TuesdayError:
        return str(value)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"

