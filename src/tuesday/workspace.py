"""A workspace: tables, metadata, artifacts and the online store.

Embedded (the default, zero servers), everything is in one folder. In production the
metadata, the online store and the storage of tables, quarantine and artifacts are each
chosen by URL (PostgreSQL, Redis, S3: :mod:`tuesday.storage`) and the same code runs on
them; the folder then keeps only what is local to a machine (locks, spools, reports).

Layout of the folder (embedded)::

    WORKSPACE/
      meta.sqlite          runs, registry, audit, table versions (SQLite WAL)
      online.sqlite        online feature store
      tables/NAME/         Delta Lake tables, one per source, plus _predictions
      quarantine/NAME/     rows that failed their contract, with reasons
      spool/               each server process's log rows not yet in _predictions
      artifacts/sha256/    content-addressed files
      reports/             HTML and JSON reports

Everything is opened per call; no process holds a lock that blocks another, so a server
and a CLI can use the same workspace at once. Two kinds of short locks keep concurrent
processes correct: a change that reads before it writes (a promotion, a rollback) runs in
``write_transaction``, which holds the metadata database's write lock from its first
statement (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL the same code's
``SELECT ... FOR UPDATE`` takes row locks); and writes to one table (an ingest) hold that
table's lock (``table_lock``: a lock file under ``locks/``, or a PostgreSQL advisory lock
when the metadata is on PostgreSQL), which is released when the process ends, however it
ends.

A Delta commit and its metadata are one fact: each commit tuesday writes carries its own
record in the commit (``ledger``), and ``reconcile`` brings the metadata up to date
with the Delta log. Opening a workspace reconciles every table that no one is writing, so a
process killed between a commit and its metadata leaves nothing half-done (see
:mod:`tuesday.data.tables` for the ingest's side of it).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuesday.errors import ArtifactCorrupt, Conflict, NotFound, TuesdayError
from tuesday.storage import Locations, Storage, check, resolve

if TYPE_CHECKING:  # SQLAlchemy, Arrow and deltalake load where first used: `--help` needs none
    import sqlalchemy as sa
    from deltalake import CommitProperties, DeltaTable

_ENGINES: dict[str, sa.Engine] = {}
_LOG = logging.getLogger("tuesday")
#: how long a writer waits for another process's lock on the same table (seconds)
LOCK_TIMEOUT = float(os.environ.get("TUESDAY_LOCK_TIMEOUT", "600"))
#: the key of tuesday's record in the custom metadata of a Delta commit
LEDGER = "tuesday"
#: a table's name: a source's plain identifier, or one of tuesday's own (``_predictions``)
_TABLE_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9_-]*")


def _plain_name(name: str) -> str:
    """``name`` if it is a plain table name, which cannot leave the workspace's folders."""
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise TuesdayError(f"Table name {name!r} is not a plain name (letters, digits, "
                           "'_' and '-', starting with a letter); it would not stay inside "
                           "the workspace.",
                           fix="Rename the source to a plain identifier such as 'ridership'.")
    return name


