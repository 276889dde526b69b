"""The prediction log under writers in several processes at once (two servers, or a
server and a batch scoring run): every row of every flush is in the table once.

On S3 there is no atomic rename: the writers' commits are kept apart by conditional
puts (see ``tuesday.storage.Storage.options``); the conformance suite runs this test
there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from deltalake import DeltaTable

from tuesday.data.predictions import PREDICTIONS, read_log
from tuesday.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[2]
WRITERS, FLUSHES, ROWS = 2, 15, 4
WRITER = """
import sys
from datetime import datetime
from tuesday.serve.prediction_log import PredictionLog
from tuesday.workspace import open_workspace
log = PredictionLog(open_workspace(sys.argv[1]))
name = sys.argv[2]
for f in range(int(sys.argv[3])):
    log.add([(f"{name}-{f}-{i}", "m", 1, "e", datetime(2016, 7, 3), datetime(2016, 7, 1),
              1.0, "{}", "{}", "primary", 1.0, None, None) for i in range(int(sys.argv[4]))])
    assert log.flush() == int(sys.argv[4])
log.close()
"""


def test_writers_in_several_processes_append_every_row_once(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(ws.root), f"w{n}",
                               str(FLUSHES), str(ROWS)], env=env, stderr=subprocess.PIPE,
                              text=True) for n in range(WRITERS)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read() if p.stderr else ""
    ids = read_log(ws, "m")["request_id"]
    assert ids.is_unique
    assert sorted(ids) == sorted(f"w{n}-{f}-{i}" for n in range(WRITERS)
                                 for f in range(FLUSHES) for i in range(ROWS))
    dt = DeltaTable(ws.table_uri(PREDICTIONS), storage_options=ws.storage_options)
    assert dt.version() + 1 == WRITERS * FLUSHES  # one commit per flush, none lost
