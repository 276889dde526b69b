"""Online feature store: one record per (model, entity), in SQLite.

``materialize`` runs the same ``features.feature_frame`` that training uses, for the
points the server will be asked about: every entity, at each target time from the
origin ``as_of`` up to the model's horizon ahead (or at ``as_of`` itself for a model
without horizon). The record holds the vectors for those targets; a read is one primary
key lookup, so serving never recomputes features and cannot compute them differently.

With daily data, ``as_of`` is the last day whose data is in; targets are the next
``horizon`` days.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday import tables
from tuesday.errors import NotFound, ValidationFailed
from tuesday.features import feature_frame, horizon, points_frame
from tuesday.project import Model, Project
from tuesday.training import baseline_features, read_tables, sources_used
from tuesday.workspace import Workspace

SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    model TEXT NOT NULL,
    entity TEXT NOT NULL,
    origin TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (model, entity)
) WITHOUT ROWID
"""


def connect(ws: Workspace) -> sqlite3.Connection:
    """A connection to the online store (WAL, so readers never block the writer)."""
    conn = sqlite3.connect(ws.online_path, timeout=30, check_same_thread=False,
                           isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SCHEMA)
    return conn


@dataclass(frozen=True)
class Record:
    """Feature vectors of one entity, by target time (ISO string, or '' for no horizon)."""

    entity: str
    origin: str
    names: tuple[str, ...]
    vectors: dict[str, list[float | None]]

    def vector(self, target: str) -> list[float | None] | None:
        return self.vectors.get(target)


def target_key(t: pd.Timestamp | None) -> str:
    return "" if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


def known_entities(project: Project, model: Model, tabs: dict[str, pa.Table]) -> list[str]:
    """Every entity key in the sources the model reads (labelled or not), restricted by the
    model's ``where`` on the sources that have those columns."""
    key = model.entity.key
    found: set[str] = set()
    for name, table in tabs.items():
        src = project.source(name)
        if src.entity is None or src.entity.key != key:
            continue
        cols = list(dict.fromkeys([key, *(c for c in model.where if c in table.column_names)]))
        frame = table.select(cols).to_pandas()
        for col, values in model.where.items():
            if col in frame.columns:
                frame = frame[frame[col].isin(list(values))]
        found.update(frame[key].dropna().astype(str))
    return sorted(found)


def materialize(ws: Workspace, project: Project, model: Model, as_of: datetime) -> dict[str, Any]:
    """Compute and store the online features of every entity of ``model`` at ``as_of``."""
    names = sources_used(project, model)
    versions = tables.versions_as_of(ws, names, as_of)
    if model.label_source not in versions:
        raise ValidationFailed(
            f"Cannot materialize {model.name!r}: source {model.label_source!r} has no data "
            f"ingested at or before {as_of:%Y-%m-%d}.",
            fix=f"Run `tuesday ingest {model.label_source} FILE` first.")
    tabs = read_tables(ws, project, names, versions)
    entities = known_entities(project, model, tabs)
    h = horizon(model)
    origin = pd.Timestamp(as_of)
    if h > pd.Timedelta(0):
        step = pd.Timedelta(days=1) if h >= pd.Timedelta(days=1) else pd.Timedelta(hours=1)
        targets = [origin + step * (i + 1) for i in range(int(h / step))]
    else:
        targets = [origin]
    keys = pd.Series(np.repeat(entities, len(targets)), dtype="string")
    times = pd.Series(np.tile(np.array(targets, dtype="datetime64[us]"), len(entities)))
    pts = points_frame(model, keys, times)
    if h == pd.Timedelta(0):
        pts["_origin"] = origin
    extra = baseline_features(model)
    feats = feature_frame(project, model, pts, tabs, extra=extra)
    cols = list(feats.columns)
    values = feats.to_numpy(dtype=float)
    rows = []
    n = len(targets)
    for i, entity in enumerate(entities):
        block = values[i * n:(i + 1) * n]
        vectors = {(target_key(t) if h > pd.Timedelta(0) else ""):
                   [None if np.isnan(v) else float(v) for v in block[j]]
                   for j, t in enumerate(targets)}
        payload = json.dumps({"names": cols, "vectors": vectors}, separators=(",", ":"))
        rows.append((model.name, entity, origin.isoformat(), payload))
    conn = connect(ws)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO online_features VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {"model": model.name, "entities": len(entities), "targets": n,
            "origin": origin.isoformat(),
            "first_target": target_key(targets[0]) if h > pd.Timedelta(0) else None,
            "last_target": target_key(targets[-1]) if h > pd.Timedelta(0) else None,
            "versions": versions}


def lookup(conn: sqlite3.Connection, model: str, entity: str) -> Record | None:
    """One entity's record, or None when it was never materialized."""
    row = conn.execute("SELECT origin, payload FROM online_features WHERE model = ? AND "
                       "entity = ?", (model, entity)).fetchone()
    if row is None:
        return None
    payload = json.loads(row[1])
    return Record(entity, row[0], tuple(payload["names"]), payload["vectors"])


def read(conn: sqlite3.Connection, model: str, entity: str) -> Record:
    """One entity's record; a clear error when it was never materialized."""
    record = lookup(conn, model, entity)
    if record is None:
        raise NotFound(f"No online features for {model!r} entity {entity!r}.",
                       fix=f"Check the entity key, or run `tuesday materialize {model}` "
                           "after ingesting its data.")
    return record
