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

from tuesday.project.checks import check_project
from tuesday.project.features import (
    CALENDAR_PARTS,
    FEATURE_KINDS,
    HOLIDAY_PARTS,
    WINDOW_AGGS,
    Feature,
    calendar,
    holiday,
    lag,
    lookup,
    request,
    scheduled,
    time_since_last,
    window,
)
from tuesday.project.loading import LoadedProject, load_project
from tuesday.project.models import (
    BASELINE_KINDS,
    BINARY_METRICS,
    DERIVED_SLICES,
    GATE_KINDS,
    LEARNERS,
    OPE_ESTIMATORS,
    RANKING_BASELINES,
    RANKING_METRICS,
    REGRESSION_METRICS,
    SERIES_BASELINES,
    TASKS,
    Backtest,
    Baseline,
    CrossValidation,
    Gate,
    Learner,
    Metric,
    Model,
    Project,
    Slate,
)
from tuesday.project.policy import Policy
from tuesday.project.routes import Email, Log, Webhook
from tuesday.project.rules import (
    Rule,
    boost,
    cap,
    drop,
    epsilon_greedy,
    floor,
    keep,
    max_per,
    pin,
    round_to,
    rule,
    thompson,
)
from tuesday.project.sources import (
    DTYPES,
    Column,
    Contract,
    Entity,
    Freshness,
    MinHistory,
    Source,
    Taxonomy,
    Volume,
)
from tuesday.project.times import duration, parse_time

__all__ = [
    "BASELINE_KINDS",
    "BINARY_METRICS",
    "CALENDAR_PARTS",
    "DERIVED_SLICES",
    "DTYPES",
    "FEATURE_KINDS",
    "GATE_KINDS",
    "HOLIDAY_PARTS",
    "LEARNERS",
    "OPE_ESTIMATORS",
    "RANKING_BASELINES",
    "RANKING_METRICS",
    "REGRESSION_METRICS",
    "SERIES_BASELINES",
    "TASKS",
    "WINDOW_AGGS",
    "Backtest",
    "Baseline",
    "Column",
    "Contract",
    "CrossValidation",
    "Email",
    "Entity",
    "Feature",
    "Freshness",
    "Gate",
    "Learner",
    "LoadedProject",
    "Log",
    "Metric",
    "MinHistory",
    "Model",
    "Policy",
    "Project",
    "Rule",
    "Slate",
    "Source",
    "Taxonomy",
    "Volume",
    "Webhook",
    "boost",
    "calendar",
    "cap",
    "check_project",
    "drop",
    "duration",
    "epsilon_greedy",
    "floor",
    "holiday",
    "keep",
    "lag",
    "load_project",
    "lookup",
    "max_per",
    "parse_time",
    "pin",
    "request",
    "round_to",
    "rule",
    "scheduled",
    "thompson",
    "time_since_last",
    "window",
]
