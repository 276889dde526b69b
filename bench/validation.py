"""Validation speed: tuesday's ``validate`` (checks + quarantine) against a floor and pandera.

One seeded batch of CONFIG["rows"] rows x 20 columns (float, int, str, date) with
CONFIG["bad_fraction"] of the rows carrying one bad value each (out of range, not
allowed, wrong format, missing where required, and in the text input unreadable), under
one contract of range, allowed, nullability and format checks. Two inputs of the same
batch:

- ``typed``: an Arrow table with float64/int64/string/timestamp columns, as Parquet gives;
- ``text``: an Arrow table of strings, as a CSV gives (``tables.read_file``).

Three ways to find the same per-check failure counts:

- ``tuesday``: ``contracts.validate`` (typed accepted rows, quarantine frame with every
  reason and the original values as JSON, report with examples);
- ``floor``: plain pyarrow.compute calls that only count failures per check (no split, no
  quarantine, no examples): what any validator must at least do;
- ``pandera``: ``DataFrameSchema.validate(lazy=True)`` on the typed data as pandas (skipped
  with a message when pandera is not installed: ``pip install pandera``). Not on the text
  input: there pandera's coercion fails a column at its first unreadable value and skips
  the column's other checks, so no count could match.

The script asserts that they agree on every (check, column) count, then prints the median
wall time and the best CPU time of CONFIG["repeats"] runs, and the ratios tuesday/floor
and pandera/tuesday.

Run: ``python bench/validation.py`` (``--rows 100000`` for a quick run).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts import validate
from tuesday.project import Column, Contract

CONFIG: dict[str, Any] = {"rows": 1_000_000, "bad_fraction": 0.01, "seed": 20240611,
                          "repeats": 5}

REGIONS = ("north", "south", "east", "west")
PRODUCTS = tuple(f"P{i:03d}" for i in range(12))
CONTRACT = Contract((
    Column("f0", "float", nullable=False, min=0, max=1000),
    Column("f1", "float", min=-50, max=50),
    Column("f2", "float", min=0),
    Column("f3", "float", nullable=False),
    Column("f4", "float", max=1e6),
    Column("f5", "float", min=0, max=1),
    Column("i0", "int", nullable=False, min=0, max=10_000),
    Column("i1", "int", allowed=(0, 1, 2, 3)),
    Column("i2", "int", nullable=False, min=1, max=31),
    Column("i3", "int"),
    Column("i4", "int", min=0),
    Column("s0", "str", nullable=False, allowed=REGIONS),
    Column("s1", "str", format=r"[A-Z]{2}-\d{4}"),
    Column("s2", "str", nullable=False),
    Column("s3", "str", allowed=PRODUCTS),
    Column("s4", "str", nullable=False, format=r"[a-z]+@[a-z]+\.com"),
    Column("s5", "str"),
    Column("d0", "date", nullable=False),
    Column("d1", "date"),
    Column("d2", "date", nullable=False),
))


# ---------------------------------------------------------------------- the batch


def make_batch(rows: int, bad_fraction: float, seed: int) -> dict[str, list[Any] | np.ndarray]:
    """Column -> values (None for a null; a ``str`` in a numeric/date column is an
    unreadable text that only the text input carries)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {
        "f0": rng.uniform(0, 1000, rows), "f1": rng.normal(0, 15, rows).clip(-50, 50),
        "f2": rng.exponential(10, rows), "f3": rng.normal(100, 30, rows),
        "f4": rng.uniform(0, 1e6, rows), "f5": rng.uniform(0, 1, rows),
        "i0": rng.integers(0, 10_001, rows), "i1": rng.integers(0, 4, rows),
        "i2": rng.integers(1, 32, rows), "i3": rng.integers(-1000, 1000, rows),
        "i4": rng.integers(0, 10**9, rows),
        "s0": np.array(REGIONS)[rng.integers(0, 4, rows)],
        "s1": np.char.add(np.array(["AB-", "CD-", "XY-"])[rng.integers(0, 3, rows)],
                          np.char.zfill(rng.integers(0, 10_000, rows).astype(str), 4)),
        "s2": np.char.add("customer-", rng.integers(0, 50_000, rows).astype(str)),
        "s3": np.array(PRODUCTS)[rng.integers(0, len(PRODUCTS), rows)],
        "s4": np.char.add(np.array(["ann", "bob", "eve", "joe"])[rng.integers(0, 4, rows)],
                          "@shop.com"),
        "s5": np.array(["ok", "late", "damaged", "returned"])[rng.integers(0, 4, rows)],
        "d0": np.datetime64("2015-01-01") + rng.integers(0, 3650, rows),
        "d1": np.datetime64("2015-01-01") + rng.integers(0, 3650, rows),
        "d2": np.datetime64("2015-01-01") + rng.integers(0, 3650, rows),
    }
    out: dict[str, Any] = {k: list(v.tolist()) for k, v in cols.items()}
    for c in CONTRACT.columns:  # natural nulls in optional columns
        if c.nullable:
            for i in np.flatnonzero(rng.random(rows) < 0.02).tolist():
                out[c.name][i] = None
    ways = {  # column -> bad values it can get
        "f0": [-1.0, 1000.5, None, "n/a"], "f1": [-75.0, 51.0, "1,5"], "f2": [-0.5, "abc"],
        "f3": [None, "--"], "f4": [2e6, "1.2.3"], "f5": [1.5, -0.1, "x"],
        "i0": [-3, 20_000, None, "2.5"], "i1": [7, -1, "one"], "i2": [0, 40, None, "3x"],
        "i3": ["7.25"], "i4": [-5, "ten"],
        "s0": ["up", None], "s1": ["A1-0000", "ab-1234"], "s2": [None],
        "s3": ["P999", "p001"], "s4": ["bob@shop", None], "d0": [None, "2024-13-45"],
        "d1": ["yesterday"], "d2": [None, "2024-02-30"],
    }
    names = sorted(ways)
    for i in rng.choice(rows, int(rows * bad_fraction), replace=False).tolist():
        name = names[rng.integers(0, len(names))]
        options = ways[name]
        out[name][i] = options[rng.integers(0, len(options))]
    return out


