"""The predict path shared by the server and batch scoring.

Online features (one store lookup per entity) plus request-time features -> the
version(s) the model's deployment routes each row to -> business rules -> answer ->
prediction log. The log is buffered with a bound and appended to the Delta table
``_predictions`` in batches; when the buffer is full, predicting refuses with
``Overloaded`` (HTTP 503) rather than growing memory or dropping log rows.

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
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake

from tuesday import events, online, registry, rules
from tuesday.baselines import ONLINE as ONLINE_BASELINES
from tuesday.errors import NotFound, TuesdayError
from tuesday.features import horizon
from tuesday.project import LoadedProject, Model, parse_time
from tuesday.training import baseline_features, baseline_predict, load_model
from tuesday.workspace import Workspace

log = logging.getLogger("tuesday.predict")

PREDICTIONS = "_predictions"
LOG_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("model", pa.string()), ("version", pa.int64()),
    ("entity", pa.string()), ("target_time", pa.timestamp("us")),
    ("served_at", pa.timestamp("us")), ("prediction", pa.float64()),
    ("baselines", pa.string()), ("features", pa.string()),
    ("variant", pa.string()), ("raw_prediction", pa.float64()),
    ("propensity", pa.float64()), ("dropped_by", pa.string()),
])
MAX_ROWS = 10_000
REGISTRY_TTL = 1.0
LOG_FLUSH_ROWS = 2_000
LOG_MAX_ROWS = 200_000


class Overloaded(TuesdayError):
    """The server is behind; the client should retry after a pause."""

    status = 503
    exit_code = 6
    kind = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, fix=f"Retry after {retry_after} s or lower the request rate.")
        self.retry_after = retry_after


def wall_clock() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# ------------------------------------------------------------------ prediction log


class PredictionLog:
    """Buffered, batched appends of served predictions to a Delta table.

    ``add`` refuses (returns False) once ``max_rows`` are waiting; ``flush`` is safe to
    call from another thread; a failed write keeps the rows for the next flush.
    """

    def __init__(self, ws: Workspace, *, max_rows: int = LOG_MAX_ROWS) -> None:
        self.ws = ws
        self.max_rows = max_rows
        self.rows: list[dict[str, Any]] = []
        self.written = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows: list[dict[str, Any]]) -> bool:
        with self._lock:
            if len(self.rows) + len(rows) > self.max_rows:
                return False
            self.rows.extend(rows)
            return True

    def flush(self) -> int:
        with self._write_lock:
            with self._lock:
                batch, self.rows = self.rows, []
            if not batch:
                return 0
            try:
                table = pa.Table.from_pylist(batch, schema=LOG_SCHEMA)
                write_deltalake(str(self.ws.table_path(PREDICTIONS)), table, mode="append",
                                schema_mode="merge")
            except Exception:
                self.failures += 1
                with self._lock:  # keep them, oldest first, for the next attempt
                    self.rows[:0] = batch
                log.exception("writing %d prediction log rows failed; kept for retry",
                              len(batch))
                raise
            self.written += len(batch)
            return len(batch)


def read_log(ws: Workspace, model: str | None = None) -> pd.DataFrame:
    """The prediction log as a frame (empty if nothing was served)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(str(ws.table_path(PREDICTIONS)))
    except TableNotFoundError:
        return LOG_SCHEMA.empty_table().to_pandas()
    frame = dt.to_pyarrow_table().to_pandas()
    for f in LOG_SCHEMA:  # logs written before a column existed
        if f.name not in frame.columns:
            frame[f.name] = "primary" if f.name == "variant" else None
    frame["variant"] = frame["variant"].fillna("primary")
    return frame[frame["model"] == model].reset_index(drop=True) if model else frame


# ------------------------------------------------------------------------- routing


@dataclass
class Loaded:
    """A model version ready to predict."""

    version: int
    booster: Any
    names: tuple[str, ...]


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


