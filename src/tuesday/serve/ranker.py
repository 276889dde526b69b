"""The rank path: one request (a user, its context, its candidates) in, one slate out.

``Ranker.rank`` builds a row per candidate (the request's context, the candidate's row of
the catalog source when the model declares one, then the candidate's own fields), gets
their features through the predict path's ``Predictor.assemble`` (online store, event
features at the request's time, request features), scores them all with the one version
the deployment routes the request to, and arranges the slate with the model's rules and
exploration (``tuesday.train.slates``). Every candidate is logged (its features, raw and
final score, what each rule found on it, and for a shown item its position and the
probability of that position under the serving policy), so a later version can be
evaluated off-policy on these requests (``tuesday.release.ope``).

Routing is per request: ``canary`` sends a request to the challenger with the
deployment's percentage, ``ab`` by a hash of the request's ``user_id`` (or, without
one, like a canary); ``shadow`` arranges the challenger's slate too and logs it with
variant ``shadow``.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from tuesday.data import tables
from tuesday.errors import NotFound, TuesdayError, ValidationFailed
from tuesday.project import Model
from tuesday.serve.inference import Loaded, Row
from tuesday.serve.predictor import MAX_ROWS, Overloaded, Predictor, Route, _features_json
from tuesday.train import slates

__all__ = ["CATALOG_TTL", "Ranker", "parse_request"]

#: seconds the catalog (a ranking model's candidates source) is cached
CATALOG_TTL = 1.0


@dataclass
class _Catalog:
    version: int | None
    rows: dict[str, dict[str, Any]]
    order: list[str]
    checked: float


def parse_request(body: Any, key: str) -> tuple[dict[str, Any], list[dict[str, Any]] | None,
                                               int | None]:
    """The context, the candidates (None: the catalog) and the slate size of a rank
    request body."""
    if not isinstance(body, dict):
        raise TuesdayError(f"A rank request must be a JSON object; got {type(body).__name__}.",
                           fix='Send {"user_1": 3, "candidates": [{"' + key + '": "..."}]}.')
    context = {k: v for k, v in body.items() if k not in ("candidates", "size")}
    size = body.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise TuesdayError(f"'size' must be a whole number >= 1; got {size!r}.",
                           fix="Leave it out for the model's slate size, or send e.g. 3.")
    cands = body.get("candidates")
    if cands is None:
        return context, None, size
    if not isinstance(cands, list) or not all(isinstance(c, dict) for c in cands):
        raise TuesdayError("'candidates' must be a list of JSON objects, each with the "
                           f"entity key {key!r}.",
                           fix='Send "candidates": [{"' + key + '": "..."}], or leave it '
                               "out to rank the whole catalog.")
    if not cands:
        raise TuesdayError("'candidates' is empty: there is nothing to rank.",
                           fix="Send at least one candidate, or leave 'candidates' out to "
                               "rank the whole catalog.")
    if len(cands) > MAX_ROWS:
        raise TuesdayError(f"A rank request may hold at most {MAX_ROWS} candidates; got "
                           f"{len(cands)}.", fix="Send fewer candidates.")
    return context, cands, size


class Ranker:
    """Rank requests for the ranking models of one predictor's workspace and project."""

    def __init__(self, predictor: Predictor) -> None:
        self.p = predictor
        self._catalogs: dict[str, _Catalog] = {}

    # ---------------------------------------------------------------- candidates

    def model(self, name: str) -> Model:
        model = self.p.spec(name).model
        if model.task != "ranking" or model.slate is None:
            raise TuesdayError(f"Model {name!r} is a {model.task} model, not a ranking model.",
                               fix=f"Use POST /v1/models/{name}/predict for it.")
        return model

    def catalog(self, model: Model) -> _Catalog:
        """The model's candidates source as rows by key (newest version, re-read at most
        once a second)."""
        assert model.slate is not None
        name = model.slate.candidates
        now = time.monotonic()
        cur = self._catalogs.get(model.name)
        if cur is not None and now - cur.checked < CATALOG_TTL:
            return cur
        if name is None:
            cur = _Catalog(None, {}, [], now)
        else:
            last = tables.latest_version(self.p.ws, name)
            version = None if last is None else int(last["version"])
            if cur is None or cur.version != version:
                src = self.p.loaded.project.source(name)
                frame = tables.read_table(self.p.ws, src, version).to_pandas()
                key = model.entity.key
                frame[key] = frame[key].astype(str)
                rows = {str(r[key]): {k: _plain(v) for k, v in r.items()}
                        for r in frame.to_dict(orient="records")}
                cur = _Catalog(version, rows, sorted(rows), now)
            else:
                cur.checked = now
        self._catalogs[model.name] = cur
        return cur

    def candidate_rows(self, model: Model, context: dict[str, Any],
                       cands: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        key = model.entity.key
        cat = self.catalog(model)
        if cands is None:
            if not cat.order:
                raise NotFound(
                    f"Model {model.name!r} has no catalog to rank: the request names no "
                    "candidates and "
                    + (f"source {model.slate.candidates!r} has no rows." if model.slate
                       and model.slate.candidates else "the model declares no "
                       "Slate(candidates=SOURCE)."),
                    fix="Send 'candidates', or ingest the catalog source.")
            return [{**context, **cat.rows[k]} for k in cat.order]
        out = []
        for c in cands:
            k = c.get(key)
            known = cat.rows.get(str(k)) if k is not None else None
            out.append({**context, **(known or {}), **c})
        return out

    # ---------------------------------------------------------------------- rank

    def rank(self, name: str, body: Any) -> dict[str, Any]:
        """Answer one rank request (see the module docstring); log every candidate."""
        model = self.model(name)
        assert model.slate is not None
        key = model.entity.key
        context, cands, size = parse_request(body, key)
        size = size or model.slate.size
        rows = self.candidate_rows(model, context, cands)
        ready, problems, missing, incomplete = self.p.assemble(name, rows)
        if model.missing_features != "refuse":
            incomplete = {}
        unranked = {**problems, **{i: f"no online features for {m}" for i, m in missing.items()},
                    **{i: f"missing online features for {m}" for i, m in incomplete.items()}}
        if not ready:
            first = next(iter(unranked.values()), "no candidate")
            raise ValidationFailed(
                f"Model {name!r} could rank none of the {len(rows)} candidate(s): {first}.",
                fix=f"Check the candidates' keys and fields; after ingesting newer data run "
                    f"`tuesday materialize {name}`.", details=list(unranked.values())[:20])
        route = self.p.route(name)
        request_id = self.p.request_ids()
        rng = np.random.default_rng(int(request_id[:16], 16))
        draw = float(rng.random())
        lm, variant = _version_for(route, context, draw)
        served = self.p.clock()
        requests = [r.request for r in ready]
        h = slates.hits(model.rules, requests)
        raw = lm.predict_rows(ready)
        got = slates.arrange(model.rules, raw, h, size=size, rng=rng, rows=requests)
        log_rows = self._log_rows(request_id, model, lm, variant, ready, raw, got, h, served)
        if route.mode == "shadow" and route.challenger is not None:
            sraw = route.challenger.predict_rows(ready)
            shadow = slates.arrange(model.rules, sraw, h, size=size,
                                    rng=np.random.default_rng(rng.integers(1 << 62)),
                                    rows=requests)
            log_rows += self._log_rows(request_id, model, route.challenger, "shadow", ready,
                                       sraw, shadow, h, served)
        if self.p.log_predictions and not self.p.log.add(log_rows):
            raise Overloaded(f"The prediction log holds {len(self.p.log)} unwritten rows (the "
                             f"limit is {self.p.log.max_rows}); the request was not answered "
                             "so that no slate goes unlogged.")
        counts = self.p.served
        k = (name, lm.version, variant)
        counts[k] = counts.get(k, 0) + 1
        slate = [{key: ready[j].entity, "position": pos + 1,
                  "score": _num(got.scores[j]), "propensity": float(got.propensity[pos])}
                 for pos, j in enumerate(got.slate.tolist())]
        out: dict[str, Any] = {
            "model": name, "model_version": lm.version, "deployment": route.mode,
            "request_id": request_id, "slate": slate, "explored": got.explored,
            "exploration": got.exploration, "candidates": len(rows),
            "dropped": [{key: ready[j].entity, "dropped_by": d}
                        for j, d in enumerate(got.dropped_by) if d is not None],
        }
        if unranked:
            out["unranked"] = [{key: rows[i].get(key), "error": msg}
                               for i, msg in sorted(unranked.items())]
        return out

    def _log_rows(self, request_id: str, model: Model, lm: Loaded, variant: str,
                  ready: list[Row], raw: np.ndarray, got: slates.Arranged, h: slates.Hits,
                  served: Any) -> list[tuple[Any, ...]]:
        """One log row per candidate, in the order of ``LOG_SCHEMA``."""
        if not self.p.log_predictions:
            return []
        where = {int(j): pos for pos, j in enumerate(got.slate.tolist())}
        names = lm.names
        out = []
        for j, r in enumerate(ready):
            pos = where.get(j)
            hits = h.row(j)
            out.append((
                request_id, model.name, lm.version, r.entity,
                r.target.to_pydatetime() if r.target is not None else None, served,
                _num(got.scores[j]), "{}", _features_json(r.values, names), variant,
                float(raw[j]), float(got.propensity[pos]) if pos is not None else None,
                got.dropped_by[j], pos + 1 if pos is not None else None, got.explored,
                orjson.dumps(hits).decode() if hits else None,
            ))
        return out


def _version_for(route: Route, context: dict[str, Any], draw: float) -> tuple[Loaded, str]:
    """The version answering a whole request, and its variant."""
    ch = route.challenger
    if ch is None or route.mode in ("single", "shadow"):
        return route.production, "primary"
    if route.mode == "canary":
        return (ch, "canary") if draw * 100 < route.percent else (route.production, "primary")
    user = context.get("user_id")
    if user is None:
        return (ch, "b") if draw * 100 < route.percent else (route.production, "a")
    h = zlib.crc32(f"{route.model.name}\x00{user}".encode()) % 10_000
    return (ch, "b") if h < route.percent * 100 else (route.production, "a")


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


def log_rules(text: str | None) -> dict[str, Any]:
    """A log row's ``rules`` column back as a dict."""
    return json.loads(text) if text else {}
