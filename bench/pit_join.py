"""Point-in-time training set: as-of join of label rows to feature rows, engine by engine.

For each label row (entity, origin) every engine returns the feature values of the
entity's latest feature row at or before the origin, in label order, nulls where the
entity has no row yet. Engines, side by side in one process on the same data:

    tuesday   tuesday.asof.asof_join over Arrow tables
    duckdb    ASOF LEFT JOIN written by hand over the same Arrow tables
    polars    DataFrame.join_asof(by=entity, strategy="backward")
    pandas    pandas.merge_asof(by=entity)
    feast     FeatureStore.get_historical_features (file offline store), in its own
              virtualenv (Feast needs pandas < 3), at a smaller size: see FEAST_SIZE

Each step starts from its engine's native in-memory frames and includes whatever that
engine needs to produce the answer in label order: a row number, sorting when the input
is not already sorted by time, sorting the result back. Times are the best and median of
``repeats`` rounds (engines interleaved); memory is the peak resident set size during the
step above the RSS just before it (sampled every 2 ms). Every engine's rows are compared
value for value with tuesday's, and the label rows it dropped are counted.

    python bench/pit_join.py                         # 10k entities, 5M x 10, 1M labels
    python bench/pit_join.py --order shuffled --key str
    python bench/pit_join.py --small                 # a quick run
    python bench/pit_join.py --feast-python /tmp/feastenv/bin/python

Feast is killed if its resident memory passes half of the memory available at start.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CONFIG: dict[str, Any] = {
    "entities": 10_000,
    "feature_rows": 5_000_000,
    "label_rows": 1_000_000,
    "columns": 10,
    "early_labels": 0.01,  # share of label rows before the first feature row of their entity
    "null_values": 0.001,  # share of feature values that are null
    "years": 3,
    "seed": 0,
    "repeats": 3,
    "order": "time",  # feature rows as an append-only table writes them; or "shuffled"
    "key": "int",  # entity ids as int64, or "str"
}
SMALL = {"entities": 2_000, "feature_rows": 200_000, "label_rows": 40_000, "repeats": 2}
FEAST_SIZE = {"feature_rows": 1_000_000, "label_rows": 100_000}

START = np.datetime64("2021-01-01T00:00:00", "us")


# ----------------------------------------------------------------------------- data


def make_data(cfg: dict[str, Any]) -> tuple[pa.Table, pa.Table]:
    """Feature rows (entity, ts, f0..fN) and label rows (entity, origin, y), seeded.

    (entity, ts) is unique, so the as-of match of every label row is one well-defined row
    and engines cannot legitimately differ. Label rows come in random order.
    """
    rng = np.random.default_rng(cfg["seed"])
    n, m, e = cfg["feature_rows"], cfg["label_rows"], cfg["entities"]
    span = int(cfg["years"] * 365 * 86_400 * 1_000_000)
    ent = rng.integers(0, e, n)
    ts = rng.integers(0, span, n)
    comb = ent * span + ts
    _, first = np.unique(comb, return_index=True)  # drop the rare repeated (entity, ts)
    keep = np.sort(first)
    ent, ts = ent[keep], ts[keep]
    n = len(ent)
    order = np.argsort(ts, kind="stable") if cfg["order"] == "time" else rng.permutation(n)
    ent, ts = ent[order], ts[order]
    cols: dict[str, Any] = {}
    for i in range(cfg["columns"]):
        values = rng.normal(size=n)
        cols[f"f{i}"] = pa.array(values, mask=rng.random(n) < cfg["null_values"])
    first_ts = np.full(e, np.iinfo(np.int64).max)
    np.minimum.at(first_ts, ent, ts)
    lent = rng.integers(0, e, m)
    lts = rng.integers(span // 36, span, m)
    early = rng.random(m) < cfg["early_labels"]
    lts[early] = first_ts[lent[early]] - rng.integers(1, 30 * 86_400 * 1_000_000, early.sum())
    features = pa.table({"entity": _keys(ent, cfg), "ts": (START + ts), **cols})
    labels = pa.table({"entity": _keys(lent, cfg), "origin": (START + lts),
                       "y": rng.normal(size=m)})
    return features, labels


def _keys(ids: np.ndarray, cfg: dict[str, Any]) -> pa.Array:
    if cfg["key"] == "int":
        return pa.array(ids)
    names = np.array([f"ent-{i:06d}" for i in range(cfg["entities"])], dtype=object)
    return pa.array(names[ids], pa.string())


# -------------------------------------------------------------------------- engines


def feature_names(features: pa.Table) -> list[str]:
    return [c for c in features.column_names if c.startswith("f")]


def run_tuesday(threads: int | None) -> Callable[[pa.Table, pa.Table], Any]:
    from tuesday.data.asof import asof_join

    def run(features: pa.Table, labels: pa.Table) -> Any:
        return asof_join(labels, features, "entity", "origin", "ts", feature_names(features),
                         threads=threads)
    return run


def run_duckdb(features: pa.Table, labels: pa.Table) -> Any:
    import duckdb

    cols = ", ".join(f"f.{c}" for c in feature_names(features))
    con = duckdb.connect()
    try:
        con.register("f", features)
        con.register("l", labels.append_column("_row", pa.array(np.arange(labels.num_rows))))
        return con.sql(
            f"SELECT l._row, l.entity, l.origin, l.y, {cols} FROM l ASOF LEFT JOIN f "
            "ON l.entity = f.entity AND l.origin >= f.ts ORDER BY l._row").to_arrow_table()
    finally:
        con.close()


def run_polars(features: Any, labels: Any) -> Any:
    lab = labels.with_row_index("_row").sort("origin")
    if not features["ts"].is_sorted():
        features = features.sort("ts")
    out = lab.join_asof(features, left_on="origin", right_on="ts", by="entity",
                        strategy="backward", check_sortedness=False)
    return out.sort("_row")


def run_pandas(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    lab = labels.assign(_row=np.arange(len(labels))).sort_values("origin", kind="stable")
    if not features["ts"].is_monotonic_increasing:
        features = features.sort_values("ts", kind="stable")
    out = pd.merge_asof(lab, features, left_on="origin", right_on="ts", by="entity",
                        direction="backward")
    return out.sort_values("_row").reset_index(drop=True)


def result_rows(result: Any, names: list[str], n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(label row numbers, values as float64 with NaN for null) of any engine's result."""
    if not isinstance(result, pd.DataFrame):
        result = result.to_pandas() if hasattr(result, "to_pandas") else pd.DataFrame(result)
    rows = (result["_row"].to_numpy(dtype=np.int64) if "_row" in result.columns
            else np.arange(len(result)))
    values = np.column_stack([result[c].to_numpy(dtype=np.float64, na_value=np.nan)
                              for c in names]) if len(result) else np.zeros((0, len(names)))
    assert len(rows) <= n_labels
    return rows, values


