"""The request path: a plan per model (its event features grouped by source and
window) and, per group, a reader compiled once that computes every feature from one
record."""

from __future__ import annotations

import math
import sqlite3
import struct
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuesday.data.events.aggregates import Compiled, general
from tuesday.data.events.record import FORMATS, HEADER, MAGIC, SAME_TIMES, SUFFIXES, View, unpacker
from tuesday.data.events.specs import Spec, event_features, micros, spec
from tuesday.data.online import SQLiteStore, Store
from tuesday.errors import NotFound
from tuesday.project import Model, Project

Member = tuple[str, Callable[..., "float | None"], int, "float | None", Compiled]


@dataclass(frozen=True)
class Group:
    """The event features of one model over one source, grouped by window.

    ``windows``: (lag, window, members) with members (name, fast function, column
    index, default, compiled feature): what the request path loops over.
    """

    spec: Spec
    feats: tuple[Compiled, ...]
    windows: tuple[tuple[int, int, tuple[Member, ...]], ...]

    @staticmethod
    def of(sp: Spec, feats: Sequence[Compiled]) -> Group:
        windows: dict[tuple[int, int], list[Member]] = {}
        for f in feats:
            windows.setdefault((f.lag, f.window), []).append(
                (f.name, f.fast, f.col, f.default, f))
        return Group(sp, tuple(feats), tuple((lag, w, tuple(m))
                                             for (lag, w), m in sorted(windows.items())))

    def defaults(self) -> dict[str, float | None]:
        """The values of an entity without history."""
        return {f.name: 0.0 if f.agg == "count" else f.default for f in self.feats}


@dataclass(frozen=True)
class Plan:
    """How to compute a model's event features at request time: one record per source.

    Attributes:
        names: The event features, in the model's order.
        vectors: Whether the model also has features read from materialized vectors.
        groups: Per source: its spec and features.
    """

    model: str
    names: tuple[str, ...]
    vectors: bool
    groups: tuple[Group, ...]
    #: per group: (source, keyed, reader), the reader compiled once per plan (_reader)
    readers: tuple[tuple[str, bool, Reader], ...] = field(init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "readers", tuple(
            (g.spec.source, g.spec.key is not None, _reader(g, self.model))
            for g in self.groups))

    @property
    def features(self) -> bool:
        return bool(self.names)

    def _check(self, store: Store, sp: Spec) -> None:
        """An entity without a record has no history only if the space was built (one
        more point query, only for entities without a record)."""
        space = store.space(sp.source)
        if space is None:
            raise NotFound(f"The online state of source {sp.source!r} (read by model "
                           f"{self.model!r}) was never built.",
                           fix=f"Run `tuesday materialize {self.model}`.")
        if space.schema != sp.schema:
            raise NotFound(f"The online state of source {sp.source!r} was built for other "
                           f"feature definitions than model {self.model!r} declares now.",
                           fix=f"Run `tuesday materialize {self.model}` to rebuild it.")

    def values(self, store: Store | sqlite3.Connection, entity: str, at: Any
               ) -> dict[str, float | None]:
        """Every event feature of one entity at time ``at``: one read per source."""
        st = SQLiteStore(store) if isinstance(store, sqlite3.Connection) else store
        t = micros(at)
        if len(self.readers) == 1:  # the usual case: one source, one record
            source, keyed, read = self.readers[0]
            blob = st.get(source, entity if keyed else "")
            if blob is not None:
                return read(blob, t)
        out: dict[str, float | None] = {}
        for g, (source, keyed, read) in zip(self.groups, self.readers, strict=True):
            blob = st.get(source, entity if keyed else "")
            if blob is None:
                self._check(st, g.spec)
                out.update(g.defaults())
            else:
                out.update(read(blob, t))
        return out

    def values_many(self, store: Store, entities: Sequence[str], at: Any
                    ) -> list[dict[str, float | None]]:
        """Event features of many entities at one time: one query per source."""
        t = micros(at)
        out: list[dict[str, float | None]] = [{} for _ in entities]
        for g, (source, keyed, read) in zip(self.groups, self.readers, strict=True):
            keys = entities if keyed else [""] * len(entities)
            for i, blob in enumerate(store.get_many(source, keys)):
                if blob is None:
                    self._check(store, g.spec)
                    out[i].update(g.defaults())
                else:
                    out[i].update(read(blob, t))
        return out


