"""What crash safety costs an ingest: a generated file of N rides (0.5 % of them bad, so
the quarantine is written too) into a fresh workspace, then the same file again (a
retry, recognised and not appended), then opening the workspace (which reconciles every
table with its Delta log). Best of R rounds; prints wall seconds, the ingest's CPU
seconds (less sensitive to other jobs on the machine) and ratios.

    PYTHONPATH=src python bench/ingest_safety.py --rows 600000 --rounds 3

Run it with another checkout's ``src`` on PYTHONPATH to compare two versions of the code.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.data.crash_worker import RIDES, write_rides

from tuesday.data import tables
from tuesday.workspace import open_workspace

CONFIG = {"rows": 600_000, "rounds": 3, "as_of": datetime(2024, 2, 1)}


def one_round(folder: Path, path: Path) -> dict[str, float]:
    ws = open_workspace(folder)
    c0, t0 = time.process_time(), time.perf_counter()
    first = tables.ingest_file(ws, RIDES, path, as_of=CONFIG["as_of"])
    t1, c1 = time.perf_counter(), time.process_time()
    again = tables.ingest_file(ws, RIDES, path, as_of=CONFIG["as_of"])
    t2 = time.perf_counter()
    open_workspace(folder)
    t3 = time.perf_counter()
    assert first.report.accepted + first.report.quarantined == first.report.received
    return {"ingest": t1 - t0, "ingest cpu": c1 - c0, "retry": t2 - t1, "open": t3 - t2,
            "recognised": float(getattr(again, "repeated", False))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=CONFIG["rows"])
    ap.add_argument("--rounds", type=int, default=CONFIG["rounds"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_rides(Path(tmp) / "rides.csv", range(args.rows))
        runs = [one_round(Path(tmp) / f"ws{r}", path) for r in range(args.rounds)]
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    print(f"rows {args.rows:,}, best of {args.rounds}")
    print(f"  ingest            {best['ingest']:.3f} s, CPU {best['ingest cpu']:.3f} s "
          "(all threads)")
    print(f"  retry, same file  {best['retry']:.3f} s  ({best['retry'] / best['ingest']:.3f} x "
          f"the ingest; recognised as a retry: {'yes' if best['recognised'] else 'no'})")
    print(f"  open workspace    {best['open']:.3f} s  ({best['open'] / best['ingest']:.3f} x "
          "the ingest)")


if __name__ == "__main__":
    main()
