"""Data drift on a 40 numeric + 10 categorical frame pair: tuesday vs Evidently.

Engines, on the same reference/current frames (read back from the same Parquet files),
every column, Evidently's automatic method choice and default thresholds:

    tuesday    tuesday.drift.dataset_drift(reference, current)
    numpy      a plain numpy floor computing the same statistics: per numeric column the
               two sorted samples, their merged sort, ``searchsorted`` for Wasserstein and
               the distinct-value count; per categorical column ``pandas.factorize`` codes
               and ``bincount``; the Jensen-Shannon distance written out
    numpy-merge  a stronger floor: tuesday's algorithm without its checks (both sorted
               samples merged by a stable argsort, CDFs by cumulative counts)
    scipy      per column as the obvious pandas + scipy code: ``dropna``, ``nunique`` for
               the method, ``scipy.stats.wasserstein_distance`` / ``np.std``,
               ``value_counts`` shares and ``scipy.spatial.distance.jensenshannon``
    evidently  Evidently 0.7 ``Report([DataDriftPreset()])``, in its own virtualenv
               (``bench/.venv-evidently``, pandas < 3; see drift_evidently.py), optional

Times are the median (and best) of ``--repeats`` rounds with the in-process engines
interleaved (their order rotated each round), wall and CPU (``time.process_time``, all
threads; less sensitive to other jobs on a shared machine); Evidently runs once (it takes
minutes). Memory is the peak resident set size
during the step above the RSS just before it (sampled every 2 ms), as a ratio of the data
size (``memory_usage(deep=True)`` of both frames); tracemalloc's peak for tuesday is shown
too. Every engine's per-column statistic is compared with tuesday's (max absolute
difference) and so are the drift verdicts.

    python bench/drift.py                         # 200k rows per frame, no Evidently
    python bench/drift.py --rows 200000 --evidently
    python bench/drift.py --rows 1000000 --evidently --repeats 3
    python bench/drift.py --rows 1000000 --evidently-reuse   # compare with the saved run
    python bench/drift.py --rows 800 --evidently  # small samples: ks / chi2 / z p-values
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from tuesday.watch.drift import dataset_drift

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
sys.path.insert(0, str(BENCH))

from drift_evidently import run_side  # noqa: E402

N_NUMERIC = 40
N_CATEGORICAL = 10
CARDINALITIES = (2, 3, 4, 7, 12, 25, 50, 100, 250, 1000)

# --------------------------------------------------------------------------- data


def make_frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded reference and current frames of ``rows`` rows: 40 numeric columns of
    real-ish shapes (normal, lognormal, exponential, gamma, Student t, mixtures, Poisson
    counts, ages, rounded prices, proportions, few-valued codes and flags, some with nulls
    and infinities) and 10 string columns of 2 to 1000 Zipf-distributed categories (two
    with nulls, one gaining a new category). About a third of the columns drift, some
    slightly, some clearly."""
    g = np.random.default_rng(seed)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}

    def numeric(i: int, n: int, shift: float) -> np.ndarray:
        family = i % 10
        if family == 0:
            x = g.normal(50.0 + shift * 10, 10.0, n)
        elif family == 1:
            x = g.lognormal(10.0 + shift, 0.8, n)  # incomes
        elif family == 2:
            x = g.exponential(30.0 * (1 + shift), n)  # durations
        elif family == 3:
            x = g.gamma(2.0 + shift * 2, 3.0, n)
        elif family == 4:
            x = g.standard_t(3, n) + shift  # heavy tails
        elif family == 5:  # bimodal mixture
            which = g.random(n) < 0.3 + shift / 2
            x = np.where(which, g.normal(0.0, 1.0, n), g.normal(5.0, 2.0, n))
        elif family == 6:
            x = g.poisson(20.0 * (1 + shift), n).astype(np.float64)  # counts, many ties
        elif family == 7:
            x = np.clip(np.round(g.normal(42 + shift * 10, 15, n)), 18, 90)  # ages
        elif family == 8:
            x = np.round(g.lognormal(3.0 + shift, 1.0, n), 2)  # prices in cents
        else:
            x = g.beta(2.0, 5.0 + shift * 5, n)  # proportions
        return x

    for i in range(N_NUMERIC):
        name = f"num_{i:02d}"
        shift = (0.0, 0.02, 0.3)[i % 3] if i % 7 else 0.0
        if i in (36, 37, 38, 39):  # few-valued codes: compared as categories (JS)
            k = (2, 3, 4, 5)[i - 36]
            p_ref = np.arange(1, k + 1, dtype=float)
            p_ref /= p_ref.sum()
            p_cur = p_ref if i % 2 else np.roll(p_ref, 1)
            ref[name] = g.choice(k, rows, p=p_ref).astype(np.float64)
            cur[name] = g.choice(k, rows, p=p_cur).astype(np.float64)
            continue
        r = numeric(i, rows, 0.0)
        c = numeric(i, rows, shift)
        if i in (5, 15, 25):  # nulls
            r[g.random(rows) < 0.05] = np.nan
            c[g.random(rows) < 0.08] = np.nan
        if i == 25:  # and infinities
            r[g.random(rows) < 0.001] = np.inf
            c[g.random(rows) < 0.001] = -np.inf
        ref[name], cur[name] = r, c

    for j, k in enumerate(CARDINALITIES):
        name = f"cat_{j}"
        labels = np.array([f"{name}_v{v:04d}" for v in range(k + 1)], dtype=object)
        zipf = 1.0 / np.arange(1, k + 1) ** 1.1
        p_ref = np.r_[zipf / zipf.sum(), 0.0]
        if j % 3 == 1:  # drift: move mass from the top categories
            p_cur = np.r_[np.roll(zipf, 2) / zipf.sum(), 0.0]
        elif j == 5:  # a new category appears
            p_cur = np.r_[zipf / zipf.sum() * 0.85, 0.15]
        else:
            p_cur = p_ref
        r = labels[g.choice(k + 1, rows, p=p_ref)]
        c = labels[g.choice(k + 1, rows, p=p_cur / p_cur.sum())]
        if j in (3, 7):
            r[g.random(rows) < 0.03] = None
            c[g.random(rows) < 0.03] = None
        ref[name] = pd.array(r, dtype="str")
        cur[name] = pd.array(c, dtype="str")
    return pd.DataFrame(ref), pd.DataFrame(cur)