@dataclass
class Row:
    """One request row with its features assembled."""

    index: int
    entity: str
    target: pd.Timestamp | None
    values: dict[str, Any]
    request: dict[str, Any]


class Predictor:
    """Everything needed to answer predict requests for one workspace and project."""

    def __init__(self, ws: Workspace, loaded: LoadedProject, *,
                 log_rows: PredictionLog | None = None,
                 clock: Callable[[], datetime] = wall_clock) -> None:
        self.ws = ws
        self.loaded = loaded
        self.conn = online.connect(ws)
        self.log = log_rows if log_rows is not None else PredictionLog(ws)
        self.clock = clock
        self.routes: dict[str, Route] = {}
        self.versions: dict[tuple[str, int], Loaded] = {}
        self.served: dict[tuple[str, int, str], int] = {}

    def close(self) -> None:
        self.conn.close()

    def refresh(self, name: str | None = None) -> None:
        """Forget the cached routing (of one model or all) so the next request re-reads
        the registry: after a promotion in the same process, or each day of a replay."""
        if name is None:
            self.routes.clear()
        else:
            self.routes.pop(name, None)

    def _load(self, name: str, version: int, manifest: dict[str, Any]) -> Loaded:
        got = self.versions.get((name, version))
        if got is None:
            got = Loaded(version, load_model(self.ws, manifest), tuple(manifest["features"]))
            self.versions[(name, version)] = got
        return got

    def route(self, name: str) -> Route:
        """The model's current routing, re-read from the registry at most once a second."""
        model = self.loaded.project.model(name)
        now = time.monotonic()
        cur = self.routes.get(name)
        if cur is not None and now - cur.checked < REGISTRY_TTL:
            return cur
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
                 ) -> tuple[list[Row], dict[int, str], dict[int, str]]:
        """Features for each row; problems (bad input) and misses (no features) by row."""
        model = self.loaded.project.model(name)
        key = model.entity.key
        tcol = self.loaded.project.source(model.label_source).time
        h = horizon(model)
        request_feats = [f.name for f in model.features if f.kind == "request"]
        live = events.plan(self.loaded.project, model)
        problems: dict[int, str] = {}
        missing: dict[int, str] = {}
        out: list[Row] = []
        for i, row in enumerate(rows):
            entity = row.get(key)
            if not _is_key(entity):
                problems[i] = (f"row {i}: field {key!r} (the entity key) must be a string or "
                               f"whole number; got {entity!r}.")
                continue
            target: pd.Timestamp | None = None
            if h > pd.Timedelta(0):
                raw_t = row.get(tcol or "")
                try:
                    target = parse_time(raw_t, what=f"row {i}: field {tcol!r}")
                except TuesdayError:
                    problems[i] = (f"row {i}: field {tcol!r} must be the target date as an "
                                   f"ISO string like '2016-07-10'; got {raw_t!r}.")
                    continue
            elif live.features:  # the time to compute event features at; now by default
                raw_t = row.get(tcol or "")
                try:
                    target = pd.Timestamp(self.clock()) if raw_t is None \
                        else parse_time(raw_t, what=f"row {i}: field {tcol!r}")
                except TuesdayError:
                    problems[i] = (f"row {i}: field {tcol!r} must be the time to score at "
                                   f"as an ISO string like '2024-03-01T12:00'; got {raw_t!r}.")
                    continue
            bad = [f for f in request_feats if not _is_number(row.get(f))]
            if bad:
                problems[i] = " ".join(f"row {i}: request feature {f!r} must be a number; "
                                       f"got {row.get(f)!r}." for f in bad)
                continue
            record = online.lookup(self.conn, name, str(entity)) if live.vectors \
                else online.NO_VECTORS
            if record is None:
                missing[i] = f"{key}={entity!r} (unknown entity)"
                continue
            vec = record.vector(online.target_key(target) if h > pd.Timedelta(0) else "")
            if vec is None:
                known = sorted(record.vectors)
                missing[i] = (f"{key}={entity!r} at {tcol}={online.target_key(target)!r} "
                              f"(the online store holds {known[0][:10]} to {known[-1][:10]}, "
                              f"origin {record.origin[:10]})")
                continue
            values = dict(zip(record.names, vec, strict=True))
            if live.features:
                values.update(live.values(self.conn, str(entity), target))
            for f in request_feats:
                values[f] = row.get(f)
            out.append(Row(i, str(entity), target, values, row))
        return out, problems, missing

    # ----------------------------------------------------------------------- predict

    def predict(self, name: str, rows: Sequence[dict[str, Any]], *,
                partial: bool = False, slate: bool = True) -> dict[str, Any]:
        """Answer rows with the model's deployment; log them; return the response body.

        With ``partial``, rows with bad input or without features are answered with an
        ``error`` instead of failing the whole request (batch scoring). With
        ``slate=False`` the rows are not one set of candidates, so exploration rules
        do not apply (batch scoring of unrelated rows).
        """
        route = self.route(name)
        model = route.model
        key = model.entity.key
        tcol = self.loaded.project.source(model.label_source).time
        ready, problems, missing = self.assemble(name, rows)
        if not partial:
            _raise_for(name, problems, missing)
        request_id = uuid.uuid4().hex
        served = self.clock()
        rng = np.random.default_rng(int(request_id[:16], 16))
        answers: dict[int, dict[str, Any]] = {}
        log_rows: list[dict[str, Any]] = []
        if ready:
            answers, log_rows = self._answer(route, ready, rng, request_id, served, slate)
        if not self.log.add(log_rows):
            raise Overloaded(f"The prediction log holds {len(self.log)} unwritten rows (the "
                             f"limit is {self.log.max_rows}); the request was not answered "
                             "so that no prediction goes unlogged.")
        for r in log_rows:
            k = (name, int(r["version"]), r["variant"])
            self.served[k] = self.served.get(k, 0) + 1
        out = []
        explored = any(a.get("rank") is not None for a in answers.values())
        order = sorted(answers, key=lambda i: answers[i]["rank"]) if explored else None
        for i in (order if order is not None else range(len(rows))):
            if i in answers:
                out.append(answers[i])
            else:
                row = rows[i]
                out.append({key: row.get(key), **({tcol: row.get(tcol)} if tcol else {}),
                            "prediction": None, "error": problems.get(i) or
                            f"no online features for {missing.get(i)}"})
        if order is not None:  # rows without an answer come last
            out.extend(_error_row(rows[i], key, tcol, problems.get(i) or
                                  f"no online features for {missing.get(i)}")
                       for i in range(len(rows)) if i not in answers)
        return {"model": name, "model_version": route.production.version,
                "deployment": route.mode, "request_id": request_id, "predictions": out}

    def _answer(self, route: Route, ready: list[Row], rng: np.random.Generator,
                request_id: str, served: datetime, slate: bool
                ) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
        model = route.model
        model_rules = model.rules if slate else tuple(
            r for r in model.rules if r.kind not in rules.EXPLORATION)
        key = model.entity.key
        tcol = self.loaded.project.source(model.label_source).time
        draw = float(rng.random())
        variants = [route.variant_of(r.entity, draw) for r in ready]
        use_challenger = np.array([v in ("canary", "b") for v in variants])
        raw = np.empty(len(ready))
        x_by_version: dict[int, np.ndarray] = {}
        for lm, mask in ((route.production, ~use_challenger),
                         (route.challenger, use_challenger)):
            if lm is None or not mask.any():
                continue
            x = _matrix(lm, [r for r, m in zip(ready, mask, strict=True) if m])
            raw[mask] = lm.booster.predict(x, num_threads=1)
            x_by_version[lm.version] = x
        final = rules.apply(model_rules, [r.request for r in ready], raw, rng)
        bl = self._baselines(model, ready)
        versions = [route.challenger.version if c and route.challenger else
                    route.production.version for c in use_challenger]
        answers: dict[int, dict[str, Any]] = {}
        log_rows = []
        rank = {int(j): k for k, j in enumerate(final.order)}
        for j, r in enumerate(ready):
            p = final.predictions[j]
            ans: dict[str, Any] = {key: r.entity}
            if r.target is not None:
                ans[tcol or "time"] = online.target_key(r.target)
            ans["prediction"] = None if np.isnan(p) else float(p)
            if final.dropped_by[j] is not None:
                ans["dropped_by"] = final.dropped_by[j]
            if route.mode in ("canary", "ab"):
                ans["model_version"] = versions[j]
                ans["variant"] = variants[j]
            if final.explored:
                ans["rank"] = rank[j]
                ans["propensity"] = float(final.propensity[j])  # type: ignore[index]
            answers[r.index] = ans
            log_rows.append(self._log_row(request_id, model.name, versions[j], variants[j],
                                          r, served, p, raw[j], final, j, bl, route))
        if route.mode == "shadow" and route.challenger is not None:
            sh = route.challenger
            x = _matrix(sh, ready)
            sraw = sh.booster.predict(x, num_threads=1)
            sfinal = rules.apply(model_rules, [r.request for r in ready], sraw, rng)
            for j, r in enumerate(ready):
                log_rows.append(self._log_row(request_id, model.name, sh.version, "shadow",
                                              r, served, sfinal.predictions[j], sraw[j],
                                              sfinal, j, bl, route, names=sh.names))
        return answers, log_rows

    def _baselines(self, model: Model, ready: list[Row]) -> dict[str, np.ndarray]:
        extra = [f.name for f in baseline_features(model)]
        frame = pd.DataFrame([{n: r.values.get(n) for n in extra} for r in ready]) if extra \
            else pd.DataFrame(index=range(len(ready)))
        return {b.name: baseline_predict(model, b, frame, np.array([np.nan]))
                for b in model.baselines if b.kind in ONLINE_BASELINES}

    @staticmethod
    def _log_row(request_id: str, name: str, version: int, variant: str, r: Row,
                 served: datetime, p: float, raw: float, final: rules.Applied, j: int,
                 bl: dict[str, np.ndarray], route: Route,
                 names: tuple[str, ...] | None = None) -> dict[str, Any]:
        lm_names = names or (route.challenger.names if route.challenger is not None
                             and version == route.challenger.version
                             else route.production.names)
        feats = {n: _num(r.values.get(n)) for n in lm_names}
        return {
            "request_id": request_id, "model": name, "version": version,
            "entity": r.entity,
            "target_time": r.target.to_pydatetime() if r.target is not None else None,
            "served_at": served, "prediction": None if np.isnan(p) else float(p),
            "baselines": json.dumps({k: float(v[j]) for k, v in bl.items()}),
            "features": json.dumps(feats), "variant": variant, "raw_prediction": float(raw),
            "propensity": (float(final.propensity[j]) if final.propensity is not None
                           else None),
            "dropped_by": final.dropped_by[j],
        }


def _matrix(lm: Loaded, ready: Sequence[Row]) -> np.ndarray:
    return np.asarray([[_nan(r.values.get(n)) for n in lm.names] for r in ready],
                      dtype=float).reshape(len(ready), len(lm.names))


def _nan(v: Any) -> float:
    return np.nan if v is None else float(v)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if np.isnan(f) else f


def _error_row(row: dict[str, Any], key: str, tcol: str | None, msg: str) -> dict[str, Any]:
    return {key: row.get(key), **({tcol: row.get(tcol)} if tcol else {}),
            "prediction": None, "error": msg}


def _raise_for(name: str, problems: dict[int, str], missing: dict[int, str]) -> None:
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
