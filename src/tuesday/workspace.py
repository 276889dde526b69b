"""The embedded workspace: one folder with tables, metadata, artifacts and the online store.

Layout::

    WORKSPACE/
      meta.sqlite          runs, registry, audit, table versions (SQLite WAL)
      online.sqlite        online feature store
      tables/NAME/         Delta Lake tables, one per source, plus _predictions
      quarantine/NAME/     rows that failed their contract, with reasons
      spool/               each server process's log rows not yet in _predictions
      artifacts/sha256/    content-addressed files
      reports/             HTML and JSON reports

Everything is opened per call; no process holds a lock that blocks another, so a server
and a CLI can use the same workspace at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuesday.errors import ArtifactCorrupt, NotFound, TuesdayError

if TYPE_CHECKING:  # SQLAlchemy loads on the first engine: `tuesday --help` never needs it
    import sqlalchemy as sa

_ENGINES: dict[str, sa.Engine] = {}
#: a table's name: a source's plain identifier, or one of tuesday's own (``_predictions``)
_TABLE_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9_-]*")


def _plain(name: str) -> str:
    """``name`` if it is a plain table name, which cannot leave the workspace's folders."""
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise TuesdayError(f"Table name {name!r} is not a plain name (letters, digits, "
                           "'_' and '-', starting with a letter); it would not stay inside "
                           "the workspace.",
                           fix="Rename the source to a plain identifier such as 'ridership'.")
    return name


@dataclass(frozen=True)
class Workspace:
    """Paths and connections of one workspace folder."""

    root: Path

    @property
    def meta_url(self) -> str:
        return f"sqlite:///{self.root / 'meta.sqlite'}"

    @property
    def online_path(self) -> Path:
        return self.root / "online.sqlite"

    def table_path(self, name: str) -> Path:
        """The folder of table ``name``: a plain name (``_`` may start tuesday's own
        tables), never a path that could leave the workspace."""
        return self.root / "tables" / _plain(name)

    def quarantine_path(self, name: str) -> Path:
        return self.root / "quarantine" / _plain(name)

    @property
    def reports(self) -> Path:
        path = self.root / "reports"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def engine(self) -> sa.Engine:
        """A SQLAlchemy engine on the metadata database (cached per process)."""
        url = self.meta_url
        eng = _ENGINES.get(url)
        if eng is None:
            import sqlalchemy as sa

            from tuesday import meta

            eng = sa.create_engine(url, connect_args={"timeout": 30})

            @sa.event.listens_for(eng, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            meta.metadata.create_all(eng)
            _ENGINES[url] = eng
        return eng

    # ---------------------------------------------------------------- artifacts

    def put_artifact(self, data: bytes) -> str:
        """Store bytes under their sha256 and return the digest (idempotent, atomic)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.artifact_path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        return digest

    def artifact_path(self, digest: str) -> Path:
        return self.root / "artifacts" / "sha256" / digest[:2] / digest

    def get_artifact(self, digest: str) -> bytes:
        """Read an artifact and check its sha256; a mismatch is refused."""
        path = self.artifact_path(digest)
        if not path.exists():
            raise NotFound(f"Artifact {digest[:12]} is missing from {path.parent}.",
                           fix="Restore the workspace's artifacts folder or retrain.")
        data = path.read_bytes()
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ArtifactCorrupt(
                f"Artifact {digest[:12]} was modified: its sha256 is now {got[:12]}.",
                fix="Do not edit artifacts; restore it from a backup or retrain the model.",
            )
        return data


def open_workspace(root: str | Path) -> Workspace:
    """Create (if needed) and open a workspace folder."""
    path = Path(root).expanduser().resolve()
    try:
        for sub in ("tables", "quarantine", "artifacts", "reports"):
            (path / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TuesdayError(f"Workspace folder {str(path)!r} cannot be created: {exc}.",
                           fix="Pass --workspace with a writable folder.") from exc
    import sqlalchemy as sa

    ws = Workspace(path)
    try:
        ws.engine()
    except sa.exc.DatabaseError as exc:
        _ENGINES.pop(ws.meta_url, None)
        raise TuesdayError(
            f"{path / 'meta.sqlite'} is not a tuesday workspace database ({exc.orig}).",
            fix="Point --workspace at a tuesday workspace, or at a new folder.") from exc
    return ws