def frames(rows: int, seed: int, log: Callable[[str], None]) -> tuple[Path, Path]:
    folder = CACHE / f"drift-{rows}-{seed}"
    paths = folder / "reference.parquet", folder / "current.parquet"
    if not all(p.exists() for p in paths):
        log(f"generating {rows:,} rows x {N_NUMERIC + N_CATEGORICAL} columns (seed {seed})")
        folder.mkdir(parents=True, exist_ok=True)
        for frame, path in zip(make_frames(rows, seed), paths, strict=True):
            frame.to_parquet(path, index=False)
    return paths


# --------------------------------------------------------------------------- engines


def run_tuesday(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[str, float, bool]]:
    report = dataset_drift(ref, cur)
    return {c.column: (c.method, c.statistic, c.drifted) for c in report.columns}


def _js(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log(p / m), 0.0) + np.where(q > 0, q * np.log(q / m), 0.0)
    return math.sqrt(max(float(kl.sum()), 0.0) / 2)


def run_numpy(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[str, float, bool]]:
    """The floor: the same statistics with plain numpy, no checks, methods chosen as
    Evidently (large samples only: Wasserstein or Jensen-Shannon)."""
    out: dict[str, tuple[str, float, bool]] = {}
    for col in ref.columns:
        if pd.api.types.is_float_dtype(ref[col].dtype):
            r = ref[col].to_numpy()
            c = cur[col].to_numpy()
            r = np.sort(r[np.isfinite(r)])
            c = np.sort(c[np.isfinite(c)])
            both = np.sort(np.concatenate((r, c)), kind="mergesort")
            step = np.diff(both) != 0
            if np.count_nonzero(step) + 1 > 5:
                cdf_r = np.searchsorted(r, both[:-1], side="right") / r.size
                cdf_c = np.searchsorted(c, both[:-1], side="right") / c.size
                w = float(np.sum(np.abs(cdf_r - cdf_c) * np.diff(both)))
                d = w / max(float(np.std(r)), 0.001)
                out[col] = ("wasserstein", d, d >= 0.1)
            else:
                values = both[np.r_[True, step]]
                r_counts = np.diff(np.searchsorted(r, values, side="right"), prepend=0)
                c_counts = np.diff(np.searchsorted(c, values, side="right"), prepend=0)
                d = _js(r_counts / r.size, c_counts / c.size)
                out[col] = ("jensenshannon", d, d >= 0.1)
        else:
            codes, uniques = pd.factorize(pd.concat((ref[col], cur[col]), ignore_index=True))
            n = len(ref)
            r_codes, c_codes = codes[:n], codes[n:]
            r_codes = r_codes[r_codes >= 0]
            c_codes = c_codes[c_codes >= 0]
            r_counts = np.bincount(r_codes, minlength=len(uniques))
            c_counts = np.bincount(c_codes, minlength=len(uniques))
            d = _js(r_counts / r_codes.size, c_counts / c_codes.size)
            out[col] = ("jensenshannon", d, d >= 0.1)
    return out


