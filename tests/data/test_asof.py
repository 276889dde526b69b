"""asof: exact as-of joins, checked against a slow loop, DuckDB's ASOF JOIN and properties."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuesday.data import asof
from tuesday.data.asof import asof_indices, asof_join

# ------------------------------------------------------------------------- oracles


def slow_asof(lk: list, lt: list, rk: list, rt: list) -> np.ndarray:
    """Obviously correct: scan every right row for every left row (last one wins ties)."""
    out = np.full(len(lk), -1, dtype=np.int64)
    for i, (k, t) in enumerate(zip(lk, lt, strict=True)):
        if k is None or t is None:
            continue
        best = -1
        for j, (k2, t2) in enumerate(zip(rk, rt, strict=True)):
            if k2 is None or t2 is None or k2 != k or t2 > t:
                continue
            if best < 0 or t2 >= rt[best]:
                best = j
        out[i] = best
    return out


def duckdb_asof(left: pa.Table, right: pa.Table, cols: list[str]) -> pd.DataFrame:
    """DuckDB's own ASOF LEFT JOIN, back in left order."""
    con = duckdb.connect()
    try:
        con.register("l", left)
        con.register("r", right)
        sel = ", ".join(f"r.{c}" for c in cols)
        sql = (f"SELECT l.row, {sel} FROM l ASOF LEFT JOIN r "
               "ON l.k = r.k AND l.t >= r.t ORDER BY l.row")
        return con.execute(sql).df()
    finally:
        con.close()


def random_case(seed: int, n_left: int, n_right: int, *, key_kind: str = "str",
                n_keys: int = 12, n_times: int = 40, nulls: bool = True,
                unique: bool = False) -> tuple[pa.Table, pa.Table]:
    """Left (k, t, row) and right (k, t, id, x, y) tables, unsorted, with duplicate times,
    keys missing from the right, null keys/times and null values."""
    rng = np.random.default_rng(seed)
    base = np.datetime64("2024-01-01T00:00:00", "s")

    def keys(n: int, hi: int) -> list:
        raw = rng.integers(0, hi, n)
        if key_kind == "str":
            ks: list = [f"k{v}" for v in raw]
        elif key_kind == "int":
            ks = [int(v) for v in raw]
        else:  # ints spread too far for dense codes
            ks = [int(v) * 10**15 - 7 for v in raw]
        if nulls:
            for i in np.flatnonzero(rng.random(n) < 0.05):
                ks[i] = None
        return ks

    def times(n: int) -> list:
        ts: list = [base + np.timedelta64(int(v) * 3600, "s")
                    for v in rng.integers(0, n_times, n)]
        if nulls:
            for i in np.flatnonzero(rng.random(n) < 0.05):
                ts[i] = None
        return ts

    rk, rt = keys(n_right, n_keys), times(n_right)
    if unique:
        seen: set = set()
        keep = []
        for i, kt in enumerate(zip(rk, rt, strict=True)):
            if kt not in seen:
                seen.add(kt)
                keep.append(i)
        rk, rt = [rk[i] for i in keep], [rt[i] for i in keep]
    n_right = len(rk)
    x = rng.normal(size=n_right)
    x_mask = rng.random(n_right) < 0.1 if nulls else None
    right = pa.table({
        "k": pa.array(rk),
        "t": pa.array(rt, pa.timestamp("s")),
        "id": pa.array(np.arange(n_right)),
        "x": pa.array(x, mask=x_mask),
        "y": pa.array([None if nulls and i % 7 == 3 else f"v{i}" for i in range(n_right)]),
    })
    left = pa.table({
        "k": pa.array(keys(n_left, n_keys + 3)),  # some keys the right side never has
        "t": pa.array(times(n_left), pa.timestamp("s")),
        "row": pa.array(np.arange(n_left)),
    })
    return left, right


def indices(left: pa.Table, right: pa.Table, **kw: object) -> np.ndarray:
    return asof_indices(left["k"], left["t"], right["k"], right["t"], **kw)  # type: ignore[arg-type]


def slow(left: pa.Table, right: pa.Table) -> np.ndarray:
    return slow_asof(left["k"].to_pylist(), left["t"].to_pylist(),
                     right["k"].to_pylist(), right["t"].to_pylist())


# ------------------------------------------------------------------ against oracles


