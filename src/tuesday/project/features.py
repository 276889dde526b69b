"""Entities' features: lags, windows, lookups, calendar, holidays, request inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuesday.project.times import norm_days as _norm_days

FEATURE_KINDS = ("lag", "window", "lookup", "scheduled", "calendar", "holiday", "request")
#: ``last`` and ``time_since_last`` (seconds) read the latest event in the window
WINDOW_AGGS = ("mean", "sum", "min", "max", "count", "last", "time_since_last")
CALENDAR_PARTS = ("day_of_week", "month", "day_of_year", "day_of_month", "week_of_year", "year")
HOLIDAY_PARTS = ("is_holiday", "days_to_next", "days_since_last", "name")
#: a feature's type: a number, or text taken as a category (LightGBM's own categories;
#: the codes are learned in training and recorded with the model)
FEATURE_DTYPES = ("float", "category")
#: how explanations describe a feature (see ``Feature.describe``)
Describe = str | Callable[[Any], str] | None


@dataclass(frozen=True)
class Feature:
    """A named feature; one definition computes the training and the serving value.

    Build them with the helpers below (``lag``, ``window``, ``lookup``...), which also
    give deterministic names such as ``rides_lag_14d``.
    """

    name: str
    kind: str
    source: str | None = None
    column: str | None = None
    lag: str = "0d"
    window: str = "1d"
    agg: str = "mean"
    part: str | None = None
    country: str | None = None
    dtype: str = "float"
    default: float | None = None
    #: holidays of each entity's own region: (source, column) holding the subdivision
    region: tuple[str, str] | None = None
    #: how explanations describe the feature: a template with ``{value}`` ("{value} rides
    #: two weeks earlier") or a function of the value (None when missing) returning a phrase
    describe: Describe = field(default=None, compare=False)


def lag(source: str, column: str, days: str | int, *, name: str | None = None,
        describe: Describe = None) -> Feature:
    """The value of ``column`` exactly ``days`` before the target time.

    Example:
        >>> lag("ridership", "rides", "14d").name
        'rides_lag_14d'
    """
    d = _norm_days(days)
    return Feature(name or f"{column}_lag_{d}", "lag", source, column, lag=d,
                   describe=describe)


def window(
    source: str,
    column: str,
    days: str | int,
    *,
    lag: str | int,
    agg: str = "mean",
    name: str | None = None,
    default: float | None = None,
    describe: Describe = None,
) -> Feature:
    """An aggregate of ``column`` over ``days`` ending ``lag`` before the target time.

    ``agg`` is one of ``WINDOW_AGGS``; ``last`` is the value of the latest row in the
    window (the largest if several share that time). Missing values are skipped; a
    window without rows gives ``default`` (``count`` gives 0). ``days`` may be hours
    (``'1h'``), for event features (see ``tuesday.data.events``).

    Example:
        >>> window("ridership", "rides", "28d", lag="14d").name
        'rides_mean_28d_lag_14d'
        >>> window("transactions", "amount", "1h", lag="0d", agg="count").name
        'amount_count_1h_lag_0d'
    """
    w, g = _norm_days(days), _norm_days(lag)
    return Feature(name or f"{column}_{agg}_{w}_lag_{g}", "window", source, column,
                   lag=g, window=w, agg=agg, default=default, describe=describe)


def time_since_last(source: str, column: str | None = None, *, within: str | int = "365d",
                    lag: str | int = "0d", name: str | None = None,
                    default: float | None = None, describe: Describe = None) -> Feature:
    """Seconds from ``lag`` before the target time back to the latest row of ``source``
    (with ``column`` not missing, if given) in the ``within`` before it; ``default`` when
    there is none. An event feature: see ``tuesday.data.events``.

    Example:
        >>> time_since_last("transactions").name
        'transactions_seconds_since_last'
        >>> time_since_last("transactions", "amount", lag="1h").name
        'amount_seconds_since_last_lag_1h'
    """
    w, g = _norm_days(within), _norm_days(lag)
    base = f"{column or source}_seconds_since_last" + ("" if g == "0d" else f"_lag_{g}")
    return Feature(name or base, "window", source, column, lag=g, window=w,
                   agg="time_since_last", default=default, describe=describe)


def lookup(source: str, column: str, *, name: str | None = None,
           default: float | None = None, dtype: str = "float",
           describe: Describe = None) -> Feature:
    """The latest value of ``column`` for the entity as known at the forecast origin.

    ``dtype="category"`` for a text column (an item's category): the model takes it as
    a category (see ``FEATURE_DTYPES``)."""
    return Feature(name or column, "lookup", source, column, dtype=dtype, default=default,
                   describe=describe)


def scheduled(source: str, column: str, *, name: str | None = None,
              default: float | None = None, dtype: str = "float",
              describe: Describe = None) -> Feature:
    """A value known in advance for the target time itself (a game schedule, a promotion
    plan, a holiday's name with ``dtype="category"``), used only if it was available at
    the forecast origin."""
    return Feature(name or column, "scheduled", source, column, default=default,
                   dtype=dtype, describe=describe)


def calendar(part: str, *, name: str | None = None, describe: Describe = None) -> Feature:
    """A calendar part of the target time (``day_of_week``, ``month``...)."""
    return Feature(name or part, "calendar", part=part, describe=describe)


def holiday(country: str, part: str = "is_holiday", *, name: str | None = None,
            region: tuple[str, str] | None = None, describe: Describe = None) -> Feature:
    """Holiday features of the target date from the ``holidays`` package; ``country``
    may name a subdivision, ``'DE-BY'``. Part ``name`` is the holiday's name, a category
    (``'(no holiday)'`` on other days). With ``region=(source, column)`` each entity
    gets the holidays of its own subdivision, read from that source (a store's state)
    as known at the forecast origin; an entity without one gets the country's.

    Example:
        >>> holiday("DE-BY", "name").dtype
        'category'
        >>> holiday("DE", region=("stores", "state")).region
        ('stores', 'state')
    """
    return Feature(name or f"holiday_{part}", "holiday", part=part, country=country,
                   dtype="category" if part == "name" else "float", region=region,
                   describe=describe)


def request(name: str, dtype: str = "float", *, default: float | None = None,
            describe: Describe = None) -> Feature:
    """A value the caller sends with the prediction request."""
    return Feature(name, "request", dtype=dtype, default=default, describe=describe)


