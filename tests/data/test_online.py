"""Event features: online state from events vs the batch point-in-time computation.

The parity tests generate event streams (out of order within a bound, duplicate times,
missing values, entities without history), apply them batch by batch as a server would,
and at random (entity, time) points compare the online value with
``features.feature_frame``: exactly for counts, min, max, last and times, to 1e-9 for
sums and means.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuesday.data import events, online, tables
from tuesday.data.events import merging
from tuesday.data.features import feature_frame, points_frame
from tuesday.data.materialize import materialize
from tuesday.data.online import Space, SQLiteStore, Store
from tuesday.errors import Conflict, NotFound
from tuesday.project import (
    Baseline,
    Column,
    Contract,
    Entity,
    Model,
    Project,
    Source,
    check_project,
    lag,
    request,
    time_since_last,
    window,
)
from tuesday.workspace import open_workspace

BASE = pd.Timestamp("2024-03-01")
KEY = Entity("k")


def _source(name: str, available: bool) -> Source:
    cols = [Column("k", "str", nullable=False), Column("t", "timestamp", nullable=False)]
    if available:
        cols.append(Column("seen", "timestamp"))
    cols += [Column("x", "float", min=-1000, max=1000), Column("y", "int", min=0, max=9)]
    return Source(name, Contract(tuple(cols)), time="t",
                  available_at="seen" if available else None, entity=KEY)


def _features(src: str) -> tuple:
    """Windows reaching back at most 2 hours (what the record retains) and `last` /
    `time_since_last` reaching further (what the anchors keep)."""
    return (
        window(src, "x", "1h", lag="0d", agg="count"),
        window(src, "x", "1h", lag="0d", agg="sum", default=0.0),
        window(src, "x", "2h", lag="0d", agg="mean"),
        window(src, "x", "2h", lag="0d", agg="min"),
        window(src, "x", "1h", lag="1h", agg="max"),
        window(src, "x", "1d", lag="0d", agg="last", default=-7.0),
        window(src, "y", "2h", lag="0d", agg="sum"),
        window(src, "y", "3h", lag="1h", agg="last"),
        time_since_last(src),
        time_since_last(src, "x", within="3h", default=-1.0),
    )


LABELS = Source("labels", Contract((Column("k", "str"), Column("t", "timestamp"),
                                    Column("label", "int"))), time="t", entity=KEY)


def _model(name: str, src: str, extra: tuple = ()) -> Model:
    return Model(name, KEY, "labels", "label", (*_features(src), *extra),
                 (Baseline("prior", "prior"),), task="binary", horizon="0d",
                 metrics=("auc",))


PROJECT = Project("events", (_source("ev", True), _source("plain", False), LABELS),
                  (_model("m_avail", "ev", (request("amount"),)), _model("m_plain", "plain")))
ARROW = {name: tables.arrow_schema(PROJECT.source(name)) for name in ("ev", "plain")}


class DictStore:
    """A ``Store`` in a dict: what a Redis backend looks like (GET, MGET, MULTI)."""

    def __init__(self) -> None:
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.spaces: dict[str, Space] = {}

    def space(self, name: str) -> Space | None:
        return self.spaces.get(name)

    def get(self, space: str, key: str) -> bytes | None:
        return self.blobs.get((space, key))

    def get_many(self, space: str, keys: Sequence[str]) -> list[bytes | None]:
        return [self.blobs.get((space, k)) for k in keys]

    def update(self, space: str, keys: Sequence[str], fn: online.Updater) -> None:
        current = {k: b for k in keys if (b := self.blobs.get((space, k))) is not None}
        new_space, blobs = fn(self.spaces.get(space), current)
        if new_space is not None:
            self.spaces[space] = new_space
        self.blobs.update({(space, k): b for k, b in blobs.items()})

    def replace(self, space: Space, items: Iterable[tuple[str, bytes]],
                still_valid: Callable[[], bool]) -> bool:
        if not still_valid():
            return False
        self.blobs = {k: b for k, b in self.blobs.items() if k[0] != space.name}
        self.blobs.update({(space.name, k): b for k, b in items})
        self.spaces[space.name] = space
        return True

    def close(self) -> None:
        pass


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def _same(agg: str, got: float, want: float) -> bool:
    if math.isnan(got) or math.isnan(want):
        return math.isnan(got) and math.isnan(want)
    if agg in ("sum", "mean"):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return got == want  # counts, min, max, last, seconds: exact


def _table(source: str, frame: pd.DataFrame) -> pa.Table:
    schema = ARROW[source]
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def _offline(model: Model, source: str, frame: pd.DataFrame, keys: list[str],
             times: list[pd.Timestamp]) -> pd.DataFrame:
    pts = points_frame(model, pd.Series(keys), pd.Series(times))
    empty = tables.arrow_schema(LABELS).empty_table()
    return feature_frame(PROJECT, model, pts, {source: _table(source, frame), "labels": empty})


def _compare(model: Model, online_rows: list[dict], offline: pd.DataFrame,
             where: list[tuple[str, pd.Timestamp]]) -> None:
    feats = events.event_features(model)
    for i, row in enumerate(online_rows):
        for f in feats:
            got, want = _nan(row[f.name]), float(offline[f.name].iloc[i])
            assert _same(f.agg, got, want), (f.name, where[i], got, want)


# ------------------------------------------------------------------- the streams


@st.composite
def streams(draw: st.DrawFn) -> tuple[pd.DataFrame, list[int], list[tuple[str, int]]]:
    """Events (k, t, x, y, arrival, wait) sorted by arrival, batch cut points, query
    points (seconds after BASE), many of them shortly after an event."""
    n = draw(st.integers(0, 60))
    keys = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    # minutes on a coarse grid, so duplicate times are common; some odd seconds
    minutes = draw(st.lists(st.integers(0, 240), min_size=n, max_size=n))
    seconds = draw(st.lists(st.sampled_from([0, 0, 0, 17, 59]), min_size=n, max_size=n))
    delays = draw(st.lists(st.integers(0, 45), min_size=n, max_size=n))  # late: <= 45 min
    xs = draw(st.lists(st.one_of(st.none(), st.floats(-1000, 1000, allow_nan=False),
                                 st.integers(-40, 40).map(lambda v: v / 4)),
                       min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    # available_at given by the sender, after the server has the event (0: on arrival)
    waits = draw(st.lists(st.sampled_from([0, 0, 0, 1, 7, 30]), min_size=n, max_size=n))
    t = [BASE + pd.Timedelta(minutes=m, seconds=s) for m, s in zip(minutes, seconds,
                                                                  strict=True)]
    frame = pd.DataFrame({"k": keys, "t": pd.Series(t, dtype="datetime64[us]"),
                          "x": pd.Series(xs, dtype="float64"), "y": ys})
    frame["arrival"] = frame["t"] + pd.to_timedelta(delays, unit="min")
    frame["wait"] = pd.to_timedelta(waits, unit="min")
    frame = frame.sort_values("arrival", kind="stable").reset_index(drop=True)
    cuts = sorted(set(draw(st.lists(st.integers(1, max(n, 1)), max_size=10)))) if n else []
    anywhere = st.integers(-60 * 60, 8 * 3600)
    near = st.tuples(st.integers(0, max(n - 1, 0)), st.integers(-1800, 3 * 3600)).map(
        lambda p: int((frame["t"].iloc[p[0]] - BASE).total_seconds()) + p[1])
    queries = draw(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "nobody"]),
                                      st.one_of(anywhere, near) if n else anywhere),
                            min_size=1, max_size=12))
    return frame, cuts, queries


def _batches(frame: pd.DataFrame, cuts: list[int]) -> list[tuple[pd.Timestamp, pd.DataFrame]]:
    """Consecutive arrival batches, each applied at its last arrival (the server's now)."""
    bounds = [0, *[c for c in cuts if 0 < c < len(frame)], len(frame)]
    out = []
    for lo, hi in itertools.pairwise(bounds):
        part = frame.iloc[lo:hi]
        if len(part):
            out.append((part["arrival"].max(), part))
    return out


def _replay(source: str, model: Model, frame: pd.DataFrame, cuts: list[int],
            queries: list[tuple[str, int]], store: Store | None = None
            ) -> tuple[list[dict], list[tuple[str, pd.Timestamp]], list[pd.DataFrame]]:
    """Apply the batches in order; answer each query once every batch that arrived by its
    time is applied. Returns the online rows, the points and, per point, the events that
    had arrived by then (with ``seen`` = their batch's arrival)."""
    sp = events.spec(PROJECT, source)
    assert sp is not None
    store = DictStore() if store is None else store
    store.replace(Space(source, sp.schema, -1, BASE.isoformat()), [], lambda: True)
    plan = events.plan(PROJECT, model)
    points = sorted(((k, BASE + pd.Timedelta(seconds=s)) for k, s in queries),
                    key=lambda q: q[1])
    rows: list[dict] = []
    arrived: list[pd.DataFrame] = []
    seen = frame.iloc[:0].assign(seen=pd.Series(dtype="datetime64[us]"))
    batches = _batches(frame, cuts)
    b = 0
    for key, at in points:
        while b < len(batches) and batches[b][0] <= at:
            as_of, part = batches[b]
            part = part.assign(seen=as_of + part["wait"])  # wait 0: what apply fills in
            events.update(store, sp, part, as_of.to_pydatetime(), version=b)
            seen = pd.concat([seen, part], ignore_index=True)
            b += 1
        rows.append(plan.values(store, key, at))
        arrived.append(seen)
    return rows, points, arrived


# ------------------------------------------------------------------------ parity


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_online_equals_offline_with_available_at(case) -> None:
    """With ``available_at`` (the arrival time, or later), the online value at T equals
    the batch value computed later on the whole table: late events are left out at times
    before they arrived in both paths, so training sees exactly what serving saw."""
    _check_with_available_at(*case)


@pytest.mark.parametrize("backend", ["dict", "redis"])
def test_online_equals_offline_on_long_seeded_streams(backend: str, request) -> None:
    """The same property on longer streams, sparse to dense (15 to 150 events over 10
    hours, 3 entities, 25 points each), in a dict and in the Redis store."""
    if backend == "redis":
        from tuesday.data.online_redis import RedisStore

        url = request.getfixturevalue("redis_server").url()
    rng = np.random.default_rng(20240301)
    for n in (15, 30, 60, 150, 15, 30, 60, 150):
        minutes = rng.integers(0, 600, n)
        frame = pd.DataFrame({
            "k": rng.choice(["a", "b", "c"], n),
            "t": pd.Series(BASE + pd.to_timedelta(minutes, unit="min"), dtype="datetime64[us]"),
            "x": np.where(rng.random(n) < 0.15, np.nan, rng.normal(0, 50, n).round(3)),
            "y": rng.integers(0, 9, n)})
        frame["arrival"] = frame["t"] + pd.to_timedelta(rng.integers(0, 45, n), unit="min")
        frame["wait"] = pd.to_timedelta(rng.choice([0, 0, 2, 20], n), unit="min")
        frame = frame.sort_values("arrival", kind="stable").reset_index(drop=True)
        cuts = sorted(set(rng.integers(1, n, 12).tolist()))
        queries = [(str(k), int(s)) for k, s in zip(rng.choice(["a", "b", "c", "nobody"], 25),
                                                   rng.integers(-3600, 11 * 3600, 25),
                                                   strict=True)]
        store = RedisStore.from_url(url) if backend == "redis" else None
        _check_with_available_at(frame, cuts, queries, store)


def _check_with_available_at(frame: pd.DataFrame, cuts: list[int],
                             queries: list[tuple[str, int]], store: Store | None = None
                             ) -> None:
    model = PROJECT.model("m_avail")
    rows, points, _ = _replay("ev", model, frame, cuts, queries, store)
    everything = frame.copy()
    everything["seen"] = pd.NaT
    for as_of, part in _batches(frame, cuts):
        everything.loc[part.index, "seen"] = as_of + part["wait"]
    offline = _offline(model, "ev", everything, [k for k, _ in points],
                       [t for _, t in points])
    _compare(model, rows, offline, points)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_online_equals_offline_on_what_had_arrived(case) -> None:
    """Without ``available_at``, the online value at T equals the batch value on the
    events that had arrived by T (a late event counts from its own time once it is in
    the table, so the batch value computed later may include it: documented)."""
    frame, cuts, queries = case
    model = PROJECT.model("m_plain")
    rows, points, arrived = _replay("plain", model, frame, cuts, queries)
    groups: dict[int, list[int]] = {}  # points that saw the same arrived events
    for i, seen in enumerate(arrived):
        groups.setdefault(id(seen), []).append(i)
    for idx in groups.values():
        offline = _offline(model, "plain", arrived[idx[0]], [points[i][0] for i in idx],
                           [points[i][1] for i in idx])
        _compare(model, [rows[i] for i in idx], offline, [points[i] for i in idx])


def test_a_late_event_without_available_at_is_seen_by_training_only() -> None:
    """The documented skew: an event of 10:00 that arrives at 10:30 is not in the value
    served at 10:15; the batch value at 10:15, computed on the later table, counts it."""
    model = PROJECT.model("m_plain")
    sp = events.spec(PROJECT, "plain")
    assert sp is not None
    late = pd.DataFrame({"k": ["a"], "t": [BASE + pd.Timedelta(hours=10)], "x": [5.0],
                         "y": [1]})
    store = DictStore()
    store.replace(Space("plain", sp.schema, -1, BASE.isoformat()), [], lambda: True)
    plan = events.plan(PROJECT, model)
    at = BASE + pd.Timedelta(hours=10, minutes=15)
    served = plan.values(store, "a", at)["x_count_1h_lag_0d"]
    events.update(store, sp, late, (BASE + pd.Timedelta(hours=10, minutes=30)).to_pydatetime(),
                  version=0)
    later = _offline(model, "plain", late, ["a"], [at])["x_count_1h_lag_0d"].iloc[0]
    assert (served, later) == (0.0, 1)
    assert plan.values(store, "a", at)["x_count_1h_lag_0d"] == 1.0  # once it arrived


def test_values_from_events_is_the_batch_value_on_one_history() -> None:
    """The online definition applied to a whole history (no store) is the oracle of the
    DuckDB query, including ties at the latest time and missing values."""
    model = PROJECT.model("m_avail")
    sp = events.spec(PROJECT, "ev")
    assert sp is not None
    t = [BASE + pd.Timedelta(minutes=m) for m in (0, 30, 30, 30, 50, 200)]
    frame = pd.DataFrame({"k": "a", "t": pd.Series(t, dtype="datetime64[us]"),
                          "seen": pd.Series(t, dtype="datetime64[us]"),
                          "x": [1.5, 2.0, 9.0, None, 4.0, 3.0], "y": [1, 2, 3, 4, 5, 6]})
    times = [BASE + pd.Timedelta(minutes=m) for m in (-5, 0, 30, 45, 60, 100, 230, 2000)]
    offline = _offline(model, "ev", frame, ["a"] * len(times), times)
    feats = events.event_features(model)
    for i, at in enumerate(times):
        got = events.values_from_events(sp, feats, frame, at)
        for f, v in zip(feats, got, strict=True):
            assert _same(f.agg, _nan(v), float(offline[f.name].iloc[i])), (f.name, at)
    # at 00:45 the latest x is at 00:30, where 2.0 and 9.0 tie: the largest wins
    last = events.values_from_events(sp, [window("ev", "x", "1d", lag="0d", agg="last")],
                                     frame, times[3])
    assert last == [9.0]


def test_no_history_gives_the_declared_defaults() -> None:
    sp = events.spec(PROJECT, "ev")
    assert sp is not None
    store = DictStore()
    store.replace(Space("ev", sp.schema, -1, BASE.isoformat()), [], lambda: True)
    got = events.plan(PROJECT, PROJECT.model("m_avail")).values(store, "new-card", BASE)
    assert got == {"x_count_1h_lag_0d": 0.0, "x_sum_1h_lag_0d": 0.0, "x_mean_2h_lag_0d": None,
                   "x_min_2h_lag_0d": None, "x_max_1h_lag_1h": None,
                   "x_last_1d_lag_0d": -7.0, "y_sum_2h_lag_0d": None,
                   "y_last_3h_lag_1h": None, "ev_seconds_since_last": None,
                   "x_seconds_since_last": -1.0}


# ------------------------------------------------------------------------ records


def test_record_round_trip_and_view() -> None:
    sp = events.spec(PROJECT, "ev")
    assert sp is not None
    frame = pd.DataFrame({"k": "a", "t": [BASE, BASE + pd.Timedelta(hours=1)],
                          "seen": [BASE, pd.NaT], "x": [1.0, None], "y": [2, 3]})
    rec = events.merge(None, sp, *events.event_arrays(sp, frame), at=events.micros(BASE))
    blob = events.encode(rec, sp.schema_id)
    back, schema_id = events.decode(blob)
    assert schema_id == sp.schema_id
    np.testing.assert_array_equal(back.times, rec.times)
    np.testing.assert_array_equal(back.avail, rec.avail)
    np.testing.assert_array_equal(back.values, rec.values)
    view = events.View(blob)
    assert list(view.times) == rec.times.tolist()
    assert view.nulls == 0b01  # x (column 0) has a missing value, y has none
    assert view.cols[0][0] == 1.0 and math.isnan(view.cols[0][1])
    assert view.cols[1] == (2.0, 3.0)
    assert view.avail[1] == events.NEVER  # a missing available_at: never available
    assert len(blob) == events.HEADER.size + 2 * 8 * (2 + len(sp.columns))
    # every event available at its own time: the availability times are left out
    plain = events.spec(PROJECT, "plain")
    assert plain is not None
    rec = events.merge(None, plain, *events.event_arrays(plain, frame), at=events.micros(BASE))
    small = events.encode(rec, plain.schema_id)
    assert len(small) == events.HEADER.size + 2 * 8 * (1 + len(plain.columns))
    assert events.View(small).avail == events.View(small).times
    assert events.decode(small)[0].avail.tolist() == rec.times.tolist()



def _bits(row: dict) -> dict:
    """Values compared bit for bit (the sign of zero, NaN equal to NaN)."""
    return {k: None if v is None else np.float64(v).tobytes() for k, v in row.items()}


def test_suffix_aggregates_are_bit_for_bit_the_slice_aggregates() -> None:
    """``_suffixes`` gives, for every start, what ``math.fsum``, ``min`` and ``max`` give on
    the slice: cancellation, tiny and huge magnitudes, signed zeros, ties."""
    rng = np.random.default_rng(7)
    pools = [rng.uniform(-1000, 1000, 50).tolist(),
             [1e16, -1e16, 1.0, 0.1, -0.0, 0.0, 3e-300, 2.0 ** -1074, 1e300, -1e300],
             np.round(rng.lognormal(3.3, 0.6, 50), 2).tolist()]
    for trial in range(600):
        pool = pools[trial % len(pools)]
        vals = [float(v) for v in rng.choice(pool, int(rng.integers(1, 40)))]
        got = events.suffix_aggregates(vals).tolist()
        for i in range(len(vals)):
            want = [math.fsum(vals[i:]), min(vals[i:]), max(vals[i:])]
            assert np.array(got[i]).tobytes() == np.array(want).tobytes(), (vals, i)


def test_records_without_suffixes_still_read_and_give_the_same_values() -> None:
    """Formats 1 and 2 (no suffix aggregates: records written before them, or holding a
    value past ``SUFFIX_BOUND``) read as before; with or without the suffixes, and through
    the general ``_compute``, every request time gives the same bits: before, between
    and after the events, within a lag, with ties at the latest time."""
    for source, model in (("plain", "m_plain"), ("ev", "m_avail")):
        sp = events.spec(PROJECT, source)
        assert sp is not None
        plan = events.plan(PROJECT, PROJECT.model(model))
        (g,), ((_, _, read),) = plan.groups, plan.readers
        minutes = [0, 5, 5, 30, 61, 61, 61]
        frame = pd.DataFrame({"k": "a", "t": [BASE + pd.Timedelta(minutes=m) for m in minutes],
                              "seen": [BASE + pd.Timedelta(minutes=m) for m in minutes],
                              "x": [1.5, -0.0, 0.0, 2.25, 7.0, 9.0, -3.0],
                              "y": [1, 2, 3, 4, 5, 6, 0]})
        rec = events.merge(None, sp, *events.event_arrays(sp, frame), at=events.micros(BASE))
        new = events.encode(rec, sp.schema_id)
        old = events.encode(rec, sp.schema_id, suffixes=False)
        fmt_new, fmt_old = events.HEADER.unpack_from(new)[2], events.HEADER.unpack_from(old)[2]
        assert fmt_new == fmt_old | events.SUFFIXES and fmt_old in (events.FORMAT,
                                                                    events.SAME_TIMES)
        assert len(new) == len(old) + 24 * len(rec) * len(sp.columns)
        for blob in (new, old):
            back = events.decode(blob)[0]
            np.testing.assert_array_equal(back.values, rec.values)
            assert events.View(blob).values == events.View(old).values
        for m in range(-30, 300, 7):
            at = events.micros(BASE + pd.Timedelta(minutes=m, seconds=30))
            general = events.compute(g, model, events.View(old), at)
            assert _bits(read(new, at)) == _bits(read(old, at)) == _bits(general), m
            assert list(read(new, at)) == list(general)
    # a value past the bound: no suffix aggregates, read by slices
    sp = events.spec(PROJECT, "plain")
    assert sp is not None
    big = pd.DataFrame({"k": "a", "t": [BASE], "x": [1e308], "y": [1]})
    rec = events.merge(None, sp, *events.event_arrays(sp, big), at=events.micros(BASE))
    assert not events.HEADER.unpack_from(events.encode(rec, sp.schema_id))[2] & \
        events.SUFFIXES


def test_the_record_keeps_only_what_requests_after_ref_need() -> None:
    """A year of hourly events: the record holds the last 2 hours (the longest window)
    and the anchors of `last` (y's reaches 4 hours back), and the values stay exact."""
    sp = events.spec(PROJECT, "ev")
    assert sp is not None
    t = pd.date_range(BASE, periods=24 * 365, freq="h")
    frame = pd.DataFrame({"k": "a", "t": t, "seen": t, "x": np.arange(len(t)) % 17 * 1.0,
                          "y": 1})
    store = DictStore()
    store.replace(Space("ev", sp.schema, -1, BASE.isoformat()), [], lambda: True)
    for i in range(0, len(frame), 500):
        part = frame.iloc[i:i + 500]
        events.update(store, sp, part, part["t"].max().to_pydatetime(), version=i)
    blob = store.get("ev", "a")
    assert blob is not None
    assert len(events.View(blob).times) <= 5
    model = PROJECT.model("m_avail")
    at = t[-1] + pd.Timedelta(minutes=20)
    online_row = events.plan(PROJECT, model).values(store, "a", at)
    offline = _offline(model, "ev", frame, ["a"], [at])
    _compare(model, [online_row], offline, [("a", at)])


def test_the_size_bound_drops_the_oldest_and_counts_them(monkeypatch) -> None:
    monkeypatch.setattr(merging, "MAX_EVENTS", 10)
    sp = events.spec(PROJECT, "ev")
    assert sp is not None
    t = pd.date_range(BASE, periods=25, freq="min")
    frame = pd.DataFrame({"k": "a", "t": t, "seen": t, "x": 1.0, "y": 1})
    rec = events.merge(None, sp, *events.event_arrays(sp, frame), at=events.micros(t[-1]))
    assert (len(rec), rec.dropped) == (10, 15)


# -------------------------------------------------------------------------- stores


@pytest.fixture(params=["sqlite", "dict", "redis"])
def store(request, tmp_path) -> Store:
    if request.param == "dict":
        return DictStore()
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url()
        return online.open_store(open_workspace(tmp_path / "ws", online=url))
    return SQLiteStore(online.connect(open_workspace(tmp_path / "ws")))


def test_store_contract(store: Store) -> None:
    """Every online store meets the same contract (get/get_many/update/replace)."""
    assert store.space("s") is None
    assert store.get("s", "a") is None
    space = Space("s", "abc", 3, "2024-01-01T00:00:00")
    assert store.replace(space, [("a", b"1"), ("b", b"2")], lambda: True)
    assert store.space("s") == space
    assert store.get_many("s", ["b", "zz", "a", "b"]) == [b"2", None, b"1", b"2"]
    assert not store.replace(Space("s", "x", 9, ""), [("c", b"3")], lambda: False)
    assert store.get("s", "c") is None

    def bump(sp: Space | None, cur: dict[str, bytes]) -> tuple[Space | None, dict[str, bytes]]:
        assert sp == space and cur == {"a": b"1"}
        return None, {"a": cur["a"] + b"!", "c": b"3"}

    store.update("s", ["a", "c"], bump)
    assert store.get_many("s", ["a", "c"]) == [b"1!", b"3"]
    assert store.replace(space, [("z", b"0")], lambda: True)
    assert store.get_many("s", ["a", "z"]) == [None, b"0"]
    store.close()


# ------------------------------------------------------ through the workspace


def _rows(minutes: list[int], xs: list[float | None], key: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"k": key, "t": [(BASE + pd.Timedelta(minutes=m)).isoformat()
                                          for m in minutes], "x": xs, "y": 1})


