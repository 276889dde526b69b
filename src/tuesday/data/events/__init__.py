"""Event features: online state kept up to date from events, values computed at request time.

A model scored at request time (horizon ``"0d"``) may declare window features over an
event source: ``window(..., agg=...)`` with ``count``, ``sum``, ``mean``, ``min``, ``max``
or ``last``, and ``time_since_last(...)``. One definition gives both values:

- batch (training, backtests): ``features.feature_frame`` computes them point in time with
  DuckDB over the versioned table;
- online (serving): ``apply`` keeps a small state per (source, entity) as events arrive,
  and ``Plan.values`` computes each feature for the request's time from that state.

tests/data/test_online.py proves the two agree on generated event streams (out of order,
duplicate times, missing values, entities without history): exactly for counts, min, max,
last and times, to 1e-9 for sums and means (DuckDB adds in time order, the online path
with ``math.fsum``).

Semantics, the same in both paths. The value at request time ``T`` reads the events whose
time is in ``(T - lag - window, T - lag]`` and that were available at ``T``
(``available_at <= T`` when the source declares ``available_at``; otherwise an event is
available from its own time). Missing values are skipped. Without events the feature
takes its declared ``default`` (a count is 0). ``last`` is the value at the latest time
(the largest if several events share it); ``time_since_last`` is the number of seconds
from ``T - lag`` back to the latest event. So a count over the last hour decays between
events, and the transaction being scored is not in its own features when its
``available_at`` (when it was recorded) is after the time it is scored at.

The state is ONE record per (source, entity): a blob, read with one point query. Layout
(little-endian): a 48-byte header (magic ``TEV1``, number of value columns, format
version, number of events ``n``, ``ref`` in microseconds, the largest ``available_at``,
a bit mask of the columns holding missing values, the feature-set schema hash, the number
of events dropped by the size bound), then ``n`` event times and ``n`` availability times
(int64 microseconds, sorted by time; format 2 leaves the second out when every event was
available at its own time) and one float64 array of ``n`` values per column read by the
source's event features (missing = NaN); then (flag ``SUFFIXES``, formats 5 and 6)
per column ``n`` triples ``(fsum, min, max)`` of the values from each position to the
newest, bit for bit what the slice aggregates give (``suffix_aggregates``). A reader
(``request``, compiled once per plan) unpacks the times with ``struct`` (in C), bisects
them, and reads a window reaching the newest event with one lookup per (window, column);
a back-dated request, a lagged window or a record without suffixes (formats 1 and 2,
still read) slices the values instead. 21 events and two columns take about 1.6 KB
(0.55 KB without the suffixes); a month of a card with three transactions a day about
7 KB, past the ~4 KB a SQLite page holds in place.

What the record keeps (``merge``). ``ref`` is how far the entity's stream has been seen:
``max(previous ref, min(as_of of the apply, newest event time))``. Values are exact for
every request time ``T >= ref`` (a server scores "now", after the events it has):

- windows (count/sum/mean/min/max) need the events newer than ``ref - longest (lag +
  window)``; older ones are dropped;
- ``last`` and ``time_since_last`` need the latest event already usable at ``ref`` (the
  "anchor") and anything newer; events older than the anchor are dropped;
- the record holds at most ``MAX_EVENTS`` events (oldest dropped first, counted in the
  header); past that bound windows undercount: the only approximate case.

Late and out-of-order events. An event is merged at its time, whatever its arrival order,
so requests after it arrived see it exactly as the batch path does. Requests served before
it arrived could not: if the source declares ``available_at`` (``apply`` fills it with the
arrival time when the sender leaves it out) the batch path also leaves the event out at
those times, so training sees exactly what serving saw. Without ``available_at`` the
batch path, run later, includes the late event at times before it arrived: training then
sees slightly more than serving did (a count may be higher by the late events).

Rows reach the offline table first (``tables.ingest_frame``: validated by the contract,
quarantined with reasons, nothing lost), then the online state. Rows ingested from files
(``tuesday ingest``) reach the online state at the next ``rebuild``
(``tuesday materialize MODEL``), which recomputes every record from the table.
Modules: ``specs`` (what a source's state keeps), ``aggregates`` (the online definition
of each feature), ``record`` (the record and its binary format), ``merging`` (events into
records), ``request`` (the plan per model and its generated reader), ``updates`` (apply,
update, rebuild).
"""

from tuesday.data.events.aggregates import FAST, Compiled, value
from tuesday.data.events.merging import (
    MAX_EVENTS,
    event_arrays,
    grouped_arrays,
    merge,
    values_from_events,
)
from tuesday.data.events.record import (
    FORMAT,
    FORMATS,
    HEADER,
    MAGIC,
    NEVER,
    SAME_TIMES,
    SUFFIX_BOUND,
    SUFFIXES,
    Record,
    View,
    decode,
    encode,
    suffix_aggregates,
)
from tuesday.data.events.request import Group, Plan, Reader, compute, plan
from tuesday.data.events.specs import LATEST_AGGS, Spec, event_features, micros, spec
from tuesday.data.events.updates import ApplyResult, apply, rebuild, update

__all__ = ["FAST", "FORMAT", "FORMATS", "HEADER", "LATEST_AGGS", "MAGIC", "MAX_EVENTS",
           "NEVER", "SAME_TIMES", "SUFFIXES", "SUFFIX_BOUND", "ApplyResult", "Compiled",
           "Group", "Plan", "Reader", "Record", "Spec", "View", "apply", "compute", "decode",
           "encode", "event_arrays", "event_features", "grouped_arrays", "merge", "micros",
           "plan", "rebuild", "spec", "suffix_aggregates", "update", "value",
           "values_from_events"]