def run_numpy_merge(
    ref: pd.DataFrame, cur: pd.DataFrame
) -> dict[str, tuple[str, float, bool]]:
    """A second floor, with tuesday's algorithm and no checks: both samples sorted in one
    buffer, merged by a stable argsort of the two sorted runs, CDFs by cumulative counts."""
    out: dict[str, tuple[str, float, bool]] = {}
    for col in ref.columns:
        if not pd.api.types.is_float_dtype(ref[col].dtype):
            continue  # categorical: as run_numpy
        r = ref[col].to_numpy()
        c = cur[col].to_numpy()
        r = r[np.isfinite(r)]
        c = c[np.isfinite(c)]
        nr, nc = r.size, c.size
        both = np.concatenate((r, c))
        both[:nr].sort()
        both[nr:].sort()
        order = np.argsort(both, kind="stable")
        gaps = np.diff(both[order])
        from_ref = order < nr
        if np.count_nonzero(gaps) + 1 > 5:
            ref_count = np.cumsum(from_ref[:-1], dtype=np.int32)
            cur_count = np.arange(1, nr + nc, dtype=np.int32) - ref_count
            w = float(np.sum(np.abs(ref_count / nr - cur_count / nc) * gaps))
            d = w / max(float(np.std(both[:nr])), 0.001)
            out[col] = ("wasserstein", d, d >= 0.1)
        else:
            last = np.flatnonzero(np.r_[gaps != 0, True])
            ref_count = np.cumsum(from_ref)[last]
            r_counts = np.diff(ref_count, prepend=0)
            c_counts = np.diff(last + 1 - ref_count, prepend=0)
            d = _js(r_counts / nr, c_counts / nc)
            out[col] = ("jensenshannon", d, d >= 0.1)
    categorical = [c for c in ref.columns if c not in out]
    out.update(run_numpy(ref[categorical], cur[categorical]))
    return {col: out[col] for col in ref.columns}


def run_scipy(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, tuple[str, float, bool]]:
    """Per column, the obvious pandas + scipy code (what Evidently's stattests do)."""
    out: dict[str, tuple[str, float, bool]] = {}
    for col in ref.columns:
        r = ref[col].replace([np.inf, -np.inf], np.nan).dropna()
        c = cur[col].replace([np.inf, -np.inf], np.nan).dropna()
        numeric = pd.api.types.is_float_dtype(r.dtype)
        if numeric and pd.concat((r, c)).nunique() > 5:
            d = stats.wasserstein_distance(r, c) / max(float(np.std(r)), 0.001)
            out[col] = ("wasserstein", float(d), d >= 0.1)
            continue
        keys = list(set(r.unique()) | set(c.unique()))
        r_share = r.value_counts().reindex(keys, fill_value=0).to_numpy() / len(r)
        c_share = c.value_counts().reindex(keys, fill_value=0).to_numpy() / len(c)
        d = float(distance.jensenshannon(r_share, c_share))
        out[col] = ("jensenshannon", d, d >= 0.1)
    return out