def test_apply_ingests_validates_and_updates_the_state(tmp_path) -> None:
    ws = open_workspace(tmp_path / "ws")
    model = PROJECT.model("m_avail")
    t0 = BASE.to_pydatetime()
    first = events.apply(ws, PROJECT, "ev", _rows([0, 10], [1.0, 2.0]), t0)
    assert first.online == "updated" and first.entities == 1 and first.events == 2
    bad = _rows([20, 30], [3.0, 5000.0])  # 5000 breaks the contract's max
    second = events.apply(ws, PROJECT, "ev", bad, (BASE + pd.Timedelta(minutes=31))
                          .to_pydatetime())
    assert (second.ingest.report.accepted, second.ingest.report.quarantined) == (1, 1)
    assert second.to_dict()["online"] == {"status": "updated", "entities": 1, "events": 1}
    table = tables.read_table(ws, PROJECT.source("ev")).to_pandas()
    assert len(table) == 3  # nothing lost: the bad row is in quarantine
    # available_at was filled with each batch's arrival time
    assert sorted(table["seen"].astype(str)) == ["2024-03-01 00:00:00", "2024-03-01 00:00:00",
                                                 "2024-03-01 00:31:00"]
    assert len(tables.quarantine(ws, PROJECT.source("ev"))) == 1
    conn = online.open_store(ws)
    at = BASE + pd.Timedelta(minutes=40)
    served = events.plan(PROJECT, model).values(conn, "a", at)
    assert served["x_count_1h_lag_0d"] == 3.0
    assert served["x_sum_1h_lag_0d"] == 6.0
    offline = _offline(model, "ev", table, ["a"], [at])
    _compare(model, [served], offline, [("a", at)])
    # a rebuild from the table gives the same record, byte for byte
    before = conn.get("ev", "a")
    events.rebuild(ws, PROJECT, "ev", (BASE + pd.Timedelta(minutes=31)).to_pydatetime())
    assert conn.get("ev", "a") == before
    conn.close()


