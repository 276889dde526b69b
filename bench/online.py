"""Online event features: read and update latency, against a floor and Feast.

Measured, each as p50 / p99 over many calls (one process, warm, the sqlite3 connection
open; nothing else runs in the loop):

    tuesday read 1         Plan.values: one point query on the entity's record, then
                           10 features computed for the request time
    tuesday read 100       Plan.values_many: 100 entities, one query
    tuesday blob query     the point query alone (SELECT state ... WHERE space, key)
    floor read 1           plain sqlite3: SELECT f0..f9 FROM t WHERE entity = ?, one row
                           per entity holding the 10 values (nothing computed)
    floor read 100         the same with IN (100 keys)
    tuesday update 1       events.update: one event merged into its entity's record
                           (read, merge, prune, write, commit)
    tuesday apply 1        events.apply: contract validation, Delta append, read back,
                           update (the whole event path)
    feast read 1 / 100     FeatureStore.get_online_features on its SQLite online store
                           (one row per entity and feature), in Feast's own virtualenv

    python bench/online.py                                # 10,000 entities
    python bench/online.py --small                        # a quick run
    python bench/online.py --feast-python /tmp/feastenv/bin/python

Feast needs pandas < 3 (tuesday uses pandas 3), so it runs in its own interpreter: pass
``--feast-python`` (or set TUESDAY_BENCH_FEAST_PYTHON); without it the Feast part is
skipped and says why.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CONFIG: dict[str, Any] = {
    "entities": 10_000,
    "days": 7,  # history per entity, at about `rate` events a day
    "rate": 3.0,
    "reads": 20_000,  # calls per read measurement
    "batch_reads": 1_000,
    "updates": 2_000,
    "applies": 60,
    "seed": 0,
    "gc_freeze": True,
}
SMALL = {"entities": 1_000, "reads": 5_000, "batch_reads": 300, "updates": 500,
         "applies": 20}
START = pd.Timestamp("2024-03-01")
FEATURES = 10


def project() -> Any:
    from tuesday.project import (
        Baseline,
        Column,
        Contract,
        Entity,
        Model,
        Project,
        Source,
        time_since_last,
        window,
    )

    card = Entity("card")
    tx = Source("tx", Contract((
        Column("card", "str", nullable=False), Column("ts", "timestamp", nullable=False),
        Column("amount", "float", nullable=False, min=0),
        Column("cnp", "int", nullable=False, allowed=(0, 1)))), time="ts", entity=card)
    labels = Source("labels", Contract((Column("card", "str"), Column("ts", "timestamp"),
                                        Column("y", "int"))), time="ts", entity=card)
    feats = (
        window("tx", "amount", "1h", lag="0d", agg="count"),
        window("tx", "amount", "1h", lag="0d", agg="sum", default=0.0),
        window("tx", "amount", "24h", lag="0d", agg="count"),
        window("tx", "amount", "24h", lag="0d", agg="sum", default=0.0),
        window("tx", "amount", "7d", lag="0d", agg="mean"),
        window("tx", "amount", "7d", lag="0d", agg="max"),
        window("tx", "amount", "7d", lag="0d", agg="min"),
        window("tx", "amount", "7d", lag="0d", agg="last"),
        window("tx", "cnp", "24h", lag="0d", agg="sum", default=0.0),
        time_since_last("tx", within="30d", default=30 * 86400.0),
    )
    assert len(feats) == FEATURES
    model = Model("risk", card, "labels", "y", feats, (Baseline("prior", "prior"),),
                  task="binary", horizon="0d", metrics=("auc",))
    return Project("bench", (tx, labels), (model,))


def make_events(cfg: dict[str, Any]) -> pd.DataFrame:
    rng = np.random.default_rng(cfg["seed"])
    n = int(cfg["entities"] * cfg["days"] * cfg["rate"])
    seconds = rng.integers(0, cfg["days"] * 86400, n)
    frame = pd.DataFrame({
        "card": [f"c{i:06d}" for i in rng.integers(0, cfg["entities"], n)],
        "ts": START + pd.to_timedelta(seconds, unit="s"),
        "amount": np.round(rng.lognormal(3.3, 0.6, n), 2),
        "cnp": (rng.random(n) < 0.3).astype(int)})
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _stats(wall: np.ndarray, cpu: np.ndarray) -> dict[str, float]:
    """Percentiles in microseconds: wall clock, and this thread's CPU time (which a busy
    machine inflates much less: it leaves out the time spent waiting for a core)."""
    w, c = wall / 1000.0, cpu / 1000.0
    return {"p50": float(np.percentile(w, 50)), "p99": float(np.percentile(w, 99)),
            "mean": float(w.mean()), "cpu_p50": float(np.percentile(c, 50)),
            "cpu_p99": float(np.percentile(c, 99)), "calls": len(w)}


def interleaved(fns: dict[str, Callable[[int], Any]], n: int) -> dict[str, dict[str, float]]:
    """Each function ``n`` times, called in turn within each round (alternating order),
    so a busy machine slows them alike and their ratios stay meaningful."""
    names = list(fns)
    for i in range(min(200, n)):
        for name in names:
            fns[name](i)
    wall = {name: np.empty(n) for name in names}
    cpu = {name: np.empty(n) for name in names}
    clock, thread = time.perf_counter_ns, time.thread_time_ns
    for i in range(n):
        for name in (names if i % 2 else names[::-1]):
            fn = fns[name]
            c0, t0 = thread(), clock()
            fn(i)
            t1, c1 = clock(), thread()
            wall[name][i], cpu[name][i] = t1 - t0, c1 - c0
    return {name: _stats(wall[name], cpu[name]) for name in names}


def timed(fn: Callable[[int], Any], n: int) -> dict[str, float]:
    """Percentiles of ``fn(i)`` over ``n`` calls, in microseconds (after a warm-up)."""
    return interleaved({"fn": fn}, n)["fn"]


# -------------------------------------------------------------------------- tuesday


def run_tuesday(cfg: dict[str, Any], folder: Path, floor: dict[str, Callable[[int], Any]]
                ) -> dict[str, Any]:
    from tuesday.data import events, online, tables
    from tuesday.workspace import open_workspace

    proj = project()
    model = proj.model("risk")
    ws = open_workspace(folder / "ws")
    frame = make_events(cfg)
    end = START + pd.Timedelta(days=cfg["days"])
    tables.ingest_frame(ws, proj.source("tx"), frame, as_of=end.to_pydatetime())
    t0 = time.perf_counter()
    built = events.rebuild(ws, proj, "tx", end.to_pydatetime())
    rebuild_s = time.perf_counter() - t0
    conn = online.connect(ws)
    store = online.SQLiteStore(conn)
    plan = events.plan(proj, model)
    rng = np.random.default_rng(cfg["seed"] + 1)
    keys = [f"c{i:06d}" for i in rng.integers(0, cfg["entities"], cfg["reads"])]
    at = end + pd.Timedelta(minutes=5)
    sizes = [len(events.View(b).times) for b in store.get_many("tx", keys[:2000]) if b]
    out: dict[str, Any] = {
        "entities": built["entities"], "events": built["events"],
        "rebuild_seconds": rebuild_s,
        "events_per_record": float(np.mean(sizes)),
        "record_bytes": float(np.mean([len(b) for b in store.get_many("tx", keys[:2000])
                                       if b])),
    }
    check = plan.values(store, keys[0], at)
    assert len(check) == FEATURES
    if cfg.get("gc_freeze"):
        # what a server does once loaded: the objects of the imports and the setup move
        # to a permanent generation, so a full collection does not walk them again
        gc.collect()
        gc.freeze()
    ones = interleaved({"floor": floor["read1"], "blob": lambda i: store.get("tx", keys[i]),
                        "read1": lambda i: plan.values(store, keys[i], at)}, cfg["reads"])
    out["floor_read1"], out["blob"], out["read1"] = ones["floor"], ones["blob"], ones["read1"]
    batches = [keys[(i * 100) % (len(keys) - 100):][:100] for i in range(cfg["batch_reads"])]
    many = interleaved({"floor": floor["read100"],
                        "read100": lambda i: plan.values_many(store, batches[i], at)},
                       cfg["batch_reads"])
    out["floor_read100"], out["read100"] = many["floor"], many["read100"]
    # one event: a new transaction of a random card, a little after the history
    sp = events.spec(proj, "tx")
    assert sp is not None
    ups = [pd.DataFrame({"card": [keys[i]], "ts": [end + pd.Timedelta(seconds=i)],
                         "amount": [12.5], "cnp": [1]}) for i in range(cfg["updates"] + 200)]
    version = built["table_version"] + 1
    out["update1"] = timed(lambda i: events.update(
        store, sp, ups[i], (end + pd.Timedelta(seconds=i)).to_pydatetime(), version=version),
        cfg["updates"])
    t_apply = end + pd.Timedelta(hours=1)
    calls = itertools.count()

    def apply(_: int) -> None:
        i = next(calls)  # the warm-up runs first: keep the as-of moving forward
        row = pd.DataFrame({"card": [keys[i % len(keys)]], "ts": [(t_apply + pd.Timedelta(
            seconds=i)).isoformat()], "amount": [3.0], "cnp": [0]})
        res = events.apply(ws, proj, "tx", row, (t_apply + pd.Timedelta(seconds=i))
                           .to_pydatetime(), store=store)
        assert res.online == "updated", res.online
    out["apply1"] = timed(apply, cfg["applies"])
    conn.close()
    return out


def floor_readers(cfg: dict[str, Any], folder: Path) -> dict[str, Callable[[int], Any]]:
    """One row per entity with its 10 values, plain sqlite3: the least a read of 10
    features can cost. Returns the 1-entity and 100-entity readers."""
    rng = np.random.default_rng(cfg["seed"])
    conn = sqlite3.connect(folder / "floor.sqlite", isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    cols = ", ".join(f"f{i} REAL" for i in range(FEATURES))
    conn.execute(f"CREATE TABLE t (entity TEXT PRIMARY KEY, {cols})")
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO t VALUES (?{', ?' * FEATURES})",
                     ((f"c{i:06d}", *rng.random(FEATURES).tolist())
                      for i in range(cfg["entities"])))
    conn.execute("COMMIT")
    select = ", ".join(f"f{i}" for i in range(FEATURES))
    keys = [f"c{i:06d}" for i in np.random.default_rng(cfg["seed"] + 1).integers(
        0, cfg["entities"], cfg["reads"])]
    one = f"SELECT {select} FROM t WHERE entity = ?"
    many = f"SELECT entity, {select} FROM t WHERE entity IN ({', '.join('?' * 100)})"
    batches = [keys[(i * 100) % (len(keys) - 100):][:100] for i in range(cfg["batch_reads"])]
    return {"read1": lambda i: conn.execute(one, (keys[i],)).fetchone(),
            "read100": lambda i: conn.execute(many, batches[i]).fetchall()}


# ---------------------------------------------------------------------------- feast


def feast_worker(folder: str) -> None:
    """Inside Feast's interpreter: 10 float features per entity in its SQLite online
    store, then get_online_features for 1 and 100 entities."""
    from datetime import timedelta

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64
    from feast.value_type import ValueType

    d = Path(folder)
    cfg = json.loads((d / "config.json").read_text())
    n = cfg["entities"]
    rng = np.random.default_rng(cfg["seed"])
    names = [f"f{i}" for i in range(FEATURES)]
    frame = pd.DataFrame(rng.random((n, FEATURES)), columns=names)
    frame.insert(0, "entity", [f"c{i:06d}" for i in range(n)])
    frame["ts"] = pd.Timestamp("2024-03-08", tz="UTC")
    frame.to_parquet(d / "features.parquet")
    config = RepoConfig(project="online_bench", registry=str(d / "registry.db"),
                        provider="local", offline_store={"type": "file"},
                        online_store={"type": "sqlite", "path": str(d / "online.db")},
                        entity_key_serialization_version=3, repo_path=str(d))
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity"], value_type=ValueType.STRING)
    source = FileSource(path=str(d / "features.parquet"), timestamp_field="ts")
    view = FeatureView(name="fv", entities=[entity], ttl=timedelta(days=3650), source=source,
                       schema=[Field(name=c, dtype=Float64) for c in names])
    store.apply([entity, view])
    store.write_to_online_store("fv", frame)
    refs = [f"fv:{c}" for c in names]
    keys = [f"c{i:06d}" for i in np.random.default_rng(cfg["seed"] + 1).integers(
        0, n, cfg["feast_reads"])]
    got = store.get_online_features(features=refs, entity_rows=[{"entity": keys[0]}]).to_dict()
    assert got["f0"][0] is not None
    out = {"read1": timed(lambda i: store.get_online_features(
        features=refs, entity_rows=[{"entity": keys[i]}]).to_dict(), cfg["feast_reads"])}
    batches = [[{"entity": k} for k in keys[(i * 100) % (len(keys) - 100):][:100]]
               for i in range(cfg["feast_batch_reads"])]
    out["read100"] = timed(lambda i: store.get_online_features(
        features=refs, entity_rows=batches[i]).to_dict(), cfg["feast_batch_reads"])
    import feast

    out["version"] = feast.__version__
    (d / "stats.json").write_text(json.dumps(out))


def run_feast(cfg: dict[str, Any], python: str | None) -> dict[str, Any]:
    if python is None:
        try:
            import feast  # noqa: F401
            python = sys.executable
        except ImportError:
            return {"skipped": (
                "Feast is not importable here (it needs pandas < 3, tuesday uses pandas 3): "
                "python -m venv /tmp/feastenv && /tmp/feastenv/bin/pip install feast, then "
                "pass --feast-python /tmp/feastenv/bin/python")}
    with tempfile.TemporaryDirectory() as tmp:
        conf = {**cfg, "feast_reads": min(cfg["reads"], 3000),
                "feast_batch_reads": min(cfg["batch_reads"], 300)}
        (Path(tmp) / "config.json").write_text(json.dumps(conf))
        proc = subprocess.run([python, __file__, "--feast-worker", tmp], capture_output=True,
                              text=True, timeout=1800)
        if proc.returncode != 0:
            return {"skipped": f"Feast failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}"}
        return dict(json.loads((Path(tmp) / "stats.json").read_text()))


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick run")
    parser.add_argument("--feast-python", default=os.environ.get("TUESDAY_BENCH_FEAST_PYTHON"),
                        help="a Python interpreter with feast installed")
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="leave the garbage collector as Python starts it")
    parser.add_argument("--feast-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feast_worker:
        feast_worker(args.feast_worker)
        return
    cfg = {**CONFIG, **(SMALL if args.small else {})}
    if args.no_gc_freeze:
        cfg["gc_freeze"] = False
    with tempfile.TemporaryDirectory() as tmp:
        tuesday = run_tuesday(cfg, Path(tmp), floor_readers(cfg, Path(tmp)))
        results: dict[str, Any] = {
            "config": cfg, "tuesday": tuesday,
            "floor": {"read1": tuesday.pop("floor_read1"),
                      "read100": tuesday.pop("floor_read100")}}
    results["feast"] = {"skipped": "--no-feast"} if args.no_feast else \
        run_feast(cfg, args.feast_python)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        report(results)


def report(r: dict[str, Any]) -> None:
    t, f, fe = r["tuesday"], r["floor"], r["feast"]
    cfg = r["config"]
    print(f"{t['entities']:,} entities, {t['events']:,} events over {cfg['days']} days; "
          f"{t['events_per_record']:.1f} events and {t['record_bytes']:,.0f} bytes per "
          f"record; rebuild from the table {t['rebuild_seconds']:.2f} s\n")
    print("| step | p50 us | p99 us | p99 / floor | CPU p50 us | CPU p99 us | "
          "CPU p99 / floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def row(name: str, m: dict[str, float], floor: dict[str, float] | None) -> None:
        ratio = f"{m['p99'] / floor['p99']:.2f}" if floor else ""
        cpu = f"{m['cpu_p99'] / floor['cpu_p99']:.2f}" if floor and "cpu_p99" in floor \
            and "cpu_p99" in m else ""
        print(f"| {name} | {m['p50']:,.1f} | {m['p99']:,.1f} | {ratio} | "
              f"{m.get('cpu_p50', float('nan')):,.1f} | {m.get('cpu_p99', float('nan')):,.1f} "
              f"| {cpu} |")

    row("floor: sqlite3 point query, 1 row of 10 values", f["read1"], f["read1"])
    row("tuesday: blob point query alone", t["blob"], f["read1"])
    row("tuesday: read 1 entity, 10 features at request time", t["read1"], f["read1"])
    if "skipped" not in fe:
        row(f"feast {fe['version']}: get_online_features, 1 entity", fe["read1"], f["read1"])
    row("floor: sqlite3 IN (100 keys)", f["read100"], f["read100"])
    row("tuesday: read 100 entities", t["read100"], f["read100"])
    if "skipped" not in fe:
        row("feast: get_online_features, 100 entities", fe["read100"], f["read100"])
    row("tuesday: update, 1 event (merge into its record)", t["update1"], None)
    row("tuesday: apply, 1 event (validate, Delta append, update)", t["apply1"], None)
    if "skipped" in fe:
        print(f"\nfeast: skipped: {fe['skipped']}")
    goal = t["read1"]["p99"] / f["read1"]["p99"]
    cpu = t["read1"]["cpu_p99"] / f["read1"]["cpu_p99"]
    print(f"\none-entity read p99 = {goal:.2f} x the plain sqlite3 query in wall time, "
          f"{cpu:.2f} x in CPU time (goal: 2x); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")


if __name__ == "__main__":
    main()
