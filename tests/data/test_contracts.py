"""Unit and property tests of ``tuesday.contracts.validate``.

Every check is exercised on its own (report problem: check, column, count, example rows
and values; typed accepted frame), then hypothesis throws messy batches at a generated
contract and checks the invariants: nothing is lost, every quarantined row says why,
every accepted row meets the contract, and quarantine keeps the original values.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuesday.data.contracts import (
    MAX_EXAMPLES,
    BatchCheck,
    Mapped,
    Problem,
    Validation,
    history_check,
    validate,
)
from tuesday.errors import ValidationFailed
from tuesday.project import (
    Column,
    Contract,
    Entity,
    Freshness,
    MinHistory,
    Project,
    Source,
    Taxonomy,
    Volume,
    check_project,
)

# --------------------------------------------------------------------------- helpers


def only(v: Validation, check: str, column: str) -> Problem:
    """The single problem with this check and column."""
    found = [p for p in v.report.problems if p.check == check and p.column == column]
    assert len(found) == 1, f"expected one {check} problem on {column!r}: {v.report.problems}"
    return found[0]


def rows_of(p: Problem) -> list[int]:
    return [e["row"] for e in p.examples]


def values_of(p: Problem) -> list[Any]:
    return [e["value"] for e in p.examples]


def checks(v: Validation) -> set[tuple[str, str]]:
    return {(p.check, p.column) for p in v.report.problems}


def reasons_by_row(v: Validation) -> dict[int, list[str]]:
    q = v.quarantined
    return {int(r): s.split("; ") for r, s in zip(q["row"], q["reasons"], strict=True)}


def assert_balanced(v: Validation, n: int) -> None:
    r = v.report
    assert r.received == n
    assert r.accepted == len(v.accepted)
    assert r.quarantined == len(v.quarantined)
    assert r.accepted + r.quarantined == r.received


def one_col(col: Column, values: list[Any], **kw: Any) -> Validation:
    return validate(pd.DataFrame({col.name: values}), Contract((col,)), **kw)


# ----------------------------------------------------------------------- type checks


def test_int_type() -> None:
    v = one_col(Column("n", "int"), ["1", "abc", " 7 ", "2.0", "-3", "x1"])
    p = only(v, "type", "n")
    assert p.count == 2
    assert rows_of(p) == [2, 6]
    assert values_of(p) == ["abc", "x1"]
    assert "int" in p.message and "'n'" in p.message
    assert str(v.accepted["n"].dtype) == "Int64"
    assert v.accepted["n"].tolist() == [1, 7, 2, -3]
    assert_balanced(v, 6)


def test_int_with_fractional_part_is_a_type_problem() -> None:
    v = one_col(Column("n", "int"), ["1.5", "2.0", "-0.25", "3"])
    p = only(v, "type", "n")
    assert (p.count, rows_of(p), values_of(p)) == (2, [1, 3], ["1.5", "-0.25"])
    assert v.accepted["n"].tolist() == [2, 3]
    assert str(v.accepted["n"].dtype) == "Int64"


def test_float_type() -> None:
    v = one_col(Column("x", "float"), ["1.5", "one", "-2", "1e3", "3,5"])
    p = only(v, "type", "x")
    assert (p.count, rows_of(p), values_of(p)) == (2, [2, 5], ["one", "3,5"])
    assert v.accepted["x"].dtype == np.float64
    assert v.accepted["x"].tolist() == [1.5, -2.0, 1000.0]


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity", "1e400"])
def test_inf_in_float_is_a_type_problem(text: str) -> None:
    v = one_col(Column("x", "float"), ["1.0", text])
    p = only(v, "type", "x")
    assert (p.count, rows_of(p), values_of(p)) == (1, [2], [text])
    assert v.accepted["x"].tolist() == [1.0]


def test_inf_in_typed_float_column() -> None:
    v = one_col(Column("x", "float"), [1.0, np.inf, -np.inf])
    p = only(v, "type", "x")
    assert (p.count, rows_of(p)) == (2, [2, 3])
    # JSON has no infinity: examples show it as text so reports always serialise
    assert values_of(p) == ["inf", "-inf"]
    assert v.accepted["x"].tolist() == [1.0]


def test_date_type() -> None:
    v = one_col(Column("d", "date"),
                ["2024-01-31", "2024-13-01", "yesterday", "2024-02-30", "2024-03-01 10:30"])
    p = only(v, "type", "d")
    assert p.count == 4
    assert rows_of(p) == [2, 3, 4, 5]
    assert values_of(p) == ["2024-13-01", "yesterday", "2024-02-30", "2024-03-01 10:30"]
    assert v.accepted["d"].dtype == np.dtype("datetime64[us]")
    assert v.accepted["d"].tolist() == [pd.Timestamp("2024-01-31")]


def test_date_at_midnight_is_a_date() -> None:
    v = one_col(Column("d", "date"), ["2024-03-01 00:00:00", "2024-03-02T00:00"])
    assert v.report.ok
    assert v.accepted["d"].tolist() == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-02")]


def test_timestamp_type() -> None:
    v = one_col(Column("t", "timestamp"),
                ["2024-01-01T10:30:00", "noon", "2024-01-01 23:59:59.5", "2024-01-01T25:00"])
    p = only(v, "type", "t")
    assert (p.count, rows_of(p), values_of(p)) == (2, [2, 4], ["noon", "2024-01-01T25:00"])
    assert v.accepted["t"].dtype == np.dtype("datetime64[us]")
    assert v.accepted["t"].tolist() == [pd.Timestamp("2024-01-01 10:30"),
                                        pd.Timestamp("2024-01-01 23:59:59.5")]


def test_timezone_aware_timestamps_become_naive_utc() -> None:
    v = one_col(Column("t", "timestamp"), ["2024-01-01T12:00:00+02:00",
                                          "2024-06-01T00:30:00+02:00"])
    assert v.report.ok
    assert v.accepted["t"].dtype == np.dtype("datetime64[us]")
    assert v.accepted["t"].tolist() == [pd.Timestamp("2024-01-01 10:00"),
                                        pd.Timestamp("2024-05-31 22:30")]


@pytest.mark.parametrize("values", [
    ["2024-03-30T12:00:00+01:00", "2024-04-01T12:00:00+02:00"],  # Europe/Paris over DST
    ["2024-01-01T12:00:00Z", "2024-01-01T12:00:00+02:00"],
    ["2024-01-01T12:00:00", "2024-01-01T12:00:00+02:00"],
])
def test_timestamps_with_mixed_offsets(values: list[str]) -> None:
    v = one_col(Column("t", "timestamp"), values)
    assert_balanced(v, 2)
    assert v.accepted["t"].dtype == np.dtype("datetime64[us]")


def test_single_offset_timestamp_is_not_treated_as_mixed() -> None:
    v = one_col(Column("t", "timestamp"), ["2024-01-01T12:00:00+02:00", "garbage", ""])
    p = only(v, "type", "t")
    assert (p.count, rows_of(p), values_of(p)) == (1, [2], ["garbage"])
    assert v.accepted["t"].iloc[0] == pd.Timestamp("2024-01-01 10:00")
    assert pd.isna(v.accepted["t"].iloc[1])


def test_timezone_aware_typed_timestamps_become_utc() -> None:
    raw = pd.Series(pd.to_datetime(["2024-01-01T12:00:00"]).tz_localize("Europe/Paris"))
    v = one_col(Column("t", "timestamp"), raw)
    assert v.accepted["t"].tolist() == [pd.Timestamp("2024-01-01 11:00")]


def test_typed_datetime_with_time_in_date_column() -> None:
    raw = pd.Series([pd.Timestamp("2024-01-01 13:45"), pd.Timestamp("2024-01-02")])
    v = one_col(Column("d", "date"), raw)
    p = only(v, "type", "d")
    assert (p.count, rows_of(p)) == (1, [1])


def test_bool_type() -> None:
    v = one_col(Column("b", "bool"),
                ["true", "FALSE", " yes ", "n", "T", "0", "1", "maybe", "2"])
    p = only(v, "type", "b")
    assert (p.count, rows_of(p), values_of(p)) == (2, [8, 9], ["maybe", "2"])
    assert str(v.accepted["b"].dtype) == "boolean"
    assert v.accepted["b"].tolist() == [True, False, True, False, True, False, True]


def test_typed_bool_column_is_accepted_and_floats_are_not_bools() -> None:
    frame = pd.DataFrame({"b": pd.array([True, False, None], dtype="boolean"),
                          "c": [1.0, 0.5, 0.0]})
    v = validate(frame, Contract((Column("b", "bool"), Column("c", "bool"))))
    p = only(v, "type", "c")
    assert (p.count, rows_of(p), values_of(p)) == (3, [1, 2, 3], [1.0, 0.5, 0.0])


def test_bool_dtype_into_number_column_is_a_type_problem() -> None:
    v = one_col(Column("n", "int"), pd.Series([True, False]))
    assert only(v, "type", "n").count == 2


def test_bool_value_in_mixed_column_into_number_column() -> None:
    v = one_col(Column("n", "int"), pd.Series([True, "2"], dtype=object))
    p = only(v, "type", "n")
    assert (p.count, rows_of(p)) == (1, [1])


def test_str_column_accepts_anything_present() -> None:
    v = one_col(Column("s", "str"), ["a", " b ", "12", None])
    assert v.report.ok
    assert str(v.accepted["s"].dtype) == "string"
    assert v.accepted["s"].tolist()[:3] == ["a", " b ", "12"]
    assert pd.isna(v.accepted["s"].iloc[3])


@pytest.mark.parametrize("raw", [["9007199254740993"], np.array([2**53 + 1], dtype="int64")])
def test_large_int_is_not_rounded(raw: Any) -> None:
    v = one_col(Column("n", "int"), raw)
    assert v.accepted["n"].tolist() == [2**53 + 1]


@pytest.mark.parametrize("text", ["100000000000000000000", "-1e30"])
def test_int_out_of_int64_range_is_a_type_problem(text: str) -> None:
    v = one_col(Column("n", "int"), [text])
    assert only(v, "type", "n").count == 1
    assert v.report.accepted == 0


# ----------------------------------------------------------------- nulls and blanks


def test_null_on_non_nullable() -> None:
    v = one_col(Column("n", "int", nullable=False), ["1", None, "", "4", np.nan])
    p = only(v, "null", "n")
    assert (p.count, rows_of(p)) == (3, [2, 3, 5])
    assert values_of(p) == [None, "", None]
    assert "must not be empty" in p.message
    assert v.accepted["n"].tolist() == [1, 4]


def test_null_on_nullable_is_accepted_as_missing() -> None:
    v = one_col(Column("x", "float"), ["1", None, ""])
    assert v.report.ok
    assert v.accepted["x"].isna().tolist() == [False, True, True]


@pytest.mark.parametrize("dtype", ["int", "float", "str", "bool", "date", "timestamp"])
def test_blank_strings_are_missing(dtype: str) -> None:
    blanks = ["", " ", "   ", "\t", " \t "]
    ok = one_col(Column("c", dtype), blanks)
    assert ok.report.ok, ok.report.summary()
    assert ok.accepted["c"].isna().all()
    bad = one_col(Column("c", dtype, nullable=False), blanks)
    p = only(bad, "null", "c")
    assert (p.count, rows_of(p), values_of(p)) == (5, [1, 2, 3, 4, 5], blanks)
    assert checks(bad) == {("null", "c")}  # blank is missing, not a type problem


def test_type_problem_is_not_also_a_null_problem() -> None:
    v = one_col(Column("n", "int", nullable=False), ["x"])
    assert checks(v) == {("type", "n")}


# --------------------------------------------------------------------- range, allowed


def test_min_and_max() -> None:
    v = one_col(Column("x", "float", min=0, max=10),
                ["0", "10", "-0.5", "10.01", "5", "-3", ""])
    lo = [p for p in v.report.problems if p.check == "range" and ">=" in p.message]
    hi = [p for p in v.report.problems if p.check == "range" and "<=" in p.message]
    assert len(lo) == 1 and len(hi) == 1
    assert (lo[0].column, lo[0].count, rows_of(lo[0]), values_of(lo[0])) == (
        "x", 2, [3, 6], ["-0.5", "-3"])
    assert (hi[0].count, rows_of(hi[0]), values_of(hi[0])) == (1, [4], ["10.01"])
    assert ">= 0" in lo[0].message and "<= 10" in hi[0].message
    assert v.accepted["x"].tolist()[:3] == [0.0, 10.0, 5.0]  # bounds are inclusive
    assert reasons_by_row(v) == {3: ["range:x"], 4: ["range:x"], 6: ["range:x"]}


def test_int_range() -> None:
    v = one_col(Column("n", "int", min=1, max=3), ["0", "1", "3", "4"])
    assert sorted(rows_of(p)[0] for p in v.report.problems if p.check == "range") == [1, 4]
    assert v.accepted["n"].tolist() == [1, 3]


def test_type_problem_is_not_also_a_range_problem() -> None:
    v = one_col(Column("x", "float", min=0), ["-inf", "abc"])
    assert checks(v) == {("type", "x")}


def test_allowed_str() -> None:
    v = one_col(Column("c", "str", allowed=("red", "green")),
                ["red", "blue", "green", "Red", None])
    p = only(v, "allowed", "c")
    assert (p.count, rows_of(p), values_of(p)) == (2, [2, 4], ["blue", "Red"])
    assert "['red', 'green']" in p.message
    assert v.accepted["c"].tolist()[:2] == ["red", "green"]
    assert pd.isna(v.accepted["c"].iloc[2])  # a null is not outside the set


def test_allowed_int() -> None:
    v = one_col(Column("n", "int", allowed=(1, 2)), ["1", "2", "3", "2.0"])
    p = only(v, "allowed", "n")
    assert (p.count, rows_of(p), values_of(p)) == (1, [3], ["3"])
    assert v.accepted["n"].tolist() == [1, 2, 2]


# ------------------------------------------------------------------------ uniqueness

KEYED = Contract((Column("id", "int", nullable=False), Column("x", "float")), unique=("id",))


def test_duplicate_key_within_batch_quarantines_every_copy() -> None:
    frame = pd.DataFrame({"id": ["1", "2", "1", "3", "2", "1.0"],
                          "x": ["0", "1", "2", "3", "4", "5"]})
    v = validate(frame, KEYED)
    p = only(v, "duplicate_key", "id")
    assert p.count == 5
    assert rows_of(p) == [1, 2, 3, 5, 6]
    assert values_of(p) == ["1", "2", "1", "2", "1"]  # the typed key: "1.0" is key 1
    assert "all copies are quarantined" in p.message
    assert v.accepted["id"].tolist() == [3]
    assert set(reasons_by_row(v)) == {1, 2, 3, 5, 6}


def test_duplicate_composite_key() -> None:
    c = Contract((Column("s", "str"), Column("d", "date"), Column("x", "float")),
                 unique=("s", "d"))
    frame = pd.DataFrame({"s": ["a", "a", "b", "a"],
                          "d": ["2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"],
                          "x": ["1", "2", "3", "4"]})
    v = validate(frame, c)
    p = only(v, "duplicate_key", "s+d")
    assert (p.count, rows_of(p)) == (2, [1, 4])
    assert values_of(p) == ["a|2024-01-01", "a|2024-01-01"]
    assert v.accepted["x"].tolist() == [2.0, 3.0]


def test_unreadable_keys_are_not_duplicates_of_each_other() -> None:
    v = validate(pd.DataFrame({"id": ["x", "y", "1"], "x": ["1", "2", "3"]}), KEYED)
    assert checks(v) == {("type", "id")}


def test_existing_key_against_the_table() -> None:
    frame = pd.DataFrame({"id": ["1", "2", "3", "5"], "x": ["0", "0", "0", "0"]})
    existing = pd.DataFrame({"id": np.array([2, 5, 9], dtype="int64")})
    v = validate(frame, KEYED, existing_keys=existing)
    p = only(v, "existing_key", "id")
    assert (p.count, rows_of(p), values_of(p)) == (2, [2, 4], ["2", "5"])
    assert "already in the table" in p.message
    assert v.accepted["id"].tolist() == [1, 3]
    assert reasons_by_row(v) == {2: ["existing_key:id"], 4: ["existing_key:id"]}


def test_existing_composite_key_with_dates() -> None:
    c = Contract((Column("s", "str"), Column("d", "date")), unique=("s", "d"))
    existing = pd.DataFrame({"s": ["a"], "d": pd.to_datetime(["2024-01-02"])})
    frame = pd.DataFrame({"s": ["a", "a", "b"], "d": ["2024-01-01", "2024-01-02", "2024-01-02"]})
    v = validate(frame, c, existing_keys=existing)
    p = only(v, "existing_key", "s+d")
    assert (p.count, rows_of(p)) == (1, [2])
    assert v.accepted["s"].tolist() == ["a", "b"]


def test_no_existing_keys_means_no_existing_key_check() -> None:
    frame = pd.DataFrame({"id": ["1"], "x": ["0"]})
    v = validate(frame, KEYED, existing_keys=pd.DataFrame({"id": pd.Series([], dtype="int64")}))
    assert v.report.ok


# ---------------------------------------------------------------------- columns


def test_extra_column_rejected() -> None:
    frame = pd.DataFrame({"id": ["1", "2"], "x": ["1", "2"], "note": ["hi", None]})
    v = validate(frame, KEYED)
    p = only(v, "extra_column", "note")
    assert (p.count, rows_of(p), values_of(p)) == (2, [1, 2], ["hi", None])
    assert "extra_columns='warn'" in p.message
    assert v.report.accepted == 0 and v.report.quarantined == 2
    assert reasons_by_row(v) == {1: ["extra_column:note"], 2: ["extra_column:note"]}
    assert json.loads(v.quarantined["values"].iloc[0]) == {"id": "1", "x": "1", "note": "hi"}


def test_extra_column_dropped() -> None:
    c = Contract(KEYED.columns, unique=("id",), extra_columns="drop")
    frame = pd.DataFrame({"id": ["1", "2"], "x": ["1", "2"], "note": ["hi", None]})
    v = validate(frame, c)
    assert v.report.ok
    assert v.report.warnings == ("Column 'note' is not in the contract and was dropped.",)
    assert list(v.accepted.columns) == ["id", "x"]
    assert v.accepted["id"].tolist() == [1, 2]


def test_missing_required_column_refuses_the_batch_once() -> None:
    c = Contract((Column("id", "int", nullable=False), Column("x", "float", nullable=False),
                  Column("y", "str", nullable=False)))
    with pytest.raises(ValidationFailed) as got:
        validate(pd.DataFrame({"id": ["1", "2", "3"]}), c)
    assert "missing required column(s) 'x' (float), 'y' (str)" in got.value.message
    assert "its columns are 'id'" in got.value.message
    assert got.value.exit_code == 7 and got.value.details == {"missing_columns": ["x", "y"]}


def test_missing_optional_column_is_filled_with_nulls() -> None:
    c = Contract((Column("id", "int", nullable=False), Column("x", "float"),
                  Column("s", "str"), Column("d", "date"), Column("b", "bool")))
    v = validate(pd.DataFrame({"id": ["1", "2"]}), c)
    assert v.report.ok
    assert len(v.report.warnings) == 4
    assert "Optional column 'x' is missing; filled with nulls." in v.report.warnings
    assert v.accepted[["x", "s", "d", "b"]].isna().all().all()
    assert {k: str(t) for k, t in v.accepted.dtypes.items()} == {
        "id": "Int64", "x": "float64", "s": "string", "d": "datetime64[us]", "b": "boolean"}


# -------------------------------------------------------------- the batch as a whole

FULL = Contract((
    Column("id", "int", nullable=False),
    Column("name", "str", nullable=False),
    Column("day", "date", nullable=False),
    Column("at", "timestamp"),
    Column("x", "float", min=0, max=100),
    Column("flag", "bool"),
    Column("kind", "str", allowed=("a", "b")),
), unique=("id",))


def test_every_problem_at_once_and_every_reason_per_row() -> None:
    frame = pd.DataFrame({
        "id": ["1", "2", "3", "3", "x", "6"],
        "name": ["a", "", "c", "d", "e", "f"],
        "day": ["2024-01-01", "2024-01-02", "bad", "2024-01-04", "2024-01-05", "2024-01-06"],
        "at": ["2024-01-01T00:00", "", "2024-01-03T08:00", "", "then", ""],
        "x": ["1", "200", "3", "-1", "5", "6"],
        "flag": ["yes", "no", "", "maybe", "1", "0"],
        "kind": ["a", "b", "c", "a", "b", "a"],
    })
    v = validate(frame, FULL, source="orders", first_row=2)
    assert v.report.source == "orders"
    assert_balanced(v, 6)
    assert checks(v) == {("null", "name"), ("type", "day"), ("type", "at"), ("range", "x"),
                         ("type", "flag"), ("allowed", "kind"), ("type", "id"),
                         ("duplicate_key", "id")}
    assert reasons_by_row(v) == {
        3: ["null:name", "range:x"],
        4: ["type:day", "allowed:kind", "duplicate_key:id"],
        5: ["range:x", "type:flag", "duplicate_key:id"],
        6: ["type:id", "type:at"],
    }
    assert v.reasons == {1: ["null:name", "range:x"],
                         2: ["type:day", "allowed:kind", "duplicate_key:id"],
                         3: ["range:x", "type:flag", "duplicate_key:id"],
                         4: ["type:id", "type:at"]}
    assert v.accepted["id"].tolist() == [1, 6]
    assert {k: str(t) for k, t in v.accepted.dtypes.items()} == {
        "id": "Int64", "name": "string", "day": "datetime64[us]", "at": "datetime64[us]",
        "x": "float64", "flag": "boolean", "kind": "string"}
    assert v.quarantined["row"].tolist() == [3, 4, 5, 6]
    assert str(v.quarantined["row"].dtype) == "int64"
    summary = v.report.summary()
    assert "orders: received 6, accepted 2, quarantined 4." in summary
    assert "range on 'x': 1 row(s). Values of 'x' must be <= 100. Examples: row 3: '200'." \
        in summary
    json.dumps(v.report.to_dict())  # the report is plain JSON


def test_examples_are_capped() -> None:
    v = one_col(Column("n", "int"), [str(i) + "x" for i in range(12)])
    p = only(v, "type", "n")
    assert p.count == 12
    assert rows_of(p) == [1, 2, 3, 4, 5] and len(p.examples) == MAX_EXAMPLES


def test_empty_batch() -> None:
    v = validate(pd.DataFrame({"id": pd.Series([], dtype=object)}), KEYED)
    assert_balanced(v, 0)
    assert v.report.ok


def test_index_of_input_does_not_matter() -> None:
    frame = pd.DataFrame({"id": ["1", "x"], "x": ["1", "2"]}, index=[10, 3])
    v = validate(frame, KEYED)
    assert v.quarantined["row"].tolist() == [2]
    assert v.accepted["id"].tolist() == [1]


def test_pd_na_is_reported_as_null() -> None:
    frame = pd.DataFrame({"id": pd.array([1, None], dtype="Int64"),
                          "x": pd.array([1.5, None], dtype="Float64")})
    v = validate(frame, KEYED)
    assert values_of(only(v, "null", "id")) == [None]
    assert json.loads(v.quarantined["values"].iloc[0]) == {"id": None, "x": None}


# -------------------------------------------------------------------- properties

CANDIDATES = {
    "id": Column("id", "int", nullable=False),
    "n": Column("n", "int", min=-5, max=50),
    "x": Column("x", "float", min=0.0),
    "y": Column("y", "float", nullable=False, max=1e3),
    "s": Column("s", "str", nullable=False),
    "k": Column("k", "str", allowed=("a", "b", "c")),
    "b": Column("b", "bool"),
    "d": Column("d", "date", nullable=False),
    "t": Column("t", "timestamp"),
    "m": Column("m", "int", allowed=(0, 1, 2)),
}

LOOKS_TYPED = st.sampled_from([
    "", " ", "\t", "0", "1", "2", "-3", "7.0", "2.5", "-0.5", "1e3", "1e300", "nan", "inf",
    "-inf", "true", "False", "yes", "N", "a", "b", "c", "A", "2024-01-01", "2024-02-30",
    "2024-01-01 13:00", "2024-01-01T00:00:00", "2023-12-31T23:59:59.5", "20240101",
    "abc", "1,5", "None", "null",
])
CELL = st.one_of(
    st.none(),
    LOOKS_TYPED,
    st.text(max_size=6),
    st.integers(-1_000_000, 1_000_000),
    st.floats(-1e6, 1e6),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
KEY_CELL = st.one_of(st.sampled_from(["1", "2", "3", "1.0", "x", "", None]),
                     st.integers(0, 30), st.integers(0, 30).map(str))
PLAUSIBLE = {  # values that usually pass, so that batches have accepted rows too
    "int": st.one_of(st.integers(-5, 50), st.integers(-5, 50).map(str)),
    "float": st.one_of(st.floats(0, 1e3), st.floats(0, 1e3).map(repr)),
    "str": st.sampled_from(["a", "b", "c", " b", "hello"]),
    "bool": st.sampled_from(["true", "no", "1", "F", True, False]),
    "date": st.dates().map(str),
    "timestamp": st.datetimes().map(lambda d: d.isoformat()),
}


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    names = draw(st.lists(st.sampled_from(sorted(CANDIDATES)), min_size=1, max_size=6,
                          unique=True))
    keyed = draw(st.booleans())
    if keyed and "id" not in names:
        names = ["id", *names]
    cols = tuple(CANDIDATES[n] for n in names)
    unique: tuple[str, ...] = ()
    if keyed:
        unique = ("id", "d") if "d" in names and draw(st.booleans()) else ("id",)
    return Contract(cols, unique=unique,
                    extra_columns=draw(st.sampled_from(["reject", "drop"])))


@st.composite
def messy_batches(draw: st.DrawFn) -> tuple[pd.DataFrame, Contract, list[dict[str, Any]]]:
    contract = draw(contracts())
    n = draw(st.integers(0, 12))
    present = [c.name for c in contract.columns
               if c.name in contract.unique or draw(st.integers(0, 9)) > 0]
    extras = draw(st.lists(st.sampled_from(["extra", "note", "zz"]), max_size=2, unique=True)
                  if draw(st.integers(0, 3)) == 0 else st.just([]))
    data: dict[str, list[Any]] = {}
    mess = draw(st.sampled_from([3, 15, 50, 100]))  # percent of cells drawn from CELL
    for name in [*present, *extras]:
        col = contract.column(name)
        if name == "id" or col is None:
            data[name] = draw(st.lists(KEY_CELL if name == "id" else CELL, min_size=n,
                                       max_size=n))
        else:
            data[name] = [draw(CELL if draw(st.integers(0, 99)) < mess
                               else PLAUSIBLE[col.dtype]) for _ in range(n)]
    records = [{k: data[k][i] for k in data} for i in range(n)]
    if n and draw(st.booleans()):  # duplicate some whole rows
        for i in draw(st.lists(st.integers(0, n - 1), max_size=3)):
            records.append(dict(records[i]))
    object_dtype = draw(st.booleans())
    frame = pd.DataFrame({k: pd.Series([r[k] for r in records],
                                       dtype=object if object_dtype else None)
                          for k in data}, index=range(len(records)))
    return frame, contract, records


def _normal(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_batches())
def test_property_nothing_lost_and_every_reason_kept(
        batch: tuple[pd.DataFrame, Contract, list[dict[str, Any]]]) -> None:
    frame, contract, records = batch
    try:
        v = validate(frame, contract, first_row=1)
    except ValidationFailed as exc:  # a column the contract needs is missing: one error
        assert "missing" in exc.message and exc.details["missing_columns"]
        return
    assert_balanced(v, len(records))

    # Every quarantined row has at least one reason, and the reasons add up to the report.
    rows = reasons_by_row(v)
    assert len(rows) == v.report.quarantined
    assert all(r and all(r) for r in rows.values())
    per_reason: dict[str, int] = {}
    for p in v.report.problems:
        key = f"{p.check}:{p.column}"
        per_reason[key] = per_reason.get(key, 0) + p.count
        assert 0 < len(p.examples) <= min(p.count, MAX_EXAMPLES)
        for e in p.examples:
            assert e["row"] in rows and key in rows[e["row"]]
    for key, count in per_reason.items():
        assert sum(key in r for r in rows.values()) == count

    # Original values in quarantine round-trip through JSON to the input.
    for row, text in zip(v.quarantined["row"], v.quarantined["values"], strict=True):
        original = {k: _normal(val) for k, val in records[int(row) - 1].items()}
        assert json.loads(text) == original

    # Accepted rows meet the contract: validating them again finds nothing.
    assert list(v.accepted.columns) == list(contract.names)
    again = validate(v.accepted, contract)
    assert again.report.ok, again.report.summary()
    assert again.report.accepted == v.report.accepted
    pd.testing.assert_frame_equal(again.accepted, v.accepted)


@settings(max_examples=40, deadline=None)
@given(messy_batches(), st.lists(st.integers(0, 5), max_size=4))
def test_property_existing_keys_never_accepted(
        batch: tuple[pd.DataFrame, Contract, list[dict[str, Any]]], seen: list[int]) -> None:
    frame, contract, records = batch
    if contract.unique != ("id",):
        contract = Contract(contract.columns if "id" in contract.names
                            else (CANDIDATES["id"], *contract.columns),
                            unique=("id",), extra_columns=contract.extra_columns)
        if "id" not in frame.columns:
            return
    existing = pd.DataFrame({"id": np.array(seen, dtype="int64")})
    try:
        v = validate(frame, contract, existing_keys=existing)
    except ValidationFailed as exc:  # a column the contract needs is missing: one error
        assert "missing" in exc.message and exc.details["missing_columns"]
        return
    assert_balanced(v, len(records))
    assert not set(v.accepted["id"].dropna().tolist()) & set(seen)
    assert not v.accepted["id"].duplicated().any()


# ------------------------------------------------------------------- format checks


def test_format_must_match_the_whole_text() -> None:
    col = Column("code", "str", format=r"[A-Z]{2}-\d{4}")
    v = one_col(col, ["AB-1234", "ab-1234", "AB-12345", None, "XY-0001\n", "ZZ-0000"])
    p = only(v, "format", "code")
    assert (p.count, rows_of(p), values_of(p)) == (
        3, [2, 3, 5], ["ab-1234", "AB-12345", "XY-0001\n"])
    assert "fully match the format" in p.message and "'code'" in p.message
    assert v.accepted["code"].tolist()[:1] == ["AB-1234"]
    assert pd.isna(v.accepted["code"].iloc[1])  # a null is not a format problem
    assert_balanced(v, 6)


def test_format_digits_are_ascii_only() -> None:
    v = one_col(Column("n", "str", format=r"\d+"), ["123", "١٢٣"])
    assert rows_of(only(v, "format", "n")) == [2]


def test_format_beyond_re2_falls_back_to_python_re() -> None:
    # look-ahead is not RE2: the same rule is applied with Python's re
    v = one_col(Column("s", "str", format=r"(?!X)[A-Z]+"), ["ABC", "XAB", "abc", "ABC"])
    p = only(v, "format", "s")
    assert (p.count, rows_of(p)) == (2, [2, 3])


def test_format_is_checked_after_a_blank_became_null() -> None:
    v = one_col(Column("s", "str", nullable=False, format=r"[a-z]+"), ["ok", "  ", "NO"])
    assert checks(v) == {("null", "s"), ("format", "s")}
    assert reasons_by_row(v) == {2: ["null:s"], 3: ["format:s"]}


# --------------------------------------------------------- the same value, any path


@pytest.mark.parametrize(("dtype", "text", "expected"), [
    ("float", "1.5", 1.5), ("float", " 7 ", 7.0), ("float", "+5", 5.0), ("float", ".5", 0.5),
    ("float", "5.", 5.0), ("float", "1e3", 1000.0), ("float", "-0", 0.0),
    ("float", "00012", 12.0), ("float", "1E-2", 0.01),
    ("int", "12", 12), ("int", "-3", -3), ("int", "+4", 4), ("int", " 5 ", 5),
    ("int", "2.0", 2), ("int", "1e3", 1000), ("int", "9007199254740993", 2**53 + 1),
    ("int", "-9223372036854775808", -(2**63)),
    ("date", "2024-02-29", pd.Timestamp("2024-02-29")),
    ("date", "2024-03-01T00:00:00", pd.Timestamp("2024-03-01")),
    ("date", " 2024-03-01", pd.Timestamp("2024-03-01")),
    ("timestamp", "2024-03-01 10:30:00", pd.Timestamp("2024-03-01 10:30")),
    ("timestamp", "2024-03-01T10:30", pd.Timestamp("2024-03-01 10:30")),
    ("timestamp", "2024-03-01T10:30:00.25", pd.Timestamp("2024-03-01 10:30:00.25")),
    ("timestamp", "2024-03-01T12:30:00+02:00", pd.Timestamp("2024-03-01 10:30")),
    ("bool", " Yes ", True), ("bool", "F", False),
])
def test_a_value_reads_the_same_in_a_clean_and_in_a_dirty_column(
        dtype: str, text: str, expected: Any) -> None:
    """A clean column takes the fast path (one cast), a column with an unreadable value
    the careful one: both read every value the same way."""
    clean = one_col(Column("c", dtype), [text, text])
    dirty = one_col(Column("c", dtype), [text, "garbage", text])
    assert clean.report.ok, clean.report.summary()
    assert rows_of(only(dirty, "type", "c")) == [2]
    assert clean.accepted["c"].tolist() == [expected, expected]
    assert dirty.accepted["c"].tolist() == [expected, expected]


@pytest.mark.parametrize(("dtype", "text"), [
    ("float", "nan"), ("float", "inf"), ("float", "1e400"), ("float", "1,5"),
    ("float", "0x10"), ("float", "1_000"), ("float", "--5"), ("float", "1.2.3"),
    ("int", "0x10"), ("int", "2.5"), ("int", "1e30"), ("int", "99999999999999999999"),
    ("date", "2024-02-30"), ("date", "2023-02-29"), ("date", "2024-13-01"),
    ("date", "2024-01-01 10:00"), ("date", "0000-01-01"),
    ("timestamp", "2024-01-01T24:00:00"), ("timestamp", "2024-01-01T12:60:00"),
    ("timestamp", "2024-01-01T12:00:60"),
])
def test_unreadable_text_is_a_type_problem_on_every_path(dtype: str, text: str) -> None:
    alone = one_col(Column("c", dtype), [text])
    dirty = one_col(Column("c", dtype), ["garbage", text])
    assert rows_of(only(alone, "type", "c")) == [1]
    assert rows_of(only(dirty, "type", "c")) == [1, 2]


def test_times_outside_years_1_to_9999_are_refused() -> None:
    v = one_col(Column("t", "timestamp"), pd.Series([-1.0, None]))  # a number, not a time
    assert checks(v) <= {("type", "t")}
    assert_balanced(v, 2)


def test_arrow_input_is_validated_like_pandas() -> None:
    table = pa.table({"id": ["1", "x", "3"], "x": [0.5, None, 2.0]})
    v = validate(table, KEYED)
    assert rows_of(only(v, "type", "id")) == [2]
    assert v.table.schema == pa.schema([("id", pa.int64()), ("x", pa.float64())])
    assert v.table.column("id").to_pylist() == [1, 3]


# ----------------------------------------------------------------- schema policies


def test_extra_column_warn_drops_it() -> None:
    c = Contract(KEYED.columns, unique=("id",), extra_columns="warn")
    v = validate(pd.DataFrame({"id": ["1"], "x": ["1"], "note": ["hi"]}), c)
    assert v.report.ok and v.report.warnings == (
        "Column 'note' is not in the contract and was dropped.",)
    assert list(v.accepted.columns) == ["id", "x"]
    # the original value is still what quarantine would keep
    c_bad = Contract(KEYED.columns, unique=("id",), extra_columns="warn")
    v = validate(pd.DataFrame({"id": ["x"], "x": ["1"], "note": ["hi"]}), c_bad)
    assert json.loads(v.quarantined["values"].iloc[0]) == {"id": "x", "x": "1", "note": "hi"}


def test_extra_column_map_renames_declared_names_and_rejects_others() -> None:
    c = Contract(KEYED.columns, unique=("id",), extra_columns="map", rename={"amount": "x"})
    v = validate(pd.DataFrame({"id": ["1", "2"], "amount": ["1.5", "-2"]}), c)
    assert v.report.ok
    assert v.report.warnings == ("Column 'amount' was renamed to 'x' (declared rename).",)
    assert v.accepted["x"].tolist() == [1.5, -2.0]
    # quarantine keeps the name the file used
    v = validate(pd.DataFrame({"id": ["1", "1"], "amount": ["1.5", "2"]}), c)
    assert json.loads(v.quarantined["values"].iloc[0]) == {"id": "1", "amount": "1.5"}
    # a name that is not in the mapping is still unexpected
    v = validate(pd.DataFrame({"id": ["1"], "amount": ["1.5"], "zz": ["?"]}), c)
    assert rows_of(only(v, "extra_column", "zz")) == [1]
    # both the old and the new name: which one is meant is unclear
    v = validate(pd.DataFrame({"id": ["1"], "amount": ["1.5"], "x": ["2"]}), c)
    p = only(v, "extra_column", "amount")
    assert "also has a column 'x'" in p.message
    assert v.report.accepted == 0


def test_missing_optional_column_can_be_rejected() -> None:
    c = Contract(KEYED.columns, unique=("id",), missing_columns="reject")
    with pytest.raises(ValidationFailed, match="missing_columns='reject'"):
        validate(pd.DataFrame({"id": ["1", "2"]}), c)


def test_dates_in_another_format_name_the_expected_one() -> None:
    v = one_col(Column("d", "date"), ["08/20/2016", "2016-08-20"])
    p = only(v, "type", "d")
    assert p.count == 1
    assert "Expected a date in ISO 8601, e.g. 2016-08-09" in p.message


def test_fractional_number_in_int_column_says_how_to_widen() -> None:
    v = one_col(Column("n", "int"), ["1.5"])
    assert "declare the column float" in only(v, "type", "n").message


# --------------------------------------------------------------------- batch checks

DAILY = Contract((Column("store", "str", nullable=False), Column("day", "date", nullable=False),
                  Column("sales", "float", min=0)), unique=("store", "day"),
                 freshness=Freshness("2d"), volume=Volume(min_ratio=0.5, max_ratio=2.0))
AS_OF = datetime(2024, 3, 10, 6)


def daily(days: list[str], stores: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    return pd.DataFrame([{"store": s, "day": d, "sales": "1"} for d in days for s in stores])


def batch_check(v: Validation, check: str) -> BatchCheck:
    (found,) = [b for b in v.report.batch if b.check == check]
    return found


def test_fresh_batch_passes() -> None:
    v = validate(daily(["2024-03-08", "2024-03-09"]), DAILY, time="day", as_of=AS_OF)
    b = batch_check(v, "freshness")
    assert b.status == "ok" and b.details["newest"] == "2024-03-09T00:00:00"
    assert v.report.warnings == ()


def test_stale_batch_warns_and_accepts_by_default() -> None:
    v = validate(daily(["2024-03-01", "2024-03-02"]), DAILY, time="day", as_of=AS_OF)
    b = batch_check(v, "freshness")
    assert b.status == "warn"
    assert "newest 'day' in the batch is 2024-03-02T00:00:00" in b.message
    assert "8.25 days before as_of" in b.message and "within 2d" in b.message
    assert b.message in v.report.warnings
    assert v.report.ok and v.report.accepted == 4
    json.dumps(v.report.to_dict())


def test_stale_batch_is_quarantined_when_declared_reject() -> None:
    c = Contract(DAILY.columns, unique=DAILY.unique,
                 freshness=Freshness("2d", on_fail="reject"))
    frame = daily(["2024-03-01", "2024-03-02"])
    frame.loc[0, "sales"] = "-1"
    v = validate(frame, c, time="day", as_of=AS_OF)
    assert batch_check(v, "freshness").status == "reject"
    p = only(v, "freshness", "day")
    assert p.count == 4 and "on_fail='reject'" in p.message
    assert v.report.accepted == 0
    assert reasons_by_row(v) == {1: ["range:sales", "freshness:day"], 2: ["freshness:day"],
                                 3: ["freshness:day"], 4: ["freshness:day"]}


def test_freshness_without_as_of_or_readable_time() -> None:
    v = validate(daily(["2024-03-09"]), DAILY, time="day")
    assert batch_check(v, "freshness").status == "skipped"
    v = validate(daily(["someday"]), DAILY, time="day", as_of=AS_OF)
    assert batch_check(v, "freshness").status == "warn"
    assert "no readable 'day'" in batch_check(v, "freshness").message


@pytest.mark.parametrize(("received", "status"), [(5, "warn"), (6, "ok"), (22, "ok"),
                                                  (23, "warn")])
def test_volume_against_the_median_of_recent_ingests(received: int, status: str) -> None:
    frame = daily([f"2024-03-{d:02d}" for d in range(1, received + 1)], stores=("a",))
    v = validate(frame, DAILY, time="day", recent_volumes=[10, 12, 8, 100])
    b = batch_check(v, "volume")
    assert (b.status, b.details["median"], b.details["received"]) == (status, 11.0, received)
    assert v.report.accepted == received


def test_volume_reject_and_skip() -> None:
    c = Contract(DAILY.columns, volume=Volume(min_ratio=0.9, on_fail="reject", history=2))
    v = validate(daily(["2024-03-09"]), c, recent_volumes=[10, 10, 1000])
    assert batch_check(v, "volume").details["history"] == [10, 10]
    assert only(v, "volume", "*").count == 2 and v.report.accepted == 0
    assert batch_check(validate(daily(["2024-03-09"]), c), "volume").status == "skipped"


def test_history_check_names_short_entities() -> None:
    table = pa.table({"store": ["a"] * 5 + ["b"] * 2 + ["c"] * 3 + [None],
                      "day": [1, 2, 3, 4, 5, 1, 1, 1, 2, 3, 9]})
    b = history_check(table, MinHistory(entity="store", periods=3, examples=1),
                      entity="store", time="day", source="sales")
    assert b.status == "warn"
    assert b.details == {"entity": "store", "periods": 3, "entities": 4, "short": 1,
                         "examples": [{"entity": "b", "periods": 1}]}
    assert "1 of 4 store value(s) of 'sales' have fewer than 3 periods" in b.message
    ok = history_check(table, MinHistory(periods=1), entity="store", time="day")
    assert ok.status == "ok"


# ------------------------------------------------------------------------ taxonomy

PRODUCTS = Contract((Column("product", "str", nullable=False, allowed=("NEW1", "NEW2", "C")),
                     Column("day", "date", nullable=False), Column("units", "int")),
                    unique=("product", "day"))
REGROUP = Taxonomy("product", {"OLD1": "NEW1", "OLD2": "NEW1", "OLD3": "NEW2"},
                   effective="2016-01-01")


def test_taxonomy_maps_rows_before_the_effective_date_only() -> None:
    frame = pd.DataFrame({"product": ["OLD1", "OLD3", "C", "NEW1", "OLD1"],
                          "day": ["2015-12-30", "2015-12-31", "2015-12-31", "2016-01-01",
                                  "2016-01-02"],
                          "units": ["1", "2", "3", "4", "5"]})
    v = validate(frame, PRODUCTS, time="day", taxonomy=(REGROUP,))
    assert v.accepted["product"].tolist() == ["NEW1", "NEW2", "C", "NEW1"]
    # on or after the effective date an old code is not re-coded: here it is not allowed
    assert rows_of(only(v, "allowed", "product")) == [5]
    assert [m.to_dict() for m in v.report.mapped] == [
        {"column": "product", "old": "OLD1", "new": "NEW1", "rows": 1},
        {"column": "product", "old": "OLD3", "new": "NEW2", "rows": 1}]
    assert v.report.rows_mapped == 2
    assert "mapped 2 accepted row(s) to current codes" in v.report.summary()
    # quarantine keeps the code as received
    assert json.loads(v.quarantined["values"].iloc[0])["product"] == "OLD1"


def test_uniqueness_is_checked_after_mapping() -> None:
    frame = pd.DataFrame({"product": ["OLD1", "OLD2", "OLD1"],
                          "day": ["2015-06-01", "2015-06-01", "2015-06-02"],
                          "units": ["1", "2", "3"]})
    v = validate(frame, PRODUCTS, time="day", taxonomy=(REGROUP,))
    p = only(v, "duplicate_key", "product+day")
    assert (p.count, rows_of(p), values_of(p)) == (
        2, [1, 2], ["NEW1|2015-06-01", "NEW1|2015-06-01"])
    assert v.report.mapped == (Mapped("product", "OLD1", "NEW1", 1),)
    existing = pa.table({"product": ["NEW1"], "day": pa.array([datetime(2015, 6, 2)],
                                                               pa.timestamp("us"))})
    v = validate(frame.iloc[2:], PRODUCTS, time="day", taxonomy=(REGROUP,),
                 existing_keys=existing)
    assert only(v, "existing_key", "product+day").count == 1


def test_taxonomies_chain_oldest_first_and_undated_maps_every_row() -> None:
    later = Taxonomy("product", {"NEW2": "C"}, effective="2020-01-01")
    src = Source("p", PRODUCTS, time="day", taxonomy=(later, REGROUP))
    assert src.taxonomies == (REGROUP, later)
    frame = pd.DataFrame({"product": ["OLD3", "NEW2", "NEW2"],
                          "day": ["2015-01-01", "2019-01-01", "2021-01-01"],
                          "units": ["1", "1", "1"]})
    v = validate(frame, PRODUCTS, time="day", taxonomy=src.taxonomies)
    assert v.accepted["product"].tolist() == ["C", "C", "NEW2"]
    always = Taxonomy("units", {1: 10})
    c = Contract((Column("units", "int"),))
    v = validate(pd.DataFrame({"units": ["1", "2"]}), c, taxonomy=(always,))
    assert v.accepted["units"].tolist() == [10, 2]


# ------------------------------------------------------------ declarations checked


def source_problems(src: Source) -> list[str]:
    return check_project(Project("p", sources=(src,), models=()))


def test_valid_declarations_have_no_problem() -> None:
    src = Source("s", Contract(
        (Column("store", "str", format=r"S\d+"), Column("day", "date"),
         Column("code", "str"), Column("x", "float")), unique=("store", "day"),
        extra_columns="map", rename={"amount": "x"}, missing_columns="reject",
        freshness=Freshness("2d"), volume=Volume(), min_history=MinHistory(periods=7)),
        time="day", entity=Entity("store"),
        taxonomy=Taxonomy("code", {"A": "B"}, effective="2016-01-01"))
    assert source_problems(src) == []


def test_bad_declarations_are_all_reported_at_once() -> None:
    src = Source("s", Contract(
        (Column("store", "int", format="[a-"), Column("_quarantine_x", "str"),
         Column("code", "str"), Column("day", "date")),
        extra_columns="rename", rename={"day": "nope"}, missing_columns="maybe",
        freshness=Freshness("soon", column="code", on_fail="panic"),
        volume=Volume(min_ratio=2, history=0), min_history=MinHistory(entity="who")),
        taxonomy=(Taxonomy("code", {"A": "B", "B": "C", "D": 4}, effective="someday"),
                  Taxonomy("day", {"x": "y"})))
    problems = "\n".join(source_problems(src))
    for needle in ("has a format, which only applies to str columns",
                   "is not a valid regular expression", "reserved for exported quarantine",
                   "extra_columns of source 's' must be one of",
                   "only used with extra_columns='map'", "maps 'day' to 'nope'",
                   "'day', which is itself a declared column",
                   "missing_columns of source 's' must be 'fill' or 'reject'",
                   "on_fail='panic'", "freshness 'within'",
                   "freshness column 'code' of source 's' must be a date",
                   "0 <= min_ratio <= 1 <= max_ratio", "history >= 1",
                   "min_history check of source 's' needs an entity column",
                   "min_history check of source 's' counts event times",
                   "codes must be str like the column; got 4",
                   "B are both old and new codes", "effective must be a date",
                   "an effective date needs Source(time=...)",
                   "codes must be a str or int column; got dtype 'date'"):
        assert needle in problems, f"{needle!r} not in:\n{problems}"


def test_map_without_rename_is_a_problem() -> None:
    src = Source("s", Contract((Column("a", "str"),), extra_columns="map"))
    assert "no rename mapping" in "\n".join(source_problems(src))


# ------------------------------------------------- properties: policies and mapping


@st.composite
def policy_batches(draw: st.DrawFn) -> tuple[pd.DataFrame, Contract, dict[str, Any]]:
    """A messy batch under a random schema policy, taxonomy and batch checks, with some
    malformed file rows between its rows."""
    frame, contract, _ = draw(messy_batches())
    names = contract.names
    policy = draw(st.sampled_from(["reject", "warn", "drop", "map"]))
    rename = {"note": draw(st.sampled_from(names))} if policy == "map" else {}
    on_fail = draw(st.sampled_from(["warn", "reject"]))
    times = [n for n in names if contract.column(n).dtype in ("date", "timestamp")]
    time = draw(st.sampled_from(times)) if times else None
    contract = Contract(
        contract.columns, unique=contract.unique, extra_columns=policy, rename=rename,
        missing_columns=draw(st.sampled_from(["fill", "reject"])),
        freshness=Freshness(draw(st.sampled_from(["1d", "400d"])), on_fail=on_fail)
        if time and draw(st.booleans()) else None,
        volume=Volume(on_fail=on_fail) if draw(st.booleans()) else None)
    taxonomy: tuple[Taxonomy, ...] = ()
    if "k" in names:
        taxonomy = (Taxonomy("k", {"a": "b", "A": "c"},
                             effective="2000-01-01" if time else None),)
    if "m" in names and draw(st.booleans()):
        taxonomy = (*taxonomy, Taxonomy("m", {5: 1, 7: 2}))
    n = len(frame)
    m = draw(st.integers(0, 3))
    malformed_at = sorted(draw(st.lists(st.integers(1, n + m), min_size=m, max_size=m,
                                        unique=True))) if m else []
    rows = np.array([i for i in range(1, n + len(malformed_at) + 1)
                     if i not in malformed_at], dtype="int64")
    kw = {"row_numbers": rows, "time": time, "taxonomy": taxonomy,
          "malformed": tuple((r, f"x,{r},", "row has 3 field(s); the header has 2")
                             for r in malformed_at),
          "as_of": draw(st.sampled_from([None, datetime(2024, 1, 1), datetime(1990, 1, 1)])),
          "recent_volumes": draw(st.sampled_from([None, [], [1], [3, 40, 5]]))}
    return frame, contract, kw


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_batches())
def test_property_policies_mapping_and_malformed_rows_lose_nothing(
        batch: tuple[pd.DataFrame, Contract, dict[str, Any]]) -> None:
    frame, contract, kw = batch
    try:
        v = validate(frame, contract, **kw)
    except ValidationFailed as exc:  # a column the contract needs is missing: one error
        assert "missing" in exc.message and exc.details["missing_columns"]
        return
    r = v.report
    malformed = {m[0] for m in kw["malformed"]}
    assert r.received == len(frame) + len(malformed)
    assert r.accepted == len(v.accepted) == v.table.num_rows == int(v.keep.sum())
    assert r.quarantined == len(v.quarantined)
    assert r.accepted + r.quarantined == r.received

    # Every file row is accepted or quarantined, never both, never twice.
    rows = kw["row_numbers"]
    quarantined = v.quarantined["row"].tolist()
    assert len(quarantined) == len(set(quarantined))
    assert set(quarantined) | set(rows[v.keep].tolist()) == set(range(1, r.received + 1))
    assert not set(quarantined) & set(rows[v.keep].tolist())
    assert malformed <= set(quarantined)

    # Reasons add up to the problems, batch rejections included.
    per_row = {int(row): text.split("; ") for row, text in
               zip(v.quarantined["row"], v.quarantined["reasons"], strict=True)}
    assert all(per_row.values())
    counts: dict[str, int] = {}
    for p in r.problems:
        if p.check != "malformed_row":
            counts[f"{p.check}:{p.column}"] = counts.get(f"{p.check}:{p.column}", 0) + p.count
    for key, count in counts.items():
        assert sum(key in reasons for reasons in per_row.values()) == count
    for b in r.batch:
        assert b.status in ("ok", "warn", "reject", "skipped")
        if b.status == "reject" and len(frame):
            assert r.accepted == 0

    # Accepted rows meet the contract and mapped codes are today's codes.
    for t in kw["taxonomy"]:
        if t.effective is None and t.column in v.accepted:
            assert not set(v.accepted[t.column].dropna().tolist()) & set(t.mapping)
    for t in kw["taxonomy"]:
        assert sum(m.rows for m in r.mapped if m.column == t.column) <= r.accepted
    json.dumps(r.to_dict())


def test_unicode_blanks_are_missing_too() -> None:
    v = one_col(Column("s", "str", nullable=False), ["\u3000", "\xa0 ", "é", " x", "\t"])
    assert rows_of(only(v, "null", "s")) == [1, 2, 5]
    assert v.accepted["s"].tolist() == ["é", " x"]
