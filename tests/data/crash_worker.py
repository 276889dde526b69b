"""A process that ingests files into a workspace, to be killed by the crash tests.

    python -m tests.data.crash_worker WORKSPACE FILE AS_OF [FILE AS_OF ...]

It prints ``ready`` once its imports are done, then one JSON line per completed ingest.
``wait=PATH`` as the first argument makes it wait, once ready, until PATH exists (to
start several workers at the same instant).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from tuesday.data import tables
from tuesday.project import Column, Contract, Entity, Source
from tuesday.workspace import open_workspace

RIDES = Source("rides", Contract((
    Column("id", "int", nullable=False),
    Column("station", "str", nullable=False),
    Column("day", "date", nullable=False),
    Column("rides", "int", min=0),
), unique=("id",)), time="day", entity=Entity("station"))


def write_rides(path: Path, ids: range, *, bad_every: int = 200) -> Path:
    """A CSV of rides; every ``bad_every``-th row has a negative count (quarantined)."""
    with open(path, "w") as fh:
        fh.write("id,station,day,rides\n")
        for i in ids:
            rides = -1 if bad_every and i % bad_every == 0 else i % 997
            fh.write(f"{i},s{i % 50},2024-01-{1 + i % 28:02d},{rides}\n")
    return path


def expected(ids: range, *, bad_every: int = 200) -> tuple[int, int]:
    """(accepted, quarantined) for a file written by ``write_rides`` on a fresh table."""
    bad = sum(1 for i in ids if bad_every and i % bad_every == 0)
    return len(ids) - bad, bad


def main(argv: list[str]) -> None:
    print("ready", flush=True)
    if argv and argv[0].startswith("wait="):
        go = Path(argv.pop(0)[5:])
        deadline = time.monotonic() + 120
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
    ws = open_workspace(argv[0])
    pairs = argv[1:]
    for file, as_of in zip(pairs[::2], pairs[1::2], strict=True):
        res = tables.ingest_file(ws, RIDES, file, as_of=datetime.fromisoformat(as_of))
        print(json.dumps({"file": file, "ingest_id": res.ingest_id, "version": res.version,
                          "accepted": res.report.accepted,
                          "quarantined": res.report.quarantined,
                          "repeated": res.repeated}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
