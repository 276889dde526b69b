"""Tests for tuesday.drift: oracles are scipy, or Evidently's formulas written out plainly."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from tuesday.watch.drift import (
    DEFAULT_THRESHOLDS,
    METHODS,
    ColumnDrift,
    DriftInputError,
    DriftReport,
    column_drift,
    dataset_drift,
)
from tuesday.watch.stattests import ks_statistic

TOL = 1e-9


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- oracles


def evidently_shares(ref: pd.Series, cur: pd.Series, numeric: bool) -> tuple[np.ndarray, ...]:
    """Evidently's get_binned_data, written with pandas (slow, obvious)."""
    if numeric and ref.nunique() > 20:
        bins = np.histogram_bin_edges(pd.concat([ref, cur]).to_numpy(), bins="sturges")
        return np.histogram(ref, bins)[0] / len(ref), np.histogram(cur, bins)[0] / len(cur)
    keys = list(set(ref.unique()) | set(cur.unique()))
    rc, cc = ref.value_counts(), cur.value_counts()
    r = np.array([rc.get(k, 0) / len(ref) for k in keys])
    c = np.array([cc.get(k, 0) / len(cur) for k in keys])
    return r, c


def oracle_psi(ref: pd.Series, cur: pd.Series, numeric: bool) -> float:
    r, c = evidently_shares(ref, cur, numeric)
    for a in (r, c):
        m = min(a[a != 0])
        np.place(a, a == 0, m / 10**6 if m <= 0.0001 else 0.0001)
    return float(np.sum((r - c) * np.log(r / c)))


def oracle_chi2(ref: pd.Series, cur: pd.Series) -> float:
    keys = list(set(ref.unique()) | set(cur.unique()))
    rc, cc = ref.value_counts(), cur.value_counts()
    k = len(cur) / len(ref)
    f_exp = [rc.get(key, 0) * k for key in keys]
    f_obs = [cc.get(key, 0) for key in keys]
    with np.errstate(divide="ignore"):
        return float(stats.chisquare(f_obs, f_exp).pvalue)


def oracle_z(ref: pd.Series, cur: pd.Series) -> float:
    """Pooled two-proportion z-test == Pearson chi2 on the 2x2 table, no continuity fix."""
    key = sorted(set(ref) | set(cur))[0]
    table = [
        [(ref == key).sum(), (ref != key).sum()],
        [(cur == key).sum(), (cur != key).sum()],
    ]
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def oracle_wasserstein(ref: np.ndarray, cur: np.ndarray) -> float:
    return float(stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001))


# --------------------------------------------------------------------------- numeric


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("n_ref", "n_cur"), [(50, 80), (300, 300), (1000, 700)])
def test_ks_matches_scipy(seed: int, n_ref: int, n_cur: int) -> None:
    g = rng(seed)
    ref = g.normal(size=n_ref)
    cur = g.normal(0.2 * seed, 1.0, size=n_cur)
    r = column_drift(ref, cur, name="x")
    want = stats.ks_2samp(ref, cur)
    assert r.method == "ks" and r.kind == "numeric"
    assert r.statistic == pytest.approx(want.pvalue, abs=TOL, rel=TOL)
    assert r.drifted == (want.pvalue <= 0.05)
    assert ks_statistic(np.sort(ref), np.sort(cur)) == pytest.approx(want.statistic, abs=TOL)


def test_ks_with_ties_matches_scipy() -> None:
    g = rng(1)
    ref = g.integers(0, 12, size=400).astype(float)
    cur = g.integers(1, 13, size=250).astype(float)
    r = column_drift(ref, cur, name="x")
    want = stats.ks_2samp(ref, cur)
    assert r.method == "ks"
    assert r.statistic == pytest.approx(want.pvalue, abs=TOL)
    assert ks_statistic(np.sort(ref), np.sort(cur)) == pytest.approx(want.statistic, abs=TOL)


