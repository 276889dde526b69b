"""A project is a plain Python module that declares sources, entities, features and models.

The declarations are frozen dataclasses that hold only what the user wrote; anything
learned lives elsewhere (runs, artifacts). ``load_project`` imports the module by path and
checks every declaration at once, raising one error that lists every problem.

Example:
    >>> from tuesday.project import Column, Contract, Entity, Source
    >>> station = Entity("station")
    >>> src = Source("ridership", Contract((Column("station", "str", nullable=False),
    ...     Column("date", "date", nullable=False), Column("rides", "float", min=0))),
    ...     time="date", entity=station)
    >>> src.key
    ('station', 'date')
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tuesday import rules
from tuesday.errors import NotFound, TuesdayError
from tuesday.rules import Rule

if TYPE_CHECKING:  # loop.py imports this module
    from tuesday.loop import Policy

DTYPES = ("float", "int", "str", "bool", "date", "timestamp")
FEATURE_KINDS = ("lag", "window", "lookup", "scheduled", "calendar", "holiday", "request")
#: ``last`` and ``time_since_last`` (seconds) read the latest event in the window
WINDOW_AGGS = ("mean", "sum", "min", "max", "count", "last", "time_since_last")
CALENDAR_PARTS = ("day_of_week", "month", "day_of_year", "day_of_month", "week_of_year", "year")
HOLIDAY_PARTS = ("is_holiday", "days_to_next", "days_since_last")
TASKS = ("regression", "binary")
LEARNERS = ("lightgbm", "linear", "sklearn")
BASELINE_KINDS = ("naive", "seasonal_naive", "seasonal_mean", "moving_average", "croston",
                  "tsb", "mean", "prior", "rule")
SERIES_BASELINES = ("naive", "seasonal_naive", "seasonal_mean", "moving_average", "croston",
                    "tsb")
REGRESSION_METRICS = ("rmse", "mae", "wape", "bias", "mase")
BINARY_METRICS = ("auc", "log_loss", "brier", "precision_at_N")
#: slices tuesday derives itself: demand class by ADI and CV squared, and history length
DERIVED_SLICES = ("demand_class", "history")
GATE_KINDS = ("beats_baseline", "slices", "latency", "size", "beats_production")
_DURATION = re.compile(r"^(\d+)([dh])$")


def duration(value: str | int, *, what: str) -> pd.Timedelta:
    """Parse a duration like ``'14d'`` or ``'6h'`` (an int means days).

    Example:
        >>> duration("14d", what="horizon")
        Timedelta('14 days 00:00:00')
    """
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        if value < 0:
            raise TuesdayError(
                f"The {what} must be a non-negative duration like '14d'. Got {value} instead."
            )
        return pd.Timedelta(days=value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise TuesdayError(
            f"The {what} must be a duration like '14d' (days) or '6h' (hours). "
            f"Got {value!r} instead."
        )
    n, unit = int(m.group(1)), m.group(2)
    return pd.Timedelta(days=n) if unit == "d" else pd.Timedelta(hours=n)


def parse_time(value: Any, *, what: str = "as_of") -> pd.Timestamp:
    """Parse a time given by a user: an ISO string (``'2016-06-30'``,
    ``'2016-06-30T06:00+02:00'``) or a datetime. Aware times become naive UTC.

    Example:
        >>> parse_time("2016-06-30T08:00+02:00")
        Timestamp('2016-06-30 06:00:00')
    """
    ts = None
    if isinstance(value, str | datetime) and not isinstance(value, bool):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            ts = None
    if ts is None or pd.isna(ts):
        raise TuesdayError(f"{what} must be a date or time like '2016-06-30' or "
                           f"'2016-06-30T06:00'; got {value!r}.",
                           fix=f"Give {what} as an ISO 8601 string.")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _days(value: str | int) -> int:
    return int(duration(value, what="duration") / pd.Timedelta(days=1))


def _norm_days(value: str | int) -> str:
    """``'14d'`` for 14 or '14d', ``'36h'`` for '36h' (whole days as days: '48h' is
    '2d'); a value that is not a duration is kept as given, and ``check_project`` reports
    it with every other problem."""
    try:
        hours = int(duration(value, what="duration") / pd.Timedelta(hours=1))
    except TuesdayError:
        return str(value)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Column:
    """One column of a contract: its type and the values it may take.

    Attributes:
        name: Column name.
        dtype: One of ``float``, ``int``, ``str``, ``bool``, ``date``, ``timestamp``. Values
            are never converted silently: a ``1.5`` in an ``int`` column is a type problem
            (declare the column ``float`` to accept fractions).
        nullable: Whether a value may be missing (blank text counts as missing).
        min: Smallest allowed value (inclusive; numbers).
        max: Largest allowed value (inclusive; numbers).
        allowed: The only values the column may take.
        format: A regular expression every value of a ``str`` column must fully match,
            e.g. ``r"[A-Z]{2}-\\d{4}"``. ``\\d``, ``\\w`` and ``\\s`` match ASCII
            characters only.
    """

    name: str
    dtype: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None
    format: str | None = None


@dataclass(frozen=True)
class Freshness:
    """Batch check: the newest event time of a batch must be at most ``within`` before the
    ingest's ``as_of``.

    Attributes:
        within: A duration like ``'2d'`` or ``'6h'``.
        column: The time column to read; defaults to the source's ``time``.
        on_fail: ``'warn'`` (default): the rows are accepted and the report warns (the rows
            are not wrong, the delivery is late); ``'reject'``: every row of the batch is
            quarantined with the reason ``freshness:COLUMN``.
    """

    within: str
    column: str | None = None
    on_fail: str = "warn"


@dataclass(frozen=True)
class Volume:
    """Batch check: the number of rows received must lie between ``min_ratio`` and
    ``max_ratio`` times the median of the last ``history`` ingests that accepted rows
    (corrections of quarantined rows are not counted). Skipped until one such ingest
    exists.

    Attributes:
        min_ratio: Lowest allowed ratio to the median (e.g. 0.5: half the usual rows).
        max_ratio: Highest allowed ratio to the median.
        history: How many recent accepted ingests the median is taken over.
        on_fail: ``'warn'`` (default) or ``'reject'``, as for ``Freshness``.
    """

    min_ratio: float = 0.5
    max_ratio: float = 2.0
    history: int = 7
    on_fail: str = "warn"


@dataclass(frozen=True)
class MinHistory:
    """Report item after each ingest: which entities have fewer than ``periods`` distinct
    event times in the table (new stores, new products). It never rejects rows: short
    history is a modelling concern, not bad data.

    Attributes:
        entity: The entity key column; defaults to the source's entity key.
        periods: Distinct event times an entity needs (28 days of daily data: 28).
        examples: How many short entities the report names (the count is always given).
    """

    entity: str | None = None
    periods: int = 28
    examples: int = 10


@dataclass(frozen=True)
class Taxonomy:
    """A dated regrouping of codes so that history is expressed in today's categories.

    At ingest, a row whose event time is before ``effective`` and whose ``column`` holds
    an old code (a key of ``mapping``) gets the new code. Rows on or after ``effective``
    are kept as they are: from that day the codes are the new ones, and an old code may
    even have been reused for something else. Without ``effective`` every row is mapped.
    Mapping happens before the value checks (``allowed``, ``format``) and before
    uniqueness, so two old codes mapped to one new code on the same day are duplicates.
    The mapping is one step: a code cannot be both old and new in one ``Taxonomy``;
    declare several (they apply oldest ``effective`` first). Quarantine keeps the codes
    as received; the ingest report counts the rows mapped.

    Attributes:
        column: A ``str`` or ``int`` column of the contract.
        mapping: ``{old_code: new_code}``.
        effective: The first day of the new codes (``'2016-01-01'``), or None.
    """

    column: str
    mapping: Mapping[Any, Any]
    effective: str | None = None


@dataclass(frozen=True)
class Contract:
    """What the rows of a source must look like.

    Attributes:
        columns: The declared columns.
        unique: Columns whose combination must be unique (within a batch and the table).
        extra_columns: What to do with a column the contract does not declare:
            ``"reject"`` quarantines every row of the batch with the reason
            ``extra_column:NAME``; ``"warn"`` drops the column and warns (``"drop"`` is
            the older name of ``"warn"``); ``"map"`` renames the columns named in
            ``rename`` and rejects any other unexpected column.
        rename: For ``extra_columns="map"``: ``{"name_in_file": "declared_name"}``, for an
            upstream that renamed a column.
        missing_columns: What to do when an optional (nullable) column is absent from a
            batch: ``"fill"`` fills it with nulls and warns, ``"reject"`` quarantines every
            row. A missing required column always quarantines every row.
        freshness: Batch check on the newest event time (see ``Freshness``).
        volume: Batch check on the row count (see ``Volume``).
        min_history: Report of entities with short history (see ``MinHistory``).
    """

    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    extra_columns: str = "reject"
    rename: Mapping[str, str] = field(default_factory=dict)
    missing_columns: str = "fill"
    freshness: Freshness | None = None
    volume: Volume | None = None
    min_history: MinHistory | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Entity:
    """The thing a prediction is about; ``key`` is its column (defaults to the name)."""

    name: str
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)


@dataclass(frozen=True)
class Source:
    """Where rows come from and the contract they must meet.

    Attributes:
        name: Table name in the workspace.
        contract: Columns, types, ranges, uniqueness, schema policy, batch checks.
        time: The event-time column (None for a timeless table such as a customer list).
        available_at: A column saying when each row became known (a weather forecast
            issued before the day it describes). Defaults to the event time.
        entity: The entity whose key column the rows carry (None for global rows).
        taxonomy: One ``Taxonomy`` or a tuple of them: old codes mapped to new ones at
            ingest.
    """

    name: str
    contract: Contract
    time: str | None = None
    available_at: str | None = None
    entity: Entity | None = None
    taxonomy: Taxonomy | tuple[Taxonomy, ...] = ()

    @property
    def key(self) -> tuple[str, ...]:
        """The natural key: entity key and time, or the contract's ``unique`` if declared."""
        if self.contract.unique:
            return self.contract.unique
        parts = [p for p in ((self.entity.key if self.entity else None), self.time) if p]
        return tuple(parts)

    @property
    def taxonomies(self) -> tuple[Taxonomy, ...]:
        """The declared taxonomies, oldest ``effective`` first (undated ones first)."""
        items = (self.taxonomy,) if isinstance(self.taxonomy, Taxonomy) else \
            tuple(self.taxonomy)
        return tuple(sorted(items, key=lambda t: str(t.effective or "")))


