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
        workers: int | None = None) -> list[R]:
    """Apply ``fn`` to every item, in order.

    Args:
        fn: A module-level function (so a worker process can import it).
        items: Its inputs.
        executor: ``local`` (this process) or ``process`` (a pool of fresh processes:
            started with ``spawn``, never ``fork``, because a process forked after
            LightGBM started its thread pool hangs).
        workers: Pool size for ``process`` (default: the number of CPUs).
    """
    if executor not in EXECUTORS:
        raise TuesdayError(f"Executor {executor!r} is unknown; expected one of "
                           f"{', '.join(EXECUTORS)}.", fix="Use --executor local or process.")
    if executor == "local" or len(items) <= 1:
        return [fn(item) for item in items]
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
        return list(pool.map(fn, items))


def default_executor() -> str:
    return os.environ.get("TUESDAY_EXECUTOR", "local")


def _identity(x: Any) -> Any:  # used by tests of the pool
    return x