# ------------------------------------------------------------------------- measuring


class PeakRSS:
    """Peak resident set size above the value at start, sampled from /proc every 2 ms."""

    def __init__(self) -> None:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _release() -> None:
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    elapsed, _, extra, result = measure_cpu(fn)
    return elapsed, extra, result


def measure_cpu(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """Wall seconds, CPU seconds of the process (all threads), peak extra MB, result."""
    _release()
    with PeakRSS() as mem:
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return elapsed, cpu, mem.extra_mb, result


# ----------------------------------------------------------------------------- feast


def feast_worker(folder: str) -> None:
    """Run inside Feast's own interpreter: features.parquet + labels.parquet -> result."""
    from datetime import timedelta

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64
    from feast.value_type import ValueType

    d = Path(folder)
    names = [c for c in pq.read_schema(d / "features.parquet").names if c.startswith("f")]
    config = RepoConfig(project="pit_bench", registry=str(d / "registry.db"), provider="local",
                        offline_store={"type": "file"},
                        online_store={"type": "sqlite", "path": str(d / "online.db")},
                        entity_key_serialization_version=3, repo_path=str(d))
    store = FeatureStore(config=config)
    entity = Entity(name="entity", join_keys=["entity"], value_type=ValueType.INT64)
    source = FileSource(path=str(d / "features.parquet"), timestamp_field="ts")
    view = FeatureView(name="fv", entities=[entity], ttl=timedelta(0), source=source,
                       schema=[Field(name=c, dtype=Float64) for c in names])
    store.apply([entity, view])
    labels = pd.read_parquet(d / "labels.parquet")
    labels["_row"] = np.arange(len(labels))
    labels = labels.rename(columns={"origin": "event_timestamp"})
    _release()
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = store.get_historical_features(
            entity_df=labels, features=[f"fv:{c}" for c in names]).to_df()
        elapsed = time.perf_counter() - t0
    out[["_row", *names]].to_parquet(d / "result.parquet")
    (d / "stats.json").write_text(json.dumps({"seconds": elapsed, "extra_mb": mem.extra_mb}))


def _run_guarded(cmd: list[str], timeout: float = 3600.0) -> tuple[int, float]:
    """Run a command, killing it if its RSS passes half the memory available at start."""
    with open("/proc/meminfo") as f:
        avail = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvail"))
    limit = avail // 2
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    t0 = time.monotonic()
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            rss = 0
        peak = max(peak, rss)
        if rss > limit or time.monotonic() - t0 > timeout:
            proc.kill()
            proc.wait()
            return -9, peak / 2**20
        time.sleep(0.2)
    if proc.returncode != 0 and proc.stderr is not None:
        print(proc.stderr.read().decode()[-2000:], file=sys.stderr)
    return proc.returncode, peak / 2**20


def run_feast(cfg: dict[str, Any], python: str | None) -> dict[str, Any]:
    """Feast at FEAST_SIZE in its own interpreter, checked against tuesday at that size."""
    if python is None:
        try:
            import feast  # noqa: F401
            python = sys.executable
        except ImportError:
            return {"skipped": (
                "Feast is not importable here (it needs pandas < 3, tuesday uses pandas 3): "
                "python -m venv /tmp/feastenv && /tmp/feastenv/bin/pip install feast, then "
                "pass --feast-python /tmp/feastenv/bin/python")}
    features, labels = make_data({**cfg, **FEAST_SIZE, "key": "int"})
    from tuesday.data.asof import asof_join

    names = feature_names(features)
    elapsed_t, extra_t, ours = measure(
        lambda: asof_join(labels, features, "entity", "origin", "ts", names))
    # UTC timestamps: with naive ones Feast calls a Python function on every merged row
    utc = pa.timestamp("us", tz="UTC")
    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(features.set_column(1, "ts", features["ts"].cast(utc)),
                       Path(tmp) / "features.parquet")
        pq.write_table(labels.set_column(1, "origin", labels["origin"].cast(utc)),
                       Path(tmp) / "labels.parquet")
        code, peak_mb = _run_guarded([python, __file__, "--feast-worker", tmp])
        if code != 0:
            why = (f"stopped at {peak_mb:,.0f} MB resident, over the memory guard"
                   if code == -9 else f"exit code {code}")
            return {"skipped": f"Feast did not finish at {FEAST_SIZE}: {why}"}
        stats = json.loads((Path(tmp) / "stats.json").read_text())
        result = pd.read_parquet(Path(tmp) / "result.parquet")
    rows, values = result_rows(result, names, labels.num_rows)
    order = np.argsort(rows, kind="stable")
    rows, values = rows[order], values[order]
    _, ref = result_rows(ours, names, labels.num_rows)
    same = bool(np.array_equal(values, ref[rows], equal_nan=True))
    return {"size": f"{features.num_rows:,} feature rows x {labels.num_rows:,} labels",
            "seconds": stats["seconds"], "extra_mb": stats["extra_mb"],
            "dropped": labels.num_rows - len(np.unique(rows)), "identical": same,
            "tuesday_seconds": elapsed_t, "tuesday_extra_mb": extra_t}


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick run at a small size")
    parser.add_argument("--order", choices=["time", "shuffled"], default=None)
    parser.add_argument("--key", choices=["int", "str"], default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--feast-python", default=os.environ.get("TUESDAY_BENCH_FEAST_PYTHON"),
                        help="interpreter of a virtualenv with Feast installed")
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--feast-only", action="store_true", help="run only the Feast part")
    parser.add_argument("--feast-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feast_worker:
        feast_worker(args.feast_worker)
        return
    cfg = dict(CONFIG, **(SMALL if args.small else {}))
    for k in ("order", "key", "repeats"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)

    if not args.feast_only:
        run_engines(cfg)
    if not args.no_feast:
        report_feast(run_feast(cfg, args.feast_python))


def run_engines(cfg: dict[str, Any]) -> None:
    import duckdb
    import polars as pl

    features, labels = make_data(cfg)
    names = feature_names(features)
    in_mb = (features.nbytes + labels.nbytes) / 2**20
    print(f"config: {json.dumps(cfg)}")
    print(f"inputs: {features.num_rows:,} feature rows x {len(names)} columns, "
          f"{labels.num_rows:,} label rows, {in_mb:,.0f} MB in Arrow; {os.cpu_count()} CPUs; "
          f"duckdb {duckdb.__version__}, polars {pl.__version__}, pandas {pd.__version__}, "
          f"pyarrow {pa.__version__}, numpy {np.__version__}")
    native = {
        "arrow": (features, labels),
        "polars": (pl.from_arrow(features), pl.from_arrow(labels)),
        "pandas": (features.to_pandas(), labels.to_pandas()),
    }
    engines: dict[str, tuple[str, Callable[[Any, Any], Any]]] = {
        "tuesday asof_join": ("arrow", run_tuesday(None)),
        "tuesday asof_join, 1 thread": ("arrow", run_tuesday(1)),
        "duckdb ASOF JOIN (Arrow)": ("arrow", run_duckdb),
        "polars join_asof": ("polars", run_polars),
        "pandas merge_asof": ("pandas", run_pandas),
    }
    times: dict[str, list[float]] = {k: [] for k in engines}
    cpus: dict[str, list[float]] = {k: [] for k in engines}
    mems: dict[str, list[float]] = {k: [] for k in engines}
    checks: dict[str, tuple[int, bool]] = {}
    reference: np.ndarray | None = None
    load0 = _load()
    for _ in range(cfg["repeats"]):
        for name, (kind, fn) in engines.items():
            f, lab = native[kind]
            elapsed, cpu, extra, result = measure_cpu(lambda fn=fn, f=f, lab=lab: fn(f, lab))
            times[name].append(elapsed)
            cpus[name].append(cpu)
            mems[name].append(extra)
            if name not in checks:
                rows, values = result_rows(result, names, labels.num_rows)
                if reference is None:
                    reference = values
                dropped = labels.num_rows - len(np.unique(rows))
                same = bool(np.array_equal(values, reference[rows], equal_nan=True))
                checks[name] = (dropped, same)
            del result
    assert reference is not None
    no_match = int(np.isnan(reference).all(axis=1).sum())
    best = min(min(v) for v in times.values())
    print(f"\nlabel rows with no feature row at their origin (kept, with nulls): {no_match:,}")
    best_cpu = min(min(v) for v in cpus.values())
    print(f"load average before/after: {load0} / {_load()}")
    print("\n| engine | best s | median s | x fastest | CPU s | x least CPU | peak extra MB "
          "| dropped labels | identical rows |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in engines:
        dropped, same = checks[name]
        print(f"| {name} | {min(times[name]):.3f} | {statistics.median(times[name]):.3f} | "
              f"{min(times[name]) / best:.2f} | {min(cpus[name]):.3f} | "
              f"{min(cpus[name]) / best_cpu:.2f} | {max(mems[name]):,.0f} | {dropped:,} | "
              f"{'yes' if same else 'NO'} |")


def report_feast(feast: dict[str, Any]) -> None:
    if "skipped" in feast:
        print(f"\nfeast: skipped: {feast['skipped']}")
        return
    print(f"\nfeast get_historical_features at {feast['size']} (at the full size it would "
          "first build the left join of every label row with every feature row of its "
          "entity, ~500M rows, then filter: far more than this machine's memory):")
    print("| engine | s | x tuesday | peak extra MB | dropped labels | identical rows |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(f"| tuesday asof_join | {feast['tuesday_seconds']:.3f} | 1.00 | "
          f"{feast['tuesday_extra_mb']:,.0f} | 0 | yes |")
    print(f"| feast (file offline store) | {feast['seconds']:.3f} | "
          f"{feast['seconds'] / feast['tuesday_seconds']:.0f} | {feast['extra_mb']:,.0f} | "
          f"{feast['dropped']:,} | {'yes' if feast['identical'] else 'NO'} (rows kept) |")

if __name__ == "__main__":
    main()