# ----------------------------------------------------------------------- features


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


def lag(source: str, column: str, days: str | int, *, name: str | None = None) -> Feature:
    """The value of ``column`` exactly ``days`` before the target time.

    Example:
        >>> lag("ridership", "rides", "14d").name
        'rides_lag_14d'
    """
    d = _norm_days(days)
    return Feature(name or f"{column}_lag_{d}", "lag", source, column, lag=d)


def window(
    source: str,
    column: str,
    days: str | int,
    *,
    lag: str | int,
    agg: str = "mean",
    name: str | None = None,
    default: float | None = None,
) -> Feature:
    """An aggregate of ``column`` over ``days`` ending ``lag`` before the target time.

    ``agg`` is one of ``WINDOW_AGGS``; ``last`` is the value of the latest row in the
    window (the largest if several share that time). Missing values are skipped; a
    window without rows gives ``default`` (``count`` gives 0). ``days`` may be hours
    (``'1h'``), for event features (see ``tuesday.events``).

    Example:
        >>> window("ridership", "rides", "28d", lag="14d").name
        'rides_mean_28d_lag_14d'
        >>> window("transactions", "amount", "1h", lag="0d", agg="count").name
        'amount_count_1h_lag_0d'
    """
    w, g = _norm_days(days), _norm_days(lag)
    return Feature(name or f"{column}_{agg}_{w}_lag_{g}", "window", source, column,
                   lag=g, window=w, agg=agg, default=default)


