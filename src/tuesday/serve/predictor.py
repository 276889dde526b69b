"""The predict path shared by the server and batch scoring.

Online features (one store lookup per entity) plus request-time features -> the
version(s) the model's deployment routes each row to (``tuesday.serve.inference``) ->
business rules -> answer -> prediction log (``tuesday.serve.prediction_log``: when its
buffer is full, predicting refuses with ``Overloaded``, HTTP 503, rather than growing
memory or dropping log rows).

Routing follows the registry and the model's deployment, re-read at most once a
second, so ``promote``, ``rollback`` and ``deploy`` take effect without a restart:

* ``single``: every row goes to the production version;
* ``shadow``: rows are answered by production; the challenger predicts the same rows,
  its answers are logged with variant ``shadow`` and never returned;
* ``canary``: each request goes to the challenger with the deployment's percentage;
* ``ab``: each entity goes to variant ``b`` (the challenger) when a hash of the model
  name and entity key falls under the percentage, else ``a``: sticky per entity.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd

from tuesday.data import events, online
from tuesday.data.features import baseline_features, horizon
from tuesday.errors import NotFound, Overloaded, TuesdayError, ValidationFailed
from tuesday.project import LoadedProject, Model, parse_time
from tuesday.project.times import timedelta_of
from tuesday.release import registry
from tuesday.serve import compiled, rules
from tuesday.serve.explaining import Explainer
from tuesday.serve.inference import Loaded, Row, SingleRow, matrix
from tuesday.serve.prediction_log import PredictionLog
from tuesday.train.baselines import ONLINE as ONLINE_BASELINES
from tuesday.train.training import baseline_predict, load_model
from tuesday.workspace import Workspace

__all__ = ["MAX_ROWS", "REGISTRY_TTL", "Overloaded", "Predictor", "Route", "Spec",
           "parse_rows", "wall_clock"]

log = logging.getLogger(__name__)

#: rows one predict request may hold
MAX_ROWS = 10_000
#: seconds a model's routing is cached before the registry is read again
REGISTRY_TTL = 1.0


def wall_clock() -> datetime:
    """Now, in UTC, as a naive datetime."""
    return datetime.now(UTC).replace(tzinfo=None)


# ------------------------------------------------------------------------- routing


@dataclass
class Route:
    """Where a model's traffic goes right now."""

    model: Model
    production: Loaded
    mode: str
    challenger: Loaded | None
    percent: float
    checked: float

    def variant_of(self, entity: str, draw: float) -> str:
        """``primary`` / ``canary`` / ``a`` / ``b`` for one row (shadow is extra)."""
        if self.challenger is None or self.mode in ("single", "shadow"):
            return "primary"
        if self.mode == "canary":
            return "canary" if draw * 100 < self.percent else "primary"
        h = zlib.crc32(f"{self.model.name}\x00{entity}".encode()) % 10_000
        return "b" if h < self.percent * 100 else "a"



@dataclass(frozen=True)
class Spec:
    """What the predict path needs to know of a model, worked out once per model (the
    project does not change while a predictor lives)."""

    model: Model
    key: str
    tcol: str | None
    has_horizon: bool
    request_feats: tuple[str, ...]
    live: events.Plan
    baseline_extra: tuple[str, ...]
    online_baselines: tuple[Any, ...]
    rules: tuple[Any, ...]  # all of the model's rules (a slate)
    rules_unrelated: tuple[Any, ...]  # without exploration (batch scoring)
    max_age: timedelta | None  # the model's max_staleness
    request_categories: frozenset[str] = frozenset()  # request features taken as text

    def gaps(self, values: dict[str, Any]) -> tuple[str, ...]:
        """The model's stored features that are null or NaN in ``values`` (only asked
        for a vector that is not complete; baseline inputs, request features and event
        features, which the request itself provides, do not count)."""
        return tuple(n for n in self.stored if n in values and _num(values[n]) is None)

    @property
    def stored(self) -> tuple[str, ...]:
        """The model's features read from the stored vector (not given by the request,
        not computed from events), worked out once."""
        got = self.__dict__.get("_stored")
        if got is None:
            own = set(self.request_feats) | set(self.live.names)
            got = tuple(f.name for f in self.model.features if f.name not in own)
            object.__setattr__(self, "_stored", got)
        return got

    @classmethod
    def of(cls, project: Any, model: Model) -> Spec:
        return cls(model, model.entity.key, project.source(model.label_source).time,
                   horizon(model) > pd.Timedelta(0),
                   tuple(f.name for f in model.features if f.kind == "request"),
                   events.plan(project, model),
                   tuple(f.name for f in baseline_features(model)),
                   tuple(b for b in model.baselines if b.kind in ONLINE_BASELINES),
                   tuple(model.rules),
                   tuple(r for r in model.rules if r.kind not in rules.EXPLORATION),
                   None if model.max_staleness is None
                   else timedelta_of(model.max_staleness, what="max_staleness"),
                   frozenset(f.name for f in model.features
                             if f.kind == "request" and f.dtype == "category"))


