"""Online feature store: one record per (model, entity), in SQLite (the embedded
default) or Redis (:mod:`tuesday.data.online_redis`), chosen by the workspace's online URL
(:func:`open_store`).

Two kinds of record, each one row (one key) read by one point lookup:

- features: materialized vectors per (model, entity), below;
- events: the event state per (source, entity) that ``tuesday.data.events`` keeps
  from events and computes request-time features from, behind the ``Store`` protocol
  (get / get_many / atomic update / replace of one blob per key).

A backend is one class with the methods of ``OnlineStore``; tests/data/test_online.py and
the conformance suite run the same tests over each.

The vectors are written by :mod:`tuesday.data.materialize`; a read is one primary key
lookup, so serving never recomputes features and cannot compute them differently.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence

import pandas as pd

from tuesday.data.online_base import OnlineStore, Record, Space, Store, Updater
from tuesday.errors import NotFound
from tuesday.workspace import Workspace

__all__ = ["NO_VECTORS", "Cached", "OnlineStore", "Record", "SQLiteStore", "Space", "Store",
           "Updater", "connect", "lookup", "open_store", "read", "target_key"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    model TEXT NOT NULL,
    entity TEXT NOT NULL,
    origin TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (model, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_events (
    space TEXT NOT NULL,
    key TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE TABLE IF NOT EXISTS online_spaces (
    space TEXT PRIMARY KEY,
    schema TEXT NOT NULL,
    built_version INTEGER NOT NULL,
    built_as_of TEXT NOT NULL
)
"""


def connect(ws: Workspace) -> sqlite3.Connection:
    """A connection to the online store (WAL, so readers never block the writer)."""
    conn = sqlite3.connect(ws.online_path, timeout=30, check_same_thread=False,
                           isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    return conn


# ------------------------------------------------------------------ event state store


def open_store(ws: Workspace) -> OnlineStore:
    """The workspace's online store: ``online.sqlite`` or the Redis of its online URL."""
    url = ws.online_url
    if url == "sqlite":
        return SQLiteStore(connect(ws))
    from tuesday.data.online_redis import RedisStore

    return RedisStore.from_url(url)


class SQLiteStore:
    """The ``Store`` on a sqlite3 connection to ``online.sqlite``: table ``online_events``,
    primary key (space, key). A rowid table: records past about 1 KB (a month of a busy
    card) stay on their page, where a WITHOUT ROWID row would spill to overflow pages
    (measured: 25 us per read instead of 10 at 1.5 KB)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def space(self, name: str) -> Space | None:
        row = self.conn.execute("SELECT schema, built_version, built_as_of FROM "
                                "online_spaces WHERE space = ?", (name,)).fetchone()
        return Space(name, row[0], int(row[1]), row[2]) if row else None

    def get(self, space: str, key: str) -> bytes | None:
        row = self.conn.execute("SELECT state FROM online_events WHERE space = ? AND key = ?",
                                (space, key)).fetchone()
        return row[0] if row else None

    def get_many(self, space: str, keys: Sequence[str]) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            part = unique[i:i + 500]
            marks = ",".join("?" * len(part))
            found.update(self.conn.execute(
                f"SELECT key, state FROM online_events WHERE space = ? AND key IN ({marks})",
                (space, *part)).fetchall())
        return [found.get(k) for k in keys]

    def update(self, space: str, keys: Sequence[str], fn: Updater) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            current = {k: b for k, b in zip(keys, self.get_many(space, keys), strict=True)
                       if b is not None}
            new_space, blobs = fn(self.space(space), current)
            if new_space is not None:
                self._put_space(new_space)
            self.conn.executemany("INSERT OR REPLACE INTO online_events VALUES (?, ?, ?)",
                                  [(space, k, b) for k, b in blobs.items()])
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def replace(self, space: Space, items: Iterable[tuple[str, bytes]],
                still_valid: Callable[[], bool]) -> bool:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if not still_valid():
                self.conn.execute("ROLLBACK")
                return False
            self.conn.execute("DELETE FROM online_events WHERE space = ?", (space.name,))
            self.conn.executemany("INSERT INTO online_events VALUES (?, ?, ?)",
                                  ((space.name, k, b) for k, b in items))
            self._put_space(space)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return True

    def _put_space(self, s: Space) -> None:
        self.conn.execute("INSERT OR REPLACE INTO online_spaces VALUES (?, ?, ?, ?)",
                          (s.name, s.schema, s.built_version, s.built_as_of))

    def lookup(self, model: str, entity: str) -> Record | None:
        return lookup(self.conn, model, entity)

    def entities(self, model: str) -> list[str]:
        rows = self.conn.execute("SELECT entity FROM online_features WHERE model = ? "
                                 "ORDER BY entity", (model,)).fetchall()
        return [str(r[0]) for r in rows]

    def put_features(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany("INSERT OR REPLACE INTO online_features VALUES "
                                  "(?, ?, ?, ?)", rows)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def version(self) -> object:
        """SQLite's ``PRAGMA data_version``: it changes when any other connection (a
        ``materialize``, another process) commits to the store."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


