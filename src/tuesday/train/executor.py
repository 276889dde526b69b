"""Run per-group work (one fold, one series, one partition) in process or on a pool.

The work is a pure, top-level function taking one picklable item and returning a
result, so every executor gives identical results; only where it runs changes.

Example:
    >>> run(abs, [-1, 2, -3], executor="local")
    [1, 2, 3]
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tuesday.errors import TuesdayError

T = TypeVar("T")
R = TypeVar("R")
EXECUTORS = ("local", "process")


def run(fn: Callable[[T], R], items: Sequence[T], *, executor: str = "local",
        workers: int | None = None,
        on_done: Callable[[int, int], None] | None = None) -> list[R]:
    """Apply ``fn`` to every item, in order.

    Args:
        fn: A module-level function (so a worker process can import it).
        items: Its inputs.
        executor: ``local`` (this process) or ``process`` (a pool of fresh processes:
            started with ``spawn``, never ``fork``, because a process forked after
            LightGBM started its thread pool hangs).
        workers: Pool size for ``process`` (default: the number of CPUs).
        on_done: Called with (items done, items) as results come in, in order.
    """
    if executor not in EXECUTORS:
        raise TuesdayError(f"Executor {executor!r} is unknown; expected one of "
                           f"{', '.join(EXECUTORS)}.", fix="Use --executor local or process.")
    done = on_done or (lambda _k, _n: None)
    if executor == "local" or len(items) <= 1:
        out = []
        for item in items:
            out.append(fn(item))
            done(len(out), len(items))
        return out
    try:
        pickle.dumps((fn, items[0]))
    except Exception as exc:
        raise TuesdayError(
            f"The work cannot be sent to another process: {type(exc).__name__}: {exc}.",
            fix="Define functions used by the model (rule baselines, user metrics) at the "
                "top level of a module, or use --executor local.") from exc
    n = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n, len(items)), mp_context=ctx) as pool:
        results = []
        for result in pool.map(fn, items):
            results.append(result)
            done(len(results), len(items))
        return results


def default_executor() -> str:
    return os.environ.get("TUESDAY_EXECUTOR", "local")


def _identity(x: Any) -> Any:  # used by tests of the pool
    return x
