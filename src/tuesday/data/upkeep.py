"""Upkeep of the Delta tables that grow by small appends: the prediction log (a commit
every flush of every server process) and the source tables that events and ground truth
are posted to (a commit per request).

``tidy`` compacts a table's small files into large ones (``optimize.compact``, which
rewrites no row) and vacuums the files no version within the retention still needs. The
prediction log is only ever read at its newest version, so it keeps a short retention
(``LOG_RETENTION_HOURS``); a source table keeps every version a training run's manifest
pins (``tuesday.train`` reproduces runs from them) and the versions of the last
``SOURCE_RETENTION_HOURS``. ``tidy_workspace`` does both under a workspace lock taken
without waiting, so two processes (server workers, the loop) never run it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from tuesday import meta
from tuesday.data.predictions import PREDICTIONS
from tuesday.workspace import Workspace, ledger

__all__ = ["LOG_RETENTION_HOURS", "MIN_FILES", "SOURCE_RETENTION_HOURS", "pinned_versions",
           "tidy", "tidy_workspace"]

log = logging.getLogger(__name__)

#: hours the prediction log keeps the files compaction replaced (readers of an older
#: snapshot than that fail; nothing in tuesday reads one)
LOG_RETENTION_HOURS = 1
#: hours a source table keeps the files of versions no manifest pins
SOURCE_RETENTION_HOURS = 7 * 24
#: a table with fewer live files than this is left as it is
MIN_FILES = 16
#: the lock file of ``tidy_workspace``
LOCK = ".upkeep.lock"


def tidy(ws: Workspace, name: str, *, retention_hours: float,
         keep_versions: Iterable[int] = (), min_files: int = MIN_FILES) -> dict[str, Any]:
    """Compact the table ``name`` when it has ``min_files`` live files or more, then
    vacuum what is older than ``retention_hours`` and not needed by ``keep_versions``.

    Returns the live files before and after, the files compaction added and removed and
    the files vacuum deleted (all zero for a table that does not exist).

    Example:
        >>> tidy(ws, "_predictions", retention_hours=1)  # doctest: +SKIP
        {'table': '_predictions', 'files_before': 213, 'files_after': 1, ...}
    """
    out: dict[str, Any] = {"table": name, "files_before": 0, "files_after": 0,
                           "compacted_added": 0, "compacted_removed": 0, "vacuumed": 0}
    try:
        dt = DeltaTable(ws.table_uri(name), storage_options=ws.storage_options)
    except TableNotFoundError:
        return out
    out["files_before"] = len(dt.file_uris())
    # the commits say what they are, so reconciling the table adopts them (they change
    # no row) instead of rolling them back as writes nobody recorded
    mark = ledger({"kind": "upkeep"})
    if out["files_before"] >= min_files:
        got = dt.optimize.compact(commit_properties=mark)
        out["compacted_added"] = int(got.get("numFilesAdded", 0))
        out["compacted_removed"] = int(got.get("numFilesRemoved", 0))
    keep = sorted({int(v) for v in keep_versions if 0 <= int(v) <= dt.version()})
    out["vacuumed"] = len(dt.vacuum(retention_hours=max(0, int(retention_hours)),
                                    dry_run=False, enforce_retention_duration=False,
                                    keep_versions=keep or None, commit_properties=mark))
    out["files_after"] = len(dt.file_uris())
    return out


def pinned_versions(ws: Workspace) -> dict[str, set[int]]:
    """Table name -> the versions the manifests of training runs pin."""
    out: dict[str, set[int]] = {}
    with ws.engine().connect() as conn:
        for (man,) in conn.execute(sa.select(meta.runs.c.manifest)):
            for name, rec in (man or {}).get("tables", {}).items():
                if isinstance(rec, dict) and rec.get("version") is not None:
                    out.setdefault(name, set()).add(int(rec["version"]))
    return out


def tidy_workspace(ws: Workspace, sources: Iterable[str] = (), *,
                   log_retention_hours: float = LOG_RETENTION_HOURS,
                   source_retention_hours: float = SOURCE_RETENTION_HOURS,
                   min_files: int = MIN_FILES) -> list[dict[str, Any]] | None:
    """``tidy`` the prediction log and the source tables ``sources`` (keeping the
    versions manifests pin). None when another process is tidying this workspace now."""
    with _exclusive(ws) as mine:
        if not mine:
            return None
        started = time.monotonic()
        done = [tidy(ws, PREDICTIONS, retention_hours=log_retention_hours,
                     min_files=min_files)]
        names = list(sources)
        pins = pinned_versions(ws) if names else {}
        for name in names:
            done.append(tidy(ws, name, retention_hours=source_retention_hours,
                             keep_versions=pins.get(name, ()), min_files=min_files))
        log.info("tidied %d tables in %.1f s", len(done), time.monotonic() - started)
        return done


@contextlib.contextmanager
def _exclusive(ws: Workspace) -> Iterator[bool]:
    fd = os.open(ws.root / LOCK, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