def time_since_last(source: str, column: str | None = None, *, within: str | int = "365d",
                    lag: str | int = "0d", name: str | None = None,
                    default: float | None = None) -> Feature:
    """Seconds from ``lag`` before the target time back to the latest row of ``source``
    (with ``column`` not missing, if given) in the ``within`` before it; ``default`` when
    there is none. An event feature: see ``tuesday.events``.

    Example:
        >>> time_since_last("transactions").name
        'transactions_seconds_since_last'
        >>> time_since_last("transactions", "amount", lag="1h").name
        'amount_seconds_since_last_lag_1h'
    """
    w, g = _norm_days(within), _norm_days(lag)
    base = f"{column or source}_seconds_since_last" + ("" if g == "0d" else f"_lag_{g}")
    return Feature(name or base, "window", source, column, lag=g, window=w,
                   agg="time_since_last", default=default)


def lookup(source: str, column: str, *, name: str | None = None,
           default: float | None = None, dtype: str = "float") -> Feature:
    """The latest value of ``column`` for the entity as known at the forecast origin."""
    return Feature(name or column, "lookup", source, column, dtype=dtype, default=default)


def scheduled(source: str, column: str, *, name: str | None = None,
              default: float | None = None) -> Feature:
    """A value known in advance for the target time itself (a game schedule, a promotion
    plan), used only if it was available at the forecast origin."""
    return Feature(name or column, "scheduled", source, column, default=default)


def calendar(part: str, *, name: str | None = None) -> Feature:
    """A calendar part of the target time (``day_of_week``, ``month``...)."""
    return Feature(name or part, "calendar", part=part)


def holiday(country: str, part: str = "is_holiday", *, name: str | None = None) -> Feature:
    """Holiday features of the target date from the ``holidays`` package."""
    return Feature(name or f"holiday_{part}", "holiday", part=part, country=country)


def request(name: str, dtype: str = "float", *, default: float | None = None) -> Feature:
    """A value the caller sends with the prediction request."""
    return Feature(name, "request", dtype=dtype, default=default)


# ------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Learner:
    """The learning algorithm and its parameters.

    Kinds: ``lightgbm`` (default), ``linear`` (ridge / Poisson / logistic regression),
    ``sklearn`` (any scikit-learn estimator passed as ``estimator``).
    """

    kind: str = "lightgbm"
    params: Mapping[str, Any] = field(default_factory=dict)
    estimator: Any = None


@dataclass(frozen=True)
class Metric:
    """A user metric: ``fn(actual, predicted) -> float`` (e.g. revenue captured)."""

    name: str
    fn: Callable[[Any, Any], float]
    higher_is_better: bool = False


@dataclass(frozen=True)
class Baseline:
    """A simple reference every model must beat.

    Kinds: ``naive`` (last value known at the origin), ``seasonal_naive`` (the same
    point of the season, ``season`` days, as recently as the horizon allows),
    ``seasonal_mean`` (mean of ``seasons`` such values), ``moving_average`` (mean of the
    last ``window`` days known at the origin), ``croston`` and ``tsb`` (intermittent
    demand, smoothing ``alpha``; TSB also ``beta`` for the demand probability; both read
    one row per period), ``mean`` and ``prior`` (training mean / class rate), ``rule``
    (``fn(frame) -> predictions``, a plain function of the feature frame).
    """

    name: str
    kind: str
    season: int = 7
    seasons: int = 4
    window: int = 28
    alpha: float = 0.1
    beta: float = 0.1
    fn: Callable[[pd.DataFrame], Any] | None = None


