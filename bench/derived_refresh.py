"""Derived sources: the cost of a refresh after one more day, incremental against full.

A seeded shop history of CONFIG["items"] items over CONFIG["days"] days (till lines and
a daily stock table, as Arrow) is ingested, and the store example's ``daily_units`` is
computed once in full. Then one more day of both inputs is ingested and the derived
table refreshed: only that day is computed again and replaced (``incremental``). The
same refresh done as a full recomputation (the query over every row, the table
rewritten) and the query alone over every row (DuckDB, no write: the floor of any full
recomputation) are timed beside it. CPU seconds, best of CONFIG["repeats"].

Run: ``python bench/derived_refresh.py`` (``--days 60`` for a quick run).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tuesday.data import derived, tables
from tuesday.examples.store.project import daily_units, stock, till_lines
from tuesday.project import Contract, Project
from tuesday.workspace import open_workspace

CONFIG: dict[str, Any] = {"items": 200, "days": 365, "lines_per_item_day": 4, "seed": 7,
                          "repeats": 3}
START = datetime(2024, 1, 1)


def day_frames(rng: np.random.Generator, day: int, items: int, per: int
               ) -> tuple[pa.Table, pa.Table]:
    d = START + timedelta(days=day)
    n = items * per
    item = np.repeat(np.arange(items), per)
    seconds = rng.integers(8 * 3600, 20 * 3600, n)
    ts = np.datetime64(d, "us") + seconds.astype("timedelta64[s]").astype("timedelta64[us]")
    names = pa.array([f"A{i:04d}" for i in range(items)])
    lines = pa.table({
        "receipt": pa.array([f"{day:04d}{k:06d}" for k in range(n)]),
        "line": pa.array(np.ones(n, np.int64)), "ts": pa.array(ts, pa.timestamp("us")),
        "item": names.take(pa.array(item)), "qty": pa.array(rng.integers(1, 4, n)),
        "price": pa.array(np.full(n, 2.5)), "ref_receipt": pa.nulls(n, pa.string())})
    snap = pa.table({"date": pa.array(np.full(items, np.datetime64(d, "us"))),
                     "item": names, "book_stock": pa.array(rng.integers(0, 50, items))})
    return lines, snap


def cpu(fn: Any) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=CONFIG["days"])
    args = ap.parse_args()
    items, per = CONFIG["items"], CONFIG["lines_per_item_day"]
    # plain contracts: this measures derivation, not the checks across rows
    till = replace(till_lines, contract=Contract(till_lines.contract.columns))
    snaps = replace(stock, contract=Contract(stock.contract.columns, unique=("item", "date")))
    # the example's query reads flag_refund, which plain till lines do not have
    units = replace(daily_units, derive=replace(daily_units.derive, sql=(
        daily_units.derive.sql or "").replace("FILTER (WHERE NOT t.flag_refund)", "")))
    project = Project("bench", sources=(till, snaps, units), models=())
    rng = np.random.default_rng(CONFIG["seed"])
    history = [day_frames(rng, d, items, per) for d in range(args.days)]
    extra = day_frames(rng, args.days, items, per)
    root = Path(tempfile.mkdtemp(prefix="tuesday-derived-bench-"))
    try:
        base = root / "base"
        ws = open_workspace(base)
        at = START + timedelta(days=args.days - 1, hours=23)
        tables.ingest_frame(ws, till, pa.concat_tables([h[0] for h in history]), as_of=at)
        tables.ingest_frame(ws, snaps, pa.concat_tables([h[1] for h in history]), as_of=at)
        derived.refresh(ws, project)
        lines_total = sum(h[0].num_rows for h in history)
        incremental, full = [], []
        for k in range(CONFIG["repeats"]):
            copy = root / f"run{k}"
            shutil.copytree(base, copy)
            w = open_workspace(copy)
            nxt = at + timedelta(days=1)
            tables.ingest_frame(w, till, extra[0], as_of=nxt)
            tables.ingest_frame(w, snaps, extra[1], as_of=nxt)
            incremental.append(cpu(lambda w=w: derived.refresh(w, project)))
            made = derived.lineage(w, "daily_units")
            assert made is not None and made["mode"] == "incremental" and made["days"] == 1
            inputs = {"till_lines": tables.read_table(w, till),
                      "stock": tables.read_table(w, snaps)}
            full.append(cpu(lambda i=inputs, w=w, nxt=nxt: derived._write(
                w, units, derived.validate(derived.compute(units, i), units.contract),
                None, {"till_lines": 0, "stock": 0}, nxt, "full")))
        floor = min(cpu(lambda: derived.compute(units, inputs)) for _ in range(3))
        inc, ful = min(incremental), min(full)
        print(f"history: {lines_total:,} till lines, {items * args.days:,} stock rows; one "
              f"more day ({extra[0].num_rows:,} lines). CPU seconds, best of "
              f"{CONFIG['repeats']}: incremental refresh {inc:.3f} s, full recomputation "
              f"and rewrite {ful:.3f} s ({ful / inc:.1f}x the incremental), the full query "
              f"alone {floor:.3f} s ({floor / inc:.1f}x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
