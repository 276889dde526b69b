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


#: the holiday name of a day that is no holiday (a category of its own, not missing)
NO_HOLIDAY = "(no holiday)"


@lru_cache(maxsize=32)
def _holidays(country: str, first: int, last: int) -> dict[np.datetime64, str]:
    """The holidays of ``country`` (``'DE'``, or a subdivision ``'DE-BY'``) by day."""
    code, _, subdiv = country.partition("-")
    days = holidays_pkg.country_holidays(code, subdiv=subdiv or None,
                                         years=range(first, last + 1))
    return {np.datetime64(d, "D"): str(name) for d, name in sorted(days.items())}


def _holiday_days(country: str, first: int, last: int) -> np.ndarray:
    return np.array(sorted(_holidays(country, first, last)), dtype="datetime64[D]")


def holiday_values(country: str, part: str, times: pd.Series) -> np.ndarray:
    """Holiday features of each date: ``is_holiday`` (0/1), ``days_to_next`` and
    ``days_since_last`` holiday (capped at 366), or the holiday's ``name``
    (``NO_HOLIDAY`` on other days). ``country`` may name a subdivision: ``'DE-BY'``.

    Example:
        >>> holiday_values("US", "is_holiday", pd.Series(pd.to_datetime(["2024-07-04"])))
        array([1.])
    """
    t = pd.to_datetime(times)
    out = np.full(len(t), None if part == "name" else np.nan,
                  dtype=object if part == "name" else float)
    valid = t.notna().to_numpy()
    if not valid.any():
        return out
    days = t[valid].to_numpy().astype("datetime64[D]")
    years = pd.DatetimeIndex(t[valid]).year
    hol = _holiday_days(country, int(years.min()) - 1, int(years.max()) + 1)
    if part == "name":
        names = _holidays(country, int(years.min()) - 1, int(years.max()) + 1)
        out[valid] = [names.get(d, NO_HOLIDAY) for d in days]
    elif part == "is_holiday":
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
