"""A model's policy: when the daily loop retrains it and what it does with the new version.

The loop (:mod:`tuesday.loop`) reads it; nothing here runs.

Example:
    >>> Policy(schedule="7d", drift_ticks=3, auto_promote=False).schedule_days
    7
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from tuesday.errors import TuesdayError
from tuesday.project.routes import Email, Log, Webhook
from tuesday.project.times import timedelta_of


@dataclass(frozen=True)
class Policy:
    """When the daily loop retrains a model and what it does with the new version.

    Attributes:
        schedule: Retrain when the newest version is at least this old (``'7d'``);
            None for no scheduled retrain.
        drift_ticks: Alert and retrain after this many consecutive ticks with dataset
            drift (counted since the last retrain); None: alert after 5, never retrain.
        on_degraded: Retrain when the production version's accuracy on ground truth over
            ``quality_window`` is degraded: worse than its best baseline, or worse than
            its own backtest by more than ``max_degradation``.
        auto_promote: Promote a retrained version by itself when it passes its gates;
            otherwise (or when a gate fails) it stays a candidate awaiting approval and
            an alert says so.
        routes: Where the loop's alerts go (``tuesday.project.routes``: Log, Webhook, Email).
        min_days_between_retrains: No trigger retrains sooner than this many days after
            the newest version was trained.
        drift_window: The recent served features checked for drift...
        drift_reference: ...against those served in this window just before.
        quality_window: The targets whose ground truth judges the accuracy.
        min_days: Fewest distinct target days with ground truth (rows, for a model
            without a time axis) before accuracy is judged, and fewest target days
            served without any ground truth before that is an alert: a store of 133
            items gives 133 rows a day, but one day is one day of evidence.
        min_rows: Fewest rows with ground truth besides (default 1).
        max_degradation: How much worse than its backtest (relative, on the primary
            metric) the live accuracy may be before it counts as degraded.
        challenger: When production is degraded and a retrained version fails its
            gates, promote it anyway if it beats production on the days production
            served (its out-of-sample backtest against the served answers, on ground
            truth); the promotion is audited as an override that says so.

    Example:
        >>> Policy(schedule=None, drift_ticks=2).triggers
        ('drift', 'quality')
    """

    schedule: str | None = "7d"
    drift_ticks: int | None = 5
    on_degraded: bool = True
    auto_promote: bool = True
    routes: tuple[Log | Webhook | Email, ...] = (Log(),)
    min_days_between_retrains: int = 2
    drift_window: str = "7d"
    drift_reference: str = "28d"
    quality_window: str = "14d"
    min_days: int = 7
    min_rows: int = 1
    max_degradation: float = 1.0
    challenger: bool = True
    kind: str = field(default="policy", init=False)

    @property
    def schedule_days(self) -> int | None:
        if self.schedule is None:
            return None
        return int(timedelta_of(self.schedule, what="schedule") / timedelta(days=1))

    @property
    def triggers(self) -> tuple[str, ...]:
        return tuple(n for n, on in (("schedule", self.schedule is not None),
                                     ("drift", self.drift_ticks is not None),
                                     ("quality", self.on_degraded)) if on)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["routes"] = [r.key for r in self.routes]
        d.pop("kind")
        return d


def check_policy(p: Any, where: str) -> list[str]:
    """Every problem of a policy declaration, as sentences (empty if none)."""
    if not isinstance(p, Policy):
        return [f"{where}: policy must be a tuesday.project.Policy; got {type(p).__name__} {p!r}."]
    out = []
    for name in ("schedule",):
        v = getattr(p, name)
        if v is not None and not _is_days(v):
            out.append(f"{where}: the policy's {name!r} must be a whole number of days like "
                       f"'7d', or None. Got {v!r}.")
    for name in ("drift_window", "drift_reference", "quality_window"):
        if not _is_days(getattr(p, name)):
            out.append(f"{where}: the policy's {name!r} must be a whole number of days like "
                       f"'14d'. Got {getattr(p, name)!r}.")
    for name, low in (("drift_ticks", 1), ("min_days_between_retrains", 0), ("min_rows", 1),
                      ("min_days", 1)):
        v = getattr(p, name)
        if v is None and name == "drift_ticks":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            out.append(f"{where}: the policy's {name!r} must be a whole number >= {low}"
                       + (" (or None)" if name == "drift_ticks" else "") + f". Got {v!r}.")
    if isinstance(p.max_degradation, bool) or not isinstance(p.max_degradation, int | float) \
            or not p.max_degradation >= 0:
        out.append(f"{where}: the policy's 'max_degradation' must be a number >= 0 (0.5 = "
                   f"50% worse than the backtest). Got {p.max_degradation!r}.")
    for name in ("on_degraded", "auto_promote", "challenger"):
        if not isinstance(getattr(p, name), bool):
            out.append(f"{where}: the policy's {name!r} must be True or False. "
                       f"Got {getattr(p, name)!r}.")
    if not isinstance(p.routes, tuple) or not all(
            isinstance(r, Log | Webhook | Email) for r in p.routes):
        out.append(f"{where}: the policy's 'routes' must be a tuple of alert routes "
                   f"(Log(), Webhook(...), Email(...)). Got {p.routes!r}.")
    return out


def _is_days(v: Any) -> bool:
    try:
        d = timedelta_of(v, what="duration")
    except TuesdayError:
        return False
    return d > timedelta(0) and d % timedelta(days=1) == timedelta(0)
