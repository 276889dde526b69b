"""Start-up: wall time of ``tuesday --help`` and ``import tuesday.project`` against a bare
``python -c pass``, in fresh processes, best and median of N runs, with the ratios.

    python bench/startup.py              # 15 runs each
    python bench/startup.py --runs 30

Also lists the heavy libraries (pandas, numpy, pyarrow, sqlalchemy, ...) that each command
imports: none should appear for ``--help`` or for a declaration.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIG = {
    "bare python": ["-c", "pass"],
    "tuesday --help": ["-m", "tuesday", "--help"],
    "import tuesday.project": ["-c", "import tuesday.project"],
    "import tuesday.cli": ["-c", "import tuesday.cli"],
}
HEAVY = ("pandas", "numpy", "pyarrow", "duckdb", "lightgbm", "sqlalchemy", "deltalake",
         "httpx", "polars", "scipy", "uvicorn", "starlette")


def wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return time.perf_counter() - t0


def heavy_imports(args: list[str]) -> list[str]:
    """The heavy libraries loaded by ``args`` (printed on stderr by the probe)."""
    code = args[1] if args[0] == "-c" else (
        "import runpy, sys\nsys.argv = ['tuesday', '--help']\ntry:\n"
        "    runpy.run_module('tuesday', run_name='__main__')\nexcept SystemExit:\n    pass")
    probe = code + (f"\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules),"
                    " file=sys.stderr)")
    err = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stderr.strip()
    return [m for m in err.split(",") if m]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    runs = ap.parse_args().runs
    times: dict[str, list[float]] = {name: [] for name in CONFIG}
    for _ in range(runs):  # interleaved, so load on the machine hits every command alike
        for name, args in CONFIG.items():
            times[name].append(wall(args))
    base = min(times["bare python"])
    rows = {}
    for name, ts in times.items():
        rows[name] = {"best_s": round(min(ts), 3), "median_s": round(statistics.median(ts), 3),
                      "x_bare_best": round(min(ts) / base, 1),
                      "heavy_imports": [] if name == "bare python"
                      else heavy_imports(CONFIG[name])}
    print(json.dumps({"runs": runs, "load_average": os.getloadavg()[0], "results": rows},
                     indent=2))


if __name__ == "__main__":
    main()
