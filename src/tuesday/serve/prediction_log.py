"""The prediction log: every served prediction, written to this process's spool
(``tuesday.serve.spool``) before its answer is sent, buffered with a bound and appended
to the Delta table ``_predictions`` in batches (``LOG_SCHEMA``).

When the buffer is full, ``PredictionLog.add`` refuses, and the predict path answers
``Overloaded`` (HTTP 503) rather than growing memory or dropping log rows. A failed write
keeps its rows for the next flush. A process killed before its rows reached the table
leaves them in its spool: ``PredictionLog.recover`` (run by the server on start) commits
them, exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from tuesday.data.predictions import BASE_WIDTH, LOG_SCHEMA, PREDICTIONS
from tuesday.errors import Overloaded
from tuesday.serve.spool import APP_PREFIX, Spool, dead_spools, encode
from tuesday.workspace import Workspace

__all__ = ["LOG_MAX_ROWS", "LOG_NAMES", "LOG_SLICE", "SPOOL", "PredictionLog"]

log = logging.getLogger(__name__)

#: the log's columns, in the order of a log row's tuple
LOG_NAMES = tuple(LOG_SCHEMA.names)
#: rows the log holds unwritten before it refuses more
LOG_MAX_ROWS = 200_000
#: the workspace folder of the spools
SPOOL = "spool"


class PredictionLog:
    """Spooled, buffered, batched appends of served predictions to a Delta table.

    Rows are tuples in the order of ``LOG_SCHEMA`` (dicts by column name are taken too).
    ``add`` writes them to the spool, then keeps them; it refuses (returns False) once
    ``max_rows`` are waiting. ``flush`` is safe to call from another thread; a failed
    write keeps the rows (and their spool segments) for the next flush. ``close``
    flushes and releases the spool. With ``spool=False`` rows wait in memory only.
    """

    def __init__(self, ws: Workspace, *, max_rows: int = LOG_MAX_ROWS,
                 spool: bool = True) -> None:
        self.ws = ws
        self.max_rows = max_rows
        self.rows: list[tuple[Any, ...]] = []
        self.written = 0
        self.failures = 0
        self.spooled = spool
        self._spool: Spool | None = None  # opened on the first row
        self._sealed: int | None = None  # newest sealed spool segment not committed
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._table: Any = None  # the open DeltaTable, once the log exists

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows: Sequence[tuple[Any, ...] | dict[str, Any]]) -> bool:
        if not rows:
            return True
        tuples: list[tuple[Any, ...]] = [
            r if isinstance(r, tuple) else tuple(map(r.get, LOG_NAMES)) for r in rows]
        with self._lock:
            if len(self.rows) + len(tuples) > self.max_rows:
                return False
            if self.spooled:
                if self._spool is None:
                    self._spool = Spool(self.ws.root / SPOOL)
                try:  # on disk before the answer is sent
                    self._spool.append(encode(tuples))
                except OSError as exc:
                    self.failures += 1
                    raise Overloaded(
                        f"The prediction log's spool in {self._spool.folder} could not be "
                        f"written ({exc.strerror or exc}); the request was not answered so "
                        "that no prediction goes unlogged.", reason="log_unavailable",
                        retry_after=5, fix="Free space on the workspace's disk (or fix its "
                        "storage); the server answers again as soon as the spool can be "
                        "written.") from exc
            self.rows.extend(tuples)
            return True

    def flush(self) -> int:
        with self._write_lock:
            with self._lock:
                batch, self.rows = self.rows, []
                sealed = self._spool.seal() if self._spool is not None else None
                if sealed is not None:
                    self._sealed = sealed
            if not batch:
                return 0
            txn = None if self._spool is None or self._sealed is None else \
                Transaction(self._spool.app_id, self._sealed)
            try:
                self._write(_to_table(batch), txn)
            except Exception:
                if txn is not None and self._committed_after_all(txn):
                    return self._written(batch, txn)
                self.failures += 1
                with self._lock:  # keep them, oldest first, for the next attempt
                    self.rows[:0] = batch
                log.exception("writing %d prediction log rows failed; kept for retry",
                              len(batch))
                raise
            return self._written(batch, txn)

    def _written(self, batch: list[tuple[Any, ...]], txn: Transaction | None) -> int:
        if txn is not None and self._spool is not None:
            self._spool.drop(txn.version)
            self._sealed = None
        self.written += len(batch)
        return len(batch)

    def _committed_after_all(self, txn: Transaction) -> bool:
        """Whether a write that raised was committed nonetheless (a failure after the
        commit, such as writing a checkpoint): its spool transaction says so."""
        try:
            return self._committed(txn.app_id) >= txn.version
        except Exception:
            return False

    def close(self) -> None:
        """Write what waits, then close the spool (removing its files when all of it
        is in the table; what could not be written stays for the next start)."""
        try:
            self.flush()
        finally:
            with self._lock:
                if self._spool is not None:
                    self._spool.close()
                    self._spool = None

    def recover(self) -> int:
        """Commit the spools of processes that died (``tuesday.serve.spool``): every
        segment their app transaction in the Delta table does not cover yet, so none
        is committed twice. Returns the rows committed."""
        done = 0
        with dead_spools(self.ws.root / SPOOL) as dead:
            for owner, segs in dead:
                app_id = APP_PREFIX + owner
                committed = self._committed(app_id)
                todo = [s for s in segs if s.number > committed]
                rows = [r for s in todo for r in s.rows()]
                if rows:
                    self._write(_to_table(rows), Transaction(app_id, todo[-1].number))
                    log.warning("committed %d prediction log rows left in the spool of "
                                "a process that stopped without writing them", len(rows))
                done += len(rows)
        self.written += done
        return done

    def _committed(self, app_id: str) -> int:
        """The newest spool segment of ``app_id`` in the table (-1: none)."""
        try:
            dt = DeltaTable(self.ws.table_uri(PREDICTIONS),
                            storage_options=self.ws.storage_options)
        except TableNotFoundError:
            return -1
        got = dt.transaction_version(app_id)
        return -1 if got is None else int(got)

    def _write(self, table: pa.Table, txn: Transaction | None = None) -> None:
        """Append to the Delta table through the ``DeltaTable`` kept open since the last
        write: opening it from its path replays the transaction log every time (a cost
        that grows by about 0.3 ms per commit until the next checkpoint); the open table
        moves on with its own commits, and a commit by another process (another server
        worker) is found and appended after, as when opening it afresh. ``txn`` is the
        spool's app transaction, recorded in the same commit."""
        props = CommitProperties(app_transactions=[txn]) if txn is not None else None
        if self._table is not None:
            try:
                # a table that has the log's columns takes a plain append: "merge" adds a
                # metadata action to every commit, and two writers' metadata actions
                # conflict with each other
                same = self._table.schema().to_arrow().names == LOG_SCHEMA.names
                write_deltalake(self._table, table, mode="append",
                                schema_mode=None if same else "merge",
                                commit_properties=props)
                return
            except CommitFailedError:  # nothing was committed: write by path, below
                self._table = None
            except Exception:
                self._table = None  # reopened from the path on the next flush
                raise
        path = self.ws.table_uri(PREDICTIONS)
        opts = self.ws.storage_options
        write_deltalake(path, table, mode="append", schema_mode="merge",
                        commit_properties=props, storage_options=opts)
        try:
            self._table = DeltaTable(path, storage_options=opts)
        except Exception:  # the next flush writes by path again
            log.debug("reopening the prediction log failed", exc_info=True)


