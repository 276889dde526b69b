"""`tuesday --help` and a project's declarations load no heavy library: start-up stays a
fraction of a second (timed in bench/startup.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pandas", "numpy", "pyarrow", "duckdb", "lightgbm", "sqlalchemy", "deltalake",
         "httpx", "polars", "scipy", "uvicorn", "starlette")
PROBE = "\nimport sys\nprint(','.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"


def _loaded(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + PROBE.format(heavy=HEAVY)],
                         capture_output=True, text=True, check=True)
    lines = out.stderr.strip().splitlines()
    return [m for m in lines[-1].split(",") if m] if lines else []


@pytest.mark.parametrize("code", [
    "import tuesday.project",
    "from tuesday.project import Model, Source, Policy, duration\n"
    "from tuesday.project.times import norm_days, timedelta_of\n"
    "assert norm_days('48h') == '2d' and Policy(schedule='7d').schedule_days == 7",
    "import tuesday.cli",
    "import runpy, sys\nsys.argv = ['tuesday', '--help']\ntry:\n"
    "    runpy.run_module('tuesday', run_name='__main__')\nexcept SystemExit:\n    pass",
])
def test_start_up_loads_no_heavy_library(code: str) -> None:
    assert _loaded(code) == []


def test_duration_still_gives_pandas_timedelta() -> None:
    import pandas as pd

    from tuesday.project import duration
    from tuesday.project.times import timedelta_of

    assert duration("36h", what="lag") == pd.Timedelta(hours=36)
    assert isinstance(duration("14d", what="horizon"), pd.Timedelta)
    assert timedelta_of(3, what="window").days == 3
