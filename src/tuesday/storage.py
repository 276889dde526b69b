"""Where a workspace keeps things: three locations, each chosen by a URL.

- **metadata** (runs, registry, audit, table versions): ``sqlite:///PATH`` (default: the
  workspace folder's ``meta.sqlite``) or ``postgresql+psycopg://USER@HOST:PORT/DB``;
- **online** store: ``sqlite`` (default: the folder's ``online.sqlite``) or
  ``redis://HOST:PORT/DB`` (``?prefix=NAME`` keeps several workspaces apart on one server,
  ``?ttl=30d`` expires records that were not written for that long);
- **storage** of tables, quarantine and artifacts: a local folder (default: the workspace
  folder) or ``s3://BUCKET/PREFIX`` (``?endpoint=URL&region=NAME`` for an S3-compatible
  store; credentials come from the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
  and none means unsigned requests).

Each is given in Python (``open_workspace(DIR, metadata=..., online=..., storage=...)``),
by environment variable (``TUESDAY_METADATA_URL``, ``TUESDAY_ONLINE_URL``,
``TUESDAY_STORAGE_URL``) or by the CLI's ``--metadata-url``, ``--online-url`` and
``--storage-url``; a location given once is recorded in the workspace folder
(``locations.json``), so the folder alone opens the same workspace again. The workspace
folder itself always stays local: locks, the servers' spools and reports live there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from tuesday.errors import TuesdayError

#: environment variable of each location
ENV = {"metadata": "TUESDAY_METADATA_URL", "online": "TUESDAY_ONLINE_URL",
       "storage": "TUESDAY_STORAGE_URL"}
#: CLI flag of each location
FLAGS = {"metadata": "--metadata-url", "online": "--online-url", "storage": "--storage-url"}
RECORD = "locations.json"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_DURATION = re.compile(r"(\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Locations:
    """The three locations of a workspace; an empty string is the embedded default."""

    metadata: str = ""
    online: str = ""
    storage: str = ""

    @property
    def embedded(self) -> bool:
        return not (self.metadata or self.online or self.storage)

    def shown(self) -> dict[str, str]:
        """The locations with any password hidden, for messages and ``--json``."""
        return {k: _hide_password(v) if v else "(workspace folder)"
                for k, v in asdict(self).items()}


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    return url


def _bad(kind: str, value: str, expected: str, origin: str) -> TuesdayError:
    return TuesdayError(f"The {kind} location {value!r} ({origin}) is not {expected}.",
                        fix=f"Pass {FLAGS[kind]} (or set ${ENV[kind]}) to {expected}, or "
                            "leave it unset for the workspace folder.")


def check(kind: str, value: str, origin: str = "given") -> str:
    """``value`` as a location of ``kind``, normalised; a clear error when it is none."""
    value = value.strip()
    if not value:
        return ""
    if kind == "metadata":
        if value.startswith(("postgresql://", "postgres://")):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise _bad(kind, value, "a database URL like sqlite:///PATH or "
                       "postgresql+psycopg://USER@HOST:5432/DB", origin)
    elif kind == "online":
        if value == "sqlite":
            return ""
        if not value.startswith(("redis://", "rediss://")):
            raise _bad(kind, value, "'sqlite' or a Redis URL like redis://HOST:6379/0",
                       origin)
        ttl = dict(parse_qsl(urlsplit(value).query)).get("ttl")
        if ttl is not None:
            try:
                duration_seconds(ttl, what=f"The ttl of online location {value!r} ({origin})")
            except TuesdayError as exc:
                raise TuesdayError(exc.message, fix=f"{exc.fix} ({FLAGS[kind]}, "
                                   f"${ENV[kind]})") from None
    elif kind == "storage":
        if value.startswith("s3://"):
            bucket = urlsplit(value).netloc
            if not _BUCKET.fullmatch(bucket):
                raise _bad(kind, value, "an S3 URL like s3://BUCKET/PREFIX with a DNS-style "
                           "bucket name (lower case letters, digits, '-' and '.')", origin)
        elif "://" in value and not value.startswith("file://"):
            raise _bad(kind, value, "a local folder or an S3 URL like s3://BUCKET/PREFIX",
                       origin)
        else:
            value = str(Path(value.removeprefix("file://")).expanduser().resolve())
    return value


def duration_seconds(text: str, *, what: str) -> int:
    """``'30d'``, ``'12h'``, ``'90m'`` or ``'3600'`` as seconds (at least 1)."""
    m = _DURATION.fullmatch(str(text).strip())
    if not m or int(m.group(1)) <= 0:
        raise TuesdayError(f"{what} must be a positive duration like '30d', '12h' or "
                           f"'3600' (seconds). Got {text!r} instead.",
                           fix="Write it as a number followed by s, m, h or d.")
    return int(m.group(1)) * _UNITS[m.group(2)]


def resolve(folder: Path, given: Mapping[str, str | None],
            env: Mapping[str, str] | None = None) -> Locations:
    """The locations of the workspace in ``folder``: each as given, else from its
    environment variable, else as recorded in the folder, else the embedded default.
    Records them in the folder when any differs from what was recorded."""
    env = os.environ if env is None else env
    recorded = _read_record(folder)
    out: dict[str, str] = {}
    for kind in ENV:
        value = given.get(kind)
        if value is not None:
            out[kind] = check(kind, value, f"from {FLAGS[kind]} or Python")
        elif env.get(ENV[kind]):
            out[kind] = check(kind, env[ENV[kind]], f"from ${ENV[kind]}")
        else:
            out[kind] = recorded.get(kind, "")
    locs = Locations(**out)
    if asdict(locs) != {k: recorded.get(k, "") for k in ENV} and \
            (not locs.embedded or recorded):
        _write_record(folder, locs)
    return locs


def _read_record(folder: Path) -> dict[str, str]:
    path = folder / RECORD
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {k: check(k, str(data.get(k) or ""), f"recorded in {path}") for k in ENV}
    except ValueError as exc:
        raise TuesdayError(f"{path} is not a record of workspace locations ({exc}).",
                           fix=f"Delete {path} and pass the locations again.") from exc


def _write_record(folder: Path, locs: Locations) -> None:
    path = folder / RECORD
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # URLs may hold secrets
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(locs), fh, indent=2)
    os.replace(tmp, path)


# ------------------------------------------------------------------ object storage


@dataclass(frozen=True)
class Storage:
    """Tables, quarantine and artifacts: a local folder or an S3 prefix.

    ``uri(*parts)`` is what ``deltalake`` opens (with ``options`` as its storage options);
    ``read``, ``write``, ``size`` and ``folders`` work on the same place directly (local
    files, or S3 through obstore: the Rust object store that ``deltalake`` uses too).
    """

    url: str  # a local folder, or s3://bucket/prefix
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, location: str, folder: Path) -> Storage:
        if not location:
            return cls(str(folder))
        if location.startswith("s3://"):
            parts = urlsplit(location)
            base = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
            return cls(base, tuple(parse_qsl(parts.query)))
        return cls(location)

    @property
    def is_local(self) -> bool:
        return not self.url.startswith("s3://")

    def uri(self, *parts: str) -> str:
        return "/".join([self.url, *parts])

    def path(self, *parts: str) -> str:
        """The local path of ``parts`` (the key under the bucket, on S3)."""
        return "/".join([self.url.removeprefix("s3://"), *parts])

    @property
    def options(self) -> dict[str, str] | None:
        """``deltalake`` storage options (None for a local folder).

        Concurrent writers to one Delta table on S3 are safe through conditional puts
        (``If-None-Match``: a commit file is created only if no other writer created
        that version first; the loser retries on the next version), which AWS S3 and
        SeaweedFS honour; set ``AWS_S3_LOCKING_PROVIDER=dynamodb`` for a store that
        does not, and the DynamoDB lock takes over.
        """
        if self.is_local:
            return None
        q = dict(self.query)
        opts: dict[str, str] = {}
        endpoint = q.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                opts["AWS_ALLOW_HTTP"] = "true"
        opts["AWS_REGION"] = q.get("region") or os.environ.get("AWS_REGION") or "us-east-1"
        if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
            opts["AWS_SKIP_SIGNATURE"] = "true"
        if not os.environ.get("AWS_S3_LOCKING_PROVIDER"):
            opts["conditional_put"] = "etag"
        return opts

    def _s3(self) -> Any:
        """The obstore ``S3Store`` of this prefix (cached per process)."""
        return _s3_store(self.url, self.query)

    def _key(self, parts: tuple[str, ...]) -> str:
        return "/".join(parts)

    def read(self, *parts: str) -> bytes | None:
        """The bytes of a file, or None when it does not exist."""
        if self.is_local:
            try:
                return Path(self.path(*parts)).read_bytes()
            except FileNotFoundError:
                return None
        import obstore

        try:
            return bytes(obstore.get(self._s3(), self._key(parts)).bytes())
        except FileNotFoundError:
            return None

    def size(self, *parts: str) -> int | None:
        """A file's size in bytes, None when it does not exist."""
        if self.is_local:
            try:
                return Path(self.path(*parts)).stat().st_size
            except FileNotFoundError:
                return None
        import obstore

        try:
            return int(obstore.head(self._s3(), self._key(parts))["size"])
        except FileNotFoundError:
            return None

    def write(self, data: bytes, *parts: str) -> None:
        """Write a file whole: a reader sees the old state or the new one, never a part
        (a rename on disk; a single PUT on S3)."""
        if not self.is_local:
            import obstore

            obstore.put(self._s3(), self._key(parts), data)
            return
        import tempfile

        path = Path(self.path(*parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def folders(self, *parts: str) -> list[str]:
        """Names of the folders directly under ``parts`` (none when it is missing)."""
        if self.is_local:
            base = Path(self.path(*parts))
            return sorted(p.name for p in base.iterdir() if p.is_dir()) \
                if base.is_dir() else []
        import obstore

        got = obstore.list_with_delimiter(self._s3(), self._key(parts) + "/")
        return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in got["common_prefixes"])


_S3: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}


