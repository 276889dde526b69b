"""The prediction log's spool: every answered row is on disk before its answer is sent.

Each server process appends to files of its own under ``WORKSPACE/spool/``::

    spool/OWNER.lock                  held (flock) while the process lives
    spool/OWNER.000000000007.seg      segment 7: framed records, oldest first

A record is one request's log rows, written with one ``write()`` to a file opened
``O_APPEND``: an 8-byte header (payload length and CRC-32, little endian) and the rows
as JSON (orjson). Once ``write()`` returns, the bytes are in the kernel's page cache,
which keeps them when the process is killed (``kill -9``, an OOM kill); only a crash of
the machine itself can lose them, and no ``fsync`` is paid per request.

The prediction log seals the current segment and starts the next one at every flush,
appends the sealed segments' rows to the Delta table with the app transaction
``(OWNER, last segment number)``, then deletes them. A process that starts finds the
spools of dead owners (their lock is free), and commits each segment the Delta table's
transaction version for that owner does not cover yet: a crash between a Delta commit
and the deletion of its segments therefore never duplicates rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

__all__ = ["APP_PREFIX", "HEADER", "Spool", "dead_spools", "decode", "encode"]

log = logging.getLogger(__name__)

#: record header: payload bytes, CRC-32 of the payload
HEADER = struct.Struct("<II")
#: prefix of the Delta app transaction id of a spool's owner
APP_PREFIX = "tuesday-spool-"
#: positions of the log row's timestamps (``LOG_SCHEMA``: target_time, served_at)
_TIMES = (4, 5)


def _plain(v: Any) -> Any:
    """What orjson does not encode itself: a pandas Timestamp (a datetime subclass) as
    its ISO text (NaT as null), a numpy scalar as its Python value."""
    if isinstance(v, datetime):
        try:
            return datetime.isoformat(v)
        except (ValueError, TypeError):  # NaT
            return None
    item = getattr(v, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"a prediction log value of type {type(v).__name__} cannot be spooled")


def encode(rows: list[tuple[Any, ...]]) -> bytes:
    """One framed record of log rows (header and JSON payload)."""
    payload = orjson.dumps(rows, default=_plain)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode(data: bytes, *, where: str = "spool") -> Iterator[tuple[Any, ...]]:
    """The log rows of a segment's bytes, record after record. A torn or corrupt tail
    (only a crash of the machine leaves one) ends the segment with a warning."""
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < HEADER.size:
            log.warning("%s: %d stray bytes at its end were skipped", where, end - pos)
            return
        size, crc = HEADER.unpack_from(data, pos)
        payload = data[pos + HEADER.size:pos + HEADER.size + size]
        if len(payload) < size or zlib.crc32(payload) != crc:
            log.warning("%s: a torn or corrupt record at byte %d ended it", where, pos)
            return
        pos += HEADER.size + size
        for row in orjson.loads(payload):
            for i in _TIMES:
                if row[i] is not None:
                    row[i] = datetime.fromisoformat(row[i])
            yield tuple(row)


@dataclass(frozen=True)
class Segment:
    """One segment file of a spool: its owner, number and path."""

    owner: str
    number: int
    path: Path

    def rows(self) -> list[tuple[Any, ...]]:
        return list(decode(self.path.read_bytes(), where=str(self.path)))


def segments(folder: Path, owner: str) -> list[Segment]:
    """The owner's segment files in ``folder``, oldest first."""
    out = []
    for p in folder.glob(f"{owner}.*.seg"):
        with contextlib.suppress(ValueError):
            out.append(Segment(owner, int(p.name[len(owner) + 1:-len(".seg")]), p))
    return sorted(out, key=lambda s: s.number)


class Spool:
    """The append-only spool of one process (see the module docstring). Not safe for
    several threads by itself: the prediction log calls it under its lock."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.owner = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._lock_fd = os.open(folder / f"{self.owner}.lock",
                                os.O_WRONLY | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.number = 0
        self._fd = self._open(self.number)
        self._dirty = False
        self._size = 0  # bytes in the current segment

    @property
    def app_id(self) -> str:
        return APP_PREFIX + self.owner

    def _path(self, number: int) -> Path:
        return self.folder / f"{self.owner}.{number:012d}.seg"

    def _open(self, number: int) -> int:
        return os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, record: bytes) -> None:
        """Append one framed record (one ``write()``; a short write is completed). A write
        that fails (a full disk, an I/O error) is cut back off the segment, so the spool
        holds whole records only, and the ``OSError`` is raised to the caller."""
        start = self._size
        try:
            n = os.write(self._fd, record)
            while n < len(record):  # only on a full disk or a signal mid-write
                n += os.write(self._fd, record[n:])
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        self._size += len(record)
        self._dirty = True

    def seal(self) -> int | None:
        """Close the current segment and start the next; the sealed segment's number,
        or None when nothing was appended to it since the last seal."""
        if not self._dirty:
            return None
        sealed = self.number
        fd = self._open(sealed + 1)
        os.close(self._fd)
        self._fd, self.number, self._dirty, self._size = fd, sealed + 1, False, 0
        return sealed

    def drop(self, upto: int) -> None:
        """Delete the sealed segments numbered ``upto`` and below (committed)."""
        for seg in segments(self.folder, self.owner):
            if seg.number <= upto and seg.number != self.number:
                with contextlib.suppress(FileNotFoundError):
                    seg.path.unlink()

    def close(self) -> None:
        """Close the files; with nothing left unsealed, remove the current (empty)
        segment and the lock. Sealed segments not yet committed stay for a replay."""
        os.close(self._fd)
        if not self._dirty:
            with contextlib.suppress(FileNotFoundError):
                self._path(self.number).unlink()
            if not segments(self.folder, self.owner):
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / f"{self.owner}.lock").unlink()
        os.close(self._lock_fd)


@contextlib.contextmanager
def _claimed(lock: Path) -> Iterator[bool]:
    """Whether the lock file's owner is gone (its lock could be taken), holding it."""
    try:
        fd = os.open(lock, os.O_WRONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # alive
            return
        yield lock.exists()  # not removed by another replay meanwhile
    finally:
        os.close(fd)


@contextlib.contextmanager
def dead_spools(folder: Path) -> Iterator[list[tuple[str, list[Segment]]]]:
    """The (owner, segments) of every spool in ``folder`` whose process is gone, held so
    that no other process replays them at the same time; their files are removed on
    leaving (after the caller committed them)."""
    if not folder.is_dir():
        yield []
        return
    with contextlib.ExitStack() as stack:
        found = []
        for lock in sorted(folder.glob("*.lock")):
            if stack.enter_context(_claimed(lock)):
                owner = lock.name[:-len(".lock")]
                found.append((owner, segments(folder, owner), lock))
        yield [(owner, segs) for owner, segs, _ in found]
        for _, segs, lock in found:
            for seg in segs:
                with contextlib.suppress(FileNotFoundError):
                    seg.path.unlink()
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