@pytest.mark.parametrize("key_kind", ["str", "int", "wide_int"])
@pytest.mark.parametrize("seed", range(6))
def test_matches_the_slow_loop(seed: int, key_kind: str) -> None:
    left, right = random_case(seed, 150, 250, key_kind=key_kind)
    np.testing.assert_array_equal(indices(left, right), slow(left, right))


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_threads_and_parallel_sort_give_the_same_result(
        threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asof, "_PARALLEL_SORT_MIN", 0)
    left, right = random_case(7, 300, 600, n_keys=30)
    np.testing.assert_array_equal(indices(left, right, threads=threads), slow(left, right))


def test_right_in_time_order_and_fully_sorted() -> None:
    left, right = random_case(3, 200, 400, nulls=False)
    expected = slow(left, right)
    by_time = right.take(pa.array(np.argsort(right["t"].to_numpy(), kind="stable")))
    got = indices(left, by_time)
    np.testing.assert_array_equal(by_time["id"].to_numpy()[got[got >= 0]],
                                  right["id"].to_numpy()[expected[expected >= 0]])
    np.testing.assert_array_equal(got, slow(left, by_time))
    full = right.sort_by([("k", "ascending"), ("t", "ascending")])
    np.testing.assert_array_equal(indices(left, full), slow(left, full))


@pytest.mark.parametrize("seed", range(4))
def test_values_equal_duckdb_asof_left_join(seed: int) -> None:
    # unique (key, time) on the right, so DuckDB's choice among ties cannot differ
    left, right = random_case(seed, 3000, 8000, n_keys=200, n_times=500, unique=True)
    ours = asof_join(left, right, "k", "t", "t", ["id", "x", "y"]).to_pandas()
    theirs = duckdb_asof(left, right, ["id", "x", "y"])
    assert len(ours) == len(left)  # nothing dropped
    np.testing.assert_array_equal(ours["row"], np.arange(len(left)))
    pd.testing.assert_series_equal(ours["id"].astype("float64"), theirs["id"].astype("float64"),
                                   check_names=False)
    np.testing.assert_array_equal(ours["x"].to_numpy(), theirs["x"].to_numpy())
    assert ours["y"].isna().tolist() == theirs["y"].isna().tolist()
    assert ours["y"].dropna().tolist() == theirs["y"].dropna().tolist()


@pytest.mark.parametrize("seed", range(4))
def test_duplicate_times_match_duckdb_time_and_take_the_last_row(seed: int) -> None:
    left, right = random_case(seed, 2000, 6000, n_keys=50, n_times=30)
    got = indices(left, right)
    theirs = duckdb_asof(left, right, ["t", "k"])
    rt = right["t"].to_numpy(zero_copy_only=False)
    ours_t = pd.Series(np.where(got >= 0, rt[np.maximum(got, 0)], np.datetime64("NaT")))
    np.testing.assert_array_equal(ours_t.isna(), theirs["t"].isna())
    np.testing.assert_array_equal(ours_t.dropna().to_numpy().astype("datetime64[s]"),
                                  theirs["t"].dropna().to_numpy().astype("datetime64[s]"))
    # among the rows of the same key and time, ours is the last in right order
    rk = right["k"].to_pylist()
    for i in np.flatnonzero(got >= 0)[:300]:
        j = got[i]
        later = [m for m in range(j + 1, len(rk)) if rk[m] == rk[j] and rt[m] == rt[j]]
        assert not later


def test_stable_order_equals_a_stable_argsort() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.integers(0, 50, 10_000),                      # packs exactly
                   rng.integers(0, 2**62, 10_000),                  # cut to high bits
                   rng.integers(0, 20, 10_000) * 2**58 + rng.integers(0, 3, 10_000)):
        np.testing.assert_array_equal(asof._stable_order(values.astype(np.int64)),
                                      np.argsort(values, kind="stable"))


def test_times_too_spread_for_one_int64_use_ranks() -> None:
    rng = np.random.default_rng(1)
    years = rng.integers(1750, 2250, 500)
    rt = np.array([np.datetime64(f"{y}-01-01", "ns") for y in years]) + rng.integers(
        0, 10**9, 500).astype("timedelta64[ns]")
    lt = rt[rng.integers(0, 500, 300)] + rng.integers(-2, 3, 300).astype("timedelta64[ns]")
    rk, lk = rng.integers(0, 1000, 500) * 1000, rng.integers(0, 1000, 300) * 1000
    got = asof_indices(lk, lt, rk, rt)
    exp = slow_asof(lk.tolist(), lt.astype("int64").tolist(),
                    rk.tolist(), rt.astype("int64").tolist())
    np.testing.assert_array_equal(got, exp)


