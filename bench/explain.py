"""Explaining predictions: what one explained row costs next to an unexplained one, and
contributions for a large file against shap.TreeExplainer, side by side in one run.

    python bench/serving.py --export-model /tmp/churn     # model.txt and rows.npy
    python bench/explain.py /tmp/churn [--rows 100000]

One row: the churn model (400 trees, 14 features) scores each of its 5,000 customers'
real feature rows one at a time, with
- tuesday's compiled trees (the server's path for an unexplained prediction),
- LightGBM's single-row C API (the server's path before compiling finishes),
- ``RowContributions`` (TreeSHAP through the same single-row C API),
- ``Booster.predict(pred_contrib=True)`` on one row,
- ``shap.TreeExplainer.shap_values`` on one row.
Median microseconds per row over 3 passes, and the ratio to the compiled prediction.

A file: the 5,000 rows repeated to ``--rows`` rows; wall time and CPU time of
``contributions()`` (LightGBM, 2 threads) against ``shap.TreeExplainer`` (its C++
TreeSHAP), and the largest difference between their values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np

from tuesday.serve import compiled
from tuesday.serve.inference import SingleRow
from tuesday.train.contributions import RowContributions, contributions
from tuesday.train.learners import Fitted


def per_row(fn: Callable[[np.ndarray], object], rows: np.ndarray) -> float:
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        for r in rows:
            fn(r)
        passes.append((time.perf_counter() - t) / len(rows) * 1e6)
    return statistics.median(passes)


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default="/tmp/churn")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=1000, help="rows timed one at a time")
    a = ap.parse_args()
    import shap

    folder = Path(a.folder)
    text = (folder / "model.txt").read_text()
    rows = np.load(folder / "rows.npy")
    booster = lgb.Booster(model_str=text)
    fitted = Fitted("lightgbm", "binary", tuple(booster.feature_name()), booster)
    warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer")
    explainer = shap.TreeExplainer(booster)
    single, fast = SingleRow(booster), RowContributions(fitted)
    sample = rows[: a.sample]
    with tempfile.TemporaryDirectory() as cache:
        lib = compiled.build(text, Path(cache))
        if lib is None:
            sys.exit("no C compiler: the compiled path cannot be measured")
        model = compiled.Compiled(lib, booster.num_feature())
        preds: dict[str, Callable[[np.ndarray], object]] = {
            "compiled prediction (unexplained, the server's path)":
                lambda r: model.predict_one(r.tolist()),
            "single-row C API prediction": lambda r: single.predict(r.reshape(1, -1)),
            "RowContributions (single-row C API, TreeSHAP)": fast,
            "Booster.predict(pred_contrib=True), one row":
                lambda r: booster.predict(r.reshape(1, -1), pred_contrib=True, num_threads=1),
            "shap.TreeExplainer, one row": lambda r: explainer.shap_values(r.reshape(1, -1)),
        }
        times = {name: per_row(fn, sample) for name, fn in preds.items()}
    floor = next(iter(times.values()))
    print(f"one row ({len(sample)} real rows, {booster.num_trees()} trees, "
          f"{booster.num_feature()} features; load {os.getloadavg()[0]:.1f})")
    print("| path | us/row | x compiled prediction |")
    print("| --- | ---: | ---: |")
    for name, us in times.items():
        print(f"| {name} | {us:.1f} | {us / floor:.1f} |")
    big = np.tile(rows, (a.rows // len(rows) + 1, 1))[: a.rows]
    ours_w, ours_c, ours = timed(lambda: contributions(fitted, big, num_threads=2))
    shap_w, shap_c, theirs = timed(lambda: explainer.shap_values(big))
    diff = float(np.max(np.abs(ours.values - np.asarray(theirs))))  # type: ignore[attr-defined]
    print()
    print(f"{a.rows:,} rows")
    print("| contributions | wall s | CPU s |")
    print("| --- | ---: | ---: |")
    print(f"| tuesday contributions() (LightGBM TreeSHAP, 2 threads) | {ours_w:.2f} | "
          f"{ours_c:.2f} |")
    print(f"| shap.TreeExplainer.shap_values | {shap_w:.2f} | {shap_c:.2f} |")
    print(f"ratio shap / tuesday: wall {shap_w / ours_w:.2f}x, CPU {shap_c / ours_c:.2f}x; "
          f"largest difference {diff:.1e}")


if __name__ == "__main__":
    main()