@dataclass(frozen=True)
class Backtest:
    """Rolling-origin backtest: ``folds`` test windows of ``step`` each, ending at the
    training cut-off; each trains on labels known ``horizon`` before its window."""

    folds: int = 4
    step: str = "28d"


@dataclass(frozen=True)
class CrossValidation:
    """K-fold cross-validation for data without a time order (seeded, stratified for
    classification)."""

    folds: int = 5


@dataclass(frozen=True)
class Gate:
    """A condition a version must meet to be promoted to production.

    Kinds:
        ``beats_baseline``: the backtest primary metric beats the best baseline by at
            least ``min_lift`` (relative).
        ``slices``: on every declared slice value, the primary metric is not worse than
            the production version's by more than ``tolerance`` (relative).
        ``latency``: the p99 of single-row predictions, timed by loading the artifact,
            is under ``max_ms`` milliseconds.
        ``size``: the artifact is at most ``max_mb`` megabytes.
        ``beats_production``: on the days production served and ground truth arrived,
            the version's out-of-sample backtest predictions are not worse than what
            production answered by more than ``tolerance`` (champion vs challenger).
    """

    kind: str = "beats_baseline"
    min_lift: float = 0.0
    tolerance: float = 0.05
    max_ms: float = 5.0
    max_mb: float = 100.0


@dataclass(frozen=True)
class Model:
    """A model specification: what to predict, from what, how to judge it.

    Attributes:
        name: Registry name.
        entity: What each prediction is about.
        label_source: The source holding the target.
        target: Target column of ``label_source``.
        features: Feature definitions.
        task: ``regression`` or ``binary``.
        horizon: How far ahead of the forecast origin the target lies (``'14d'``);
            every feature must be known at the origin.
        learner: Learning algorithm.
        baselines: At least one simple baseline.
        evaluation: ``Backtest`` or ``CrossValidation``.
        metrics: Metric names; the first is the primary metric used by gates.
        slices: Columns (features or label-source columns) to report metrics by.
        gates: Promotion gates.
        window: Training window (``'730d'``) or None for all history.
        where: Only label rows whose column takes one of the given values, e.g.
            ``{"station": ("Clark_Lake",)}``.
        positive: For ``binary``: the target value that counts as positive.
        seed: One seed for every library.
        rules: Business rules applied after the model, in order (``tuesday.rules``).
        policy: When the daily loop retrains and promotes it (``tuesday.loop.Policy``);
            None means ``Policy()``.
    """

    name: str
    entity: Entity
    label_source: str
    target: str
    features: tuple[Feature, ...]
    baselines: tuple[Baseline, ...]
    task: str = "regression"
    horizon: str = "0d"
    learner: Learner = field(default_factory=Learner)
    evaluation: Backtest | CrossValidation = field(default_factory=Backtest)
    metrics: tuple[str | Metric, ...] = ("rmse", "mae", "wape", "bias")
    slices: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = (Gate(),)
    window: str | None = None
    where: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    positive: Any = 1
    seed: int = 42
    rules: tuple[Rule, ...] = ()
    policy: Policy | None = None

    @property
    def primary_metric(self) -> str:
        first = self.metrics[0]
        return first.name if isinstance(first, Metric) else first

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name if isinstance(m, Metric) else m for m in self.metrics)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)


@dataclass(frozen=True)
class Project:
    """Everything a project declares."""

    name: str
    sources: tuple[Source, ...]
    models: tuple[Model, ...]

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise NotFound(
            f"Source {name!r} is not declared in project {self.name!r}. "
            f"Declared sources: {', '.join(s.name for s in self.sources) or 'none'}.",
            fix="Check the spelling or declare the source in the project module.",
        )

    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise NotFound(
            f"Model {name!r} is not declared in project {self.name!r}. "
            f"Declared models: {', '.join(m.name for m in self.models) or 'none'}.",
            fix="Check the spelling or declare the model in the project module.",
        )


# ------------------------------------------------------------------------ loading


@dataclass(frozen=True)
class LoadedProject:
    """A project and the file it came from."""

    project: Project
    path: Path
    module: Any