#: handed to ``rules.apply`` when no rule explores: it draws nothing then
_UNUSED_RNG = np.random.default_rng(0)


def _draws(route: Route, model_rules: tuple[Any, ...], request_id: str
           ) -> tuple[np.random.Generator, float]:
    """The request's random generator and its draw for the canary split: seeded by the
    request id, and only made when something draws from it (a canary, an exploration
    rule)."""
    if route.mode == "canary" or any(r.kind in rules.EXPLORATION for r in model_rules):
        rng = np.random.default_rng(int(request_id[:16], 16))
        return rng, float(rng.random())
    return _UNUSED_RNG, 0.0


def _split_predict(route: Route, ready: list[Row], draw: float
                   ) -> tuple[list[str], list[int], np.ndarray]:
    """The variant, the version and the raw prediction of each row: each version
    predicts the rows the route sends it."""
    prod = route.production
    ch = route.challenger
    if ch is None:
        return ["primary"] * len(ready), [prod.version] * len(ready), prod.predict_rows(ready)
    variants = [route.variant_of(r.entity, draw) for r in ready]
    use_challenger = np.array([v in ("canary", "b") for v in variants])
    raw = np.empty(len(ready))
    for lm, mask in ((prod, ~use_challenger), (ch, use_challenger)):
        if not mask.any():
            continue
        raw[mask] = lm.predict_rows([r for r, m in zip(ready, mask, strict=True) if m])
    return variants, [ch.version if c else prod.version for c in use_challenger], raw


