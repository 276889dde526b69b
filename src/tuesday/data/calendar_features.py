"""Features known in advance: calendar parts and holidays of the target time."""

from __future__ import annotations

from functools import lru_cache

import holidays as holidays_pkg
import numpy as np
import pandas as pd


def calendar_values(part: str, times: pd.Series) -> np.ndarray:
    """A calendar part of each time (day_of_week: Monday=0).

    Example:
        >>> calendar_values("day_of_week", pd.Series(pd.to_datetime(["2024-01-01"])))
        array([0.])
    """
    t = pd.to_datetime(times).dt
    values = {
        "day_of_week": lambda: t.day_of_week,
        "month": lambda: t.month,
        "day_of_year": lambda: t.day_of_year,
        "day_of_month": lambda: t.day,
        "week_of_year": lambda: t.isocalendar().week,
        "year": lambda: t.year,
    }[part]()
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float,
                                                                        na_value=np.nan)


@lru_cache(maxsize=32)
def _holiday_days(country: str, first: int, last: int) -> np.ndarray:
    days = holidays_pkg.country_holidays(country, years=range(first, last + 1))
    return np.array(sorted(np.datetime64(d, "D") for d in days), dtype="datetime64[D]")


def holiday_values(country: str, part: str, times: pd.Series) -> np.ndarray:
    """Holiday features of each date: ``is_holiday`` (0/1), ``days_to_next`` and
    ``days_since_last`` holiday (capped at 366).

    Example:
        >>> holiday_values("US", "is_holiday", pd.Series(pd.to_datetime(["2024-07-04"])))
        array([1.])
    """
    t = pd.to_datetime(times)
    out = np.full(len(t), np.nan)
    valid = t.notna().to_numpy()
    if not valid.any():
        return out
    days = t[valid].to_numpy().astype("datetime64[D]")
    years = pd.DatetimeIndex(t[valid]).year
    hol = _holiday_days(country, int(years.min()) - 1, int(years.max()) + 1)
    if part == "is_holiday":
        idx = np.searchsorted(hol, days)
        hit = (idx < len(hol)) & (hol[np.minimum(idx, len(hol) - 1)] == days)
        out[valid] = hit.astype(float)
    elif part == "days_to_next":
        idx = np.searchsorted(hol, days, side="left")
        nxt = hol[np.minimum(idx, len(hol) - 1)]
        diff = (nxt - days).astype(int).astype(float)
        out[valid] = np.where(idx < len(hol), np.minimum(diff, 366), 366)
    else:  # days_since_last
        idx = np.searchsorted(hol, days, side="right") - 1
        prev = hol[np.maximum(idx, 0)]
        diff = (days - prev).astype(int).astype(float)
        out[valid] = np.where(idx >= 0, np.minimum(diff, 366), 366)
    return out