# ----------------------------------------------------------------- inputs and types


def test_units_and_kinds_of_time_are_compared_exactly() -> None:
    rt = np.array(["2024-01-01T00:00:00.000001", "2024-01-01T00:00:01"], "datetime64[us]")
    lt = np.array(["2024-01-01T00:00:00", "2024-01-01T00:00:01"], "datetime64[s]")
    np.testing.assert_array_equal(asof_indices(["a", "a"], lt, ["a", "a"], rt), [-1, 1])
    dates = pa.array([np.datetime64("2024-01-02", "D").astype(object)], pa.date32())
    ts = pa.array(np.array(["2024-01-02T00:00"], "datetime64[s]")).cast(pa.timestamp("ms"))
    np.testing.assert_array_equal(asof_indices([1], ts, [1], dates), [0])
    np.testing.assert_array_equal(asof_indices([1, 1], [5, 3], [1], [4]), [0, -1])


def test_timezone_aware_times_compare_as_instants() -> None:
    lt = pd.Series(pd.to_datetime(["2024-01-01 10:00"]).tz_localize("Europe/Paris"))
    rt = pa.array([pd.Timestamp("2024-01-01 09:00", tz="UTC")], pa.timestamp("us", tz="UTC"))
    np.testing.assert_array_equal(asof_indices(["a"], lt, ["a"], rt), [0])  # 09:00Z both
    with pytest.raises(TypeError, match="timezone-aware or both naive"):
        asof_indices(["a"], lt, ["a"], np.array(["2024-01-01"], "datetime64[us]"))


def test_keys_of_different_kinds_compare_as_text() -> None:
    t = np.array(["2024-01-01"] * 3, "datetime64[us]")
    np.testing.assert_array_equal(
        asof_indices(pd.Series(["1", "2", "x"], dtype="string"), t, [2, 1, 3], t), [1, 0, -1])
    np.testing.assert_array_equal(
        asof_indices(pa.array([1, 2, 3], pa.int32()), t, pa.array([3, 2, 1], pa.int64()), t),
        [2, 1, 0])
    cat = pd.Series(["b", "a", "b"], dtype="category")
    np.testing.assert_array_equal(asof_indices(["a", "b", "c"], t, cat, t), [1, 2, -1])


def test_no_key_matches_on_time_alone_and_empty_sides() -> None:
    lt = np.array(["2024-01-02", "2023-01-01"], "datetime64[us]")
    rt = np.array(["2024-01-01", "2024-01-02", "2024-01-02"], "datetime64[us]")
    np.testing.assert_array_equal(asof_indices(None, lt, None, rt), [2, -1])
    empty = np.array([], "datetime64[us]")
    np.testing.assert_array_equal(asof_indices([], empty, ["a"], rt[:1]), [])
    np.testing.assert_array_equal(asof_indices(["a"], lt[:1], [], empty), [-1])
    np.testing.assert_array_equal(asof_indices(["a"], lt[:1], [None], rt[:1]), [-1])


def test_bad_inputs_are_refused_with_what_to_do() -> None:
    t = np.array(["2024-01-01"], "datetime64[us]")
    with pytest.raises(ValueError, match="keys on both sides or on neither"):
        asof_indices(["a"], t, None, t)
    with pytest.raises(ValueError, match="left keys and times must have one value per row"):
        asof_indices(["a", "b"], t, ["a"], t)
    with pytest.raises(TypeError, match=r"right times must be dates.*got values of type double"):
        asof_indices(["a"], t, ["a"], np.array([1.5]))
    with pytest.raises(TypeError, match="both be dates/timestamps or both be integers"):
        asof_indices(["a"], t, ["a"], np.array([1]))
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        asof_indices(["a"], t, ["a"], t, threads=0)


# --------------------------------------------------------------------------- frames


