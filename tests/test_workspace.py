"""Table locks on PostgreSQL metadata: a killed holder's lock is free for the next
command at once, a live holder's is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tuesday.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys, time
from tuesday.workspace import open_workspace
ws = open_workspace(sys.argv[1])
with ws.table_lock("rides") as held:
    print("held" if held else "not held", flush=True)
    time.sleep(600)
"""


def test_a_lock_of_a_killed_process_is_free_at_once_and_a_live_one_is_not(
        postgres_server, tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws", metadata=postgres_server.database())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws.root)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with ws.table_lock("rides", wait=False) as held:
            assert not held  # a live writer holds it
        with ws.table_lock("other", wait=False) as held:
            assert held  # one lock per table
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with ws.table_lock("rides", wait=False) as held:  # the next command, right after
        assert held