def load_project(path: str | Path) -> LoadedProject:
    """Import a project module by file path and check every declaration.

    The module must define a ``Project`` named ``project``.
    """
    p = Path(path)
    if p.is_dir():
        raise TuesdayError(
            f"Project path {str(p)!r} is a folder; expected a Python file.",
            fix="Pass --project path/to/project.py.")
    if not p.is_file():
        raise TuesdayError(
            f"Project file {str(p)!r} does not exist.",
            fix="Pass --project path/to/project.py, or run from a folder holding project.py.",
        )
    mod_name = f"tuesday_project_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise TuesdayError(f"Project file {str(p)!r} is not a Python module.",
                           fix="Give a .py file that defines `project = Project(...)`.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except TuesdayError as exc:
        raise TuesdayError(f"Project file {str(p)!r}: {exc.message}", fix=exc.fix) from exc
    except SystemExit as exc:
        raise TuesdayError(
            f"Project file {str(p)!r} exited (sys.exit({exc.code!r})) while being imported.",
            fix="A project module only declares things; remove the exit call.") from exc
    except Exception as exc:  # the user's module failed: say where, keep their message
        raise TuesdayError(
            f"Project file {str(p)!r} failed to import: {type(exc).__name__}: {exc}.",
            fix="Run `python` on the file to see the full traceback and fix it.",
        ) from exc
    project = getattr(module, "project", None)
    if not isinstance(project, Project):
        raise TuesdayError(
            f"Project file {str(p)!r} must define `project = Project(...)`; "
            f"got {type(project).__name__} instead.",
            fix="Add `project = Project(name=..., sources=(...), models=(...))`.",
        )
    problems = check_project(project)
    if problems:
        raise TuesdayError(
            f"Project {project.name!r} ({p}) has {len(problems)} problem(s):\n- "
            + "\n- ".join(problems),
            fix="Fix the declarations in the project module.",
        )
    return LoadedProject(project, p.resolve(), module)


def check_project(project: Project) -> list[str]:
    """Every problem in the declarations, as sentences (empty if none)."""
    out: list[str] = []
    out.extend(_tuple_of(f"Project {project.name!r}: sources", project.sources, Source))
    out.extend(_tuple_of(f"Project {project.name!r}: models", project.models, Model))
    if out:
        return out
    names = [s.name for s in project.sources]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"Source {dup!r} is declared more than once.")
    models = [m.name for m in project.models]
    for dup in sorted({n for n in models if models.count(n) > 1}):
        out.append(f"Model {dup!r} is declared more than once.")
    for s in project.sources:
        out.extend(_check_source(s))
    for m in project.models:
        out.extend(_check_model(project, m))
    return out


def _tuple_of(what: str, value: Any, kind: type | tuple[type, ...]) -> list[str]:
    """Problems if ``value`` is not a tuple/list of ``kind``."""
    names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
    if not isinstance(value, tuple | list):
        return [f"{what} must be a tuple of {names}; got {type(value).__name__} {value!r}."]
    return [f"{what} must hold only {names}; item {i} is {type(v).__name__} {v!r}."
            for i, v in enumerate(value) if not isinstance(v, kind)]


def _type_problems(m: Model) -> list[str]:
    where = f"Model {m.name!r}"
    out = []
    if not isinstance(m.entity, Entity):
        out.append(f"{where}: entity must be an Entity; got {type(m.entity).__name__} "
                   f"{m.entity!r}.")
    out.extend(_tuple_of(f"{where}: features", m.features, Feature))
    out.extend(_tuple_of(f"{where}: baselines", m.baselines, Baseline))
    out.extend(_tuple_of(f"{where}: gates", m.gates, Gate))
    out.extend(_tuple_of(f"{where}: metrics", m.metrics, (str, Metric)))
    out.extend(_tuple_of(f"{where}: slices", m.slices, str))
    if not isinstance(m.learner, Learner):
        out.append(f"{where}: learner must be a Learner; got {type(m.learner).__name__}.")
    if not isinstance(m.evaluation, Backtest | CrossValidation):
        out.append(f"{where}: evaluation must be Backtest(...) or CrossValidation(...); got "
                   f"{type(m.evaluation).__name__} {m.evaluation!r}.")
    elif not isinstance(m.evaluation.folds, int) or isinstance(m.evaluation.folds, bool):
        out.append(f"{where}: evaluation folds must be a whole number; got "
                   f"{m.evaluation.folds!r}.")
    if not isinstance(m.where, Mapping):
        out.append(f"{where}: where must be a dict like {{'station': ('Clark_Lake',)}}; got "
                   f"{m.where!r}.")
    else:
        for col, values in m.where.items():
            if not isinstance(values, tuple | list):
                out.append(f"{where}: where[{col!r}] must be a tuple of values; got "
                           f"{values!r}.")
    if not isinstance(m.seed, int) or isinstance(m.seed, bool):
        out.append(f"{where}: seed must be a whole number; got {m.seed!r}.")
    out.extend(rules.check(m.rules, where))
    if m.policy is not None:
        from tuesday.loop import check_policy

        out.extend(check_policy(m.policy, where))
    return out


