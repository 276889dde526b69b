"""The Redis online store: atomic event updates under writers in several processes,
retention by TTL, and a server's record cache that sees another process's writes.

The contract and parity tests of tests/data/test_online.py run on Redis too; the same
concurrency test runs on SQLite, the embedded store, as the reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tuesday.data import online
from tuesday.data.online import Space
from tuesday.data.online_redis import RedisStore
from tuesday.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[2]
WRITERS, UPDATES = 3, 20
#: one writer process: UPDATES read-modify-writes, each appending its mark to the list
#: held by every one of three keys (a lost update would lose a mark)
WRITER = """
import json, sys
from tuesday.data import online
from tuesday.workspace import open_workspace
store = online.open_store(open_workspace(sys.argv[1]))
name = sys.argv[2]
def fn(space, current):
    return None, {k: json.dumps(json.loads(current.get(k, b"[]")) + [f"{name}-{i}"]).encode()
                  for k in ("a", "b", "c")}
for i in range(int(sys.argv[3])):
    store.update("s", ["a", "b", "c"], fn)
store.close()
"""


@pytest.fixture(params=["sqlite", "redis"])
def store_root(request, tmp_path: Path) -> Path:
    """A workspace folder whose online store is SQLite or Redis."""
    url = request.getfixturevalue("redis_server").url() if request.param == "redis" else None
    open_workspace(tmp_path / "ws", online=url)
    return tmp_path / "ws"


def test_concurrent_event_updates_from_several_processes_lose_nothing(
        store_root: Path) -> None:
    store = online.open_store(open_workspace(store_root))
    store.replace(Space("s", "x", -1, ""), [], lambda: True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store_root), f"w{n}",
                               str(UPDATES)], env=env, stderr=subprocess.PIPE, text=True)
             for n in range(WRITERS)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read() if p.stderr else ""
    want = sorted(f"w{n}-{i}" for n in range(WRITERS) for i in range(UPDATES))
    for key in ("a", "b", "c"):
        got = json.loads(store.get("s", key) or b"[]")
        assert sorted(got) == want  # every update of every writer, once
        # and each writer's own updates in its order
        for n in range(WRITERS):
            mine = [m for m in got if m.startswith(f"w{n}-")]
            assert mine == [f"w{n}-{i}" for i in range(UPDATES)]
    store.close()


def test_records_expire_by_ttl_and_a_rebuild_drops_the_old_generation(
        redis_server, tmp_path: Path) -> None:
    store = RedisStore.from_url(redis_server.url() + "&ttl=2d")
    assert store.ttl == 2 * 86400
    store.put_features([("m", "e1", "2024-01-01T00:00:00", '{"names":[],"vectors":{}}')])
    store.replace(Space("s", "x", 0, ""), [("a", b"1"), ("b", b"2")], lambda: True)
    store.update("s", ["c"], lambda sp, cur: (None, {"c": b"3"}))
    keys = [bytes(k).decode() for k in store.r.scan_iter(match=f"{store.p}:[fe]:*")]
    assert len(keys) == 4
    for key in keys:  # every record carries the retention, refreshed by each write
        assert 0 < store.r.ttl(key) <= 2 * 86400
    assert store.replace(Space("s", "x", 1, ""), [("z", b"9")], lambda: True)
    left = sorted(bytes(k).decode().rsplit(":", 1)[-1]
                  for k in store.r.scan_iter(match=f"{store.p}:e:*"))
    assert left == ["z"]  # the generation replaced is gone, not only unreadable
    assert store.get_many("s", ["a", "z"]) == [None, b"9"]
    store.close()


def test_the_record_cache_sees_a_write_by_another_connection(redis_server) -> None:
    url = redis_server.url()
    server, other = RedisStore.from_url(url), RedisStore.from_url(url)
    payload = '{"names":["x"],"vectors":{"":[%s]}}'
    other.put_features([("m", "e", "o1", payload % 1.0)])
    cached = online.Cached(server, check_seconds=0.0)
    assert cached.lookup("m", "e").vectors == {"": [1.0]}
    assert cached.lookup("m", "e") is cached.lookup("m", "e")  # from the cache
    other.put_features([("m", "e", "o2", payload % 2.0)])  # another process materializes
    got = cached.lookup("m", "e")
    assert (got.origin, got.vectors) == ("o2", {"": [2.0]})
    assert server.entities("m") == ["e"] and server.entities("nope") == []
    server.close()
    other.close()


def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    from tuesday.errors import TuesdayError
    from tuesday.servers import free_port

    ws = open_workspace(tmp_path / "ws", online=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(TuesdayError, match=r"online store at 127\.0\.0\.1:\d+ cannot be reached"):
        online.open_store(ws)
