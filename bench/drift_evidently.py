"""The Evidently side of the drift benchmark, run inside its own virtualenv.

Evidently 0.7 needs pandas < 3 and tuesday uses pandas 3, so Evidently runs in
``bench/.venv-evidently`` (created on first use by ``ensure_venv``, called from
``bench/drift.py``). The two processes exchange the frames as Parquet files and the
per-column results as JSON; this file never imports tuesday.

At module level only the standard library is imported, so ``bench/drift.py`` can import
``ensure_venv`` and ``run_side`` from here; Evidently and pandas are imported inside
``main``, which runs in the virtualenv:

    bench/.venv-evidently/bin/python bench/drift_evidently.py CONFIG.json

The config names the two Parquet files, the numeric and categorical columns and the
output JSON. The output holds, per column, Evidently's method, threshold and statistic
(``ValueDrift``), Evidently's own count of drifted columns (``DriftedColumnsCount``), the
wall and CPU time of ``Report.run`` alone, and the process's resident memory before the run
and at its peak (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-evidently"
REQUIREMENTS = ["evidently==0.7.*", "pandas<3", "pyarrow"]


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(log: Any = print) -> Path:
    """Create ``bench/.venv-evidently`` (Evidently 0.7, pandas < 3, pyarrow); reuse it
    when its recorded requirements match. Returns its python."""
    stamp = VENV / "bench-requirements.json"
    if venv_python().exists() and stamp.exists() and json.loads(stamp.read_text()) == REQUIREMENTS:
        return venv_python()
    log(f"creating {VENV.relative_to(BENCH.parent)} with {' '.join(REQUIREMENTS)} (first use)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(venv_python()), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True
    )
    stamp.write_text(json.dumps(REQUIREMENTS))
    return venv_python()


def run_side(config: dict[str, Any], *, log: Any = print) -> dict[str, Any]:
    """Run Evidently's DataDriftPreset on the config's Parquet files in the virtualenv;
    return its JSON result."""
    python = ensure_venv(log)
    cfg = Path(config["output"]).with_suffix(".config.json")
    cfg.write_text(json.dumps(config, indent=1))
    subprocess.run([str(python), str(Path(__file__).resolve()), str(cfg)], check=True)
    out: dict[str, Any] = json.loads(Path(config["output"]).read_text())
    return out


# --------------------------------------------------------------- in the virtualenv

_METHODS = {  # Evidently's display name -> tuesday's method name
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chi2",
    "Z-test p_value": "z",
    "PSI": "psi",
}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(config_path: str) -> None:
    import resource
    import warnings

    warnings.simplefilter("ignore")  # RuntimeWarnings of its correlation plots on inf values

    import evidently
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    cfg = json.loads(Path(config_path).read_text())
    reference = pd.read_parquet(cfg["reference"])
    current = pd.read_parquet(cfg["current"])
    definition = DataDefinition(
        numerical_columns=cfg["numeric"], categorical_columns=cfg["categorical"]
    )
    rss_before = _rss()
    c0, t0 = time.process_time(), time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    columns: dict[str, Any] = {}
    drifted_count = None
    for metric in snapshot.dict()["metrics"]:
        conf = metric["config"]
        if conf["type"].endswith("DriftedColumnsCount"):
            drifted_count = metric["value"]["count"]
        elif conf["type"].endswith("ValueDrift"):
            columns[conf["column"]] = {
                "method": _METHODS.get(conf["method"], conf["method"]),
                "evidently_method": conf["method"],
                "threshold": conf["threshold"],
                "statistic": metric["value"],
            }
    Path(cfg["output"]).write_text(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "rss_before_bytes": rss_before,
                "peak_rss_bytes": peak,
                "drifted_count": drifted_count,
                "columns": columns,
                "versions": {
                    "evidently": evidently.__version__,
                    "pandas": pd.__version__,
                    "numpy": __import__("numpy").__version__,
                    "scipy": __import__("scipy").__version__,
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