@dataclass(frozen=True)
class Workspace:
    """One workspace: its local folder and where its metadata, online store and storage
    live (:mod:`tuesday.storage`; each defaults to the folder)."""

    root: Path
    locations: Locations = field(default_factory=Locations)

    @property
    def meta_url(self) -> str:
        return self.locations.metadata or f"sqlite:///{self.root / 'meta.sqlite'}"

    @property
    def online_url(self) -> str:
        """``sqlite`` (the folder's ``online.sqlite``) or a ``redis://`` URL."""
        return self.locations.online or "sqlite"

    @property
    def online_path(self) -> Path:
        return self.root / "online.sqlite"

    @property
    def storage(self) -> Storage:
        return Storage.of(self.locations.storage, self.root)

    @property
    def storage_options(self) -> dict[str, str] | None:
        """``deltalake`` storage options of the tables (None on local disk)."""
        return self.storage.options

    def table_uri(self, name: str) -> str:
        """Where Delta table ``name`` lives (a folder, or an S3 URL): a plain name (``_``
        may start tuesday's own tables), never one that could leave the workspace."""
        return self.storage.uri("tables", _plain_name(name))

    def quarantine_uri(self, name: str) -> str:
        return self.storage.uri("quarantine", _plain_name(name))

    def table_path(self, name: str) -> Path:
        """The local folder of table ``name`` (storage on local disk only)."""
        return Path(self.table_uri(name))

    def quarantine_path(self, name: str) -> Path:
        return Path(self.quarantine_uri(name))

    @property
    def reports(self) -> Path:
        path = self.root / "reports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def is_postgres(self) -> bool:
        return self.meta_url.startswith("postgresql")

    def engine(self) -> sa.Engine:
        """A SQLAlchemy engine on the metadata database (cached per process), its schema
        created or upgraded (:func:`tuesday.meta.upgrade`)."""
        url = self.meta_url
        eng = _ENGINES.get(url)
        if eng is None:
            eng = _make_engine(url)
            _ENGINES[url] = eng
        return eng

    @contextmanager
    def write_transaction(self) -> Iterator[sa.Connection]:
        """A transaction for a change that reads before it writes (check, then write).

        On SQLite it holds the database's write lock from its first statement, so two
        processes cannot both read the same state and then both act on it; the other
        waits (up to the busy timeout) and then reads what the first one wrote. On
        PostgreSQL it is a plain transaction in which ``.with_for_update()`` selects take
        row locks. Commits when the block ends, rolls back on an exception.

        Example:
            >>> # with ws.write_transaction() as conn:
            >>> #     stage = conn.execute(select(...).with_for_update()).scalar()
            >>> #     conn.execute(update(...))
        """
        with self.engine().connect() as conn:
            conn.execution_options(write_lock=True)
            with conn.begin():
                yield conn

    @contextmanager
    def table_lock(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the lock of table ``name`` against other processes and threads.

        Yields True when the lock is held. With ``wait=False`` it yields False at once
        if someone else holds it; otherwise it waits up to ``LOCK_TIMEOUT`` seconds and
        then raises ``Conflict`` naming the process that holds it. The lock is released
        when its process ends, even on SIGKILL, so a crash never leaves it taken: a lock
        file under ``locks/`` (the kernel releases it) with SQLite metadata, a PostgreSQL
        advisory lock (released with its session) with PostgreSQL metadata, so that
        processes on several machines sharing one workspace exclude each other too.
        """
        if self.is_postgres:
            with _pg_lock(self, name, wait=wait) as held:
                yield held
            return
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            held = _flock(fd, wait=wait, what=f"Table {name!r} of workspace {self.root}",
                          path=path)
            if held:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
            yield held
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # ---------------------------------------------------------------- artifacts

    def put_artifact(self, data: bytes) -> str:
        """Store bytes under their sha256 and return the digest (idempotent, atomic)."""
        digest = hashlib.sha256(data).hexdigest()
        parts = _artifact_parts(digest)
        if self.storage.size(*parts) is None:
            self.storage.write(data, *parts)
        return digest

    def artifact_path(self, digest: str) -> Path:
        """The local file of an artifact (storage on local disk only)."""
        return Path(self.storage.path(*_artifact_parts(digest)))

    def artifact_size(self, digest: str) -> int | None:
        """An artifact's size in bytes, None when it is missing."""
        return self.storage.size(*_artifact_parts(digest))

    def get_artifact(self, digest: str) -> bytes:
        """Read an artifact and check its sha256; a mismatch is refused."""
        parts = _artifact_parts(digest)
        data = self.storage.read(*parts)
        if data is None:
            raise NotFound(f"Artifact {digest[:12]} is missing from "
                           f"{self.storage.uri(*parts[:-1])}.",
                           fix="Restore the workspace's artifacts or retrain.")
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ArtifactCorrupt(
                f"Artifact {digest[:12]} was modified: its sha256 is now {got[:12]}.",
                fix="Do not edit artifacts; restore it from a backup or retrain the model.",
            )
        return data


def _artifact_parts(digest: str) -> tuple[str, ...]:
    if not re.fullmatch(r"[0-9a-f]{64}", str(digest)):
        raise NotFound(f"{digest!r} is not an artifact digest (64 hex digits).",
                       fix="Use the sha256 a run's manifest records.")
    return ("artifacts", "sha256", digest[:2], digest)


@contextmanager
def _pg_lock(ws: Workspace, name: str, *, wait: bool) -> Iterator[bool]:
    """A session-level advisory lock on its own connection, held for the block."""
    key = int.from_bytes(hashlib.sha256(f"tuesday table {name}".encode()).digest()[:8],
                         "big", signed=True)
    conn = ws.engine().connect()
    try:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("SELECT set_config('application_name', %(n)s, false)",
                             {"n": f"{_HOLDER} {socket.gethostname()} {os.getpid()}"})
        deadline = time.monotonic() + LOCK_TIMEOUT
        held = False
        while True:
            held = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar())
            if not held and _end_dead_holder(conn, key):
                continue  # the holder's process is gone: its session ends now
            if held or not wait:
                break
            if time.monotonic() > deadline:
                raise Conflict(f"Table {name!r} of workspace {_shown(ws.meta_url)} is locked "
                               f"by another writer for more than {LOCK_TIMEOUT:g} s.",
                               fix="Wait for the other writer (see pg_locks) to finish, or "
                                   "end it if it hangs: a killed writer leaves nothing "
                                   "half-done.")
            time.sleep(0.02)
        try:
            yield held
        finally:
            if held:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
            conn.exec_driver_sql("RESET application_name")
    finally:
        conn.close()