def test_ks_asymptotic_path_matches_scipy() -> None:
    g = rng(2)
    ref = g.normal(size=12_000)
    cur = g.normal(0.03, 1.0, size=15_000)
    r = column_drift(ref, cur, name="x", method="ks")
    want = stats.ks_2samp(ref, cur, method="auto")
    assert r.statistic == pytest.approx(want.pvalue, abs=TOL, rel=1e-7)


def test_numeric_shift_detected_small_sample() -> None:
    g = rng(3)
    r = column_drift(g.normal(size=500), g.normal(0.5, 1.0, size=500), name="x")
    assert (r.method, r.drifted) == ("ks", True)
    assert r.statistic < 1e-6


def test_identical_distributions_not_drifted_small_and_large() -> None:
    g = rng(4)
    small = column_drift(g.normal(size=800), g.normal(size=800), name="x")
    large = column_drift(g.normal(size=5000), g.normal(size=5000), name="x")
    assert (small.method, small.drifted) == ("ks", False)
    assert (large.method, large.drifted) == ("wasserstein", False)
    same = column_drift(np.arange(2000.0), np.arange(2000.0), name="x")
    assert same.statistic == 0.0 and not same.drifted


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_matches_scipy(seed: int) -> None:
    g = rng(seed)
    ref = g.lognormal(size=3000)
    cur = g.lognormal(0.1 * seed, 1.0, size=2500)
    r = column_drift(ref, cur, name="x")
    want = oracle_wasserstein(ref, cur)
    assert r.method == "wasserstein"
    assert r.statistic == pytest.approx(want, rel=TOL, abs=TOL)
    assert r.drifted == (want >= 0.1)
    assert r.threshold == 0.1


def test_wasserstein_large_shift_detected() -> None:
    g = rng(5)
    r = column_drift(g.normal(size=2000), g.normal(0.5, 1.0, size=2000), name="x")
    assert (r.method, r.drifted) == ("wasserstein", True)


def test_wasserstein_constant_reference_uses_std_floor() -> None:
    ref = np.full(1500, 3.0)
    cur = np.r_[np.full(1400, 3.0), np.linspace(3.0, 10.0, 100)]
    r = column_drift(ref, cur, name="x", method="wasserstein")
    assert r.statistic == pytest.approx(stats.wasserstein_distance(ref, cur) / 0.001, rel=TOL)


# --------------------------------------------------------------------------- categorical


@pytest.mark.parametrize("seed", range(5))
def test_chi2_matches_scipy(seed: int) -> None:
    g = rng(seed)
    ref = pd.Series(g.choice(list("abcde"), size=600, p=[0.3, 0.3, 0.2, 0.1, 0.1]))
    cur = pd.Series(g.choice(list("abcde"), size=400, p=[0.2, 0.3, 0.2, 0.2, 0.1]))
    r = column_drift(ref, cur, name="c")
    want = oracle_chi2(ref, cur)
    assert (r.method, r.kind) == ("chi2", "categorical")
    assert r.statistic == pytest.approx(want, abs=TOL, rel=TOL)
    assert r.drifted == (want < 0.05)


def test_new_category_in_current_small_sample() -> None:
    g = rng(6)
    ref = pd.Series(g.choice(["a", "b", "c"], size=500))
    cur = pd.Series(np.r_[g.choice(["a", "b", "c"], size=480), ["NEW"] * 20])
    r = column_drift(ref, cur, name="c")
    assert r.method == "chi2"
    assert r.statistic == 0.0 == oracle_chi2(ref, cur)
    assert r.drifted


def test_new_category_in_current_large_sample_jensenshannon() -> None:
    g = rng(7)
    ref = pd.Series(g.choice(["a", "b", "c"], size=3000))
    cur = pd.Series(np.r_[g.choice(["a", "b", "c"], size=2000), ["NEW"] * 1000])
    r = column_drift(ref, cur, name="c")
    rs, cs = evidently_shares(ref, cur, numeric=False)
    want = distance.jensenshannon(rs, cs)
    assert r.method == "jensenshannon"
    assert r.statistic == pytest.approx(want, abs=TOL)
    assert r.drifted and want >= 0.1


