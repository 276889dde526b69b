"""Command line: ``tuesday COMMAND``. Every command is idempotent where it can be, prints
data as JSON with ``--json``, and exits non-zero with a one-paragraph explanation.

Exit codes: 0 ok, 1 internal error (a bug), 2 invalid input, 3 not found, 4 gate failed,
5 conflict, 7 validation failed.

The group ``main`` and what its commands share live in :mod:`tuesday.cli.app`; one module
per command group holds the commands: :mod:`~tuesday.cli.data` (ingest, quarantine),
:mod:`~tuesday.cli.train` (train, report, runs, reproduce), :mod:`~tuesday.cli.release`
(plan, promote, rollback, deploy, models), :mod:`~tuesday.cli.serve` (serve, predict,
materialize, token), :mod:`~tuesday.cli.rank` (rank, ope), :mod:`~tuesday.cli.watch`
(monitor, alerts) and :mod:`~tuesday.cli.loop` (loop, replay, demo).

Each command imports the stages it drives (and through them LightGBM, pyarrow, duckdb,
uvicorn...) inside its function, not at the top of its module: that keeps
``tuesday --help`` and every other command from paying for libraries they do not use.
"""

from __future__ import annotations

from tuesday.cli import data, example, loop, rank, release, serve, train, watch
from tuesday.cli.app import main, share_global_options

for _group in (example, data, train, release, serve, rank, watch, loop):
    for _command in _group.COMMANDS:
        main.add_command(_command)
share_global_options(main)

__all__ = ["main"]
