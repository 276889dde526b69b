"""Processes that race each other on the registry, for tests/release/test_registry_races.py.

``serve_jobs`` runs in a spawned process: it loads the ridership project once, then for
each job it is sent waits on a barrier shared with the other workers (so that all start
the same instant) and runs it on the workspace the job names: ``(root, "promote",
version)``, ``(root, "rollback", None)`` or ``(root, "deploy", version)`` (a 10 % canary).

``python -m tests.release.race_worker PAUSED GO CLI-ARGS...`` runs the CLI with the first
registry read of the request (the gates of a promotion, the production version a
rollback replaces) held open: once it is done, the process creates PAUSED and waits
until GO exists. A test lets another process change the registry in that window.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

MODEL = "ridership_14d"
T = datetime(2016, 7, 1)


def serve_jobs(project: str, name: str, jobs: Any, results: Any, barrier: Any) -> None:
    from tuesday.errors import Conflict, TuesdayError
    from tuesday.project import load_project
    from tuesday.release import registry
    from tuesday.workspace import open_workspace

    model = load_project(project).project.model(MODEL)
    results.put((name, "ready", None, "ok", None))
    while (job := jobs.get()) is not None:
        root, kind, arg = job
        ws = open_workspace(root)
        barrier.wait(timeout=120)
        try:
            if kind == "promote":
                out: Any = registry.promote(ws, model, arg, as_of=T, actor=name)["changed"]
            elif kind == "rollback":
                res = registry.rollback(ws, MODEL, as_of=T, actor=name)
                out = (res["replaced"], res["version"])
            else:
                out = registry.deploy(ws, MODEL, "canary", arg, percent=10, as_of=T,
                                      actor=name)["version"]
            results.put((name, kind, arg, "ok", out))
        except Conflict as exc:
            results.put((name, kind, arg, "conflict", str(exc)))
        except TuesdayError as exc:
            results.put((name, kind, arg, "error", f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # a crash of the registry itself: the test fails on it
            results.put((name, kind, arg, "crash", repr(exc)))


def _pause_after(fn: Any, paused: Path, go: Path) -> Any:
    done = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        done["n"] += 1
        if done["n"] == 1:
            paused.touch()
            deadline = time.monotonic() + 120
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        return out

    return wrapper


def main(argv: list[str]) -> None:
    from tuesday.cli import main as cli
    from tuesday.release import registry

    paused, go, args = Path(argv[0]), Path(argv[1]), argv[2:]
    if "promote" in args:
        registry.check_gates = _pause_after(registry.check_gates, paused, go)  # type: ignore[assignment]
    else:
        registry.production = _pause_after(registry.production, paused, go)  # type: ignore[assignment]
    sys.argv = ["tuesday", *args]
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
