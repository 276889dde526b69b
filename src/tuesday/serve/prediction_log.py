"""The prediction log: every served prediction, buffered with a bound and appended to the
Delta table ``_predictions`` in batches (``LOG_SCHEMA``).

When the buffer is full, ``PredictionLog.add`` refuses, and the predict path answers
``Overloaded`` (HTTP 503) rather than growing memory or dropping log rows. A failed write
keeps its rows for the next flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from tuesday.data.predictions import LOG_SCHEMA, PREDICTIONS
from tuesday.workspace import Workspace

__all__ = ["LOG_MAX_ROWS", "LOG_NAMES", "LOG_SLICE", "PredictionLog"]

log = logging.getLogger(__name__)

#: the log's columns, in the order of a log row's tuple
LOG_NAMES = tuple(LOG_SCHEMA.names)
#: rows the log holds unwritten before it refuses more
LOG_MAX_ROWS = 200_000


class PredictionLog:
    """Buffered, batched appends of served predictions to a Delta table.

    Rows are tuples in the order of ``LOG_SCHEMA`` (dicts by column name are taken too).
    ``add`` refuses (returns False) once ``max_rows`` are waiting; ``flush`` is safe to
    call from another thread; a failed write keeps the rows for the next flush.
    """

    def __init__(self, ws: Workspace, *, max_rows: int = LOG_MAX_ROWS) -> None:
        self.ws = ws
        self.max_rows = max_rows
        self.rows: list[tuple[Any, ...]] = []
        self.written = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._table: Any = None  # the open DeltaTable, once the log exists

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, rows: Sequence[tuple[Any, ...] | dict[str, Any]]) -> bool:
        tuples: list[tuple[Any, ...]] = [
            r if isinstance(r, tuple) else tuple(map(r.get, LOG_NAMES)) for r in rows]
        with self._lock:
            if len(self.rows) + len(tuples) > self.max_rows:
                return False
            self.rows.extend(tuples)
            return True

    def flush(self) -> int:
        with self._write_lock:
            with self._lock:
                batch, self.rows = self.rows, []
            if not batch:
                return 0
            try:
                self._write(_to_table(batch))
            except Exception:
                self.failures += 1
                with self._lock:  # keep them, oldest first, for the next attempt
                    self.rows[:0] = batch
                log.exception("writing %d prediction log rows failed; kept for retry",
                              len(batch))
                raise
            self.written += len(batch)
            return len(batch)

    def _write(self, table: pa.Table) -> None:
        """Append to the Delta table through the ``DeltaTable`` kept open since the last
        write: opening it from its path replays the transaction log every time (a cost
        that grows by about 0.3 ms per commit until the next checkpoint); the open table
        moves on with its own commits, and a commit by another process (another server
        worker) is found and appended after, as when opening it afresh."""
        if self._table is not None:
            try:
                # a table that has the log's columns takes a plain append: "merge" adds a
                # metadata action to every commit, and two writers' metadata actions
                # conflict with each other
                same = self._table.schema().to_arrow().names == LOG_SCHEMA.names
                write_deltalake(self._table, table, mode="append",
                                schema_mode=None if same else "merge")
                return
            except CommitFailedError:  # nothing was committed: write by path, below
                self._table = None
            except Exception:
                self._table = None  # reopened from the path on the next flush
                raise
        path = str(self.ws.table_path(PREDICTIONS))
        write_deltalake(path, table, mode="append", schema_mode="merge")
        try:
            self._table = DeltaTable(path)
        except Exception:  # the next flush writes by path again
            log.debug("reopening the prediction log failed", exc_info=True)


#: rows converted to Arrow per slice when writing the log, with a pause between slices so
#: that the server's event loop gets the GIL (one conversion of thousands of rows would
#: stall it for milliseconds)
LOG_SLICE = 256


def _to_table(batch: list[tuple[Any, ...]]) -> pa.Table:
    parts = []
    for i in range(0, len(batch), LOG_SLICE):
        columns = list(zip(*batch[i:i + LOG_SLICE], strict=True))
        parts.append(pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, LOG_SCHEMA, strict=True)],
            schema=LOG_SCHEMA))
        time.sleep(0)  # let a waiting thread (the event loop) take the GIL now
    return pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