@pytest.mark.parametrize("seed", range(5))
def test_jensenshannon_matches_scipy(seed: int) -> None:
    g = rng(seed)
    ref = pd.Series(g.choice(list("abcdefg"), size=2000))
    cur = pd.Series(g.choice(list("abcdefgh"), size=1500))
    r = column_drift(ref, cur, name="c")
    rs, cs = evidently_shares(ref, cur, numeric=False)
    assert r.method == "jensenshannon"
    assert r.statistic == pytest.approx(distance.jensenshannon(rs, cs), abs=TOL)


def test_jensenshannon_numeric_histogram_matches_scipy() -> None:
    g = rng(8)
    ref = pd.Series(g.normal(size=1200))
    cur = pd.Series(g.normal(0.3, 1.2, size=900))
    r = column_drift(ref, cur, name="x", method="jensenshannon")
    rs, cs = evidently_shares(ref, cur, numeric=True)
    assert r.statistic == pytest.approx(distance.jensenshannon(rs, cs), abs=TOL)


@pytest.mark.parametrize("seed", range(4))
def test_z_test_binary_matches_chi2_contingency(seed: int) -> None:
    g = rng(seed)
    ref = pd.Series(g.choice(["no", "yes"], size=700, p=[0.7, 0.3]))
    cur = pd.Series(g.choice(["no", "yes"], size=500, p=[0.7 - 0.05 * seed, 0.3 + 0.05 * seed]))
    r = column_drift(ref, cur, name="churn")
    want = oracle_z(ref, cur)
    assert (r.method, r.kind) == ("z", "categorical")
    assert r.statistic == pytest.approx(want, abs=1e-12, rel=1e-9)
    assert r.drifted == (want < 0.05)


def test_z_test_forced_on_three_values_uses_smallest_vs_rest() -> None:
    g = rng(20)
    ref = pd.Series(np.r_[["c"], g.choice(["a", "b", "c"], size=400, p=[0.2, 0.4, 0.4])])
    cur = pd.Series(np.r_[["c"], g.choice(["a", "b", "c"], size=300, p=[0.3, 0.1, 0.6])])
    r = column_drift(ref, cur, name="c", method="z")
    assert r.statistic == pytest.approx(oracle_z(ref, cur), abs=1e-12, rel=1e-9)


def test_z_test_single_shared_value_is_one() -> None:
    r = column_drift(np.array(["a"] * 10), np.array(["a"] * 5), name="c")
    assert (r.method, r.statistic, r.drifted) == ("z", 1.0, False)


def test_bool_column_is_categorical_z() -> None:
    g = rng(9)
    r = column_drift(g.random(300) < 0.5, g.random(300) < 0.9, name="flag")
    assert (r.kind, r.method, r.drifted) == ("categorical", "z", True)


# --------------------------------------------------------------------------- method choice


@pytest.mark.parametrize(
    ("n_ref", "values", "kind", "method"),
    [
        (1000, 50, "numeric", "ks"),
        (1001, 50, "numeric", "wasserstein"),
        (1000, 5, "numeric", "chi2"),
        (1000, 6, "numeric", "ks"),
        (1000, 2, "numeric", "z"),
        (1001, 5, "numeric", "jensenshannon"),
        (1001, 6, "numeric", "wasserstein"),
        (1000, 3, "categorical", "chi2"),
        (1000, 2, "categorical", "z"),
        (1001, 2, "categorical", "jensenshannon"),
        (1001, 30, "categorical", "jensenshannon"),
    ],
)
def test_method_selection(n_ref: int, values: int, kind: str, method: str) -> None:
    g = rng(10)
    ref = g.integers(0, values, size=n_ref)
    ref[:values] = np.arange(values)  # every value present
    cur = g.integers(0, values, size=200)
    if kind == "numeric":
        ref_in, cur_in = ref.astype(float), cur.astype(float)
    else:
        ref_in, cur_in = ref.astype(str), cur.astype(str)
    r = column_drift(ref_in, cur_in, name="x")
    assert (r.kind, r.method) == (kind, method)
    assert r.threshold == DEFAULT_THRESHOLDS[method]


