"""The prediction log's spool: no answered row is lost when the server is killed, and
none is committed twice."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from deltalake import DeltaTable

from tests.conftest import RIDERSHIP
from tuesday.data.predictions import PREDICTIONS, read_log
from tuesday.serve import spool
from tuesday.serve.prediction_log import SPOOL, PredictionLog

DAY = "2016-07-03"


def _row(i: int, tag: str = "r") -> tuple:
    return (f"{tag}{i}", "ridership_14d", 1, "Clark_Lake", datetime(2016, 7, 3),
            datetime(2016, 7, 1, 0, 0, i % 60, i), float(i), "{}", '{"f": 1.5}',
            "primary", float(i) + 0.25, None, None)


def test_records_round_trip_and_a_torn_tail_ends_the_segment() -> None:
    rows = [_row(i) for i in range(3)]
    data = spool.encode(rows[:2]) + spool.encode(rows[2:])
    assert list(spool.decode(data)) == rows
    assert list(spool.decode(data[:-3])) == rows[:2]  # the last record torn
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    assert list(spool.decode(bytes(bad))) == rows[:2]  # its checksum fails


def test_flush_removes_the_spool_and_close_releases_it(ws_copy) -> None:
    log = PredictionLog(ws_copy)
    log.add([_row(i) for i in range(5)])
    folder = ws_copy.root / SPOOL
    assert [p.name.endswith(".seg") for p in folder.iterdir()].count(True) == 1
    log.flush()
    log.close()
    assert list(folder.iterdir()) == []
    assert sorted(read_log(ws_copy)["request_id"]) == sorted(f"r{i}" for i in range(5))


def _die_without_cleanup(log: PredictionLog) -> None:
    """What a killed process leaves: its files as they are, its lock released."""
    sp = log._spool
    assert sp is not None
    os.close(sp._fd)
    os.close(sp._lock_fd)
    log._spool = None


def test_a_dead_spool_is_committed_once_even_after_a_commit_it_did_not_delete(
        ws_copy) -> None:
    folder = ws_copy.root / SPOOL
    log = PredictionLog(ws_copy)
    log.add([_row(i, "a") for i in range(4)])
    (seg,) = folder.glob("*.seg")
    kept = seg.read_bytes()
    log.flush()  # committed, and its segment deleted ...
    seg.write_bytes(kept)  # ... as if the process died between the commit and the delete
    log.add([_row(i, "b") for i in range(3)])  # and answered more, never flushed
    _die_without_cleanup(log)

    alive = PredictionLog(ws_copy)
    alive.add([_row(0, "c")])  # a live process's spool is left alone
    assert PredictionLog(ws_copy).recover() == 3
    assert PredictionLog(ws_copy).recover() == 0
    ids = read_log(ws_copy)["request_id"]
    assert sorted(ids) == sorted([f"a{i}" for i in range(4)] + [f"b{i}" for i in range(3)])
    alive.close()
    assert sorted(read_log(ws_copy)["request_id"]) == sorted([*ids, "c0"])
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------ killed under load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(ws_root: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuesday.cli", "--project", str(RIDERSHIP), "--workspace",
         str(ws_root), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.stderr.read() if proc.stderr else "no server")
        time.sleep(0.05)


def _load(port: int, stop: threading.Event, acked: list[str]) -> None:
    """Predict requests on one connection until stopped or the server is gone; the
    request id of every 200 goes to ``acked``."""
    body = json.dumps({"station": "Clark_Lake", "date": DAY})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        try:
            conn.request("POST", "/v1/models/ridership_14d/predict", body,
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            return  # killed
        if resp.status == 200:
            acked.append(json.loads(data)["request_id"])


def test_server_killed_under_load_loses_no_answered_prediction(served_ws) -> None:
    rng = random.Random(7)
    acked: list[str] = []
    port = _free_port()
    for _ in range(5):
        proc = _start(served_ws.root, port)
        stop = threading.Event()
        threads = [threading.Thread(target=_load, args=(port, stop, acked))
                   for _ in range(4)]
        for t in threads:
            t.start()
        before = len(acked)
        deadline = time.monotonic() + 60
        want = before + rng.randint(50, 1500)  # a random moment under load
        while len(acked) < want and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert len(acked) > before
    proc = _start(served_ws.root, port)  # commits what the last one left
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    ids = read_log(served_ws, "ridership_14d")["request_id"]
    assert ids.is_unique
    missing = set(acked) - set(ids)
    assert not missing, f"{len(missing)} of {len(acked)} answered rows not in the log"
    assert list((served_ws.root / SPOOL).iterdir()) == []
    assert DeltaTable(served_ws.table_uri(PREDICTIONS),
                      storage_options=served_ws.storage_options).version() > 0


def test_sigterm_leaves_no_spool(served_ws) -> None:
    port = _free_port()
    proc = _start(served_ws.root, port)
    acked: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=_load, args=(port, stop, acked))
    t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(timeout=30)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert set(read_log(served_ws, "ridership_14d")["request_id"]) == set(acked)
    assert list((served_ws.root / SPOOL).iterdir()) == []


def test_pandas_and_numpy_values_are_spooled_as_plain_values() -> None:
    import numpy as np
    import pandas as pd

    from tuesday.serve.spool import decode, encode

    t = pd.Timestamp("2016-07-01 06:30")
    row = ("r1", "m", np.int64(2), "s1", t, t, np.float64(1.5), None, "{}", "primary",
           1.5, None, None)
    got = list(decode(encode([row])))
    assert got[0][4] == t.to_pydatetime() and got[0][2] == 2 and got[0][6] == 1.5


def test_a_spool_write_that_fails_refuses_the_request_and_keeps_whole_records(
        ws_copy, monkeypatch) -> None:
    import errno

    import pytest

    from tuesday.errors import Overloaded

    log = PredictionLog(ws_copy)
    assert log.add([_row(0)])
    sp = log._spool
    assert sp is not None
    segment = sp._path(sp.number)
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:  # a disk that fills mid-record
        if fd == sp._fd:
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(Overloaded) as caught:
        log.add([_row(1)])
    assert caught.value.status == 503 and caught.value.reason == "log_unavailable"
    assert "No space left on device" in caught.value.message
    monkeypatch.setattr(os, "write", real_write)
    assert list(spool.decode(segment.read_bytes())) == [_row(0)]  # the torn half is gone
    assert log.add([_row(2)])  # the disk has room again: answered and logged
    assert list(spool.decode(segment.read_bytes())) == [_row(0), _row(2)]
    log.flush()
    log.close()
    assert sorted(read_log(ws_copy)["request_id"]) == ["r0", "r2"]


def test_a_full_device_answers_503_not_500(ws_copy) -> None:
    """The real thing: the spool's file descriptor pointed at /dev/full."""
    import pytest

    from tuesday.errors import Overloaded

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    log = PredictionLog(ws_copy)
    assert log.add([_row(0)])
    sp = log._spool
    assert sp is not None
    os.dup2(os.open("/dev/full", os.O_WRONLY), sp._fd)
    with pytest.raises(Overloaded) as caught:
        log.add([_row(1)])
    assert caught.value.status == 503
    assert len(log) == 1  # the refused row is not kept as if it were logged
