"""One LightGBM row: Booster.predict, LightGBM's single-row C API and tuesday's compiled
trees (``tuesday.compiled``), on the churn model of bench/serving.py.

    python bench/serving.py --export-model /tmp/churn     # model.txt and rows.npy
    python bench/compiled.py /tmp/churn

Each predictor scores the 5,000 customers' real feature rows one at a time (a row's path
through 400 trees depends on its values, so one repeated row would flatter every
predictor), once warm and once after touching 16 MB between calls (as a server's other
work does to the caches). Reported: median microseconds per row over 3 passes, the build
time of the compiled library (the C compiler, from an empty cache) and how many of the
5,000 answers differ from Booster.predict in any bit.

For lleaves (LLVM), see bench/serving_compiled.py (its own virtualenv).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np

from tuesday.serve import compiled
from tuesday.serve.inference import SingleRow


def per_row(fn: Callable[[np.ndarray], float], rows: np.ndarray, flush: bool) -> float:
    junk = np.ones(2 << 20)  # 16 MB
    passes = []
    for _ in range(3):
        total = 0.0
        for r in rows:
            if flush:
                junk.sum()
            t = time.perf_counter()
            fn(r)
            total += time.perf_counter() - t
        passes.append(total / len(rows) * 1e6)
    return statistics.median(passes)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/churn")
    text = (folder / "model.txt").read_text()
    rows = np.load(folder / "rows.npy")
    booster = lgb.Booster(model_str=text)
    want = booster.predict(rows, num_threads=1)
    single = SingleRow(booster)
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        lib = compiled.build(text, Path(cache))
        build_s = time.perf_counter() - t
        if lib is None:
            sys.exit("no C compiler: nothing to compare")
        model = compiled.Compiled(lib, booster.num_feature())
        size = lib.stat().st_size
        got = np.array([model.predict_one(r.tolist()) for r in rows])
        probe_bad = model.check(booster, text)
        lists = [r.tolist() for r in rows]
        preds: dict[str, Callable[[np.ndarray], float]] = {
            "Booster.predict (num_threads=1)":
                lambda r: booster.predict(r.reshape(1, -1), num_threads=1)[0],
            "single-row C API": lambda r: single.predict(r.reshape(1, -1))[0],
            "tuesday compiled (predict_one)": lambda r: model.predict_one(r.tolist()),
        }
        print(f"compiled library: {size / 1e6:.2f} MB, built in {build_s:.1f} s; "
              f"rows differing from Booster.predict: "
              f"{int(np.count_nonzero(got.view(np.uint64) != want.view(np.uint64)))} of "
              f"{len(rows)}; probe rows differing: {probe_bad}")
        print()
        print("| predictor | us/row warm | us/row caches flushed |")
        print("| --- | ---: | ---: |")
        for name, fn in preds.items():
            print(f"| {name} | {per_row(fn, rows, False):.1f} | {per_row(fn, rows, True):.1f} |")
        t = time.perf_counter()
        for v in lists:
            model.predict_one(v)
        print(f"\nbatch of all rows through the compiled library: "
              f"{(time.perf_counter() - t) / len(lists) * 1e6:.1f} us/row from lists; "
              f"Booster.predict on all rows at once (1 thread): ", end="")
        t = time.perf_counter()
        booster.predict(rows, num_threads=1)
        print(f"{(time.perf_counter() - t) / len(rows) * 1e6:.1f} us/row; compiled on the "
              f"matrix: ", end="")
        t = time.perf_counter()
        model.predict(rows)
        print(f"{(time.perf_counter() - t) / len(rows) * 1e6:.1f} us/row")


if __name__ == "__main__":
    main()