class Predictor:
    """Everything needed to answer predict requests for one workspace and project.

    With ``log_predictions=False`` nothing is added to the prediction log (for a
    benchmark, or a deployment that logs elsewhere); answers and the served counts are
    the same.

    With ``compile_models=True`` each LightGBM version loaded is also compiled to C in
    the background (``tuesday.serve.compiled``); once built and checked bit-identical, it
    answers instead of LightGBM's C API. Until then, or when no C compiler is found,
    LightGBM answers: the numbers are the same either way.
    """

    def __init__(self, ws: Workspace, loaded: LoadedProject, *,
                 log_rows: PredictionLog | None = None,
                 clock: Callable[[], datetime] = wall_clock,
                 log_predictions: bool = True, compile_models: bool = False) -> None:
        self.ws = ws
        self.loaded = loaded
        self.store = online.open_store(ws)
        self.records = online.Cached(self.store)
        self.log = log_rows if log_rows is not None else PredictionLog(ws)
        self.log_predictions = log_predictions
        self.compile_models = compile_models
        self.clock = clock
        self.routes: dict[str, Route] = {}
        self.versions: dict[tuple[str, int], Loaded] = {}
        self.served: dict[tuple[str, int, str], int] = {}
        #: rows with null online features, by (model, 'refused' or 'flagged')
        self.incomplete: dict[tuple[str, str], int] = {}
        #: rows of models with a deadline, by (model, 'fallback' or 'missed')
        self.deadline: dict[tuple[str, str], int] = {}
        #: recent seconds per row of each model's prediction call (for its deadline)
        self.model_seconds: dict[str, float] = {}
        self._specs: dict[str, Spec] = {}
        self._explainer: Explainer | None = None
        #: makes each request's id (32 hex digits), which also seeds its exploration and
        #: canary draws: random by default; a seeded source replays them exactly
        self.request_ids: Callable[[], str] = _random_id

    @property
    def explainer(self) -> Explainer:
        """Explanations of the versions served (set up on the first explained request)."""
        if self._explainer is None:
            self._explainer = Explainer(self.ws)
        return self._explainer

    def spec(self, name: str) -> Spec:
        got = self._specs.get(name)
        if got is None:
            project = self.loaded.project
            got = self._specs[name] = Spec.of(project, project.model(name))
        return got

    def close(self) -> None:
        self.store.close()

    def refresh(self, name: str | None = None) -> None:
        """Forget the cached routing (of one model or all) so the next request re-reads
        the registry: after a promotion in the same process, or each day of a replay.
        The online store's version is checked again at the next lookup too."""
        self.records.changed()
        if name is None:
            self.routes.clear()
        else:
            self.routes.pop(name, None)

    def _load(self, name: str, version: int, manifest: dict[str, Any]) -> Loaded:
        got = self.versions.get((name, version))
        if got is None:
            fitted = load_model(self.ws, manifest)
            got = Loaded(version, fitted, tuple(manifest["features"]), SingleRow.of(fitted),
                         categories=dict(getattr(fitted, "categories", {}) or {}))
            self.versions[(name, version)] = got
            # the compiled trees take numeric splits only: a model with categories keeps
            # LightGBM's own predictor
            if self.compile_models and got.single is not None and not got.categories:
                compiled.compile_in_background(
                    fitted.model, lambda c, lm=got: setattr(lm, "compiled", c))
        return got

    def route(self, name: str) -> Route:
        """The model's current routing, re-read from the registry at most once a second."""
        now = time.monotonic()
        cur = self.routes.get(name)
        if cur is not None and now - cur.checked < REGISTRY_TTL:
            return cur
        model = self.spec(name).model
        prod = registry.production(self.ws, name)
        if prod is None:
            raise NotFound(f"Model {name!r} has no production version.",
                           fix=f"Promote one with `tuesday promote {name} VERSION`.")
        dep = registry.deployment(self.ws, name)
        challenger = None
        if dep["mode"] != "single" and dep["version"] != prod["version"]:
            ch = registry.get_version(self.ws, name, int(dep["version"]))
            challenger = self._load(name, int(ch["version"]), ch["manifest"])
        cur = Route(model, self._load(name, int(prod["version"]), prod["manifest"]),
                    dep["mode"] if challenger is not None else "single", challenger,
                    float(dep["percent"]), now)
        self.routes[name] = cur
        return cur

    # -------------------------------------------------------------- feature assembly

    def assemble(self, name: str, rows: Sequence[dict[str, Any]]
                 ) -> tuple[list[Row], dict[int, str], dict[int, str], dict[int, str]]:
        """Features for each row; problems (bad input), misses (no features) and
        incomplete rows (some of the model's online features are null) by row. Incomplete
        rows are left out of the rows returned when the model refuses them, and carry
        the names of the null features when it flags them."""
        sp = self.spec(name)
        key, tcol, has_horizon = sp.key, sp.tcol, sp.has_horizon
        request_feats = sp.request_feats
        live = sp.live
        problems: dict[int, str] = {}
        missing: dict[int, str] = {}
        incomplete: dict[int, str] = {}
        times: dict[str, pd.Timestamp] = {}
        out: list[Row] = []
        now = self.clock() if sp.max_age is not None else None
        for i, row in enumerate(rows):
            entity = row.get(key)
            if not _is_key(entity):
                problems[i] = (f"row {i}: field {key!r} (the entity key) must be a string or "
                               f"whole number; got {entity!r}.")
                continue
            target: pd.Timestamp | None = None
            if has_horizon:
                raw_t = row.get(tcol or "")
                try:
                    target = parse_time(raw_t, what=f"row {i}: field {tcol!r} (the target "
                                                    f"date)")
                except TuesdayError as exc:
                    problems[i] = exc.message
                    continue
            elif live.features:  # the time to compute event features at; now by default
                raw_t = row.get(tcol or "")
                if isinstance(raw_t, str) and raw_t in times:  # the rows of one slate
                    target = times[raw_t]
                else:
                    try:
                        target = pd.Timestamp(self.clock()) if raw_t is None \
                            else parse_time(raw_t, what=f"row {i}: field {tcol!r} (the "
                                                        "time to score at)")
                    except TuesdayError as exc:
                        problems[i] = exc.message
                        continue
                    if isinstance(raw_t, str):
                        times[raw_t] = target
            bad = [f for f in request_feats if not _is_number(row.get(f)) and not (
                f in sp.request_categories and isinstance(row.get(f), str | None))]
            if bad:
                problems[i] = " ".join(
                    f"row {i}: request feature {f!r} must be "
                    f"{'a text (a category)' if f in sp.request_categories else 'a number'}; "
                    f"got {row.get(f)!r}." for f in bad)
                continue
            record = self.records.lookup(name, str(entity)) if live.vectors \
                else online.NO_VECTORS
            if record is None:
                missing[i] = (f"{key}={entity!r} (unknown entity, or its features were "
                              f"never materialized: `tuesday materialize {name}`)")
                continue
            vec = record.vector(online.target_key(target) if has_horizon else "")
            if vec is None:
                known = sorted(record.vectors)
                missing[i] = (f"{key}={entity!r} at {tcol}={online.target_key(target)!r} "
                              f"(the online store holds {known[0][:10]} to {known[-1][:10]}, "
                              f"origin {record.origin[:10]})")
                continue
            values = dict(zip(record.names, vec, strict=True))
            gaps = () if _complete(vec) else sp.gaps(values)
            stale = None
            if sp.max_age is not None and now is not None:
                age = now - datetime.fromisoformat(record.origin)
                if age > sp.max_age:
                    stale = _age_text(age)
                    incomplete[i] = (f"{key}={entity!r}: its online features were "
                                     f"materialized at {record.origin[:16]}, {stale} ago "
                                     f"(the model allows {sp.model.max_staleness})")
                    if sp.model.missing_features == "refuse":
                        continue
            if gaps:
                incomplete[i] = (f"{key}={entity!r}"
                                 + (f" at {tcol}={online.target_key(target)!r}" if has_horizon
                                    else "")
                                 + f": {len(gaps)} of {len(sp.model.features)} features are "
                                 f"null ({', '.join(gaps)}; materialized at "
                                 f"{record.origin[:16]})")
                if sp.model.missing_features == "refuse":
                    continue
            if live.features and len(rows) == 1:
                values.update(live.values(self.store, str(entity), target))
            for f in request_feats:
                values[f] = row.get(f)
            out.append(Row(i, str(entity), target, values, row, gaps, stale))
        if live.features and len(rows) > 1 and out:
            self._live_many(live, out)
        self._count_incomplete(name, sp, len(incomplete))
        return out, problems, missing, incomplete

    def _live_many(self, live: events.Plan, out: list[Row]) -> None:
        """The event features of many rows: one query per source and request time (the
        candidates of a slate share it), not one per row."""
        by_time: dict[Any, list[Row]] = {}
        for r in out:
            by_time.setdefault(r.target, []).append(r)
        for at, group in by_time.items():
            got = live.values_many(self.store, [r.entity for r in group], at)
            for r, vals in zip(group, got, strict=True):
                r.values.update(vals)

    def _count_incomplete(self, name: str, sp: Spec, n: int) -> None:
        if n:
            k = (name, "refused" if sp.model.missing_features == "refuse" else "flagged")
            self.incomplete[k] = self.incomplete.get(k, 0) + n

    # ----------------------------------------------------------------------- predict

    def predict(self, name: str, rows: Sequence[dict[str, Any]], *,
                partial: bool = False, slate: bool = True,
                explain: bool = False) -> dict[str, Any]:
        """Answer rows with the model's deployment; log them; return the response body.

        With ``partial``, rows with bad input or without features are answered with an
        ``error`` instead of failing the whole request (batch scoring). With
        ``slate=False`` the rows are not one set of candidates, so exploration rules
        do not apply (batch scoring of unrelated rows). With ``explain``, each answered
        row carries its ``explanation`` (``tuesday.serve.explaining``).
        """
        started = time.perf_counter()
        route = self.route(name)
        sp = self.spec(name)
        key, tcol = sp.key, sp.tcol
        ready, problems, missing, incomplete = self.assemble(name, rows)
        refused = incomplete if sp.model.missing_features == "refuse" else {}
        if not partial:
            _raise_for(name, problems, missing, refused)
        request_id = self.request_ids()
        served = self.clock()
        answers: dict[int, dict[str, Any]] = {}
        log_rows: list[tuple[Any, ...]] = []
        counts: list[tuple[int, str]] = []
        if ready:
            answers = self._answer(route, sp, ready, request_id, served, slate, log_rows,
                                   counts, started, explain)
        if self.log_predictions and not self.log.add(log_rows):
            raise Overloaded(f"The prediction log holds {len(self.log)} unwritten rows (the "
                             f"limit is {self.log.max_rows}); the request was not answered "
                             "so that no prediction goes unlogged.", reason="log_full")
        served_counts = self.served
        for version, variant in counts:
            k = (name, version, variant)
            served_counts[k] = served_counts.get(k, 0) + 1
        if len(rows) == 1 and 0 in answers:  # the common case: one row, answered
            return {"model": name, "model_version": route.production.version,
                    "deployment": route.mode, "request_id": request_id,
                    "predictions": [answers[0]]}
        def unanswered(i: int) -> dict[str, Any]:
            if i in refused:
                return _error_row(rows[i], key, tcol, f"missing or stale online features "
                                                      f"for {refused[i]}")
            return _error_row(rows[i], key, tcol, problems.get(i)
                              or f"no online features for {missing.get(i)}")

        if any(a.get("rank") is not None for a in answers.values()):
            # explored: answers in rank order, rows without an answer last
            out = [answers[i] for i in sorted(answers, key=lambda i: answers[i]["rank"])]
            out += [unanswered(i) for i in range(len(rows)) if i not in answers]
        else:
            out = [answers[i] if i in answers else unanswered(i) for i in range(len(rows))]
        return {"model": name, "model_version": route.production.version,
                "deployment": route.mode, "request_id": request_id, "predictions": out}

    def _answer(self, route: Route, sp: Spec, ready: list[Row], request_id: str,
                served: datetime, slate: bool, log_rows: list[tuple[Any, ...]],
                counts: list[tuple[int, str]], started: float, explain: bool = False
                ) -> dict[int, dict[str, Any]]:
        """Answers by row index; appends the log rows (when logging) and the (version,
        variant) of every row served, shadow included, to ``log_rows`` and ``counts``."""
        model_rules = sp.rules if slate else sp.rules_unrelated
        key, tcol = sp.key, sp.tcol
        rng, draw = _draws(route, model_rules, request_id)
        deadline = sp.model.deadline_ms
        fallback: tuple[str, dict[str, np.ndarray]] | None = None
        if deadline is None:
            variants, versions, raw = _split_predict(route, ready, draw)
        else:
            variants, versions, raw, fallback = self._within_deadline(
                route, sp, ready, draw, started, deadline)
        requests = [r.request for r in ready]
        final = rules.apply(model_rules, requests, raw, rng) if model_rules else \
            rules.Applied(raw, [None] * len(ready), range(len(ready)),  # type: ignore[arg-type]
                          None, False)  # what apply gives, without copies
        logging_on = self.log_predictions
        bl = self._baselines(sp, ready) if (logging_on or explain) and fallback is None \
            else {}
        if fallback is not None:
            bl = fallback[1]
        name = route.model.name
        answers: dict[int, dict[str, Any]] = {}
        rank = {int(j): k for k, j in enumerate(final.order)} if final.explored else {}
        show_version = route.mode in ("canary", "ab")
        for j, r in enumerate(ready):
            p = final.predictions[j]
            ans: dict[str, Any] = {key: r.entity}
            if r.target is not None:
                ans[tcol or "time"] = online.target_key(r.target)
            ans["prediction"] = None if p != p else float(p)
            if r.missing:
                ans["missing_features"] = list(r.missing)
            if r.stale is not None:
                ans["stale_features"] = r.stale
            if final.dropped_by[j] is not None:
                ans["dropped_by"] = final.dropped_by[j]
            if fallback is not None:
                ans["fallback"] = {"reason": "deadline", "baseline": fallback[0],
                                   "deadline_ms": deadline}
            if show_version:
                ans["model_version"] = versions[j]
                ans["variant"] = variants[j]
            if final.explored:
                ans["rank"] = rank[j]
                ans["propensity"] = float(final.propensity[j])  # type: ignore[index]
            answers[r.index] = ans
            counts.append((int(versions[j]), variants[j]))
            if logging_on:
                log_rows.append(self._log_row(request_id, name, versions[j], variants[j], r,
                                              served, p, raw[j], final, j, bl, route))
        if route.mode == "shadow" and route.challenger is not None and fallback is None:
            self._shadow(route, route.challenger, model_rules, ready, requests, rng,
                         request_id, served, bl, log_rows, counts)
        if explain and fallback is None:  # a baseline's answer has no contributions
            self._explain(route, ready, versions, final.predictions, bl, answers)
        return answers

    def _within_deadline(self, route: Route, sp: Spec, ready: list[Row], draw: float,
                         started: float, deadline_ms: float
                         ) -> tuple[list[str], list[int], np.ndarray,
                                    tuple[str, dict[str, np.ndarray]] | None]:
        """The model's answer when the time taken so far plus the model's recent time for
        this many rows leaves it within the deadline; otherwise the first online baseline's
        (``fallback`` is then its name and the baselines' values). The estimate of a model
        that keeps falling back shrinks by a tenth per request, so it is tried again and
        re-measured; a model call that passed the deadline anyway is counted as missed."""
        name = route.model.name
        budget = deadline_ms / 1000.0
        per_row = self.model_seconds.get(name, 0.0)
        elapsed = time.perf_counter() - started
        if sp.online_baselines and elapsed + per_row * len(ready) > budget:
            self.model_seconds[name] = per_row * 0.9
            bl = self._baselines(sp, ready)
            chosen = sp.online_baselines[0].name
            k = (name, "fallback")
            self.deadline[k] = self.deadline.get(k, 0) + len(ready)
            values = np.asarray(bl[chosen], dtype=float)
            return (["deadline"] * len(ready), [route.production.version] * len(ready),
                    values, (chosen, bl))
        t0 = time.perf_counter()
        variants, versions, raw = _split_predict(route, ready, draw)
        now = time.perf_counter()
        took = (now - t0) / len(ready)
        self.model_seconds[name] = took if per_row == 0.0 else 0.8 * per_row + 0.2 * took
        if now - started > budget:
            k = (name, "missed")
            self.deadline[k] = self.deadline.get(k, 0) + len(ready)
        return variants, versions, raw, None

    def _explain(self, route: Route, ready: list[Row], versions: list[int],
                 finals: np.ndarray, bl: dict[str, np.ndarray],
                 answers: dict[int, dict[str, Any]]) -> None:
        """Each answered row's ``explanation``, by the version that answered it."""
        by_version: dict[int, list[int]] = {}
        for j, v in enumerate(versions):
            by_version.setdefault(int(v), []).append(j)
        for v, idx in by_version.items():
            lm = route.production if v == route.production.version else route.challenger
            assert lm is not None
            rows = [ready[j] for j in idx]
            got = self.explainer.explain(
                route.model, v, lm.booster, matrix(lm, rows),
                {k: a[idx] for k, a in bl.items()}, [float(finals[j]) for j in idx],
                entities=[r.entity for r in rows], whens=[r.target for r in rows])
            for r, e in zip(rows, got, strict=True):
                answers[r.index]["explanation"] = e

    def _shadow(self, route: Route, sh: Loaded, model_rules: tuple[Any, ...],
                ready: list[Row], requests: list[dict[str, Any]], rng: np.random.Generator,
                request_id: str, served: datetime, bl: dict[str, np.ndarray],
                log_rows: list[tuple[Any, ...]], counts: list[tuple[int, str]]) -> None:
        """The shadow version's predictions of the same rows, through the same rules:
        counted and logged with variant ``shadow``, never answered."""
        sraw = sh.predict_rows(ready)
        sfinal = rules.apply(model_rules, requests, sraw, rng)
        name = route.model.name
        for j, r in enumerate(ready):
            counts.append((int(sh.version), "shadow"))
            if self.log_predictions:
                log_rows.append(self._log_row(request_id, name, sh.version, "shadow", r,
                                              served, sfinal.predictions[j], sraw[j], sfinal,
                                              j, bl, route, names=sh.names))

    def _baselines(self, sp: Spec, ready: list[Row]) -> dict[str, np.ndarray]:
        if not sp.online_baselines:
            return {}
        extra = sp.baseline_extra
        frame = pd.DataFrame([{n: r.values.get(n) for n in extra} for r in ready]) if extra \
            else pd.DataFrame(index=range(len(ready)))
        return {b.name: baseline_predict(sp.model, b, frame, np.array([np.nan]), fill=False)
                for b in sp.online_baselines}

    @staticmethod
    def _log_row(request_id: str, name: str, version: int, variant: str, r: Row,
                 served: datetime, p: float, raw: float, final: rules.Applied, j: int,
                 bl: dict[str, np.ndarray], route: Route,
                 names: tuple[str, ...] | None = None) -> tuple[Any, ...]:
        """One prediction log row, in the order of ``LOG_SCHEMA``."""
        lm_names = names or (route.challenger.names if route.challenger is not None
                             and version == route.challenger.version
                             else route.production.names)
        return (
            request_id, name, version, r.entity,
            r.target.to_pydatetime() if r.target is not None else None,
            served, None if p != p else float(p),
            json.dumps({k: _num(v[j]) for k, v in bl.items()}) if bl else "{}",
            _features_json(r.values, lm_names), variant, float(raw),
            float(final.propensity[j]) if final.propensity is not None else None,
            final.dropped_by[j], None, None, None,
        )


