"""Data health of the sources and service health of the server.

Data health, per source, from the ``ingests`` and ``table_versions`` metadata and the
Delta tables: the volume of the latest delivery against the median of the recent ones,
the share of missing values per column among the rows the latest delivery added, and the
freshness of the table (time from its newest event time to ``as_of``) against the
contract's ``Freshness`` when declared.

Service health from the server's own Prometheus metrics (``GET /metrics``): the share of
requests that failed (HTTP 5xx) and the p99 latency estimated from the
``tuesday_request_seconds`` histogram buckets, as Prometheus' ``histogram_quantile`` does.
The counters are cumulative since the server started.

Example:
    >>> text = '''
    ... tuesday_request_seconds_bucket{endpoint="predict",le="0.01"} 90.0
    ... tuesday_request_seconds_bucket{endpoint="predict",le="0.1"} 100.0
    ... tuesday_request_seconds_bucket{endpoint="predict",le="+Inf"} 100.0
    ... tuesday_request_seconds_count{endpoint="predict"} 100.0
    ... '''
    >>> round(service_health(text)["p99_seconds"], 4)
    0.091
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from prometheus_client.parser import text_string_to_metric_families

from tuesday import meta
from tuesday.data import tables
from tuesday.errors import TuesdayError
from tuesday.project import Project, Source, duration
from tuesday.workspace import Workspace

#: volume ratios used when a source's contract declares no ``Volume`` check
DEFAULT_MIN_RATIO = 0.5
DEFAULT_MAX_RATIO = 2.0
DEFAULT_HISTORY = 7


# ----------------------------------------------------------------------- data health


def data_health(ws: Workspace, project: Project, as_of: datetime,
                sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Volume, missing values and freshness of each source as known at ``as_of``.

    Args:
        ws: The workspace.
        project: The project declaring the sources.
        as_of: Only ingests at or before this time count; freshness is measured to it.
        sources: Source names (default: every source of the project).

    Returns:
        One dict per source: ``source``, ``ingests`` (count), ``latest`` (the latest
        ingest: ``as_of``, ``file``, ``received``, ``accepted``, ``quarantined``),
        ``volume`` (``received``, ``median_recent``, ``ratio``, ``min_ratio``,
        ``max_ratio``, ``ok``), ``missing`` (``rows`` and per column ``rates``) and
        ``freshness`` (``column``, ``newest``, ``age_hours``, ``within``, ``ok``);
        ``problems`` lists what is wrong in words.

    Example:
        >>> [h["source"] for h in data_health(ws, project, as_of)]  # doctest: +SKIP
        ['ridership', 'weather', 'games']
    """
    names = list(sources) if sources is not None else [s.name for s in project.sources]
    return [_source_health(ws, project.source(n), pd.Timestamp(as_of)) for n in names]


def _ingests(ws: Workspace, name: str, as_of: pd.Timestamp) -> list[dict[str, Any]]:
    """The source's deliveries up to ``as_of``, oldest first (quarantine corrections are
    not deliveries and are left out)."""
    i, r = meta.ingests, meta.quarantine_resolutions
    corrections = sa.select(r.c.resolved_by).where(r.c.source == name)
    q = (sa.select(i.c.ingest_id, i.c.file, i.c.as_of, i.c.received, i.c.accepted,
                   i.c.quarantined, i.c.table_version)
         .where(i.c.source == name, i.c.as_of <= as_of.to_pydatetime(),
                i.c.ingest_id.not_in(corrections))
         .order_by(i.c.as_of, i.c.table_version))
    with ws.engine().connect() as conn:
        return [dict(row) for row in conn.execute(q).mappings()]


def _source_health(ws: Workspace, src: Source, as_of: pd.Timestamp) -> dict[str, Any]:
    found = _ingests(ws, src.name, as_of)
    out: dict[str, Any] = {"source": src.name, "ingests": len(found), "latest": None,
                           "volume": None, "missing": None, "freshness": None,
                           "problems": []}
    if not found:
        out["problems"].append(f"source {src.name!r} has no ingest up to {as_of}")
        return out
    last = found[-1]
    out["latest"] = {k: (v.isoformat() if isinstance(v, datetime) else v)
                     for k, v in last.items() if k != "table_version"}
    out["volume"] = _volume(src, found)
    if out["volume"]["ok"] is False:
        v = out["volume"]
        out["problems"].append(
            f"the latest ingest of {src.name!r} received {v['received']} rows, "
            f"{v['ratio']:.2f} times the median {v['median_recent']:g} of the "
            f"{v['history']} before (allowed {v['min_ratio']:g} to {v['max_ratio']:g})")
    out["missing"] = _missing(ws, src, found)
    out["freshness"] = _freshness(ws, src, as_of, last)
    f = out["freshness"]
    if f["ok"] is False:
        out["problems"].append(
            f"the newest {f['column'] or 'ingest'} of {src.name!r} is {f['newest']}, "
            f"{f['age_hours']:.1f} h before {as_of.isoformat()} (allowed {f['within']})")
    return out