def test_method_choice_counts_rows_after_dropping_nulls() -> None:
    g = rng(11)
    ref = np.r_[g.normal(size=1000), [np.nan] * 50, [np.inf, -np.inf]]
    cur = np.r_[g.normal(size=300), [np.nan] * 7]
    r = column_drift(ref, cur, name="x")
    assert (r.method, r.reference_rows, r.current_rows) == ("ks", 1000, 300)
    assert r.statistic == pytest.approx(stats.ks_2samp(ref[:1000], cur[:300]).pvalue, abs=TOL)


def test_numeric_few_values_chi2_matches_scipy() -> None:
    g = rng(12)
    ref = pd.Series(g.integers(0, 4, size=500).astype(float))
    cur = pd.Series(g.integers(0, 5, size=400).astype(float))  # value 4 is new
    r = column_drift(ref, cur, name="x")
    assert (r.kind, r.method) == ("numeric", "chi2")
    assert r.statistic == pytest.approx(oracle_chi2(ref, cur), abs=TOL)


# --------------------------------------------------------------------------- thresholds


def test_threshold_override_flips_decision() -> None:
    g = rng(13)
    ref, cur = g.normal(size=3000), g.normal(0.05, 1.0, size=3000)
    default = column_drift(ref, cur, name="x")
    strict = column_drift(ref, cur, name="x", threshold=default.statistic / 2)
    assert default.method == strict.method == "wasserstein"
    assert not default.drifted and strict.drifted
    assert strict.statistic == default.statistic


def test_threshold_boundaries_follow_evidently() -> None:
    g = rng(14)
    ref, cur = g.normal(size=200), g.normal(0.2, 1.0, size=200)
    p = column_drift(ref, cur, name="x").statistic
    assert column_drift(ref, cur, name="x", threshold=p).drifted  # ks: p <= t
    c_ref = np.array(["a", "b", "c"] * 100)
    c_cur = np.array(["a", "b", "c"] * 90 + ["a"] * 30)
    pc = column_drift(c_ref, c_cur, name="c").statistic
    assert not column_drift(c_ref, c_cur, name="c", threshold=pc).drifted  # chi2: p < t
    d = column_drift(ref, cur, name="x", method="wasserstein").statistic
    assert column_drift(ref, cur, name="x", method="wasserstein", threshold=d).drifted  # >=


def test_method_override_and_thresholds_in_dataset_drift() -> None:
    g = rng(15)
    ref = pd.DataFrame({"a": g.normal(size=500), "b": g.normal(size=500)})
    cur = pd.DataFrame({"a": g.normal(0.3, 1, size=500), "b": g.normal(size=500)})
    rep = dataset_drift(
        ref, cur, methods={"a": "wasserstein"}, thresholds={"a": 0.01, "b": 1.0}, drift_share=1.0
    )
    a, b = rep.columns
    assert (a.method, a.threshold, a.drifted) == ("wasserstein", 0.01, True)
    assert (b.method, b.threshold, b.drifted) == ("ks", 1.0, True)  # p <= 1 always
    assert rep.share_drifted == 1.0 and rep.dataset_drifted


# --------------------------------------------------------------------------- PSI


@pytest.mark.parametrize("seed", range(4))
def test_psi_numeric_matches_evidently_formula(seed: int) -> None:
    g = rng(seed)
    ref = pd.Series(g.normal(size=2000))
    cur = pd.Series(g.normal(0.1 * seed, 1.0, size=1000))
    r = column_drift(ref, cur, name="x", method="psi")
    assert (r.method, r.threshold) == ("psi", 0.1)
    want = oracle_psi(ref, cur, numeric=True)
    assert r.statistic == pytest.approx(want, rel=TOL, abs=TOL)
    assert r.drifted == (want >= 0.1)


