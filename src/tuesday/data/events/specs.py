"""Which events a source's state keeps: the event features of every model over it
(``Spec``), and each feature compiled to integer durations (``Compiled``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from tuesday.data.events.aggregates import Compiled
from tuesday.data.features import horizon
from tuesday.project import Feature, Model, Project, duration

#: window aggregates answered from the latest event only
LATEST_AGGS = ("last", "time_since_last")


def micros(t: Any) -> int:
    """Microseconds since the epoch (floor), as the batch path's ``datetime64[us]``."""
    if type(t) is not pd.Timestamp:
        t = pd.Timestamp(t)
    return int(t.value // 1000)



def event_features(model: Model) -> tuple[Feature, ...]:
    """The features of ``model`` computed at request time from the event state: its window
    features, when the model is scored at request time (horizon 0)."""
    if horizon(model) > pd.Timedelta(0):
        return ()
    return tuple(f for f in model.features if f.kind == "window")



@dataclass(frozen=True)
class Spec:
    """What the state of one event source keeps, for every event feature over it.

    Attributes:
        source: Source name (the store's space).
        key: Entity key column, or None for a source of global rows (one record, key '').
        time: Event-time column.
        available_at: Availability column, if the source declares one.
        columns: Value columns kept per event.
        retention: Longest lag + window of the count/sum/mean/min/max features (us).
        anchors: (column index or -1, lag in us) of the last/time_since_last features.
    """

    source: str
    key: str | None
    time: str
    available_at: str | None
    columns: tuple[str, ...]
    retention: int
    anchors: tuple[tuple[int, int], ...]

    @cached_property
    def schema(self) -> str:
        """A hash of everything that shapes the records: stored in each of them."""
        text = json.dumps([self.source, self.key, self.time, self.available_at,
                           self.columns, self.retention, self.anchors])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def schema_id(self) -> int:
        return int(self.schema, 16)

    def compile(self, f: Feature) -> Compiled:
        col = self.columns.index(f.column) if f.column else -1
        return Compiled(f.name, f.agg, col, _dur(f.lag), _dur(f.window), f.default)


def _dur(value: str) -> int:
    return int(duration(value, what="duration") / pd.Timedelta(microseconds=1))


def spec(project: Project, source: str) -> Spec | None:
    """The state spec of ``source`` over every model's event features (None if none)."""
    src = project.source(source)
    feats = [f for m in project.models for f in event_features(m) if f.source == src.name]
    if not feats or src.time is None:
        return None
    columns = tuple(sorted({f.column for f in feats if f.column}))
    windows = [_dur(f.lag) + _dur(f.window) for f in feats
               if f.agg not in LATEST_AGGS]
    anchors = sorted({(columns.index(f.column) if f.column else -1, _dur(f.lag))
                      for f in feats if f.agg in LATEST_AGGS})
    return Spec(src.name, src.entity.key if src.entity else None, src.time,
                src.available_at, columns, max(windows, default=0), tuple(anchors))