def _s3_store(url: str, query: tuple[tuple[str, str], ...]) -> Any:
    got = _S3.get((url, query))
    if got is None:
        from obstore.store import S3Store

        split = urlsplit(url)
        opts = Storage(url, query).options or {}
        config: Any = {"region": opts["AWS_REGION"]}
        if "AWS_ENDPOINT_URL" in opts:
            config["endpoint"] = opts["AWS_ENDPOINT_URL"]
        if opts.get("AWS_SKIP_SIGNATURE"):
            config["skip_signature"] = "true"
        got = S3Store(split.netloc, prefix=split.path.strip("/") or None,
                      config=config,
                      client_options={"allow_http": opts.get("AWS_ALLOW_HTTP") == "true"})
        _S3[(url, query)] = got
    return got


def copy_tree(src: Storage, dst: Storage, *tops: str) -> int:
    """Copy every file under ``tops`` (e.g. ``"tables"``, ``"artifacts"``) of a local
    ``src`` to ``dst`` (a move of an embedded workspace's data to S3); the number of files.
    Delta tables keep working: their logs name their files by relative paths."""
    if not src.is_local:
        raise TuesdayError("Only a local folder can be copied from.",
                           fix="Copy from the embedded workspace's folder.")
    n = 0
    for top in tops:
        base = Path(src.path(top))
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file() and not path.name.startswith(".tmp-"):
                dst.write(path.read_bytes(), top, *path.relative_to(base).parts)
                n += 1
    return n