#: the record of a model whose features are all computed at request time
NO_VECTORS = Record("", "", (), {"": []})


def target_key(t: pd.Timestamp | None) -> str:
    return "" if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


def lookup(conn: sqlite3.Connection, model: str, entity: str) -> Record | None:
    """One entity's record, or None when it was never materialized."""
    row = conn.execute("SELECT origin, payload FROM online_features WHERE model = ? AND "
                       "entity = ?", (model, entity)).fetchone()
    if row is None:
        return None
    payload = json.loads(row[1])
    return Record(entity, row[0], tuple(payload["names"]), payload["vectors"])


def records(conn: sqlite3.Connection, model: str, *, limit: int = 100) -> list[Record]:
    """Up to ``limit`` materialized records of a model (in entity order)."""
    rows = conn.execute("SELECT entity, origin, payload FROM online_features WHERE model = ? "
                        "ORDER BY entity LIMIT ?", (model, limit)).fetchall()
    out = []
    for entity, origin, payload in rows:
        got = json.loads(payload)
        out.append(Record(entity, origin, tuple(got["names"]), got["vectors"]))
    return out


class Cached:
    """``lookup`` through a cache of decoded records, emptied when the store changes.

    The store's ``version()`` changes when another process writes to it (SQLite's
    ``PRAGMA data_version``; a counter on Redis that every write increments). It is
    asked at most every
    ``check_seconds`` (0.1 s by default: a new materialize is seen within that time, as
    a promotion is seen by the server within a second), and at the next lookup after
    ``changed()``. Asking on every lookup would cost a third of what the cache saves. The
    cache holds at most ``max_records`` records (emptied when full); unknown entities are
    not kept (random keys would only fill it). Records are shared:
    callers must not change them. The connection must not write (its own commits would
    not change the version it sees).
    """

    def __init__(self, store: OnlineStore | sqlite3.Connection, *,
                 max_records: int = 10_000, check_seconds: float = 0.1) -> None:
        self.store = SQLiteStore(store) if isinstance(store, sqlite3.Connection) else store
        self.max_records = max_records
        self.check_seconds = check_seconds
        self.records: dict[tuple[str, str], Record] = {}
        self.version: object = None
        self.checked = -1e9

    def changed(self) -> None:
        """Check the store's version at the next lookup."""
        self.checked = -1e9

    def lookup(self, model: str, entity: str) -> Record | None:
        records = self.records
        now = time.monotonic()
        if now - self.checked >= self.check_seconds:
            self.checked = now
            version = self.store.version()
            if version != self.version:
                records.clear()
                self.version = version
        key = (model, entity)
        try:
            return records[key]
        except KeyError:
            pass
        got = self.store.lookup(model, entity)
        if got is not None:
            if len(records) >= self.max_records:
                records.clear()
            records[key] = got
        return got


def read(store: OnlineStore | sqlite3.Connection, model: str, entity: str) -> Record:
    """One entity's record; a clear error when it was never materialized."""
    record = store.lookup(model, entity) if not isinstance(store, sqlite3.Connection) \
        else lookup(store, model, entity)
    if record is None:
        raise NotFound(f"No online features for {model!r} entity {entity!r}.",
                       fix=f"Check the entity key, or run `tuesday materialize {model}` "
                           "after ingesting its data.")
    return record