def test_a_file_ingested_source_needs_materialize_first(tmp_path) -> None:
    ws = open_workspace(tmp_path / "ws")
    model = PROJECT.model("m_avail")
    src = PROJECT.source("ev")
    history = _rows([0, 5], [1.0, 2.0]).assign(seen=BASE.isoformat())
    tables.ingest_frame(ws, src, history, as_of=BASE.to_pydatetime())
    later = (BASE + pd.Timedelta(minutes=20)).to_pydatetime()
    res = events.apply(ws, PROJECT, "ev", _rows([15], [4.0]), later)
    assert res.online.startswith("not built")
    conn = online.open_store(ws)
    with pytest.raises(NotFound, match="never built"):
        events.plan(PROJECT, model).values(conn, "nobody", later)
    info = materialize(ws, PROJECT, model, later)
    assert info["events"]["ev"] == {"source": "ev", "entities": 1, "events": 3,
                                    "table_version": 1,
                                    "schema": events.spec(PROJECT, "ev").schema}
    assert info["targets"] == 0 and info["entities"] == 1
    served = events.plan(PROJECT, model).values(conn, "a", later)
    assert served["x_count_1h_lag_0d"] == 3.0
    assert events.plan(PROJECT, model).values(conn, "nobody", later)["x_count_1h_lag_0d"] == 0
    # an event of a version the rebuild already read is not merged twice
    sp = events.spec(PROJECT, "ev")
    assert sp is not None
    again = tables.read_table(ws, src).to_pandas().tail(1)
    status, _ = events.update(conn, sp, again, later, version=1)
    assert status == "already in the state built by materialize"
    assert events.plan(PROJECT, model).values(conn, "a", later)["x_count_1h_lag_0d"] == 3.0
    # and materialize refuses an as-of before events it would have to leave out
    with pytest.raises(Conflict, match="after the as-of"):
        materialize(ws, PROJECT, model, BASE.to_pydatetime())
    conn.close()