def typed_input(batch: dict[str, Any]) -> pa.Table:
    """The batch as Parquet would give it: typed columns; an unreadable text cannot exist
    in typed data, so it is written as a null there."""
    arrays = {}
    for c in CONTRACT.columns:
        values = [None if isinstance(v, str) and c.dtype != "str" else v
                  for v in batch[c.name]]
        typ = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(),
               "date": pa.timestamp("us")}[c.dtype]
        if c.dtype == "date":
            values = [None if v is None else np.datetime64(v, "us") for v in values]
        arrays[c.name] = pa.array(values, type=typ)
    return pa.table(arrays)


def text_input(batch: dict[str, Any]) -> pa.Table:
    """The batch as a CSV gives it: every value as text, blank as null."""
    def text(v: Any) -> str | None:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, float):
            return repr(v)
        return str(v)
    return pa.table({k: pa.array([text(v) for v in vs], pa.string())
                     for k, vs in batch.items()})


# ------------------------------------------------------------------- the three ways


def tuesday_counts(table: pa.Table) -> Counter[tuple[str, str]]:
    v = validate(table, CONTRACT)
    out: Counter[tuple[str, str]] = Counter()
    for p in v.report.problems:
        out[(p.check, p.column)] += p.count
    return out


def _floor_parse(arr: pa.Array, dtype: str) -> tuple[pa.Array, int]:
    """Text -> typed values (null where unreadable) and the count of unreadable values."""
    present = pc.is_valid(arr)
    if dtype == "float":
        ok = pc.match_substring_regex(arr, r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
    elif dtype == "int":
        ok = pc.match_substring_regex(arr, r"^[+-]?\d+$")
    else:
        parsed = pc.strptime(arr, format="%Y-%m-%d", unit="us", error_is_null=True)
        day = pc.cast(pc.utf8_slice_codeunits(pc.if_else(pc.is_valid(parsed), arr, None),
                                              8, 10), pa.int64())
        ok = pc.and_(pc.is_valid(parsed), pc.equal(pc.day(parsed), day))
        bad = pc.sum(pc.and_(present, pc.invert(pc.fill_null(ok, False)))).as_py() or 0
        return pc.if_else(ok, parsed, None), bad
    ok = pc.fill_null(ok, False)
    bad = pc.sum(pc.and_(present, pc.invert(ok))).as_py() or 0
    typ = pa.float64() if dtype == "float" else pa.int64()
    return pc.cast(pc.if_else(ok, arr, None), typ), bad


def floor_counts(table: pa.Table) -> Counter[tuple[str, str]]:
    """The same counts with nothing but pyarrow.compute: no split, no quarantine."""
    out: Counter[tuple[str, str]] = Counter()
    for c in CONTRACT.columns:
        arr = table.column(c.name).combine_chunks()
        bad_type = 0
        if c.dtype != "str" and pa.types.is_string(arr.type):
            arr, bad_type = _floor_parse(arr, c.dtype)
        elif c.dtype == "date":  # a typed date must be midnight
            bad_type = pc.sum(pc.not_equal(pc.floor_temporal(arr, unit="day"), arr)).as_py() or 0
        if bad_type:
            out[("type", c.name)] = bad_type
        if c.dtype == "float":
            missing = pc.is_null(arr, nan_is_null=True)
        elif c.dtype == "str":
            blank = pc.or_(pc.equal(pc.binary_length(arr), 0), pc.utf8_is_space(arr))
            missing = pc.or_kleene(pc.is_null(arr), blank)
        else:
            missing = pc.is_null(arr)
        if not c.nullable:
            nulls = (pc.sum(missing).as_py() or 0) - bad_type
            if nulls:
                out[("null", c.name)] = nulls
        count = 0
        if c.min is not None:
            count += pc.sum(pc.less(arr, c.min)).as_py() or 0
        if c.max is not None:
            count += pc.sum(pc.greater(arr, c.max)).as_py() or 0
        if count:
            out[("range", c.name)] = count
        if c.allowed is not None:
            inside = pc.is_in(arr, value_set=pa.array(list(c.allowed)).cast(arr.type))
            out[("allowed", c.name)] = pc.sum(pc.and_(pc.is_valid(arr),
                                                      pc.invert(inside))).as_py() or 0
        if c.format is not None:
            match = pc.match_substring_regex(arr, f"^(?:{c.format})$")
            out[("format", c.name)] = pc.sum(pc.invert(match)).as_py() or 0
    return +out


def pandera_schema(text: bool) -> Any:
    import pandera.pandas as pandera

    checks: dict[str, Any] = {}
    for c in CONTRACT.columns:
        rules = []
        if c.min is not None:
            rules.append(pandera.Check.ge(c.min))
        if c.max is not None:
            rules.append(pandera.Check.le(c.max))
        if c.allowed is not None:
            rules.append(pandera.Check.isin(list(c.allowed)))
        if c.format is not None:
            rules.append(pandera.Check.str_matches(rf"(?:{c.format})\Z"))
        dtype = {"float": "float64", "int": "Int64", "str": "string",
                 "date": "datetime64[us]"}[c.dtype]
        checks[c.name] = pandera.Column(dtype, rules, nullable=c.nullable, coerce=text)
    return pandera.DataFrameSchema(checks)


def pandera_counts(frame: Any, schema: Any) -> Counter[tuple[str, str]]:
    import pandera.errors

    try:
        schema.validate(frame, lazy=True)
        return Counter()
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
    out: Counter[tuple[str, str]] = Counter()
    for (column, check), n in cases.groupby(["column", "check"]).size().items():
        kind = ("null" if check == "not_nullable" else
                "type" if str(check).startswith(("coerce_dtype", "dtype")) else
                "range" if str(check).startswith(("greater", "less")) else
                "allowed" if str(check).startswith("isin") else
                "format" if str(check).startswith("str_") else str(check))
        out[(kind, column)] += int(n)
    return out


def pandas_frame(table: pa.Table) -> Any:
    frame = table.to_pandas()
    for c in CONTRACT.columns:  # pandera's Int64 check wants nullable ints, not floats
        if c.dtype == "int" and pa.types.is_integer(table.column(c.name).type):
            frame[c.name] = table.column(c.name).to_pandas(
                types_mapper={pa.int64(): __import__("pandas").Int64Dtype()}.get)
    return frame


# ---------------------------------------------------------------------------- run


def timed(fns: dict[str, Callable[[], Any]], repeats: int
          ) -> tuple[dict[str, float], dict[str, float], dict[str, Any]]:
    """Run the functions in turn, ``repeats`` rounds, so that a change of load on a shared
    machine hits them alike. Returns the median wall time and the best CPU time of this
    process (all threads) per function, and each one's last result."""
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            results[name] = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: min(v) for k, v in cpu.items()}, results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=CONFIG["rows"])
    ap.add_argument("--repeats", type=int, default=CONFIG["repeats"])
    ap.add_argument("--no-pandera", action="store_true")
    args = ap.parse_args()
    try:
        import pandera  # noqa: F401
        has_pandera = not args.no_pandera
    except ImportError:
        has_pandera = False
        print("pandera is not installed: skipping it (pip install pandera)", file=sys.stderr)
    batch = make_batch(args.rows, CONFIG["bad_fraction"], CONFIG["seed"])
    print(f"{args.rows} rows x {len(CONTRACT.columns)} columns, "
          f"{CONFIG['bad_fraction']:.0%} bad rows, {args.repeats} runs each")
    print("times: median wall clock / best CPU time of this process (all threads), the "
          "tools taking turns")
    for kind, table in (("typed", typed_input(batch)), ("text", text_input(batch))):
        validate(table, CONTRACT)  # warm up (imports, memory pool)
        fns: dict[str, Callable[[], Any]] = {
            "floor": lambda t=table: floor_counts(t),
            "tuesday": lambda t=table: tuesday_counts(t),
            "split": lambda t=table: validate(t, CONTRACT).table}
        if has_pandera and kind == "typed":
            frame, schema = pandas_frame(table), pandera_schema(text=False)
            fns["pandera"] = lambda f=frame, s=schema: pandera_counts(f, s)
        wall, cpu, got = timed(fns, args.repeats)
        floor = got["floor"]
        assert got["tuesday"] == floor, f"{kind}: tuesday and floor disagree"
        print(f"{kind:5s} floor             {wall['floor']:6.3f} / {cpu['floor']:6.3f} s")
        print(f"      tuesday           {wall['tuesday']:6.3f} / {cpu['tuesday']:6.3f} s   "
              f"tuesday/floor {wall['tuesday'] / wall['floor']:.2f}x wall, "
              f"{cpu['tuesday'] / cpu['floor']:.2f}x CPU")
        print(f"      tuesday + split   {wall['split']:6.3f} / {cpu['split']:6.3f} s   "
              f"(accepted rows filtered into their own table: "
              f"{cpu['split'] / cpu['floor']:.2f}x floor CPU)")
        if "pandera" in got:
            assert got["pandera"] == floor, f"{kind}: pandera and floor disagree"
            print(f"      pandera           {wall['pandera']:6.3f} / {cpu['pandera']:6.3f} s   "
                  f"pandera/tuesday {wall['pandera'] / wall['tuesday']:.2f}x wall, "
                  f"{cpu['pandera'] / cpu['tuesday']:.2f}x CPU")
        elif has_pandera:
            print("      pandera           not compared: on text, a column with an unreadable "
                  "value fails coercion and pandera\n"
                  "                        skips that column's other checks, so its counts "
                  "cannot match (see RESULTS.md)")
        print(f"      {sum(floor.values())} failures over {len(floor)} (check, column) "
              "pairs, the same counts in every tool")


if __name__ == "__main__":
    main()
