"""Soak: a server under steady load keeps its memory flat and its log's files bounded.

``TUESDAY_SOAK_MINUTES`` (default 30) sets the length; the figures over time are
printed (run with ``-s``)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from deltalake import DeltaTable

from tests.serve.test_spool import DAY, _free_port, _start
from tuesday.data.predictions import PREDICTIONS, read_log
from tuesday.data.upkeep import LOG_RETENTION_HOURS
from tuesday.serve.state import TIDY_SECONDS

RATE = 25.0  # requests per second
WARM_UP = 300.0  # seconds before RSS is expected flat


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _paced_load(port: int, stop: threading.Event, acked: list[str]) -> None:
    import http.client

    body = json.dumps({"station": "Clark_Lake", "date": DAY})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    due = time.monotonic()
    while not stop.is_set():
        conn.request("POST", "/v1/models/ridership_14d/predict", body,
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status == 200:
            acked.append(json.loads(data)["request_id"])
        due += 1 / RATE
        stop.wait(max(0.0, due - time.monotonic()))  # the pace, not a wait for a state


@pytest.mark.slow
def test_soak_rss_flat_and_files_bounded(served_ws) -> None:
    minutes = float(os.environ.get("TUESDAY_SOAK_MINUTES", "30"))
    port = _free_port()
    proc = _start(served_ws.root, port)
    stop = threading.Event()
    acked: list[str] = []
    load = threading.Thread(target=_paced_load, args=(port, stop, acked))
    load.start()
    t0 = time.monotonic()
    samples: list[tuple[float, float, int, int]] = []
    table = served_ws.table_path(PREDICTIONS)
    try:
        while (t := time.monotonic() - t0) < minutes * 60:
            live = len(DeltaTable(str(table)).file_uris()) if table.exists() else 0
            disk = len(list(table.glob("*.parquet")))
            samples.append((t, _rss_mb(proc.pid), live, disk))
            print(f"{t:7.0f} s  rss {samples[-1][1]:7.1f} MB  live files {live:5d}  "
                  f"on disk {disk:5d}  answered {len(acked)}", flush=True)
            stop.wait(30)
    finally:
        stop.set()
        load.join(timeout=30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert len(read_log(served_ws, "ridership_14d")) == len(acked)
    flushes = TIDY_SECONDS / 0.5  # at most one file per flush between compactions
    assert max(s[2] for s in samples) <= flushes + 16
    kept = (LOG_RETENTION_HOURS * 3600 + TIDY_SECONDS) / 0.5
    assert max(s[3] for s in samples) <= kept + flushes + 16
    warm = [(t, rss) for t, rss, _, _ in samples if t >= WARM_UP]
    if len(warm) >= 4:
        slope = np.polyfit([t for t, _ in warm], [r for _, r in warm], 1)[0]  # MB/s
        assert slope * 600 < 1.0, f"RSS grows {slope * 600:.2f} MB per 10 minutes"