# --------------------------------------------------------------------------- measuring


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident set size above the value at start, sampled from /proc every 2 ms."""

    def __init__(self) -> None:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def extra(self) -> int:
        return self.peak - self.base


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def compare(
    mine: dict[str, tuple[str, float, bool]], other: dict[str, tuple[str, float, bool]]
) -> dict[str, Any]:
    """Max absolute statistic difference, differing methods and verdicts vs tuesday."""
    diffs, methods, verdicts = [], [], []
    for col, (method, stat, drifted) in mine.items():
        o_method, o_stat, o_drifted = other[col]
        if o_method != method:
            methods.append(col)
        if o_drifted != drifted:
            verdicts.append(col)
        if math.isnan(stat) and math.isnan(o_stat):
            diffs.append(0.0)
        else:
            diffs.append(abs(stat - o_stat))
    worst = int(np.argmax(diffs))
    return {
        "max_abs_diff": max(diffs),
        "worst_column": list(mine)[worst],
        "methods_differ": methods,
        "verdicts_differ": verdicts,
    }


def _evidently_verdict(method: str, stat: float, threshold: float) -> bool:
    if method == "ks":
        return stat <= threshold
    if method in ("chi2", "z"):
        return stat < threshold
    return stat >= threshold


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows per frame")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--evidently", action="store_true", help="run Evidently (its own venv)")
    ap.add_argument(
        "--evidently-reuse",
        action="store_true",
        help="compare with the last Evidently result saved for these frames (no new run)",
    )
    ap.add_argument("--no-scipy", action="store_true", help="skip the scipy per-column run")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    ref_path, cur_path = frames(args.rows, args.seed, log)
    ref = pd.read_parquet(ref_path)
    cur = pd.read_parquet(cur_path)
    data_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    numeric = [c for c in ref.columns if pd.api.types.is_float_dtype(ref[c].dtype)]
    categorical = [c for c in ref.columns if c not in numeric]
    log(
        f"data: 2 x {args.rows:,} rows x {ref.shape[1]} columns ({len(numeric)} numeric, "
        f"{len(categorical)} categorical), {data_bytes / 2**20:.0f} MB in memory; "
        f"load {_load()}"
    )

    engines: dict[str, Callable[..., dict[str, tuple[str, float, bool]]]] = {
        "numpy": run_numpy,
        "numpy-merge": run_numpy_merge,
        "tuesday": run_tuesday,
    }
    if not args.no_scipy:
        engines["scipy"] = run_scipy
    large = args.rows > 1000
    if not large:  # the floor and scipy runs cover only the large-sample methods
        engines = {"tuesday": run_tuesday}
    times: dict[str, list[float]] = {e: [] for e in engines}
    cpu: dict[str, list[float]] = {e: [] for e in engines}
    mem: dict[str, list[int]] = {e: [] for e in engines}
    results: dict[str, dict[str, tuple[str, float, bool]]] = {}
    names = list(engines)
    for rnd in range(args.repeats):
        for name in names[rnd % len(names):] + names[: rnd % len(names)]:  # rotate the order
            gc.collect()
            with PeakRSS() as peak:
                c0, t0 = time.process_time(), time.perf_counter()
                results[name] = engines[name](ref, cur)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
            mem[name].append(peak.extra)
        log(f"round {rnd + 1}: " + ", ".join(f"{e} {times[e][-1]:.3f} s" for e in engines))

    gc.collect()
    tracemalloc.start()
    run_tuesday(ref, cur)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    mine = results["tuesday"]
    checks = {e: compare(mine, results[e]) for e in engines if e != "tuesday"}

    ev: dict[str, Any] | None = None
    ev_path = ref_path.parent / "evidently-result.json"
    if args.evidently_reuse and ev_path.exists():
        log(f"reusing Evidently's saved result {ev_path.relative_to(BENCH.parent)}")
        ev = json.loads(ev_path.read_text())
    elif args.evidently or args.evidently_reuse:
        log("running Evidently's DataDriftPreset in bench/.venv-evidently")
        ev = run_side(
            {
                "reference": str(ref_path),
                "current": str(cur_path),
                "numeric": numeric,
                "categorical": categorical,
                "output": str(ev_path),
            },
            log=log,
        )
    if ev is not None:
        ev_results = {
            col: (v["method"], float("nan") if v["statistic"] is None else v["statistic"],
                  _evidently_verdict(v["method"], v["statistic"], v["threshold"]))
            for col, v in ev["columns"].items()
        }
        checks["evidently"] = compare(mine, ev_results)
        checks["evidently"]["drifted_count"] = ev["drifted_count"]
        log(f"evidently {ev['seconds']:.1f} s, peak RSS {ev['peak_rss_bytes'] / 2**20:.0f} MB")

    # ---------------------------------------------------------------- report
    med = {e: statistics.median(t) for e, t in times.items()}
    best = {e: min(t) for e, t in times.items()}
    med_cpu = {e: statistics.median(t) for e, t in cpu.items()}
    med_mem = {e: statistics.median(m) for e, m in mem.items()}
    methods: dict[str, int] = {}
    for method, _, _ in mine.values():
        methods[method] = methods.get(method, 0) + 1
    print()
    print(
        f"rows per frame: {args.rows:,}; methods (tuesday): "
        + ", ".join(f"{m} x{k}" for m, k in sorted(methods.items()))
        + f"; drifted columns: {sum(d for _, _, d in mine.values())}/{len(mine)}"
    )
    print(f"data in memory (both frames): {data_bytes / 2**20:.0f} MB; load now {_load()}")
    print()
    print(
        "| engine | median s | best s | x tuesday | CPU s | x tuesday CPU | peak extra MB "
        "| x data | max abs diff vs tuesday | methods / verdicts differ |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for e in engines:
        check = checks.get(e)
        diff = "-" if check is None else f"{check['max_abs_diff']:.1e}"
        differ = (
            "-"
            if check is None
            else f"{len(check['methods_differ'])} / {len(check['verdicts_differ'])}"
        )
        print(
            f"| {e} | {med[e]:.3f} | {best[e]:.3f} | {med[e] / med['tuesday']:.2f} "
            f"| {med_cpu[e]:.3f} | {med_cpu[e] / med_cpu['tuesday']:.2f} "
            f"| {med_mem[e] / 2**20:.0f} | {med_mem[e] / data_bytes:.2f} | {diff} | {differ} |"
        )
    if ev is not None:
        check = checks["evidently"]
        ev_extra = ev["peak_rss_bytes"] - ev["rss_before_bytes"]
        print(
            f"| evidently (1 run) | {ev['seconds']:.3f} | {ev['seconds']:.3f} "
            f"| {ev['seconds'] / med['tuesday']:.1f} | {ev['cpu_seconds']:.3f} "
            f"| {ev['cpu_seconds'] / med_cpu['tuesday']:.1f} | {ev_extra / 2**20:.0f} "
            f"| {ev_extra / data_bytes:.2f} | {check['max_abs_diff']:.1e} "
            f"| {len(check['methods_differ'])} / {len(check['verdicts_differ'])} |"
        )
    print()
    print(f"tuesday tracemalloc peak: {traced_peak / 2**20:.1f} MB "
          f"({traced_peak / data_bytes:.2f} x data)")
    if "numpy" in med:
        print(
            f"tuesday / numpy floor (median): {med['tuesday'] / med['numpy']:.2f} (goal <= 1.5), "
            f"CPU {med_cpu['tuesday'] / med_cpu['numpy']:.2f}; tuesday / numpy-merge floor: "
            f"{med['tuesday'] / med['numpy-merge']:.2f}, "
            f"CPU {med_cpu['tuesday'] / med_cpu['numpy-merge']:.2f}"
        )
    if "scipy" in med:
        print(f"scipy / tuesday (median): {med['scipy'] / med['tuesday']:.1f}")
    if ev is not None:
        check = checks["evidently"]
        print(
            f"evidently / tuesday: {ev['seconds'] / med['tuesday']:.1f} (goal >= 10); "
            f"Evidently peak RSS {ev['peak_rss_bytes'] / 2**20:.0f} MB total, "
            f"{(ev['peak_rss_bytes'] - ev['rss_before_bytes']) / 2**20:.0f} MB above its "
            f"frames; max abs diff {check['max_abs_diff']:.2e} (goal <= 1e-9) on "
            f"{check['worst_column']}; methods differ on {check['methods_differ'] or 'none'}; "
            f"verdicts differ on {check['verdicts_differ'] or 'none'}; Evidently counts "
            f"{check['drifted_count']:.0f} drifted columns, tuesday "
            f"{sum(d for _, _, d in mine.values())}; versions {ev['versions']}"
        )
    for e, check in checks.items():
        if check["methods_differ"] or check["verdicts_differ"]:
            print(f"{e}: methods differ {check['methods_differ']}, "
                  f"verdicts differ {check['verdicts_differ']}")
    if args.json:
        args.json.write_text(json.dumps({
            "rows": args.rows, "data_bytes": data_bytes, "median_s": med, "best_s": best,
            "median_cpu_s": med_cpu, "load_after": _load(),
            "peak_extra_bytes": med_mem, "tracemalloc_peak": traced_peak, "checks": checks,
            "evidently": ev,
        }, indent=1, default=str))


if __name__ == "__main__":
    main()