#: rows converted to Arrow per slice when writing the log, with a pause between slices so
#: that the server's event loop gets the GIL (one conversion of thousands of rows would
#: stall it for milliseconds)
LOG_SLICE = 256


def _array(values: Any, kind: pa.DataType) -> pa.Array:
    """One log column; a NaN where a whole number, flag or text belongs (rows read back
    from the log as a pandas frame, where a null int64 is a NaN float) is a null."""
    try:
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        if pa.types.is_floating(kind):
            raise
        return pa.array([None if isinstance(v, float) and v != v else v for v in values],
                        type=kind)


def _to_table(batch: list[tuple[Any, ...]]) -> pa.Table:
    parts = []
    width = len(LOG_SCHEMA)
    if any(len(r) != width for r in batch):  # rows of the predict path: no ranking columns
        batch = [r + (None,) * (width - len(r)) if BASE_WIDTH <= len(r) < width else r
                 for r in batch]
    for i in range(0, len(batch), LOG_SLICE):
        columns = list(zip(*batch[i:i + LOG_SLICE], strict=True))
        parts.append(pa.Table.from_arrays(
            [_array(c, f.type) for c, f in zip(columns, LOG_SCHEMA, strict=True)],
            schema=LOG_SCHEMA))
        time.sleep(0)  # let a waiting thread (the event loop) take the GIL now
    return pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