def test_changed_feature_definitions_are_refused_until_rebuilt(tmp_path) -> None:
    ws = open_workspace(tmp_path / "ws")
    events.apply(ws, PROJECT, "ev", _rows([0], [1.0]), BASE.to_pydatetime())
    longer = Project("events", PROJECT.sources, (
        _model("m_avail", "ev", (window("ev", "x", "7d", lag="0d", agg="sum"),)),))
    conn = online.open_store(ws)
    with pytest.raises(NotFound, match="other feature definitions"):
        events.plan(longer, longer.model("m_avail")).values(conn, "a", BASE)
    res = events.apply(ws, longer, "ev", _rows([5], [1.0]),
                       (BASE + pd.Timedelta(minutes=5)).to_pydatetime())
    assert res.online.startswith("built for other feature definitions")
    events.rebuild(ws, longer, "ev", (BASE + pd.Timedelta(minutes=5)).to_pydatetime())
    got = events.plan(longer, longer.model("m_avail")).values(conn, "a", BASE + pd.Timedelta(
        minutes=6))
    assert got["x_sum_7d_lag_0d"] == 2.0
    conn.close()


def test_event_features_are_only_those_of_request_time_models() -> None:
    daily = Model("d", KEY, "labels", "label", (window("ev", "x", "7d", lag="14d"),),
                  (Baseline("prior", "prior"),), task="binary", horizon="14d",
                  metrics=("auc",))
    assert events.event_features(daily) == ()
    assert events.plan(Project("p", PROJECT.sources, (daily,)), daily).vectors
    assert len(events.event_features(PROJECT.model("m_avail"))) == 10
    assert not events.plan(PROJECT, PROJECT.model("m_avail")).vectors
    assert check_project(PROJECT) == []