#: how a table lock's session names itself (with its host and process id)
_HOLDER = "tuesday table lock"


def _end_dead_holder(conn: sa.Connection, key: int) -> bool:
    """End the PostgreSQL session holding lock ``key`` if its process, on this machine,
    is dead: PostgreSQL releases a killed client's locks only once its session notices,
    which can be after the next command already looked. True when one was ended (the
    lock is then free in a moment); a holder on another machine is left to PostgreSQL."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    rows = conn.exec_driver_sql(
        "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
        "l.classid = %(c)s AND l.objid = %(o)s AND l.objsubid = 1",
        {"c": unsigned >> 32, "o": unsigned & 0xFFFFFFFF}).all()
    ended = False
    for backend, name in rows:
        parts = str(name or "").rsplit(" ", 2)
        if len(parts) != 3 or parts[0] != _HOLDER or parts[1] != socket.gethostname():
            continue
        try:
            os.kill(int(parts[2]), 0)
            continue  # alive: a real writer
        except ProcessLookupError:
            pass
        except (PermissionError, ValueError):
            continue
        conn.exec_driver_sql("SELECT pg_terminate_backend(%(p)s)", {"p": backend})
        for _ in range(200):  # until its session (and lock) is gone
            if not conn.exec_driver_sql("SELECT 1 FROM pg_stat_activity WHERE pid = %(p)s",
                                        {"p": backend}).first():
                break
            time.sleep(0.01)
        ended = True
    return ended


def _make_engine(url: str) -> sa.Engine:
    import sqlalchemy as sa

    from tuesday import meta

    if url.startswith("sqlite"):
        eng = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(eng, "begin")
        def _begin(conn: sa.Connection) -> None:
            # pysqlite only begins before the first write; a transaction that must
            # read under the write lock asks for it up front
            if conn.get_execution_options().get("write_lock"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        eng = sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                               connect_args={"connect_timeout": 10})
    try:
        with eng.begin() as conn:
            if eng.dialect.name == "postgresql":  # one process creates the schema
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7231009)")
            meta.upgrade(conn)
    except meta.UnknownSchema as exc:
        eng.dispose()
        raise TuesdayError(
            f"The metadata database {_shown(url)} has schema version {exc.found}, newer "
            f"than the versions this tuesday knows (up to {meta.SCHEMA_VERSION}); opening "
            "it could misread or damage it.",
            fix="Upgrade tuesday (`pip install -U tuesday`) to the version that wrote it, "
                "or point --metadata-url at another database.") from None
    except Exception:
        eng.dispose()
        raise
    return eng


def _shown(url: str) -> str:
    return Locations(metadata=url).shown()["metadata"]


def _flock(fd: int, *, wait: bool, what: str, path: Path) -> bool:
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if not wait:
            return False
        if time.monotonic() > deadline:
            holder = path.read_text().strip() or "unknown"
            raise Conflict(f"{what} is locked by another writer (process {holder}) for "
                           f"more than {LOCK_TIMEOUT:g} s.",
                           fix=f"Wait for process {holder} to finish, or end it if it "
                               "hangs: a killed writer leaves nothing half-done.")
        time.sleep(0.02)


def fault(point: str) -> None:
    """Fault injection for crash-safety tests: with ``TUESDAY_FAULT=POINT`` (several
    separated by commas) the process kills itself with SIGKILL at that point, as a
    power cut or the OOM killer would: no cleanup, no commit, no flush."""
    points = os.environ.get("TUESDAY_FAULT")
    if points and point in points.split(","):
        os.kill(os.getpid(), signal.SIGKILL)


def open_workspace(root: str | Path, *, metadata: str | None = None,
                   online: str | None = None, storage: str | None = None) -> Workspace:
    """Create (if needed) and open a workspace, and reconcile its tables' metadata with
    their Delta logs (see ``reconcile``).

    ``root`` is the local folder; ``metadata``, ``online`` and ``storage`` are the
    locations of :mod:`tuesday.storage` (default: ``$TUESDAY_METADATA_URL`` and the
    others, else what the folder recorded, else the folder itself).

    Example:
        >>> # open_workspace("ws", metadata="postgresql+psycopg://me@db:5432/tuesday",
        >>> #                online="redis://cache:6379/0", storage="s3://bucket/ws")
    """

    path = Path(root).expanduser().resolve()
    try:
        for sub in ("tables", "quarantine", "artifacts", "reports"):
            (path / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TuesdayError(f"Workspace folder {str(path)!r} cannot be created: {exc}.",
                           fix="Pass --workspace with a writable folder.") from exc
    import sqlalchemy as sa

    locs = resolve(path, {"metadata": metadata, "online": online, "storage": storage})
    ws = Workspace(path, locs)
    try:
        ws.engine()
    except sa.exc.DatabaseError as exc:
        _ENGINES.pop(ws.meta_url, None)
        where = _shown(ws.meta_url) if locs.metadata else str(path / "meta.sqlite")
        raise TuesdayError(
            f"{where} is not a tuesday workspace database, or cannot be reached "
            f"({exc.orig}).",
            fix="Point --workspace (or --metadata-url) at a tuesday workspace, or at a new "
                "folder or database.") from exc
    reconcile_all(ws)
    return ws


def copy_metadata(src: Workspace, url: str) -> None:
    """Copy every metadata row of ``src`` into the empty database at ``url`` (a move
    from the embedded SQLite to PostgreSQL), keys and counters included; then open the
    workspace with ``metadata=url``.

    Example:
        >>> # copy_metadata(ws, "postgresql+psycopg://me@db:5432/tuesday")
        >>> # ws = open_workspace(ws.root, metadata="postgresql+psycopg://me@db/tuesday")
    """
    import sqlalchemy as sa

    from tuesday import meta

    dst = Workspace(src.root, Locations(metadata=check("metadata", url)))
    with src.engine().connect() as read, dst.engine().begin() as write:
        for table in meta.metadata.sorted_tables:
            if table.name == "schema_version":
                continue
            if write.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                raise Conflict(f"The metadata database {_shown(url)} is not empty (table "
                               f"{table.name!r} has rows).",
                               fix="Copy into a new, empty database.")
            rows = [dict(r._mapping) for r in read.execute(table.select())]
            if rows:
                write.execute(table.insert(), rows)
            if write.dialect.name == "postgresql" and "id" in table.c and rows:
                write.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}',"
                                      f" 'id'), {max(int(r['id']) for r in rows)})"))


# ------------------------------------------------------------------------- the ledger
#
# Each Delta commit tuesday writes names what it is in its commit info, under LEDGER:
#   {"kind": "ingest", "ingest_id", "rows": {meta table: [rows]}, "at_version": [[t, c]]}
#       an ingest's commit of record, with every metadata row that describes it (the
#       columns named in "at_version" take the commit's own Delta version);
#   {"kind": "part", "ingest_id"}      quarantine rows of an ingest recorded elsewhere;
#   {"kind": "rollback", "to_version", "versions"}   a restore that undid commits that
#       no recorded ingest wrote; {"kind": "cleanup", "ingest_ids"}  the removal of the
#       quarantine rows of ingests that never completed.


def ledger(record: dict[str, Any]) -> CommitProperties:
    """Commit properties that carry ``record`` in the commit itself (see above)."""
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={LEDGER: json.dumps(record, default=_plain)})


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def _record(commit: dict[str, Any]) -> dict[str, Any] | None:
    raw = commit.get(LEDGER)
    try:
        rec = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _open_delta(ws: Workspace, uri: str) -> DeltaTable | None:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, storage_options=ws.storage_options)
    except TableNotFoundError:
        return None


def _recorded(conn: sa.Connection, ingest_id: str) -> bool:
    import sqlalchemy as sa

    from tuesday import meta

    i = meta.ingests
    return conn.execute(sa.select(i.c.ingest_id).where(i.c.ingest_id == ingest_id)
                        ).first() is not None


def _typed(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    import sqlalchemy as sa

    out = dict(row)
    for col in table.columns:
        v = out.get(col.name)
        if isinstance(v, str) and isinstance(col.type, sa.DateTime):
            out[col.name] = datetime.fromisoformat(v)
    return out


def adopt(ws: Workspace, commits: list[tuple[int | None, dict[str, Any]]]) -> None:
    """Write the metadata rows that ingest records carry (each with the Delta version of
    its commit, None for an ingest that committed nothing to Delta), in one transaction,
    skipping the ingests already recorded."""
    from tuesday import meta

    with ws.write_transaction() as conn:
        for version, rec in commits:
            if _recorded(conn, str(rec["ingest_id"])):
                continue
            rows: dict[str, list[dict[str, Any]]] = rec.get("rows", {})
            for name, column in rec.get("at_version", []) if version is not None else []:
                for row in rows.get(name, []):
                    row[column] = version
            for name, table_rows in rows.items():
                table = meta.metadata.tables[name]
                for row in table_rows:
                    conn.execute(table.insert().values(**_typed(table, row)))


def reconcile(ws: Workspace, name: str) -> list[str]:
    """Bring the metadata of table ``name`` (and its quarantine) up to date with their
    Delta logs; the caller holds ``ws.table_lock(name)``. Returns a sentence for each
    thing it had to undo.

    After the last Delta version the metadata records: a commit that carries its ingest's
    record is adopted (its metadata rows are written), in order, so an ingest killed after
    its commit is complete; a commit that carries none (a crash of an older tuesday, a
    write by another tool) is never adopted: the table is restored to the last version
    tuesday recorded, with a warning, and the undone rows stay readable by time travel.
    Quarantine rows of ingests that never completed are removed.
    """
    notes = _reconcile_data(ws, name)
    notes += _reconcile_quarantine(ws, name)
    for note in notes:
        _LOG.warning(note)
    return notes


def _reconcile_data(ws: Workspace, name: str) -> list[str]:
    import pyarrow as pa
    import sqlalchemy as sa
    from deltalake import write_deltalake

    from tuesday import meta

    dt = _open_delta(ws, ws.table_uri(name))
    if dt is None:
        return []
    newest = dt.version()
    tv = meta.table_versions
    with ws.engine().connect() as conn:
        last = conn.execute(sa.select(sa.func.max(tv.c.version))
                            .where(tv.c.source == name)).scalar()
    first = 0 if last is None else int(last) + 1
    if newest < first:
        return []
    commits = sorted((c for c in dt.history(limit=newest - first + 1)
                      if int(c["version"]) >= first), key=lambda c: int(c["version"]))
    base: int | None = None if last is None else int(last)
    adopted: list[tuple[int | None, dict[str, Any]]] = []
    pending: list[int] = []  # versions since the state was last the recorded one
    for c in commits:
        rec, v = _record(c) or {}, int(c["version"])
        if rec.get("kind") == "ingest" and not pending:
            adopted.append((v, rec))
            base = v
        elif rec.get("kind") == "rollback" and rec.get("to_version") == base:
            pending = []
        elif rec.get("kind") == "upkeep" and not pending:
            continue  # compaction or vacuum of the recorded state: no row changed
        else:
            pending.append(v)
    if adopted:
        adopt(ws, adopted)
    if not pending:
        return []
    mark = ledger({"kind": "rollback", "to_version": base, "versions": pending})
    if base is None:
        write_deltalake(ws.table_uri(name), pa.schema(dt.schema().to_arrow())
                        .empty_table(), mode="overwrite", commit_properties=mark,
                        storage_options=ws.storage_options)
    else:
        dt.restore(base, commit_properties=mark)
    shown = ", ".join(map(str, pending))
    return [f"Table {name!r} had Delta version(s) {shown} that no recorded tuesday ingest "
            "wrote (their commits carry no ingest record: a crash of an older tuesday, or "
            "a write by another tool); they were rolled back to "
            + ("an empty table" if base is None else f"version {base}")
            + f", and stay readable by time travel at version(s) {shown}. Ingest their "
            "file again to add its rows with their metadata."]


def _newest_first(dt: DeltaTable) -> Iterator[dict[str, Any]]:
    seen, limit = 0, 8
    while True:
        hist = dt.history(limit=limit)
        yield from hist[seen:]
        if len(hist) < limit:
            return
        seen, limit = len(hist), limit * 4


def _reconcile_quarantine(ws: Workspace, name: str) -> list[str]:
    dt = _open_delta(ws, ws.quarantine_uri(name))
    if dt is None:
        return []
    adopted: list[tuple[int | None, dict[str, Any]]] = []
    orphans: list[str] = []
    with ws.engine().connect() as conn:
        for c in _newest_first(dt):
            rec = _record(c) or {}
            # anything else (a cleanup, an older tuesday's commit) was reconciled before
            if rec.get("kind") not in ("ingest", "part") or \
                    _recorded(conn, str(rec["ingest_id"])):
                break
            if rec["kind"] == "ingest":
                adopted.append((int(c["version"]), rec))
            else:
                orphans.append(str(rec["ingest_id"]))
    if adopted:
        adopt(ws, adopted[::-1])
    if not orphans:
        return []
    dt.delete("ingest_id IN (" + ", ".join(f"'{i}'" for i in orphans) + ")",
              commit_properties=ledger({"kind": "cleanup", "ingest_ids": orphans}))
    return []  # rows of an ingest that never completed: nothing was acknowledged


def reconcile_all(ws: Workspace) -> None:
    """Reconcile every table that no other process is writing right now."""
    from deltalake.exceptions import DeltaError

    names = sorted({n for sub in ("tables", "quarantine") for n in ws.storage.folders(sub)
                    if not n.startswith(("_", "."))})
    for name in names:
        with ws.table_lock(name, wait=False) as held:
            if not held:
                continue  # its writer reconciles it
            try:
                reconcile(ws, name)
            except (DeltaError, OSError, ValueError) as exc:
                _LOG.warning("Table %r of workspace %s could not be reconciled with its "
                             "Delta log: %s", name, ws.root, exc)
