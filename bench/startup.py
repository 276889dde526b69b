"""Start-up: wall and CPU time of ``tuesday --help`` and ``import tuesday.project``
against a bare ``python -c pass``, in fresh processes, best and median of N runs, with the
ratios (CPU time, user + system of the child, is what a busy machine disturbs least).

    python bench/startup.py              # 15 runs each
    python bench/startup.py --runs 30

Also lists the heavy libraries (pandas, numpy, pyarrow, sqlalchemy, ...) that each command
imports: none should appear for ``--help`` or for a declaration.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def timed(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process running ``python ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
    walls: dict[str, list[float]] = {name: [] for name in CONFIG}
    cpus: dict[str, list[float]] = {name: [] for name in CONFIG}
    for _ in range(runs):  # interleaved, so load on the machine hits every command alike
        for name, args in CONFIG.items():
            w, c = timed(args)
            walls[name].append(w)
            cpus[name].append(c)
    base_wall, base_cpu = min(walls["bare python"]), min(cpus["bare python"])
    rows = {}
    for name in CONFIG:
        rows[name] = {"wall_best_s": round(min(walls[name]), 3),
                      "wall_median_s": round(statistics.median(walls[name]), 3),
                      "cpu_best_s": round(min(cpus[name]), 3),
                      "x_bare_wall": round(min(walls[name]) / base_wall, 1),
                      "x_bare_cpu": round(min(cpus[name]) / max(base_cpu, 1e-3), 1),
                      "heavy_imports": [] if name == "bare python"
                      else heavy_imports(CONFIG[name])}
    print(json.dumps({"runs": runs, "load_average": os.getloadavg()[0], "results": rows},
                     indent=2))


if __name__ == "__main__":
    main()
