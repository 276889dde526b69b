"""The cost of the checks across rows: validating till lines with and without them.

One seeded batch of CONFIG["rows"] till lines (receipt, line, time, item, quantity,
price, refund reference) as text, as a CSV gives, with receipts posted twice, voids and
refunds. The same contract is validated twice: its column checks alone (types, ranges,
nullability), and the same plus the store example's checks across rows (duplicate
receipts, offsetting pairs, references, an SQL condition). Both run in memory, without a
table (``existing`` is None), so the ratio is the cost the checks add to the per-row
validation; the script asserts that the checks find the injected counts.

Run: ``python bench/validation_rows.py`` (``--rows 100000`` for a quick run).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from tuesday.data.contracts import validate
from tuesday.examples.store.project import till_lines

CONFIG: dict[str, Any] = {"rows": 1_000_000, "seed": 20240611, "repeats": 5,
                          "retried": 500, "voids": 800, "refunds": 300}


def make_batch(rows: int, seed: int) -> tuple[pa.Table, dict[str, int]]:
    rng = np.random.default_rng(seed)
    n_receipts = rows // 3
    sizes = rng.integers(1, 6, n_receipts)
    sizes = sizes[np.cumsum(sizes) <= rows - 4 * CONFIG["voids"]]
    receipt = np.repeat(np.arange(len(sizes)), sizes)
    line = np.concatenate([np.arange(1, s + 1) for s in sizes])
    start = np.datetime64("2024-01-01T08:00:00", "s")
    seconds = np.repeat(np.sort(rng.integers(0, 365 * 86400, len(sizes))), sizes)
    item = rng.integers(0, 300, len(receipt))
    qty = rng.integers(1, 4, len(receipt))
    ref = np.full(len(receipt), -1)
    # voids: the last line of a receipt reversed at its end (+q then -q)
    ends = np.cumsum(sizes) - 1
    voided = rng.choice(ends, CONFIG["voids"], replace=False)
    refunds = rng.choice(np.flatnonzero(line == 1)[: len(sizes) // 2], CONFIG["refunds"],
                         replace=False)
    rows_r = [receipt, line, seconds, item, qty, ref]
    extra = [[], [], [], [], [], []]
    for i in voided:
        for col, v in zip(extra, (receipt[i], line[i] + 1, seconds[i], item[i], -qty[i], -1),
                          strict=True):
            col.append(v)
    for k, i in enumerate(refunds):
        for col, v in zip(extra, (len(sizes) + k, 1, seconds[i] + 86400 * 3, item[i], -qty[i],
                                  receipt[i]), strict=True):
            col.append(v)
    cols = [np.concatenate([a, np.asarray(e, dtype=np.int64)]) for a, e in
            zip(rows_r, extra, strict=True)]
    # receipts posted twice: whole blocks appended again
    again = rng.choice(len(sizes), CONFIG["retried"], replace=False)
    order = np.lexsort((cols[1], cols[0]))
    cols = [c[order] for c in cols]
    take = np.flatnonzero(np.isin(cols[0], again))
    cols = [np.concatenate([c, c[take]]) for c in cols]
    ts = (start + cols[2].astype("timedelta64[s]")).astype(str)
    table = pa.table({
        "receipt": pa.array([f"R{r:07d}" for r in cols[0]]),
        "line": pa.array(cols[1].astype(str)), "ts": pa.array(ts),
        "item": pa.array([f"A{i:03d}" for i in cols[3]]),
        "qty": pa.array(cols[4].astype(str)), "price": pa.array(["2.5"] * len(ts)),
        "ref_receipt": pa.array([f"R{r:07d}" if r >= 0 else None for r in cols[5]])})
    return table, {"retried_rows": len(take), "voids": CONFIG["voids"],
                   "refunds": CONFIG["refunds"]}


def timed(fn: Any, repeats: int) -> tuple[float, Any]:
    """The best CPU time of ``repeats`` runs (wall time is noise on a shared machine)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=CONFIG["rows"])
    args = ap.parse_args()
    batch, want = make_batch(args.rows, CONFIG["seed"])
    plain = replace(till_lines.contract, checks=())
    full = till_lines.contract
    t_plain, _ = timed(lambda: validate(batch, plain, time="ts"), CONFIG["repeats"])
    t_full, v = timed(lambda: validate(batch, full, time="ts"), CONFIG["repeats"])
    r = v.report
    assert r.check("retried_receipt").rows == want["retried_rows"], r.check("retried_receipt")
    assert r.check("void").groups == want["voids"], r.check("void")
    assert r.check("refund").rows == want["refunds"], r.check("refund")
    n = batch.num_rows
    print(f"rows: {n:,}  CPU seconds, best of {CONFIG['repeats']}: column checks only "
          f"{t_plain:.2f} s ({t_plain / n * 1e6:.2f} us/row), with the checks across rows "
          f"{t_full:.2f} s ({t_full / n * 1e6:.2f} us/row); ratio {t_full / t_plain:.2f}x")


if __name__ == "__main__":
    main()