def compute(g: Group, model: str, view: View, at: int) -> dict[str, float | None]:
    """``value`` of every feature of one source for one record (the request path)."""
    if view.schema_id != g.spec.schema_id:
        raise NotFound(f"The online state of source {g.spec.source!r} was built for other "
                       f"feature definitions than model {model!r} declares now.",
                       fix=f"Run `tuesday materialize {model}` to rebuild it.")
    times, values, nulls = view.times, view.values, view.nulls
    n = len(times)
    settled = view.settled_before <= at
    out: dict[str, float | None] = {}
    if settled and not nulls:  # the usual case: every feature on the fast path
        for lag, window, members in g.windows:  # one bisect per window
            hi = at - lag
            i1 = bisect_right(times, hi)
            i0 = bisect_right(times, hi - window, 0, i1)
            for name, fast, c, default, _ in members:
                out[name] = fast(times, values[c * n + i0:c * n + i1] if c >= 0 else (),
                                 i0, i1, hi, default)
        return out
    for lag, window, members in g.windows:
        hi = at - lag
        i1 = bisect_right(times, hi)
        i0 = bisect_right(times, hi - window, 0, i1)
        for name, fast, c, default, f in members:
            if settled and (c < 0 or not (nulls >> c) & 1):
                out[name] = fast(times, values[c * n + i0:c * n + i1] if c >= 0 else (),
                                 i0, i1, hi, default)
            else:
                col = values[c * n:(c + 1) * n] if c >= 0 else None
                out[name] = general(f, i0, i1, hi, times, col, view.avail, at)
    return out


Reader = Callable[[bytes, int], "dict[str, float | None]"]


def _reader(g: Group, model: str) -> Reader:
    """The request path of one group, ``blob, at -> values``, as one function compiled
    once per plan: the blob unpacked in place, one bisect per window end and start, every
    aggregate inlined (no call per feature, no loop, no ``View``); keys in the order
    ``compute`` gives them (by window).

    Two bodies. When the record has suffix aggregates and every window ends at or after
    the newest event (a request at or after it, the usual case), only the times are
    unpacked and each (window, column) reads its ``(fsum, min, max)`` at the window's
    start: one bisect and one lookup. Otherwise (a back-dated request, a window with a
    lag, an older record) one slice per (window, column) of the unpacked values. Both
    give exactly what ``compute`` gives, and hand over to it when the record is not on
    the fast path: an event not yet available at ``at``, a missing value, another schema
    or format (``compute`` raises for those).
    """
    ns: dict[str, Any] = {"bisect_right": bisect_right, "fsum": math.fsum,
                          "unpack_head": HEADER.unpack_from, "array": unpacker,
                          "FORMATS": FORMATS, "SAME_TIMES": SAME_TIMES, "SUFFIXES": SUFFIXES,
                          "MAGIC": MAGIC, "SCHEMA": g.spec.schema_id, "HEAD": HEADER.size,
                          "triple": struct.Struct("<3d").unpack_from,
                          "last_tied": _last_tied, "tie_start": _tie_start,
                          "slow": lambda blob, at: compute(g, model, View(blob), at)}
    reach = max((lag for lag, _, _ in g.windows), default=0)
    lines = ["def read(blob, at):",
             "    magic, ncols, fmt, n, _ref, max_avail, nulls, schema, _d = "
             "unpack_head(blob)",
             "    if nulls or max_avail > at or schema != SCHEMA or magic != MAGIC "
             "or fmt not in FORMATS:",
             "        return slow(blob, at)",
             "    times = array(n, 'q').unpack_from(blob, HEAD)",
             "    vo = HEAD + (8 * n if fmt & ~SUFFIXES == SAME_TIMES else 16 * n)",
             f"    if fmt & SUFFIXES and times[n - 1] <= at - {reach}:",
             *_body(g, ns, suffixes=True),
             "    vals = array(n * ncols, 'd').unpack_from(blob, vo)",
             *_body(g, ns, suffixes=False)]
    # generated from the plan's own values only (names as reprs, defaults by name)
    exec(compile("\n".join(lines), f"<tuesday.data.events reader {g.spec.source}>", "exec"), ns)
    fn: Reader = ns["read"]
    fn.__doc__ = "\n".join(lines)  # the generated source, for debugging
    return fn


