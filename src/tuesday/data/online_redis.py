"""The online store on Redis: the same records as on SQLite, one key per entity.

URL: ``redis://HOST:PORT/DB`` (``rediss://`` for TLS, a password as
``redis://:PASSWORD@HOST``), with ``?prefix=NAME`` (default ``tuesday``) so that several
workspaces share one server, and ``?ttl=30d`` to expire every record that was not written
for that long (retention by TTL: an entity that stopped appearing leaves the store by
itself; without ``ttl`` records stay until replaced). Keys, under the prefix ``P``:

- ``P:f:MODEL:ENTITY``: an entity's materialized vectors (``ORIGIN`` newline ``JSON``);
- ``P:s:SPACE``: an event space's metadata (a hash, with its generation ``gen``);
- ``P:e:SPACE:GEN:KEY``: the event state of one key in that generation;
- ``P:u:SPACE``: incremented by every event update of the space (a rebuild that saw it
  change between its check and its swap gives up, and is run again);
- ``P:version``: incremented by every write, so a server's record cache (``Cached``)
  sees another process's write at its next check, as SQLite's ``data_version`` does.

An event update is an optimistic transaction: WATCH the space and the records, read them,
merge in Python, then MULTI/EXEC the new records; when another writer changed any of them
in between, EXEC fails and the update runs again on the new state, so concurrent writers
(several servers posting events) never lose one another's events. A rebuild writes a new
generation beside the old one and swaps the space to it in one MULTI/EXEC (readers see the
old records or the new ones, never a mix), then deletes the old generation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from tuesday.data.online_base import Record, Space, Updater
from tuesday.errors import Conflict, TuesdayError
from tuesday.storage import duration_seconds

#: optimistic attempts of one update before giving up (each fails only when another
#: writer committed to the same keys in between)
ATTEMPTS = 200
#: the record of a key in its space's current generation, in one round trip (the record's
#: key is built from the generation, so this is for a single Redis server, not a cluster)
_READ = """
local gen = redis.call('HGET', KEYS[1], 'gen') or '0'
return redis.call('GET', ARGV[1] .. gen .. ARGV[2])
"""


class RedisStore:
    """``OnlineStore`` on a Redis server (see the module's doc for the keys)."""

    def __init__(self, client: redis.Redis, prefix: str = "tuesday",
                 ttl: int | None = None) -> None:
        self.r: Any = client  # redis-py's own annotations are looser than its behaviour
        self.p = prefix
        self.ttl = ttl
        self._version_key = f"{prefix}:version"
        self._read = client.register_script(_READ)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        prefix = query.pop("prefix", "tuesday")
        ttl_text = query.pop("ttl", None)
        ttl = duration_seconds(ttl_text, what=f"The ttl of online location {url!r}") \
            if ttl_text is not None else None
        plain = urlunsplit(parts._replace(query=urlencode(query)))
        try:
            client = redis.Redis.from_url(plain, socket_timeout=30, socket_connect_timeout=10,
                                          health_check_interval=30)
            client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise TuesdayError(f"The online store at {parts.hostname}:{parts.port or 6379} "
                               f"cannot be reached ({exc}).",
                               fix="Start Redis there, or pass another --online-url.") from exc
        return cls(client, prefix, ttl)

    # ------------------------------------------------------------------ vectors

    def _fkey(self, model: str, entity: str) -> str:
        return f"{self.p}:f:{model}:{entity}"

    def lookup(self, model: str, entity: str) -> Record | None:
        raw = self.r.get(self._fkey(model, entity))
        if raw is None:
            return None
        origin, _, payload = bytes(raw).partition(b"\n")
        got = json.loads(payload)
        return Record(entity, origin.decode(), tuple(got["names"]), got["vectors"])

    def entities(self, model: str) -> list[str]:
        head = self._fkey(model, "")
        return sorted(bytes(k).decode()[len(head):]
                      for k in self.r.scan_iter(match=_glob(head) + "*", count=1000))

    def put_features(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        pipe = self.r.pipeline(transaction=True)
        for model, entity, origin, payload in rows:
            pipe.set(self._fkey(model, entity), f"{origin}\n{payload}".encode(), ex=self.ttl)
        pipe.incr(self._version_key)
        pipe.execute()

    def version(self) -> object:
        return self.r.get(self._version_key)

    # -------------------------------------------------------------- event state

    def _skey(self, space: str) -> str:
        return f"{self.p}:s:{space}"

    def _ukey(self, space: str) -> str:
        return f"{self.p}:u:{space}"

    def _ekey(self, space: str, gen: str, key: str) -> str:
        return f"{self.p}:e:{space}:{gen}:{key}"

    @staticmethod
    def _space(name: str, h: dict[bytes, bytes]) -> tuple[Space | None, str]:
        if not h:
            return None, "0"
        return (Space(name, h[b"schema"].decode(), int(h[b"built_version"]),
                      h[b"built_as_of"].decode()), h[b"gen"].decode())

    def space(self, name: str) -> Space | None:
        return self._space(name, self.r.hgetall(self._skey(name)))[0]

    def _gen(self, space: str) -> str:
        got = self.r.hget(self._skey(space), "gen")
        return "0" if got is None else bytes(got).decode()

    def get(self, space: str, key: str) -> bytes | None:
        """One round trip: a script reads the space's generation and the record."""
        got = self._read(keys=[self._skey(space)],
                         args=[f"{self.p}:e:{space}:", f":{key}"])
        return None if got is None else bytes(got)

    def get_many(self, space: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        gen = self._gen(space)
        got = self.r.mget([self._ekey(space, gen, k) for k in keys])
        return [None if b is None else bytes(b) for b in got]

    def update(self, space: str, keys: Sequence[str], fn: Updater) -> None:
        skey = self._skey(space)
        unique = list(dict.fromkeys(keys))
        with self.r.pipeline(transaction=True) as pipe:
            for _attempt in range(ATTEMPTS):
                try:
                    pipe.watch(skey)
                    sp, gen = self._space(space, pipe.hgetall(skey))
                    ekeys = [self._ekey(space, gen, k) for k in unique]
                    if ekeys:
                        pipe.watch(*ekeys)
                    blobs = pipe.mget(ekeys) if ekeys else []
                    current = {k: bytes(b) for k, b in zip(unique, blobs, strict=True)
                               if b is not None}
                    new_space, out = fn(sp, current)
                    pipe.multi()
                    if new_space is not None:
                        pipe.hset(skey, mapping=_space_fields(new_space, gen))
                    for k, b in out.items():
                        pipe.set(self._ekey(space, gen, k), b, ex=self.ttl)
                    pipe.incr(self._ukey(space))
                    pipe.incr(self._version_key)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue
        raise Conflict(f"The online state of {space!r} kept changing under this update "
                       f"({ATTEMPTS} attempts).", fix="Send the events again.")

    def replace(self, space: Space, items: Iterable[tuple[str, bytes]],
                still_valid: Callable[[], bool]) -> bool:
        skey = self._skey(space.name)
        new_gen = uuid.uuid4().hex[:12]
        written: list[str] = []
        with self.r.pipeline(transaction=True) as pipe:
            # an update committed after still_valid() (its events may not be in the
            # table this rebuild read) increments the space's update counter: EXEC fails
            pipe.watch(skey, self._ukey(space.name))
            _, old_gen = self._space(space.name, pipe.hgetall(skey))
            if not still_valid():
                pipe.reset()
                return False
            batch = self.r.pipeline(transaction=False)  # the new generation, unseen yet
            for i, (k, b) in enumerate(items):
                key = self._ekey(space.name, new_gen, k)
                written.append(key)
                batch.set(key, b, ex=self.ttl)
                if i % 1000 == 999:
                    batch.execute()
            batch.execute()
            try:
                pipe.multi()
                pipe.delete(skey)
                pipe.hset(skey, mapping=_space_fields(space, new_gen))
                pipe.incr(self._version_key)
                pipe.execute()
            except redis.WatchError:  # another writer changed the space meanwhile
                self._unlink(written)
                return False
        self._unlink(self._generation(space.name, old_gen))
        return True

    def _generation(self, space: str, gen: str) -> list[str]:
        match = _glob(self._ekey(space, gen, "")) + "*"
        return [bytes(k).decode() for k in self.r.scan_iter(match=match, count=1000)]

    def _unlink(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            self.r.unlink(*keys[i:i + 1000])

    def close(self) -> None:
        self.r.close()


def _glob(text: str) -> str:
    """``text`` with Redis's glob characters escaped, for a SCAN MATCH."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _space_fields(s: Space, gen: str) -> dict[str, str]:
    return {"schema": s.schema, "built_version": str(s.built_version),
            "built_as_of": s.built_as_of, "gen": gen}
