"""What a model's monitor watches besides its defaults: key features (a price) whose drift
alone is an alert, seasonal features (weather) left out of the dataset-drift vote, and
the absolute limits of a day's accuracy.

The monitor (:mod:`tuesday.watch`) and the daily loop read it; nothing here runs.

Example:
    >>> Watch(key=("price",), seasonal=("temp_last_known",)).key_ticks
    3
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Watch:
    """What the monitor watches besides its defaults.

    Attributes:
        key: Features whose drift alone raises an alert (a price, a cost). Each is
            judged on its own: by its distribution (Evidently's test) and, for a panel,
            by its index, the median over entities of each one's recent mean relative
            to its own mean in the reference window (a 6% price rise across 91 items
            is an index of 1.06, however different their prices are).
        seasonal: Features that change with the season by nature (weather): their
            drift is reported but left out of the dataset-drift share. Calendar and
            holiday features, fixed by the date, always are.
        key_ticks: Consecutive loop ticks a key feature must drift before the alert.
        max_index_change: A key feature's index beyond ``1 ± max_index_change`` is
            drift (0.05 = a 5% move of the typical entity).
        max_error_ratio: A target day whose primary metric is worse than this many
            times the backtest's (and than the backtest's worst days, its 99th
            percentile) is an accuracy anomaly, whatever the baselines did (they fail
            the same way in a storm).
        max_total_ratio: A target day whose forecast summed over entities is above
            this many times the actual total, or below its inverse (and beyond what the
            backtest's days showed), is an accuracy anomaly.
    """

    key: tuple[str, ...] = ()
    seasonal: tuple[str, ...] = ()
    key_ticks: int = 3
    max_index_change: float = 0.05
    max_error_ratio: float = 2.0
    max_total_ratio: float = 2.0


def check_watch(w: Any, where: str, features: tuple[str, ...]) -> list[str]:
    """Every problem of a ``Watch`` declaration, as sentences (empty if none)."""
    if not isinstance(w, Watch):
        return [f"{where}: watch must be a tuesday.project.Watch; got "
                f"{type(w).__name__} {w!r}."]
    out = []
    for name in ("key", "seasonal"):
        v = getattr(w, name)
        if not isinstance(v, tuple) or not all(isinstance(x, str) for x in v):
            out.append(f"{where}: the watch's {name!r} must be a tuple of feature names. "
                       f"Got {v!r}.")
            continue
        unknown = [x for x in v if x not in features]
        if unknown:
            out.append(f"{where}: the watch's {name!r} names {', '.join(map(repr, unknown))}, "
                       f"which {'is not a feature' if len(unknown) == 1 else 'are not features'}"
                       f" of the model (features: {', '.join(features)}).")
    if isinstance(w.key_ticks, bool) or not isinstance(w.key_ticks, int) or w.key_ticks < 1:
        out.append(f"{where}: the watch's 'key_ticks' must be a whole number >= 1. "
                   f"Got {w.key_ticks!r}.")
    for name, low in (("max_index_change", 0.0), ("max_error_ratio", 1.0),
                      ("max_total_ratio", 1.0)):
        v = getattr(w, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                or v <= low:
            out.append(f"{where}: the watch's {name!r} must be a number above {low:g}. "
                       f"Got {v!r}.")
    return out
