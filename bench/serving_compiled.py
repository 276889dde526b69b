"""One LightGBM row: Booster.predict, LightGBM's single-row C API (what tuesday serves
with) and lleaves (LLVM-compiled trees), on the churn model of bench/serving.py.

Runs where lleaves is installed (its own virtualenv: lleaves 1.3 needs llvmlite < 0.45,
which needs Python < 3.13 and an older numpy than tuesday may use)::

    python -m venv bench/.venv-compiled
    bench/.venv-compiled/bin/pip install lleaves "llvmlite<0.45" lightgbm numpy
    python bench/serving.py --export-model /tmp/churn      # model.txt and rows.npy
    bench/.venv-compiled/bin/python bench/serving_compiled.py /tmp/churn

Each predictor scores the 5,000 customers' real feature rows one at a time (a row's
path through 400 trees depends on its values, so one repeated row would flatter every
predictor), once warm and once after touching 16 MB between calls (as a server's other
work does to the caches). Reported: median microseconds per row over 3 passes and the
largest difference from Booster.predict.
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np


def single_row_api(booster: lgb.Booster):  # the same calls as tuesday.predictor.SingleRow
    from lightgbm.basic import _LIB, _safe_call

    ncol = booster.num_feature()
    cfg = ctypes.c_void_p()
    _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
        booster._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(-1), ctypes.c_int(1),
        ctypes.c_int32(ncol), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(cfg)))
    fn = ctypes.PyDLL(_LIB._name, handle=_LIB._handle).LGBM_BoosterPredictForMatSingleRowFast
    buf, out, n = np.empty(ncol), np.empty(1), ctypes.c_int64(0)
    args = (ctypes.c_void_p(buf.ctypes.data), ctypes.byref(n), ctypes.c_void_p(out.ctypes.data))

    def predict(x: np.ndarray) -> np.ndarray:
        buf[:] = x[0]
        _safe_call(fn(cfg, *args))
        return out.copy()

    return predict


def per_row(fn, rows: np.ndarray, evict: bool) -> float:
    junk = np.random.default_rng(0).random(2_000_000)
    total = 0.0
    for i in range(len(rows)):
        if evict:
            junk[::64].sum()
        t = time.perf_counter()
        fn(rows[i:i + 1])
        total += time.perf_counter() - t
    return total / len(rows) * 1e6


def main() -> None:
    folder = Path(sys.argv[1])
    booster = lgb.Booster(model_file=str(folder / "model.txt"))
    rows = np.load(folder / "rows.npy")
    ref = booster.predict(rows, num_threads=1)
    cands = {"Booster.predict": lambda x: booster.predict(x, num_threads=1),
             "single-row C API": single_row_api(booster)}
    try:
        import lleaves

        started = time.perf_counter()
        m = lleaves.Model(model_file=str(folder / "model.txt"))
        m.compile(cache=str(folder / "lleaves.so"))
        print(f"lleaves compile: {time.perf_counter() - started:.1f} s")
        cands["lleaves"] = lambda x: m.predict(x, n_jobs=1)
    except Exception as exc:  # not installed, or an llvmlite it does not support
        print(f"lleaves: not measured ({type(exc).__name__}: {exc})")
    print("| predictor | us/row warm | us/row caches flushed | max abs diff | rows identical |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, fn in cands.items():
        got = np.array([fn(rows[i:i + 1])[0] for i in range(len(rows))])
        warm = statistics.median(per_row(fn, rows, False) for _ in range(3))
        cold = statistics.median(per_row(fn, rows, True) for _ in range(3))
        print(f"| {name} | {warm:.1f} | {cold:.1f} | {np.abs(got - ref).max():.1e} "
              f"| {(got == ref).mean():.1%} |")


if __name__ == "__main__":
    main()