def test_new_window_kinds_are_checked() -> None:
    bad = Model("b", KEY, "labels", "label",
                (window("ev", "x", "1h", lag="0d", agg="median"),
                 time_since_last("ev", "nope"), lag("ev", "x", "6h")),
                (Baseline("prior", "prior"),), task="binary", metrics=("auc",))
    problems = check_project(Project("p", PROJECT.sources, (bad,)))
    assert any("agg 'median'" in p for p in problems)
    assert any("column 'nope'" in p for p in problems)
    assert lag("ev", "x", "6h").name == "x_lag_6h"  # hours are kept, not rounded to 0d
    assert window("ev", "x", "48h", lag="0d").name == "x_mean_2d_lag_0d"


def test_events_rows_need_a_time_and_a_key() -> None:
    sp = events.spec(PROJECT, "plain")
    assert sp is not None
    frame = pd.DataFrame({"k": ["a", None, "b"], "t": [BASE, BASE, pd.NaT],
                          "x": [1.0, 2.0, 3.0], "y": [1, 1, 1]})
    groups = events.grouped_arrays(sp, frame)
    assert list(groups) == ["a"]  # no key: no entity; no time: in no window, as in SQL
    times, avail, values = groups["a"]
    assert times.tolist() == avail.tolist() == [events.micros(BASE)]
    assert values.tolist() == [[1.0], [1.0]]


def test_timestamps_are_microseconds() -> None:
    assert events.micros(datetime(2024, 1, 1, 0, 0, 0, 5)) == 1704067200000005
    assert events.micros("2024-01-01T00:00:00.0000019") == 1704067200000001