def _check_source(s: Source) -> list[str]:
    if not isinstance(s.contract, Contract):
        return [f"Source {s.name!r}: contract must be a Contract; got "
                f"{type(s.contract).__name__}."]
    c = s.contract
    out = _tuple_of(f"Source {s.name!r}: contract columns", c.columns, Column)
    taxonomies = (s.taxonomy,) if isinstance(s.taxonomy, Taxonomy) else s.taxonomy
    out.extend(_tuple_of(f"Source {s.name!r}: taxonomy", taxonomies, Taxonomy))
    for what, value, kind in (("freshness", c.freshness, Freshness),
                              ("volume", c.volume, Volume),
                              ("min_history", c.min_history, MinHistory)):
        if value is not None and not isinstance(value, kind):
            out.append(f"Source {s.name!r}: contract {what} must be {kind.__name__}(...) or "
                       f"None; got {type(value).__name__} {value!r}.")
    if not isinstance(c.rename, Mapping):
        out.append(f"Source {s.name!r}: contract rename must be a dict like "
                   f"{{'name_in_file': 'declared_name'}}; got {c.rename!r}.")
    if out:
        return out
    cols = c.names
    for dup in sorted({n for n in cols if cols.count(n) > 1}):
        out.append(f"Column {dup!r} is declared more than once in source {s.name!r}.")
    for col in c.columns:
        where = f"Column {col.name!r} of source {s.name!r}"
        if col.dtype not in DTYPES:
            out.append(f"{where} has dtype {col.dtype!r}; expected one of {', '.join(DTYPES)}.")
        if col.name.startswith("_quarantine_"):
            out.append(f"{where}: names starting with '_quarantine_' are reserved for "
                       "exported quarantine files; rename the column.")
        if col.format is not None:
            if col.dtype != "str":
                out.append(f"{where} has a format, which only applies to str columns; got "
                           f"dtype {col.dtype!r}. Remove the format or make the column str.")
            try:
                re.compile(str(col.format))
            except re.error as e:
                out.append(f"{where} has format {col.format!r}, which is not a valid "
                           f"regular expression: {e}.")
        if col.allowed is not None and not isinstance(col.allowed, tuple | list):
            out.append(f"{where}: allowed must be a tuple of values; got {col.allowed!r}.")
    for what, name in (("time", s.time), ("available_at", s.available_at),
                       ("entity key", s.entity.key if s.entity else None)):
        if name and name not in cols:
            out.append(f"The {what} column {name!r} of source {s.name!r} is not in its "
                       f"contract (columns: {', '.join(cols)}).")
    for name in c.unique:
        if name not in cols:
            out.append(f"Unique column {name!r} of source {s.name!r} is not in its contract.")
    policies = ("reject", "warn", "drop", "map")
    if c.extra_columns not in policies:
        out.append(f"extra_columns of source {s.name!r} must be one of "
                   f"{', '.join(map(repr, policies))}; got {c.extra_columns!r}.")
    if c.extra_columns == "map" and not c.rename:
        out.append(f"Source {s.name!r} has extra_columns='map' but no rename mapping; add "
                   "rename={'name_in_file': 'declared_name'}.")
    if c.rename and c.extra_columns != "map":
        out.append(f"Source {s.name!r} declares rename={dict(c.rename)!r}, which is only "
                   f"used with extra_columns='map'; got extra_columns={c.extra_columns!r}.")
    for old, new in c.rename.items():
        if new not in cols:
            out.append(f"rename of source {s.name!r} maps {old!r} to {new!r}, which is not a "
                       f"declared column (columns: {', '.join(cols)}).")
        if old in cols:
            out.append(f"rename of source {s.name!r} maps {old!r}, which is itself a declared "
                       "column; only names that are not declared can be renamed.")
    targets = list(c.rename.values())
    for dup in sorted({t for t in targets if targets.count(t) > 1}):
        out.append(f"rename of source {s.name!r} maps several names to {dup!r}.")
    if c.missing_columns not in ("fill", "reject"):
        out.append(f"missing_columns of source {s.name!r} must be 'fill' or 'reject'; got "
                   f"{c.missing_columns!r}.")
    out.extend(_check_batch_checks(s))
    for t in taxonomies:
        out.extend(_check_taxonomy(s, t))
    return out


def _check_batch_checks(s: Source) -> list[str]:
    c, out = s.contract, []
    for what, check in (("freshness", c.freshness), ("volume", c.volume)):
        if check is not None and check.on_fail not in ("warn", "reject"):
            out.append(f"The {what} check of source {s.name!r} has on_fail="
                       f"{check.on_fail!r}; expected 'warn' or 'reject'.")
    if c.freshness is not None:
        try:
            duration(c.freshness.within, what=f"freshness 'within' of source {s.name!r}")
        except TuesdayError as e:
            out.append(str(e))
        name = c.freshness.column or s.time
        col = c.column(name) if name else None
        if col is None:
            out.append(f"The freshness check of source {s.name!r} needs a time column: "
                       f"declare Source(time=...) or Freshness(column=...); got {name!r}.")
        elif col.dtype not in ("date", "timestamp"):
            out.append(f"The freshness column {name!r} of source {s.name!r} must be a date or "
                       f"timestamp column; got dtype {col.dtype!r}.")
    if c.volume is not None:
        v = c.volume
        if not (isinstance(v.min_ratio, int | float) and isinstance(v.max_ratio, int | float)
                and 0 <= v.min_ratio <= 1 <= v.max_ratio):
            out.append(f"The volume check of source {s.name!r} needs 0 <= min_ratio <= 1 <= "
                       f"max_ratio; got min_ratio={v.min_ratio!r}, max_ratio={v.max_ratio!r}.")
        if not isinstance(v.history, int) or isinstance(v.history, bool) or v.history < 1:
            out.append(f"The volume check of source {s.name!r} needs history >= 1 ingests; "
                       f"got {v.history!r}.")
    if c.min_history is not None:
        h = c.min_history
        entity = h.entity or (s.entity.key if s.entity else None)
        if entity is None or entity not in c.names:
            out.append(f"The min_history check of source {s.name!r} needs an entity column "
                       f"of the contract: MinHistory(entity=...) or Source(entity=...); got "
                       f"{entity!r}.")
        if s.time is None:
            out.append(f"The min_history check of source {s.name!r} counts event times and "
                       "needs Source(time=...).")
        for what, n in (("periods", h.periods), ("examples", h.examples)):
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                out.append(f"The min_history check of source {s.name!r} needs {what} >= 1; "
                           f"got {n!r}.")
    return out


