"""Sources and their contracts: columns, checks, keys and time columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tuesday.project.row_checks import RowCheck, flags

DTYPES = ("float", "int", "str", "bool", "date", "timestamp")


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
        checks: Checks across rows and over time (``tuesday.project.row_checks``):
            duplicate groups, offsetting pairs, references, spikes, gaps, repairs and
            SQL conditions, each quarantining, flagging or repairing what it finds.
    """

    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    extra_columns: str = "reject"
    rename: Mapping[str, str] = field(default_factory=dict)
    missing_columns: str = "fill"
    freshness: Freshness | None = None
    volume: Volume | None = None
    min_history: MinHistory | None = None
    checks: tuple[RowCheck, ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def flag_columns(self) -> tuple[str, ...]:
        """The boolean columns the flagging checks add to the table (``flag_NAME``)."""
        return flags(tuple(self.checks)) if isinstance(self.checks, tuple | list) else ()

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
class Derive:
    """How a derived source is computed from other sources (see ``derived``).

    Attributes:
        inputs: The sources it reads (ingested or derived), by name.
        sql: A DuckDB query over the inputs, each a table named after its source.
        fn: Or a plain function called with one keyword argument per input (a pandas
            frame, or an Arrow table with ``frames="arrow"``) returning a pandas frame or
            an Arrow table.
        lookback: How many days of each input one output day reads: ``'0d'`` (the
            default) when the rows of day D come only from the inputs' rows of day D;
            ``'6d'`` for a 7-day rolling sum. Incremental recomputation relies on it.
        frames: ``"pandas"`` (default) or ``"arrow"``: what ``fn`` receives.
    """

    inputs: tuple[str, ...]
    sql: str | None = None
    fn: Callable[..., Any] | None = field(default=None, compare=False)
    lookback: str = "0d"
    frames: str = "pandas"


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
        derive: For a derived source (computed, never ingested): how (see ``derived``).
    """

    name: str
    contract: Contract
    time: str | None = None
    available_at: str | None = None
    entity: Entity | None = None
    taxonomy: Taxonomy | tuple[Taxonomy, ...] = ()
    derive: Derive | None = None

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




def derived(name: str, contract: Contract, *, inputs: tuple[str, ...] | list[str],
            sql: str | None = None, fn: Callable[..., Any] | None = None,
            time: str | None = None, entity: Entity | None = None,
            available_at: str | None = None, lookback: str = "0d",
            frames: str = "pandas") -> Source:
    """A source computed from other sources by a DuckDB query or a Python function.

    Its table is versioned like any other: each new version of an input gives a new
    derived version, which records the input versions it came from, and only the days
    the new input rows touch are computed again (``tuesday.data.derived``). The query
    must be day-local: the rows of day D may read the inputs' rows of days D - lookback
    to D, and timeless inputs (an item list) in full. Its output is checked by
    ``contract`` like an ingest. With ``available_at`` (a timestamp column of the
    contract), each row is made available no earlier than the input rows it was computed
    from.

    Example:
        >>> from tuesday.project import Column, Contract, Entity
        >>> units = derived("daily_units", Contract((Column("item", "str"),
        ...     Column("date", "date"), Column("units", "float"))),
        ...     inputs=("till_lines", "stock"), time="date", entity=Entity("item"),
        ...     sql="SELECT s.item, s.date, coalesce(sum(t.qty), 0) AS units FROM stock s "
        ...         "LEFT JOIN till_lines t ON t.item = s.item AND t.ts::DATE = s.date "
        ...         "GROUP BY ALL")
        >>> units.derive.inputs
        ('till_lines', 'stock')
    """
    return Source(name, contract, time=time, available_at=available_at, entity=entity,
                  derive=Derive(tuple(inputs), sql=sql, fn=fn, lookback=lookback,
                                frames=frames))