def test_join_keeps_every_pandas_row_index_and_order() -> None:
    left = pd.DataFrame({"id": ["a", "b", "a", "zz"], "origin": pd.to_datetime(
        ["2024-01-05", "2024-01-05", "2023-12-31", "2024-01-05"])}, index=[7, 7, 3, 1])
    right = pd.DataFrame({"id": ["a", "a", "b"], "day": pd.to_datetime(
        ["2024-01-01", "2024-01-04", "2024-01-06"]), "n": [1, 2, 3], "s": ["x", "y", "z"]})
    out = asof_join(left, right, "id", "origin", "day", {"n": "n_last", "s": "s_last"})
    assert list(out.index) == [7, 7, 3, 1]
    pd.testing.assert_frame_equal(out[["id", "origin"]], left)
    assert out["n_last"].tolist()[:1] == [2.0] and out["n_last"].isna().tolist() == [
        False, True, True, True]
    assert out["s_last"].tolist()[0] == "y" and out["s_last"].isna().sum() == 3


def test_join_arrow_in_arrow_out_with_key_names_per_side() -> None:
    left = pa.table({"store": ["s1", "s2"], "at": pa.array(
        [np.datetime64("2024-01-03", "us")] * 2)})
    right = pd.DataFrame({"store_id": ["s1", "s1"], "ts": pd.to_datetime(
        ["2024-01-01", "2024-01-02"]), "v": [1.5, np.nan]})
    out = asof_join(left, right, ("store", "store_id"), "at", "ts")
    assert isinstance(out, pa.Table)
    assert out.column_names == ["store", "at", "v"]
    assert out["v"].to_pylist() == [None, None]  # the match's value is NaN, s2 has none
    assert out["v"].null_count == 2


def test_join_refuses_clashing_and_missing_columns() -> None:
    left = pd.DataFrame({"k": ["a"], "t": pd.to_datetime(["2024-01-01"]), "x": [0]})
    right = pd.DataFrame({"k": ["a"], "t": pd.to_datetime(["2024-01-01"]), "x": [1]})
    with pytest.raises(ValueError, match=r"\['x'\] that the left side already has.*mapping"):
        asof_join(left, right, "k", "t", "t")
    with pytest.raises(KeyError, match=r"right side has no column\(s\) \['nope'\]"):
        asof_join(left, right, "k", "t", "t", ["nope"])
    assert asof_join(left, right, "k", "t", "t", {"x": "x_right"})["x_right"].tolist() == [1]


# ----------------------------------------------------------------------- properties

key = st.one_of(st.none(), st.integers(0, 3))
when = st.one_of(st.none(), st.integers(0, 12))
rows = st.lists(st.tuples(key, when), max_size=25)


def _arrays(rs: list[tuple]) -> tuple[pa.Array, pa.Array]:
    return (pa.array([r[0] for r in rs], pa.int64()),
            pa.array([None if r[1] is None else r[1] * 60 for r in rs], pa.timestamp("s")))


@settings(max_examples=200, deadline=None)
@given(left=rows, right=rows)
def test_property_match_is_same_key_and_never_after_the_left_time(left: list, right: list) -> None:
    got = asof_indices(*_arrays(left), *_arrays(right))
    np.testing.assert_array_equal(got, slow_asof([r[0] for r in left], [r[1] for r in left],
                                                 [r[0] for r in right], [r[1] for r in right]))
    for i, j in enumerate(got):
        if j >= 0:
            assert right[j][0] == left[i][0]
            assert right[j][1] <= left[i][1]


@settings(max_examples=200, deadline=None)
@given(left=rows, right=rows, data=st.data())
def test_property_rows_after_the_left_time_never_change_its_result(
        left: list, right: list, data: st.DataObject) -> None:
    if not left:
        return
    i = data.draw(st.integers(0, len(left) - 1))
    before = asof_indices(*_arrays(left), *_arrays(right))
    t_i = left[i][1]
    changed = list(right)
    for j, (_, t) in enumerate(right):
        if t is not None and t_i is not None and t > t_i:
            changed[j] = (data.draw(key), data.draw(st.integers(t_i + 1, 20)))
    assert asof_indices(*_arrays(left), *_arrays(changed))[i] == before[i]
    if t_i is not None:  # and their values never reach the left row
        frame_l = pa.table(dict(zip(["k", "t"], _arrays(left), strict=True)))
        values = pa.array(np.arange(len(right), dtype=np.float64))
        future = [j for j, (_, t) in enumerate(right) if t is not None and t > t_i]
        other = pa.array([1e6 + j if j in future else float(j) for j in range(len(right))],
                         pa.float64())
        r1 = pa.table(dict(zip(["k", "t"], _arrays(right), strict=True))).append_column(
            "v", values)
        r2 = r1.set_column(2, "v", other)
        a = asof_join(frame_l, r1, "k", "t", "t", ["v"])["v"][i]
        b = asof_join(frame_l, r2, "k", "t", "t", ["v"])["v"][i]
        assert a == b