def test_psi_categorical_with_new_and_missing_categories() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = pd.Series(["a"] * 40 + ["b"] * 40 + ["d"] * 20)
    r = column_drift(ref, cur, name="c", method="psi")
    want = oracle_psi(ref, cur, numeric=False)
    assert r.statistic == pytest.approx(want, rel=TOL)
    # by hand: a .5/.4, b .3/.4, c .2/1e-4, d 1e-4/.2
    hand = (
        (0.5 - 0.4) * math.log(0.5 / 0.4)
        + (0.3 - 0.4) * math.log(0.3 / 0.4)
        + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
        + (1e-4 - 0.2) * math.log(1e-4 / 0.2)
    )
    assert r.statistic == pytest.approx(hand, rel=TOL)
    assert r.drifted


def test_psi_tiny_shares_fill_with_min_over_a_million() -> None:
    # reference share of "rare" is 1/20000 = 5e-5 <= 1e-4: empty shares become 5e-5 / 1e6
    ref = pd.Series(["a"] * 12_000 + ["b"] * 7_999 + ["rare"])
    cur = pd.Series(["a"] * 500 + ["b"] * 400 + ["new"] * 100)
    r = column_drift(ref, cur, name="c", method="psi")
    assert r.statistic == pytest.approx(oracle_psi(ref, cur, numeric=False), rel=TOL)
    filled = 5e-5 / 1e6
    hand = (
        (0.6 - 0.5) * math.log(0.6 / 0.5)
        + (0.39995 - 0.4) * math.log(0.39995 / 0.4)
        + (5e-5 - 1e-4) * math.log(5e-5 / 1e-4)
        + (filled - 0.1) * math.log(filled / 0.1)
    )
    assert r.statistic == pytest.approx(hand, rel=1e-9)


@pytest.mark.parametrize("distinct", [20, 21])
@pytest.mark.parametrize("method", ["psi", "jensenshannon"])
def test_numeric_binning_switches_above_20_reference_values(distinct: int, method: str) -> None:
    g = rng(distinct)
    ref = pd.Series(np.r_[np.arange(distinct), g.integers(0, distinct, size=500)].astype(float))
    cur = pd.Series(g.integers(0, distinct + 3, size=400).astype(float))
    r = column_drift(ref, cur, name="x", method=method)
    if method == "psi":
        want = oracle_psi(ref, cur, numeric=True)
    else:
        want = float(distance.jensenshannon(*evidently_shares(ref, cur, numeric=True)))
    assert r.statistic == pytest.approx(want, rel=TOL, abs=TOL)


def test_psi_identical_is_zero() -> None:
    x = rng(16).normal(size=500)
    r = column_drift(x, x.copy(), name="x", method="psi")
    assert r.statistic == pytest.approx(0.0, abs=1e-15) and not r.drifted


# --------------------------------------------------------------------------- dataset


def test_dataset_drift_share_and_flag() -> None:
    g = rng(17)
    n = 600
    ref = pd.DataFrame(
        {
            "x": g.normal(size=n),
            "y": g.normal(size=n),
            "c": g.choice(list("abc"), size=n),
            "d": g.choice(list("abc"), size=n),
        }
    )
    cur = pd.DataFrame(
        {
            "x": g.normal(1.0, 1.0, size=n),  # drifted
            "y": g.normal(size=n),
            "c": g.choice(list("abc"), size=n, p=[0.8, 0.1, 0.1]),  # drifted
            "d": g.choice(list("abc"), size=n),
        }
    )
    rep = dataset_drift(ref, cur)
    assert [c.column for c in rep.columns] == ["x", "y", "c", "d"]
    assert rep.drifted_columns == ("x", "c")
    assert rep.share_drifted == 0.5 and rep.drift_share_threshold == 0.5
    assert rep.dataset_drifted  # 0.5 >= 0.5
    assert not dataset_drift(ref, cur, drift_share=0.75).dataset_drifted
    only = dataset_drift(ref, cur, columns=["y", "d"])
    assert only.share_drifted == 0.0 and not only.dataset_drifted