def _body(g: Group, ns: dict[str, Any], *, suffixes: bool) -> list[str]:
    """The lines computing every feature of ``g`` (see ``_reader``), indented under
    ``if`` (suffixes) or the function (slices)."""
    pad = "        " if suffixes else "    "
    cols = sorted({c for _, _, members in g.windows for _, _, c, _, _ in members if c >= 0})
    if suffixes:  # q{c}: where the (fsum, min, max) of column c start
        lines = [f"{pad}so = vo + 8 * n * ncols",
                 *(f"{pad}q{c} = so + 24 * n * {c}" for c in cols)]
    else:  # o{c}: where column c starts in vals
        lines = [f"{pad}o{c} = {c} * n" for c in cols]
    lags: dict[int, str] = {}
    items: list[str] = []
    for w, (lag, window, members) in enumerate(g.windows):
        if lag not in lags:
            lags[lag] = f"{len(lags)}"
            lines += [f"{pad}hi{lags[lag]} = at - {lag}",
                      f"{pad}e{lags[lag]} = " + ("n" if suffixes else
                                                 f"bisect_right(times, hi{lags[lag]})")]
        hi, e = f"hi{lags[lag]}", f"e{lags[lag]}"
        lines += [f"{pad}a{w} = bisect_right(times, {hi} - {window}, 0, {e})",
                  f"{pad}k{w} = {e} > a{w}"]
        done: set[int] = set()
        summed: set[int] = set()
        for m, (name, _fast, c, default, f) in enumerate(members):
            d = f"d{w}_{m}"
            ns[d] = default
            s = f"s{w}_{c}"
            if f.agg in ("sum", "mean", "min", "max") and c not in done:
                done.add(c)
                lines.append(f"{pad}{s} = triple(blob, q{c} + 24 * a{w}) if k{w} else ()"
                             if suffixes else f"{pad}{s} = vals[o{c} + a{w}:o{c} + {e}]")
            if f.agg in ("sum", "mean") and c not in summed and not suffixes:
                summed.add(c)
                lines.append(f"{pad}f{w}_{c} = fsum({s})")
            expr = _expr(f.agg, suffixes=suffixes, w=w, c=c, e=e, hi=hi, s=s, d=d)
            items.append(f"{pad}    {name!r}: {expr},")
    return [*lines, f"{pad}return {{", *items, f"{pad}}}"]



def _expr(agg: str, *, suffixes: bool, w: int, c: int, e: str, hi: str, s: str, d: str) -> str:
    """The expression of one feature in the generated reader: ``agg`` over window ``w``
    (start ``a{w}``, end ``e``, non-empty ``k{w}``) of column ``c``, read from the suffix
    triple or the slice ``s``, with the default named ``d``."""
    if suffixes:
        expr = {
            "sum": f"{s}[0] if k{w} else {d}",
            "mean": f"{s}[0] / ({e} - a{w}) if k{w} else {d}",
            "min": f"{s}[1] if k{w} else {d}",
            "max": f"{s}[2] if k{w} else {d}",
            "last": (f"triple(blob, q{c} + 24 * tie_start(times, a{w}, n))[2] "
                     f"if k{w} else {d}"),
        }.get(agg, "")
    else:
        expr = {
            "sum": f"f{w}_{c} if k{w} else {d}",
            "mean": f"f{w}_{c} / ({e} - a{w}) if k{w} else {d}",
            "min": f"min({s}) if k{w} else {d}",
            "max": f"max({s}) if k{w} else {d}",
            "last": (f"(vals[o{c} + {e} - 1] if {e} - 1 == a{w} or "
                     f"times[{e} - 2] != times[{e} - 1] else "
                     f"last_tied(times, vals, o{c}, a{w}, {e})) if k{w} else {d}"),
        }.get(agg, "")
    return expr or {
        "count": f"float({e} - a{w})",
        "time_since_last": f"({hi} - times[{e} - 1]) / 1_000_000 if k{w} else {d}",
    }[agg]


def _tie_start(times: Sequence[int], i0: int, n: int) -> int:
    """The first of the events at the latest time (not before ``i0``): ``last`` is the
    largest of them, the suffix maximum there."""
    t, j = times[n - 1], n - 1
    while j > i0 and times[j - 1] == t:
        j -= 1
    return j


def _last_tied(times: Sequence[int], vals: Sequence[float], o: int, i0: int, i1: int
               ) -> float:
    """``last`` when several events share the latest time: the largest value (as
    ``_f_last``)."""
    t, j = times[i1 - 1], i1 - 1
    while j > i0 and times[j - 1] == t:
        j -= 1
    return float(max(vals[o + j:o + i1]))


_PLANS: dict[tuple[int, str], tuple[Project, Plan]] = {}


def plan(project: Project, model: Model) -> Plan:
    """The (cached) request-time plan of ``model``'s event features."""
    cached = _PLANS.get((id(project), model.name))
    if cached is not None and cached[0] is project:
        return cached[1]
    feats = event_features(model)
    names = {f.name for f in feats}
    groups = []
    for source in sorted({f.source or "" for f in feats}):
        sp = spec(project, source)
        assert sp is not None
        groups.append(Group.of(sp, [sp.compile(f) for f in feats if f.source == source]))
    vectors = not feats or any(f.kind != "request" and f.name not in names
                               for f in model.features)
    result = Plan(model.name, tuple(f.name for f in feats), vectors, tuple(groups))
    _PLANS[(id(project), model.name)] = (project, result)
    return result