@settings(max_examples=100, deadline=None)
@given(left=rows, right=rows)
def test_property_every_left_row_is_kept_in_order(left: list, right: list) -> None:
    lk, lt = _arrays(left)
    frame = pd.DataFrame({"k": lk.to_pandas(), "t": lt.to_pandas(),
                          "pos": np.arange(len(left))})
    rk, rt = _arrays(right)
    rframe = pa.table({"k": rk, "t": rt, "v": pa.array(np.arange(len(right), dtype=float))})
    out = asof_join(frame, rframe, "k", "t", "t")
    assert len(out) == len(left)
    pd.testing.assert_frame_equal(out[["k", "t", "pos"]], frame)
    assert out["v"].notna().sum() == int((asof_indices(lk, lt, rk, rt) >= 0).sum())


def test_nanosecond_neighbours_over_decades_are_ordered_exactly() -> None:
    # the combined (key, time) needs more bits than a packed sort has: the high bits are
    # sorted first and colliding runs put in exact order
    rng = np.random.default_rng(2)
    base = rng.integers(0, 3 * 10**17, 200)  # ns over ~10 years
    rt = (np.repeat(base, 3) + np.tile([0, 1, 1], 200)).astype("datetime64[ns]")
    rk = rng.integers(0, 8, 600)
    perm = rng.permutation(600)
    rt, rk = rt[perm], rk[perm]
    lt = rt[rng.integers(0, 600, 400)] + rng.integers(-1, 2, 400).astype("timedelta64[ns]")
    lk = rng.integers(0, 8, 400)
    exp = slow_asof(lk.tolist(), lt.astype("int64").tolist(),
                    rk.tolist(), rt.astype("int64").tolist())
    np.testing.assert_array_equal(asof_indices(lk, lt, rk, rt), exp)


def test_gathered_values_equal_arrow_take_for_every_type_and_chunking() -> None:
    import datetime
    import decimal

    rng = np.random.default_rng(5)
    n = 300
    mask = rng.random(n) < 0.2
    t0 = datetime.datetime(2024, 1, 1)
    cols = {
        "i8": pa.array(rng.integers(-100, 100, n), pa.int8(), mask=mask),
        "u32": pa.array(rng.integers(0, 1000, n), pa.uint32()),
        "f32": pa.array(rng.normal(size=n), pa.float32(), mask=mask),
        "f64": pa.array(rng.normal(size=n), mask=mask),
        "ts": pa.array([t0 + datetime.timedelta(hours=int(h)) for h in range(n)],
                       pa.timestamp("ms", tz="UTC"), mask=mask),
        "d32": pa.array([datetime.date(2024, 1, 1) + datetime.timedelta(days=d)
                         for d in range(n)], pa.date32()),
        "b": pa.array(rng.random(n) < 0.5, mask=mask),
        "s": pa.array([f"v{i}" for i in range(n)], mask=mask),
        "dec": pa.array([decimal.Decimal(i) / 4 for i in range(n)], pa.decimal128(10, 2)),
        "cat": pa.array([f"c{i % 3}" for i in range(n)]).dictionary_encode(),
    }
    right = pa.table({"k": pa.array(rng.integers(0, 20, n)), "t": pa.array(
        np.arange(n) * rng.integers(1, 3, n), pa.timestamp("s")), **cols})
    # many chunks, some of them slices with an offset
    right = pa.concat_tables([right.slice(0, 7), right.slice(7, 100), right.slice(107)])
    left = pa.table({"k": pa.array(rng.integers(0, 25, 400)),
                     "t": pa.array(rng.integers(-5, 2 * n, 400), pa.timestamp("s"))})
    idx = asof_indices(left["k"], left["t"], right["k"], right["t"])
    want = pa.array(idx, mask=idx < 0)
    for source in (right, right.combine_chunks()):
        out = asof_join(left, source, "k", "t", "t", list(cols))
        for c in cols:
            expected = source[c].take(want)
            assert out[c].type == expected.type
            assert out[c].to_pylist() == expected.to_pylist(), c