def _volume(src: Source, found: list[dict[str, Any]]) -> dict[str, Any]:
    vol = src.contract.volume
    history = vol.history if vol else DEFAULT_HISTORY
    lo = vol.min_ratio if vol else DEFAULT_MIN_RATIO
    hi = vol.max_ratio if vol else DEFAULT_MAX_RATIO
    received = int(found[-1]["received"])
    before = [int(x["received"]) for x in found[:-1] if x["accepted"] > 0][-history:]
    median = float(np.median(before)) if before else None
    ratio = received / median if median else None
    return {"received": received, "median_recent": median, "history": len(before),
            "ratio": ratio, "min_ratio": lo, "max_ratio": hi, "declared": vol is not None,
            "ok": None if ratio is None else bool(lo <= ratio <= hi)}


def _delta(ws: Workspace, name: str, version: int) -> DeltaTable | None:
    try:
        return DeltaTable(ws.table_uri(name), version=version,
                          storage_options=ws.storage_options)
    except TableNotFoundError:
        return None


def _missing(ws: Workspace, src: Source, found: list[dict[str, Any]]) -> dict[str, Any]:
    """Missing-value share per column among the rows the latest accepting ingest added
    (the Delta files its table version added)."""
    tv = meta.table_versions
    ids = [x["ingest_id"] for x in found]
    with ws.engine().connect() as conn:
        row = conn.execute(sa.select(tv.c.version, tv.c.ingest_id).where(
            tv.c.source == src.name, tv.c.ingest_id.in_(ids))
            .order_by(tv.c.version.desc()).limit(1)).mappings().first()
    if row is None:
        return {"rows": 0, "rates": {}, "ingest_id": None}
    version = int(row["version"])
    now = _delta(ws, src.name, version)
    if now is None:
        return {"rows": 0, "rates": {}, "ingest_id": row["ingest_id"]}
    prev = _delta(ws, src.name, version - 1) if version > 0 else None
    before = set(prev.file_uris()) if prev is not None else set()
    base = ws.table_uri(src.name).rstrip("/") + "/"
    added = [f.removeprefix(base) for f in now.file_uris() if f not in before]
    parts = [pq.read_table(pa.py_buffer(ws.storage.read("tables", src.name,
                                                        *unquote(f).split("/")) or b""))
             for f in added]
    frame = pa.concat_tables(parts, promote_options="default").to_pandas() if parts \
        else pd.DataFrame()
    cols = [c for c in src.contract.names if c in frame.columns]
    rates = {c: float(frame[c].isna().mean()) if len(frame) else 0.0 for c in cols}
    return {"rows": len(frame), "rates": rates, "ingest_id": row["ingest_id"]}


def _freshness(ws: Workspace, src: Source, as_of: pd.Timestamp,
               last: dict[str, Any]) -> dict[str, Any]:
    fresh = src.contract.freshness
    # the contract's column when it declares a check; else when the newest row became
    # known (a schedule published ahead has event times in the future)
    column = ((fresh.column or src.time) if fresh is not None
              else (src.available_at or src.time))
    newest: pd.Timestamp | None = None
    if column is not None:
        version = tables.versions_as_of(ws, [src.name], as_of.to_pydatetime()).get(src.name)
        if version is not None:
            col = tables.read_table(ws, src, version, columns=[column]).column(0)
            values = pd.to_datetime(col.to_pandas(), errors="coerce").dropna()
            if column == src.available_at:
                values = values[values <= as_of]
            newest = values.max() if len(values) else None
    else:  # a timeless source: how long ago it was delivered
        newest = pd.Timestamp(last["as_of"])
    within = fresh.within if fresh else None
    age = (as_of - newest) / pd.Timedelta(hours=1) if newest is not None else None
    ok = None
    if within is not None and newest is not None:
        ok = bool(as_of - newest <= duration(within, what=f"freshness of {src.name!r}"))
    return {"column": column, "newest": newest.isoformat() if newest is not None else None,
            "age_hours": age, "within": within, "ok": ok}


