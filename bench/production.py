"""The production profile (PostgreSQL + Redis + S3) against the embedded one, side by side.

Three measurements in one run, on servers started on loopback for it
(:mod:`tuesday.servers`: PostgreSQL 15, Redis 7, SeaweedFS S3):

1. **Online read on Redis** (bench/online.py's 10-feature card project, state rebuilt
   from the same events into each store): the floor is a bare redis-py ``GET`` of the
   same bytes from the same server; beside it tuesday's record read (``RedisStore.get``:
   one script call that reads the space's generation and the record), the whole
   request-time read (``Plan.values``: the record and ten features computed), the
   materialized-vector read (``RedisStore.lookup``: GET and decode), and the same reads
   on SQLite. Calls interleaved within each round; p50 / p99 in microseconds.
2. **Serving**: ``tuesday serve`` of the churn example's model (the same trained version)
   on the embedded workspace and on its copy moved to the production profile (metadata
   rows to PostgreSQL, tables and artifacts to S3, online features materialized into
   Redis); wrk -t2 -c16, closed loop, after a warm-up; requests per second and p99.
3. **Ingest and training-set build** of the ridership example's files into a workspace
   whose storage is local disk, and one whose storage is S3 (both with SQLite metadata,
   so only the storage differs): wall seconds, best of ``--repeats``.

    python bench/production.py                      # everything
    python bench/production.py --only online        # one part (online, serving, data)
    python bench/production.py --small              # a quick run

The Feast Redis online store is not measured: Feast needs pandas < 3 and its own
virtualenv with a Redis client; see bench/online.py for its SQLite figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from online import (  # noqa: E402
    CONFIG,
    SMALL,
    START,
    interleaved,
    make_events,
    project,
)


def online_part(servers: Any, folder: Path, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    import redis

    from tuesday.data import events, online, tables
    from tuesday.data.online_redis import RedisStore
    from tuesday.workspace import open_workspace

    proj = project()
    model = proj.model("risk")
    ws = open_workspace(folder / "online-ws")
    frame = make_events(cfg)
    end = START + pd.Timedelta(days=cfg["days"])
    tables.ingest_frame(ws, proj.source("tx"), frame, as_of=end.to_pydatetime())
    sqlite_store = online.SQLiteStore(online.connect(ws))
    url = servers.redis.url("bench")
    redis_store = RedisStore.from_url(url)
    for st in (sqlite_store, redis_store):
        events.rebuild(ws, proj, "tx", end.to_pydatetime(), store=st)
    plan = events.plan(proj, model)
    rng = np.random.default_rng(cfg["seed"] + 1)
    keys = [f"c{i:06d}" for i in rng.integers(0, cfg["entities"], cfg["reads"])]
    at = end + pd.Timedelta(minutes=5)
    bare = redis.Redis(port=servers.redis.port)
    pipe = bare.pipeline(transaction=False)
    for k in set(keys):  # the floor: the same bytes under a plain key
        pipe.set(f"floor:{k}", redis_store.get("tx", k) or b"")
    pipe.execute()
    # materialized vectors of the same size as a daily model's record (14 targets x 10)
    vec = json.dumps({"names": [f"f{j}" for j in range(10)],
                      "vectors": {f"2024-03-{d:02d}T00:00:00": [float(j) for j in range(10)]
                                  for d in range(1, 15)}}, separators=(",", ":"))
    rows = [("daily", k, "2024-03-01T00:00:00", vec) for k in set(keys)]
    redis_store.put_features(rows)
    sqlite_store.put_features(rows)
    pipe = bare.pipeline(transaction=False)
    for k in set(keys):
        pipe.set(f"vfloor:{k}", f"2024-03-01T00:00:00\n{vec}".encode())
    pipe.execute()
    assert plan.values(redis_store, keys[0], at) == plan.values(sqlite_store, keys[0], at)
    gc.collect()
    gc.freeze()
    got = interleaved({
        "floor": lambda i: bare.get(f"floor:{keys[i]}"),
        "redis blob": lambda i: redis_store.get("tx", keys[i]),
        "redis read1": lambda i: plan.values(redis_store, keys[i], at),
        "sqlite blob": lambda i: sqlite_store.get("tx", keys[i]),
        "sqlite read1": lambda i: plan.values(sqlite_store, keys[i], at),
    }, cfg["reads"])
    vecs = interleaved({
        "vfloor": lambda i: bare.get(f"vfloor:{keys[i]}"),
        "redis lookup": lambda i: redis_store.lookup("daily", keys[i]),
        "sqlite lookup": lambda i: sqlite_store.lookup("daily", keys[i]),
    }, cfg["reads"])
    gc.unfreeze()
    rows_out = [
        ("floor: redis-py GET of the record's bytes", got["floor"], got["floor"]),
        ("tuesday Redis: event record (RedisStore.get)", got["redis blob"], got["floor"]),
        ("tuesday Redis: read 1 entity, 10 features at request time", got["redis read1"],
         got["floor"]),
        ("tuesday SQLite: event record", got["sqlite blob"], got["floor"]),
        ("tuesday SQLite: read 1 entity, 10 features", got["sqlite read1"], got["floor"]),
        ("floor: redis-py GET of a vector record's bytes", vecs["vfloor"], vecs["vfloor"]),
        ("tuesday Redis: materialized vectors (lookup: GET + decode)", vecs["redis lookup"],
         vecs["vfloor"]),
        ("tuesday SQLite: materialized vectors (lookup)", vecs["sqlite lookup"],
         vecs["vfloor"]),
    ]
    sqlite_store.close()
    redis_store.close()
    return [{"step": name, "p50": s["p50"], "p99": s["p99"], "ratio": s["p99"] / f["p99"],
             "cpu_p99": s["cpu_p99"]} for name, s, f in rows_out]


def serving_part(servers: Any, folder: Path, seconds: int) -> list[dict[str, Any]]:
    from serving import CUSTOMERS, SERVED, build, free_port, lua_script, wrk

    from tuesday import storage
    from tuesday.data.materialize import materialize
    from tuesday.project import load_project
    from tuesday.workspace import Workspace, copy_metadata, open_workspace

    data = build(folder / "churn")
    embedded = Path(data["ws"])
    prod_root = folder / "churn-prod"
    shutil.copytree(embedded, prod_root)
    locs = servers.locations("churnprod")
    copy_metadata(Workspace(prod_root), locs["metadata"])
    storage.copy_tree(storage.Storage(str(prod_root)),
                      storage.Storage.of(locs["storage"], prod_root),
                      "tables", "quarantine", "artifacts")
    for top in ("tables", "quarantine", "artifacts"):
        shutil.rmtree(prod_root / top)
    (prod_root / "online.sqlite").unlink(missing_ok=True)
    prod = open_workspace(prod_root, **locs)
    loaded = load_project(BENCH.parent / "src/tuesday/examples/churn/project.py")
    materialize(prod, loaded.project, loaded.project.model("churn"), SERVED)
    bodies = [json.dumps({"customer_id": f"C{i:05d}"}) for i in range(1, CUSTOMERS + 1)]
    script = lua_script("/v1/models/churn/predict", bodies, None, folder)
    out = []
    for name, root in (("embedded (SQLite, SQLite, local disk)", embedded),
                       ("production (PostgreSQL, Redis, S3)", prod_root)):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuesday.cli", "--project",
             str(BENCH.parent / "src/tuesday/examples/churn/project.py"), "--workspace",
             str(root), "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**__import__("os").environ, "TUESDAY_COMPILED": "off"})
        try:
            _wait_ready(port)
            wrk(port, script, connections=16, seconds=3, pin=None)  # warm-up
            r = wrk(port, script, connections=16, seconds=seconds, pin=None)
            out.append({"profile": name, **r})
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return out


def _wait_ready(port: int, timeout: float = 180.0) -> None:
    import http.client

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


def data_part(servers: Any, folder: Path, repeats: int) -> list[dict[str, Any]]:
    from tuesday.data import tables
    from tuesday.project import load_project
    from tuesday.train import training
    from tuesday.workspace import open_workspace

    loaded = load_project(ROOT / "src/tuesday/examples/ridership/project.py")
    files = loaded.module.example_files(folder / "ridership-files", until="2016-06-30")
    as_of = datetime(2016, 6, 30)
    model = loaded.project.model("ridership_14d")
    results: dict[str, dict[str, list[float]]] = {"local disk": {}, "S3": {}}
    for r in range(repeats):
        for name in results:
            storage = servers.s3.url(f"bench-{r}-{time.monotonic_ns()}") if name == "S3" \
                else None
            ws = open_workspace(folder / f"data-{name.replace(' ', '')}-{r}", storage=storage)
            t0 = time.perf_counter()
            for src, path in files.items():
                tables.ingest_file(ws, loaded.project.source(src), path, as_of=as_of)
            t1 = time.perf_counter()
            ts = training.training_set(ws, loaded.project, model, as_of)
            t2 = time.perf_counter()
            results[name].setdefault("ingest", []).append(t1 - t0)
            results[name].setdefault("training set", []).append(t2 - t1)
            results[name].setdefault("rows", []).append(float(len(ts.frame)))
    return [{"storage": name, "ingest_best": min(v["ingest"]),
             "ingest_median": float(np.median(v["ingest"])),
             "ts_best": min(v["training set"]),
             "ts_median": float(np.median(v["training set"])), "rows": int(v["rows"][0])}
            for name, v in results.items()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["online", "serving", "data"])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = {**CONFIG, **(SMALL if args.small else {})}
    from tuesday.servers import local_servers

    with tempfile.TemporaryDirectory(prefix="tuesday-bench-prod-") as tmp, \
            local_servers(Path(tmp) / "servers") as servers:
        folder = Path(tmp)
        if args.only in (None, "online"):
            rows = online_part(servers, folder, cfg)
            print(f"\nOnline read, {cfg['entities']:,} entities, {cfg['reads']:,} calls each "
                  "(us):\n")
            print("| step | p50 us | p99 us | p99 / floor | CPU p99 us |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for r in rows:
                print(f"| {r['step']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['ratio']:.2f} | "
                      f"{r['cpu_p99']:.1f} |")
        if args.only in (None, "serving"):
            rows = serving_part(servers, folder, 3 if args.small else args.seconds)
            print("\nServing, churn model, wrk -t2 -c16:\n")
            print("| profile | req/s | p50 ms | p99 ms | errors |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for r in rows:
                print(f"| {r['profile']} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                      f"{r['errors']} |")
            print(f"\nproduction / embedded: req/s {rows[1]['rps'] / rows[0]['rps']:.2f}x, "
                  f"p99 {rows[1]['p99'] / rows[0]['p99']:.2f}x")
        if args.only in (None, "data"):
            rows = data_part(servers, folder, 1 if args.small else args.repeats)
            print("\nRidership history: ingest and training-set build (s):\n")
            print("| storage | ingest best | ingest median | training set best | "
                  "training set median | rows |")
            print("| --- | ---: | ---: | ---: | ---: | ---: |")
            for r in rows:
                print(f"| {r['storage']} | {r['ingest_best']:.2f} | {r['ingest_median']:.2f} | "
                      f"{r['ts_best']:.2f} | {r['ts_median']:.2f} | {r['rows']:,} |")
            print(f"\nS3 / local: ingest {rows[1]['ingest_best'] / rows[0]['ingest_best']:.2f}x,"
                  f" training set {rows[1]['ts_best'] / rows[0]['ts_best']:.2f}x")


if __name__ == "__main__":
    main()