def test_dataset_drift_nulls_and_kinds_override() -> None:
    ref = pd.DataFrame({"code": [1, 2, 3, None] * 100})
    cur = pd.DataFrame({"code": [1, 2, 3, 3] * 50})
    rep = dataset_drift(ref, cur, kinds={"code": "categorical"})
    (c,) = rep.columns
    assert (c.kind, c.method, c.reference_rows, c.current_rows) == ("categorical", "chi2", 300, 200)


def test_to_dict_is_json_ready() -> None:
    g = rng(18)
    ref = pd.DataFrame({"x": g.normal(size=100), "c": ["a"] * 100})
    rep = dataset_drift(ref, ref, methods={"c": "chi2"})
    d = rep.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["number_of_columns"] == 2 and d["number_of_drifted_columns"] == 0
    assert d["columns"][1]["statistic"] is None  # chi2 over one category: NaN, like scipy
    assert set(d["columns"][0]) == set(ColumnDrift.__dataclass_fields__)
    assert isinstance(rep, DriftReport)


def test_results_are_frozen() -> None:
    r = column_drift(np.arange(10.0), np.arange(10.0), name="x")
    with pytest.raises(AttributeError):
        r.drifted = True


# --------------------------------------------------------------------------- errors


def test_empty_current_after_nulls_raises() -> None:
    with pytest.raises(
        ValueError, match=r"Column 'age'.*current sample.*received 3 rows, all of them null"
    ):
        column_drift(np.arange(10.0), np.array([np.nan, np.nan, np.inf]), name="age")


def test_empty_current_zero_rows_raises() -> None:
    with pytest.raises(ValueError, match=r"Column 'c'.*current.*empty sample \(0 rows\)"):
        column_drift(np.array(["a", "b"]), np.array([], dtype=object), name="c")


def test_empty_current_column_in_dataset_raises_with_name() -> None:
    ref = pd.DataFrame({"ok": [1.0, 2.0], "bad": ["a", "b"]})
    cur = pd.DataFrame({"ok": [1.0, 2.0], "bad": [None, None]})
    with pytest.raises(DriftInputError, match=r"Column 'bad'.*current.*received 2 rows"):
        dataset_drift(ref, cur)


def test_unknown_method_raises() -> None:
    allowed = r"Allowed methods: " + ", ".join(METHODS)
    with pytest.raises(
        ValueError, match=rf"Column 'x'.*unknown drift method 'kolmogorov'.*{allowed}"
    ):
        column_drift(np.arange(5.0), np.arange(5.0), name="x", method="kolmogorov")
    with pytest.raises(ValueError, match=r"Column 'y'.*unknown drift method 'chisq'"):
        dataset_drift(
            pd.DataFrame({"y": ["a"]}), pd.DataFrame({"y": ["a"]}), methods={"y": "chisq"}
        )


def test_numeric_method_on_categorical_raises() -> None:
    with pytest.raises(ValueError, match=r"Column 'c'.*'ks' needs a numeric column"):
        column_drift(np.array(["a", "b"]), np.array(["a"]), name="c", method="ks")


def test_non_numeric_values_in_numeric_column_raise() -> None:
    with pytest.raises(ValueError, match=r"Column 'x' is numeric.*current.*'oops'"):
        column_drift(np.arange(5.0), pd.Series([1.0, "oops"], dtype=object), name="x")


