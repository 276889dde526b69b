"""What a long command shows while it runs: a progress bar with counts and time left in a
terminal (rich.progress), plain lines such as ``fold 3/12 done, 41 s left`` on stderr
when there is no terminal (a cron log), and nothing on stdout, so ``--json`` stays clean.

The stages report through a plain callable, ``progress(message, done=None, total=None)``:
a message alone names the step now running; with ``done`` and ``total`` it counts the
items of one kind of work (``"fold"``, ``"day"``), starting from ``done=0``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console


class Reporter:
    """The ``progress`` callable a command hands to a stage (see the module docstring)."""

    def __init__(self, console: Console, bar: Any = None) -> None:
        self.console = console
        self.bar = bar
        self._step_task: Any = None
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._shown: dict[str, int] = {}
        self._t0 = time.monotonic()

    def __call__(self, message: str, done: int | None = None,
                 total: int | None = None) -> None:
        if done is None or total is None:
            self._step(message)
        else:
            self._count(message, done, total)

    def _step(self, message: str) -> None:
        if self.bar is None:
            self.console.print(f"{message} ({time.monotonic() - self._t0:.0f} s)",
                               highlight=False, markup=False)
        elif self._step_task is None:
            self._step_task = self.bar.add_task(message, total=None, left="")
        else:
            self.bar.update(self._step_task, description=message)

    def _count(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        start = self._started.setdefault(what, now)
        if self.bar is not None:
            task = self._tasks.get(what)
            if task is None:
                task = self._tasks[what] = self.bar.add_task(what, total=total, left="left")
            self.bar.update(task, completed=done, total=total)
            return
        tenth = 10 * done // max(total, 1)
        if done == 0 or (self._shown.get(what) == tenth and done < total):
            return  # about ten lines per kind of work
        self._shown[what] = tenth
        line = f"{what} {done}/{total} done"
        if done < total:
            left = (now - start) / done * (total - done)
            line += f", {left:.0f} s left"
        else:
            line += f" in {now - start:.0f} s"
        self.console.print(line, highlight=False, markup=False)


@contextmanager
def progress(console: Console) -> Iterator[Reporter]:
    """A :class:`Reporter` on ``console``: a live bar in a terminal, plain lines elsewhere.

    Example:
        >>> with progress(Console(stderr=True)) as report:  # doctest: +SKIP
        ...     report("backtesting")
        ...     for k in range(13):
        ...         report("fold", k, 12)
    """
    if not console.is_terminal or console.quiet:
        yield Reporter(console)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Counted(MofNCompleteColumn):
        """done/total for counted work; nothing for a step (no "0/?")."""

        def render(self, task: Any) -> Any:
            return super().render(task) if task.total is not None else ""

    class Left(TimeRemainingColumn):
        def render(self, task: Any) -> Any:
            return super().render(task) if task.total is not None else ""

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   Counted(), TimeElapsedColumn(), TextColumn("elapsed"),
                   Left(), TextColumn("{task.fields[left]}"), console=console,
                   transient=True)
    with bar:
        yield Reporter(console, bar)