def _check_taxonomy(s: Source, t: Taxonomy) -> list[str]:
    where = f"Taxonomy on column {t.column!r} of source {s.name!r}"
    col = s.contract.column(t.column)
    if col is None:
        return [f"{where}: the column is not in the contract (columns: "
                f"{', '.join(s.contract.names)})."]
    if col.dtype not in ("str", "int"):
        return [f"{where}: codes must be a str or int column; got dtype {col.dtype!r}."]
    if not isinstance(t.mapping, Mapping) or not t.mapping:
        return [f"{where}: mapping must be a non-empty dict {{old_code: new_code}}; got "
                f"{t.mapping!r}."]
    out = []
    kind: type | tuple[type, ...] = str if col.dtype == "str" else int
    wrong = [v for v in (*t.mapping, *t.mapping.values())
             if not isinstance(v, kind) or isinstance(v, bool)]
    if wrong:
        out.append(f"{where}: codes must be {col.dtype} like the column; got "
                   f"{', '.join(map(repr, wrong[:5]))}.")
    both = sorted(str(k) for k in set(t.mapping) & set(t.mapping.values()))
    if both:
        out.append(f"{where}: {', '.join(both)} are both old and new codes; map every old "
                   "code straight to its final code, or declare one Taxonomy per regrouping.")
    if t.effective is not None:
        try:
            parse_time(t.effective, what=f"{where}: effective")
        except TuesdayError as e:
            out.append(e.message)
        if s.time is None:
            out.append(f"{where}: an effective date needs Source(time=...) to date the rows.")
    return out


def _check_model(project: Project, m: Model) -> list[str]:
    out: list[str] = _type_problems(m)
    if out:
        return out
    where = f"Model {m.name!r}"
    srcs = {s.name: s for s in project.sources}
    try:
        horizon = duration(m.horizon, what=f"horizon of model {m.name!r}")
    except TuesdayError as e:
        out.append(str(e))
        horizon = pd.Timedelta(0)
    if m.task not in TASKS:
        out.append(f"{where}: task must be one of {', '.join(TASKS)}; got {m.task!r}.")
    if m.learner.kind not in LEARNERS:
        out.append(f"{where}: learner must be one of {', '.join(LEARNERS)}; "
                   f"got {m.learner.kind!r}.")
    if m.learner.kind == "sklearn" and not hasattr(m.learner.estimator, "fit"):
        out.append(f"{where}: Learner('sklearn') needs estimator=, a scikit-learn estimator; "
                   f"got {m.learner.estimator!r}.")
    label = srcs.get(m.label_source)
    if label is None:
        out.append(f"{where}: label source {m.label_source!r} is not declared.")
    else:
        if m.target not in label.contract.names:
            out.append(f"{where}: target {m.target!r} is not a column of source "
                       f"{m.label_source!r} (columns: {', '.join(label.contract.names)}).")
        if label.entity is None or label.entity.key != m.entity.key:
            out.append(f"{where}: label source {m.label_source!r} must carry the entity key "
                       f"{m.entity.key!r}.")
        for col in m.where:
            if col not in label.contract.names:
                out.append(f"{where}: `where` column {col!r} is not in source "
                           f"{m.label_source!r}.")
        if horizon > pd.Timedelta(0) and label.time is None:
            out.append(f"{where}: a horizon needs a label source with a time column.")
        if isinstance(m.evaluation, Backtest) and label.time is None:
            out.append(f"{where}: a Backtest needs a label source with a time column; "
                       "use CrossValidation for timeless data.")
    if not m.baselines:
        out.append(f"{where} declares no baseline; every model needs at least one "
                   "(e.g. Baseline('seasonal_naive', 'seasonal_naive')).")
    for b in m.baselines:
        if b.kind not in BASELINE_KINDS:
            out.append(f"{where}: baseline {b.name!r} has kind {b.kind!r}; expected one of "
                       f"{', '.join(BASELINE_KINDS)}.")
        if b.kind == "rule" and b.fn is None:
            out.append(f"{where}: rule baseline {b.name!r} needs fn=.")
        if b.kind in SERIES_BASELINES and m.task != "regression":
            out.append(f"{where}: baseline {b.name!r} ({b.kind}) needs a regression task.")
    allowed_metrics = REGRESSION_METRICS if m.task == "regression" else BINARY_METRICS
    for met in m.metrics:
        if isinstance(met, Metric):
            if not callable(met.fn):
                out.append(f"{where}: metric {met.name!r} needs fn=, a function "
                           "(actual, predicted) -> float.")
            continue
        if m.task == "binary" and re.fullmatch(r"precision_at_\d+", str(met)):
            continue
        if met not in allowed_metrics:
            out.append(f"{where}: metric {met!r} is not known for task {m.task!r}; "
                       f"expected one of {', '.join(allowed_metrics)}.")
    if not m.metrics:
        out.append(f"{where} declares no metric.")
    names = [f.name for f in m.features]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"{where}: feature name {dup!r} is used twice.")
    for f in m.features:
        out.extend(_check_feature(where, f, srcs, horizon, m))
    label_cols = label.contract.names if label else ()
    for s in m.slices:
        if s not in names and s not in label_cols and s not in DERIVED_SLICES:
            out.append(f"{where}: slice {s!r} is neither a feature nor a column of "
                       f"{m.label_source!r}.")
    for g in m.gates:
        if g.kind not in GATE_KINDS:
            out.append(f"{where}: gate kind {g.kind!r} is unknown; expected one of "
                       f"{', '.join(GATE_KINDS)}.")
        for attr in ("min_lift", "tolerance", "max_ms", "max_mb"):
            v = getattr(g, attr)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or v < 0 or (attr in ("max_ms", "max_mb") and v == 0):
                out.append(f"{where}: gate {g.kind!r} {attr} must be a "
                           f"{'positive' if attr.startswith('max') else 'non-negative'} "
                           f"number; got {v!r}.")
    if m.window is not None:
        try:
            if duration(m.window, what=f"window of model {m.name!r}") <= pd.Timedelta(0):
                raise TuesdayError(f"The 'window' of model {m.name!r} must be positive.")
        except TuesdayError as e:
            out.append(str(e))
    if isinstance(m.evaluation, Backtest):
        try:
            duration(m.evaluation.step, what=f"backtest step of model {m.name!r}")
        except TuesdayError as e:
            out.append(str(e))
    if m.evaluation.folds < 2 and isinstance(m.evaluation, CrossValidation):
        out.append(f"{where}: CrossValidation needs at least 2 folds.")
    if m.evaluation.folds < 1:
        out.append(f"{where}: evaluation needs at least 1 fold.")
    return out