def test_bad_arguments_raise() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"Column 'missing' is not in the reference data"):
        dataset_drift(df, df, columns=["missing"])
    with pytest.raises(ValueError, match=r"`thresholds` names columns that are not compared"):
        dataset_drift(df, df, thresholds={"b": 0.1})
    with pytest.raises(ValueError, match=r"drift_share must be a number from 0 to 1, got 1.5"):
        dataset_drift(df, df, drift_share=1.5)
    with pytest.raises(ValueError, match=r"Column 'a': threshold must be .* got -0.1"):
        column_drift(np.arange(3.0), np.arange(3.0), name="a", threshold=-0.1)
    with pytest.raises(ValueError, match=r"Column 'a': unknown kind 'text'"):
        column_drift(np.arange(3.0), np.arange(3.0), name="a", kind="text")
    with pytest.raises(ValueError, match=r"empty column list"):
        dataset_drift(df, df, columns=[])


# --------------------------------------------------------------------------- Evidently pins


def pinned_frames(n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fixed frames from plain arithmetic (no random generator); copied verbatim in
    bench/drift_evidently_pins.py, which computes Evidently's numbers on them."""

    def frame(n: int, shift: float) -> pd.DataFrame:
        i = np.arange(n, dtype=np.float64)
        k = np.arange(n)
        ties = ((k * (31 + int(shift * 10))) % 97).astype(np.float64)
        ties[k % 50 == 0] = np.nan
        if shift:
            ties[k % 333 == 1] = np.inf
        letters = np.array(list("abcdef"), dtype=object)
        cat = letters[(k * k + int(shift * 3)) % (5 + (shift > 0))]
        cat[k % 41 == 3] = None
        return pd.DataFrame({
            "smooth": np.sin(i * 0.37 + shift) * (10 + shift) + (k % 17) + shift,
            "ties": ties,
            "few": np.where(
                k % 5 == 0, 3.0, (k % 3).astype(np.float64) + (shift > 0) * (k % 7 == 0)
            ),
            "cat": cat,
            "flag": np.where((k * 7 + int(shift * 5)) % 10 < 3 + int(shift * 4), "yes", "no"),
        })

    return frame(n_ref, 0.0), frame(n_cur, 0.5)


# Computed with Evidently 0.7.23 (pandas 2.3.3, scipy 1.17.1), Report([DataDriftPreset()])
# with smooth/ties/few numerical and cat/flag categorical, by
# `bench/.venv-evidently/bin/python bench/drift_evidently_pins.py` (Evidently can't be
# imported here: it needs pandas < 3).
EVIDENTLY_PINS = {
    (2000, 1500): {
        "smooth": ("wasserstein", 0.1940152275245724),
        "ties": ("wasserstein", 0.006753014748408946),
        "few": ("jensenshannon", 0.03936246123171527),
        "cat": ("jensenshannon", 0.591712315350691),
        "flag": ("jensenshannon", 0.14493421163354434),
    },
    (600, 400): {
        "smooth": ("ks", 0.07831987684266745),
        "ties": ("ks", 0.9999999984323146),
        "few": ("chi2", 0.16221787227523285),
        "cat": ("chi2", 0.0),
        "flag": ("z", 1.7326673429352013e-10),
    },
}


@pytest.mark.parametrize("sizes", list(EVIDENTLY_PINS))
def test_matches_numbers_computed_by_evidently(sizes: tuple[int, int]) -> None:
    ref, cur = pinned_frames(*sizes)
    got = {c.column: (c.method, c.statistic) for c in dataset_drift(ref, cur).columns}
    want = EVIDENTLY_PINS[sizes]
    assert [m for m, _ in got.values()] == [m for m, _ in want.values()]
    for col, (_, value) in want.items():
        assert got[col][1] == pytest.approx(value, abs=1e-12, rel=1e-9), col


# --------------------------------------------------------------------------- fast paths


def test_inputs_are_not_modified() -> None:
    g = rng(30)
    ref = g.normal(size=3000)
    cur_s = pd.Series(g.normal(0.2, 1.0, size=2000))
    ref_copy, cur_copy = ref.copy(), cur_s.copy()
    column_drift(ref, cur_s, name="x")
    column_drift(ref, cur_s, name="x", method="ks")
    column_drift(ref, cur_s, name="x", method="psi")
    np.testing.assert_array_equal(ref, ref_copy)
    pd.testing.assert_series_equal(cur_s, cur_copy)


@pytest.mark.parametrize("seed", range(3))
def test_wasserstein_with_ties_and_unequal_sizes_matches_scipy(seed: int) -> None:
    g = rng(seed)
    ref = g.integers(0, 40, size=5000).astype(float)
    cur = np.r_[g.integers(2, 45, size=3100).astype(float), [np.nan, np.inf]]
    r = column_drift(ref, cur, name="x")
    want = oracle_wasserstein(ref, cur[:3100])
    assert (r.method, r.current_rows) == ("wasserstein", 3100)
    assert r.statistic == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_wasserstein_is_scipys_value_exactly_before_norming() -> None:
    g = rng(31)
    ref, cur = g.lognormal(size=4000), np.round(g.lognormal(0.1, 1.0, size=2500), 1)
    r = column_drift(ref, cur, name="x")
    assert r.statistic * max(float(np.std(np.sort(ref))), 0.001) == pytest.approx(
        stats.wasserstein_distance(ref, cur), rel=1e-15
    )


def test_ks_large_with_ties_matches_scipy() -> None:
    g = rng(32)
    ref = g.integers(0, 300, size=12_000).astype(float)
    cur = g.integers(3, 300, size=11_000).astype(float)
    want = stats.ks_2samp(ref, cur)
    r = column_drift(ref, cur, name="x", method="ks")
    assert ks_statistic(np.sort(ref), np.sort(cur)) == pytest.approx(want.statistic, abs=1e-15)
    assert r.statistic == pytest.approx(want.pvalue, abs=TOL, rel=1e-7)
    assert ks_statistic(np.full(5, 2.0), np.full(3, 2.0)) == 0.0


@pytest.mark.parametrize("dtype", ["object", "str", "category"])
def test_categorical_dtypes_with_nulls_give_the_same_jensenshannon(dtype: str) -> None:
    g = rng(33)
    values = np.array(["x", "y", "z", "w", None], dtype=object)
    ref = pd.Series(values[g.choice(5, size=3000, p=[0.4, 0.3, 0.2, 0.05, 0.05])])
    cur = pd.Series(
        np.r_[values[g.choice(5, size=2000, p=[0.3, 0.3, 0.2, 0.1, 0.1])], ["new"] * 50]
    )
    r = column_drift(ref.astype(dtype), cur.astype(dtype), name="c")
    want = distance.jensenshannon(*evidently_shares(ref.dropna(), cur.dropna(), numeric=False))
    assert (r.kind, r.method) == ("categorical", "jensenshannon")
    assert (r.reference_rows, r.current_rows) == (ref.notna().sum(), cur.notna().sum())
    assert r.statistic == pytest.approx(want, abs=TOL)


def test_integer_categorical_and_numeric_few_values_large_sample() -> None:
    g = rng(34)
    ref = g.integers(0, 4, size=4000)
    cur = g.integers(0, 5, size=3000)
    as_cat = column_drift(ref, cur, name="c", kind="categorical")
    as_num = column_drift(ref.astype(float), cur.astype(float), name="x")
    rs, cs = evidently_shares(pd.Series(ref), pd.Series(cur), numeric=True)
    want = distance.jensenshannon(rs, cs)
    assert (as_cat.method, as_num.method, as_num.kind) == ("jensenshannon",) * 2 + ("numeric",)
    assert as_cat.statistic == pytest.approx(want, abs=TOL)
    assert as_num.statistic == pytest.approx(want, abs=TOL)
    z = column_drift(ref[:800].astype(float), (ref[:800] > 0).astype(float), name="x", method="z")
    assert z.statistic == pytest.approx(
        oracle_z(pd.Series(ref[:800].astype(float)), pd.Series((ref[:800] > 0).astype(float))),
        abs=1e-12,
        rel=1e-9,
    )