# -------------------------------------------------------------------- service health


def fetch_metrics(url: str, *, token: str | None = None, timeout: float = 5.0) -> str:
    """The Prometheus text of a tuesday server's ``/metrics`` (``url`` is the full URL).

    Raises:
        TuesdayError: when the server cannot be reached or does not answer 200.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TuesdayError(f"The metrics URL {url!r} could not be read: "
                           f"{type(exc).__name__}: {exc}.",
                           fix="Check that the server runs and the URL ends in /metrics.") \
            from exc
    if r.status_code != 200:
        raise TuesdayError(f"The metrics URL {url!r} answered HTTP {r.status_code}.",
                           fix="Use the server's /metrics URL; with API tokens set "
                               "TUESDAY_TOKEN to a token of a role that may read it.")
    return r.text


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile of a cumulative histogram, as Prometheus estimates it.

    ``buckets`` are ``(upper_bound, cumulative_count)``, including ``+Inf``. Within the
    bucket holding the rank the value is interpolated linearly (from 0 for the first
    bucket); a rank in the ``+Inf`` bucket gives the highest finite bound.

    Example:
        >>> histogram_quantile(0.5, [(1.0, 10), (2.0, 30), (math.inf, 30)])
        1.25
    """
    b = sorted((float(le), float(c)) for le, c in buckets)
    if not b or b[-1][1] <= 0:
        return float("nan")
    if not math.isinf(b[-1][0]):
        raise TuesdayError("A histogram needs its +Inf bucket to estimate a quantile.",
                           fix="Pass every bucket the server reports, +Inf included.")
    rank = q * b[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for i, (le, c) in enumerate(b):
        if c >= rank:
            if math.isinf(le):
                return b[i - 1][0] if i > 0 else float("nan")
            if c == prev_c:
                return le
            lower = prev_le if i > 0 or le <= 0 else 0.0
            return lower + (le - lower) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return float("nan")


def service_health(text: str, *, quantile: float = 0.99) -> dict[str, Any]:
    """Request volume, error rate and latency quantile from a server's Prometheus text.

    Errors are HTTP 5xx answers (the server failed or shed load); 4xx (bad input, not
    found, unauthorised) are counted apart as client errors.

    Returns:
        ``requests``, ``errors``, ``error_rate``, ``client_errors``,
        ``client_error_rate``, ``p99_seconds`` (over every endpoint; the key names the
        quantile) and per endpoint the same figures in ``endpoints``.
    """
    requests: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[float, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "tuesday_requests_total":
                ep = s.labels.get("endpoint", "")
                st = s.labels.get("status", "")
                requests.setdefault(ep, {})
                requests[ep][st] = requests[ep].get(st, 0.0) + float(s.value)
            elif s.name == "tuesday_request_seconds_bucket":
                ep = s.labels.get("endpoint", "")
                le = float(s.labels["le"])
                buckets.setdefault(ep, {})
                buckets[ep][le] = buckets[ep].get(le, 0.0) + float(s.value)
    key = f"p{round(quantile * 100):d}_seconds"
    endpoints = []
    for ep in sorted(set(requests) | set(buckets)):
        endpoints.append({"endpoint": ep, **_counts(requests.get(ep, {})),
                          key: histogram_quantile(quantile, list(buckets[ep].items()))
                          if ep in buckets else None})
    total: dict[str, float] = {}
    for by_status in requests.values():
        for st, n in by_status.items():
            total[st] = total.get(st, 0.0) + n
    merged: dict[float, float] = {}
    for by_le in buckets.values():
        for le, n in by_le.items():
            merged[le] = merged.get(le, 0.0) + n
    return {**_counts(total),
            key: histogram_quantile(quantile, list(merged.items())) if merged else None,
            "quantile": quantile, "endpoints": endpoints}


def _counts(by_status: dict[str, float]) -> dict[str, Any]:
    n = sum(by_status.values())
    err = sum(v for st, v in by_status.items() if st.startswith("5"))
    client = sum(v for st, v in by_status.items() if st.startswith("4"))
    return {"requests": int(n), "errors": int(err), "error_rate": err / n if n else None,
            "client_errors": int(client), "client_error_rate": client / n if n else None}