def _check_feature(where: str, f: Feature, srcs: Mapping[str, Source],
                   horizon: pd.Timedelta, m: Model) -> list[str]:
    out: list[str] = []
    label = f"{where}: feature {f.name!r}"
    if f.kind not in FEATURE_KINDS:
        return [f"{label} has kind {f.kind!r}; expected one of {', '.join(FEATURE_KINDS)}."]
    if f.kind in ("lag", "window", "lookup", "scheduled"):
        src = srcs.get(f.source or "")
        if src is None:
            return [f"{label} reads source {f.source!r}, which is not declared."]
        if f.column is None and f.kind == "window" and f.agg == "time_since_last":
            pass  # the time of any row of the source
        elif f.column not in src.contract.names:
            out.append(f"{label} reads column {f.column!r}, which is not in source "
                       f"{src.name!r} (columns: {', '.join(src.contract.names)}).")
        if src.entity is not None and src.entity.key != m.entity.key:
            out.append(f"{label} reads source {src.name!r} keyed by {src.entity.key!r}, "
                       f"but the model's entity key is {m.entity.key!r}.")
        col = src.contract.column(f.column or "")
        if col is not None and col.dtype not in ("float", "int", "bool"):
            out.append(f"{label} reads column {f.column!r} of type {col.dtype}; features "
                       "must be numbers (float, int or bool). Encode the column as numbers "
                       "in the source (e.g. 0/1 for yes/no).")
        if f.kind in ("lag", "window", "scheduled") and src.time is None:
            out.append(f"{label} ({f.kind}) needs a source with a time column.")
        if f.kind in ("lag", "window"):
            try:
                gap = duration(f.lag, what=f"lag of feature {f.name!r}")
                if f.kind == "window" and duration(
                        f.window, what=f"window of feature {f.name!r}") <= pd.Timedelta(0):
                    out.append(f"{label} has an empty window {f.window!r}.")
            except TuesdayError as e:
                out.append(f"{label}: {e.message}")
                gap = horizon
            if gap < horizon:
                out.append(
                    f"{label} uses the value {f.lag} before the target, but the model "
                    f"forecasts {m.horizon} ahead, so that value is not known when the "
                    f"forecast is made. Use a lag of at least {m.horizon}."
                )
        if f.kind == "window" and f.agg not in WINDOW_AGGS:
            out.append(f"{label} has agg {f.agg!r}; expected one of {', '.join(WINDOW_AGGS)}.")
    if f.kind == "calendar" and f.part not in CALENDAR_PARTS:
        out.append(f"{label} has part {f.part!r}; expected one of {', '.join(CALENDAR_PARTS)}.")
    if f.kind == "holiday":
        if f.part not in HOLIDAY_PARTS:
            out.append(f"{label} has part {f.part!r}; expected one of "
                       f"{', '.join(HOLIDAY_PARTS)}.")
        import holidays as _holidays

        if f.country not in _holidays.list_supported_countries():
            out.append(f"{label} has country {f.country!r}, which the holidays package "
                       "does not know; use an ISO code such as 'US'.")
    if f.default is not None and (not isinstance(f.default, int | float)
                                  or math.isnan(float(f.default))):
        out.append(f"{label} has default {f.default!r}; expected a number.")
    return out
