"""Models: learner, baselines, evaluation, gates, rules and policy, and the Project."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuesday.errors import NotFound
from tuesday.project.features import Feature
from tuesday.project.policy import Policy
from tuesday.project.rules import Rule
from tuesday.project.sources import Entity, Source
from tuesday.project.watching import Watch

if TYPE_CHECKING:
    import pandas as pd

TASKS = ("regression", "binary", "ranking")
LEARNERS = ("lightgbm", "linear", "sklearn")
BASELINE_KINDS = ("naive", "seasonal_naive", "seasonal_mean", "moving_average", "croston",
                  "tsb", "mean", "prior", "rule", "popular", "random")
#: baselines that only rank (a ranking model's)
RANKING_BASELINES = ("popular", "random")
SERIES_BASELINES = ("naive", "seasonal_naive", "seasonal_mean", "moving_average", "croston",
                    "tsb")
REGRESSION_METRICS = ("rmse", "mae", "wape", "bias", "mase")
BINARY_METRICS = ("auc", "log_loss", "brier", "precision_at_N")
#: ranking metrics take a cut-off: ``ndcg_at_10``; pointwise ``auc``/``log_loss`` too
RANKING_METRICS = ("ndcg_at_N", "map_at_N", "recall_at_N", "hit_rate_at_N", "coverage_at_N",
                   "gini_at_N", "auc", "log_loss")
#: slices tuesday derives itself: demand class by ADI and CV squared, and history length
DERIVED_SLICES = ("demand_class", "history")
GATE_KINDS = ("beats_baseline", "slices", "latency", "size", "beats_production", "ope")
#: the off-policy estimators a gate may use
OPE_ESTIMATORS = ("ips", "snips", "dr")


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
    source: str | None = None
    column: str | None = None
    agg: str = "sum"
    lag: str = "1h"


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
        ``ope`` (ranking models): off-policy evaluation of the version on production's
            logged slates and the clicks posted back: the lower end of the
            ``confidence`` interval of its estimated click rate (``estimator``: ``snips``
            by default, ``ips`` or ``dr``) must beat production's realised click rate by
            ``min_lift`` (relative), on at least ``min_rows`` impressions.
    """

    kind: str = "beats_baseline"
    min_lift: float = 0.0
    tolerance: float = 0.05
    max_ms: float = 5.0
    max_mb: float = 100.0
    estimator: str = "snips"
    confidence: float = 0.95
    min_rows: int = 1000


@dataclass(frozen=True)
class Slate:
    """What a ranking model's requests and slates look like.

    Attributes:
        size: Items in a served slate (positions 1 to ``size``).
        group: Column of the label source naming one request: its rows are the
            candidates scored together (one user at one time). Ranking metrics and the
            ``lambdarank`` objective need it; None means every label row is a request of
            its own (logged impressions with a click or not: a pointwise click model).
        candidates: Source whose entities are the candidates of a request that names
            none (the catalog); their columns are part of each candidate row that the
            rules see.
        feedback: Source the clicks are posted to (``POST /v1/models/NAME/feedback``):
            ``request_id``, the entity key, ``position`` and the ``reward`` column.
        reward: The feedback column holding the reward (1 click, 0 none).
    """

    size: int = 10
    group: str | None = None
    candidates: str | None = None
    feedback: str | None = None
    reward: str = "click"


CENSORED_ACTIONS = ("exclude", "impute", "keep")


@dataclass(frozen=True)
class Censored:
    """When a target row is censored: the target only shows a lower bound of what it
    measures (an item sold out, so its units sold are not its demand).

    A label row is censored when ``column`` of ``source`` at the same entity and time
    (the book stock at closing of that day) is at most ``at_most``, or, for a bool
    column (a check's ``flag_NAME``), is True. The row is read from ``source`` as
    ingested by the training's as-of, like the label itself.

    Attributes:
        column: The column that says so.
        source: The source holding it; defaults to the label source.
        at_most: The largest value that counts as censored (numeric columns).
        action: What training does with censored rows: ``"exclude"`` (the default: left
            out of every fit, kept in the evaluation), ``"impute"`` (their target is
            raised to the mean of the entity's uncensored training targets when it is
            below it) or ``"keep"`` (used as they are, only reported). Every backtest
            gives its metrics with and without them.
    """

    column: str
    source: str | None = None
    at_most: float = 0.0
    action: str = "exclude"


@dataclass(frozen=True)
class Model:
    """A model specification: what to predict, from what, how to judge it.

    Attributes:
        name: Registry name.
        entity: What each prediction is about.
        label_source: The source holding the target.
        target: Target column of ``label_source``.
        features: Feature definitions.
        task: ``regression``, ``binary`` or ``ranking`` (the entity is the item ranked;
            ``slate`` says how requests and slates look).
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
        rules: Business rules applied after the model, in order (``tuesday.project.rules``).
        policy: When the daily loop retrains and promotes it (``tuesday.project.Policy``);
            None means ``Policy()``.
        missing_features: What the server does with a row whose online features are
            missing (null): ``"refuse"`` (the default: the row is not answered, HTTP 422)
            or ``"flag"`` (answered, with ``missing_features`` naming them).
        max_staleness: How old the online features may be when a request is answered
            (``'2d'``, ``'6h'``; None: not checked): the age is the predictor's clock
            (virtual in a replay) minus the time the features were materialized at. A
            row with older features is treated as one with missing features (refused,
            or flagged with ``stale_features`` under ``missing_features="flag"``).
        deadline_ms: A latency budget for the model path of one request, in
            milliseconds (None: no deadline). When the time a request has taken plus
            the model's recent prediction time would pass it, the server answers with
            the model's first baseline that it can compute online instead, flags the
            rows (``fallback``), logs them as variant ``deadline`` and counts them in
            ``/metrics``.
        watch: What the monitor watches besides its defaults: key features whose
            drift alone is an alert, seasonal ones left out of the drift vote, absolute
            accuracy limits (``tuesday.project.Watch``); None means ``Watch()``.
        censored: When a target row is censored (``Censored``), e.g. sold-out days.
        slate: For ``ranking``: the request group, slate size, catalog and feedback.
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
    missing_features: str = "refuse"
    max_staleness: str | None = None
    deadline_ms: float | None = None
    watch: Watch | None = None
    censored: Censored | None = None
    slate: Slate | None = None

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