def _random_id() -> str:
    return os.urandom(16).hex()  # as random as uuid4().hex, a quarter of the cost


def _features_json(values: dict[str, Any], names: tuple[str, ...]) -> str:
    """The served features as a JSON object (missing, NaN and infinite as null). The
    usual row (all values plain floats or None) goes to orjson as it is, without a call
    per value."""
    vals = list(map(values.get, names))
    for v in vals:
        if v is not None and (v.__class__ is not float or v != v):
            return orjson.dumps({n: _num(values.get(n)) for n in names}).decode()
    return orjson.dumps(dict(zip(names, vals, strict=True))).decode()


def _num(v: Any) -> float | str | None:
    """A stored feature value as logged: a number (None for NaN), or a category's text."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    f = float(v)
    return None if f != f else f  # NaN: the same test as np.isnan, without numpy


def _error_row(row: dict[str, Any], key: str, tcol: str | None, msg: str) -> dict[str, Any]:
    return {key: row.get(key), **({tcol: row.get(tcol)} if tcol else {}),
            "prediction": None, "error": msg}


def _age_text(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def _complete(vec: Sequence[float | None]) -> bool:
    """Whether a stored vector has no null and no NaN: one pass in C (``math.fsum``
    fails on None and is NaN when a value is), not a Python loop per value."""
    try:
        total = math.fsum(vec)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False
    return total == total


def _raise_for(name: str, problems: dict[int, str], missing: dict[int, str],
               refused: dict[int, str] | None = None) -> None:
    if problems:
        items = list(problems.values())
        raise TuesdayError(f"{len(items)} problem(s) in the request: " + " ".join(items),
                           fix="Fix the listed fields and send the request again.",
                           details=items + list(missing.values()))
    if missing:
        items = list(missing.values())
        raise NotFound(f"Model {name!r} has no online features for {len(items)} row(s): "
                       + "; ".join(items) + ".",
                       fix=f"Check the keys and dates; after ingesting newer data run "
                           f"`tuesday materialize {name}`.", details=items)
    if refused:
        items = list(refused.values())
        raise ValidationFailed(
            f"Model {name!r} refuses {len(items)} row(s) whose online features are "
            f"missing or stale: " + "; ".join(items) + ".",
            fix=f"Ingest the sources those features read and run `tuesday materialize "
                f"{name}`, or declare Model(..., missing_features='flag') to answer such "
                f"rows with a flag.", details=items)


def _is_key(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, str | int):
        return False
    try:
        str(v).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(str(v).strip())


def _is_number(v: Any) -> bool:
    """None (missing, the declared default applies) or a finite int/float, not a bool."""
    if v is None:
        return True
    return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(float(v))


def parse_rows(body: Any) -> tuple[list[dict[str, Any]], bool]:
    """The rows of a request body ``{"rows": [...]}`` or a single row object."""
    if isinstance(body, dict) and "rows" in body:
        rows = body["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TuesdayError("'rows' must be a list of JSON objects; got "
                               f"{type(rows).__name__}.",
                               fix='Send {"rows": [{"station": "...", "date": "..."}]}.')
        if len(rows) > MAX_ROWS:
            raise TuesdayError(f"A request may hold at most {MAX_ROWS} rows; got {len(rows)}.",
                               fix="Split the batch, or use POST /v1/models/MODEL/batch "
                                   "(NDJSON or CSV, any size).")
        return rows, True
    if isinstance(body, dict):
        return [body], False
    raise TuesdayError(f"The request body must be a JSON object; got {type(body).__name__}.",
                       fix='Send {"rows": [{...}]} or a single row object.')
