"""Materialize a model's online features: the same feature code as training, stored
one record per entity for the server to read.

``materialize`` runs the same ``features.feature_frame`` that training uses, for the
points the server will be asked about: every entity, at each target time from the
origin ``as_of`` up to the model's horizon ahead (or at ``as_of`` itself for a model
without horizon). The record holds the vectors for those targets.

With daily data, ``as_of`` is the last day whose data is in; targets are the next
``horizon`` days. A time of day (``2025-12-31T23:45``) still means that day, and a bare
date the whole of it (``daily_origin``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.data import events, inputs
from tuesday.data.features import baseline_features, feature_frame, horizon, points_frame
from tuesday.data.online import open_store, target_key
from tuesday.project import Model, Project
from tuesday.workspace import Workspace


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
    """Compute and store the online features of every entity of ``model`` at ``as_of``.

    A model scored at request time with event features (``tuesday.data.events``) gets the
    state of each event source rebuilt from its table; its other features (lookups,
    calendar...) are materialized as vectors, as for any model.
    """
    live = events.plan(project, model)
    built = {g.spec.source: events.rebuild(ws, project, g.spec.source, as_of)
             for g in live.groups}
    if live.features and not live.vectors:
        return {"model": model.name, "entities": sum(b["entities"] for b in built.values()),
                "targets": 0, "origin": pd.Timestamp(as_of).isoformat(), "first_target": None,
                "last_target": None,
                "versions": {s: b["table_version"] for s, b in built.items()},
                "events": built}
    out = _materialize_vectors(ws, project, model, as_of)
    return {**out, "events": built} if built else out


def daily_origin(h: pd.Timedelta, as_of: datetime) -> tuple[pd.Timestamp, datetime]:
    """The forecast origin and the time the tables are read at. A model whose horizon is
    whole days forecasts dates: its origin is the day of ``as_of`` (23:45 is that day, as
    the daily loop has it), and a bare date means that whole day, so an ingest at 23:00
    of it counts. Other models use ``as_of`` as it is."""
    at = pd.Timestamp(as_of)
    if h >= pd.Timedelta(days=1) and h % pd.Timedelta(days=1) == pd.Timedelta(0):
        day = at.normalize()
        read = day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if at == day else at
        return day, read.to_pydatetime()
    return at, at.to_pydatetime()


def _materialize_vectors(ws: Workspace, project: Project, model: Model, as_of: datetime
                         ) -> dict[str, Any]:
    h = horizon(model)
    origin, read_at = daily_origin(h, as_of)
    versions, tabs = inputs.model_tables(ws, project, model, read_at)
    entities = known_entities(project, model, tabs)
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
    texts = {f.name for f in (*model.features, *extra) if f.dtype == "category"}
    # numbers as floats (None for missing); category features as their text
    values = np.empty(feats.shape, dtype=object)
    for k, c in enumerate(cols):
        if c in texts:
            values[:, k] = feats[c].to_numpy(dtype=object)
        else:
            x = feats[c].to_numpy(dtype=float)
            values[:, k] = [None if np.isnan(v) else float(v) for v in x]
    rows = []
    n = len(targets)
    for i, entity in enumerate(entities):
        block = values[i * n:(i + 1) * n]
        vectors = {(target_key(t) if h > pd.Timedelta(0) else ""): list(block[j])
                   for j, t in enumerate(targets)}
        payload = json.dumps({"names": cols, "vectors": vectors}, separators=(",", ":"))
        rows.append((model.name, entity, origin.isoformat(), payload))
    store = open_store(ws)
    try:
        store.put_features(rows)
    finally:
        store.close()
    return {"model": model.name, "entities": len(entities), "targets": n,
            "origin": origin.isoformat(),
            "first_target": target_key(targets[0]) if h > pd.Timedelta(0) else None,
            "last_target": target_key(targets[-1]) if h > pd.Timedelta(0) else None,
            "versions": versions}
