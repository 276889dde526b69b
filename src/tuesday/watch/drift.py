"""Data drift between a reference sample and a current sample, the Evidently way.

The definitions, the automatic choice of method and the default thresholds follow
Evidently's ``DataDriftPreset`` (legacy ``evidently.calculations.stattests``):

* Nulls and ``±inf`` are dropped from both samples first; the row counts used are reported.
* Method chosen by the reference size (after dropping) and the number of distinct values
  ``n`` in reference and current together:

  ============================  =======================  ==========================
  column                        reference <= 1000 rows   reference > 1000 rows
  ============================  =======================  ==========================
  numeric, ``n > 5``            ``ks`` (p-value)         ``wasserstein`` (normed)
  numeric, ``2 < n <= 5``       ``chi2`` (p-value)       ``jensenshannon``
  numeric, ``n <= 2``           ``z`` (p-value)          ``jensenshannon``
  categorical, ``n > 2``        ``chi2`` (p-value)       ``jensenshannon``
  categorical, ``n <= 2``       ``z`` (p-value)          ``jensenshannon``
  ============================  =======================  ==========================

* Thresholds: 0.05 for the p-value tests (``ks`` drifts when ``p <= 0.05``, ``chi2`` and
  ``z`` when ``p < 0.05``); 0.1 for the distances ``wasserstein``, ``jensenshannon`` and
  ``psi`` (drift when ``distance >= 0.1``).
* The dataset drifts when the share of drifted columns is ``>= 0.5``.

Definitions:

* ``ks``: two-sample Kolmogorov-Smirnov p-value, as ``scipy.stats.ks_2samp`` (method "auto").
* ``chi2``: ``scipy.stats.chisquare`` of the current counts against the reference counts
  scaled to the current size, over the union of categories.
* ``z``: two-proportion pooled Z-test, value == smallest category vs the rest, two-sided
  p-value ``2 * (1 - Phi(|z|))``; ``1.0`` when both samples hold the same single value.
* ``wasserstein``: ``scipy.stats.wasserstein_distance`` divided by
  ``max(std(reference, ddof=0), 0.001)``.
* ``jensenshannon``: ``scipy.spatial.distance.jensenshannon`` (natural log) of the
  category shares, or, for a numeric column with more than 20 distinct reference values,
  of the shares in a Sturges histogram over both samples.
* ``psi``: ``sum((r - c) * ln(r / c))`` over the same shares, empty shares replaced by
  ``min(non-empty share) / 1e6`` if that minimum is ``<= 1e-4``, else by ``1e-4``.

Everything is computed with numpy: each sample sorted once, the two merged (a stable
``argsort`` of the two sorted runs) with cumulative counts for the CDFs of ``ks`` and
``wasserstein`` and the distinct values; ``pandas.factorize`` of each sample (Arrow strings
coded by Arrow) and ``bincount`` for category counts. scipy is used only for distribution
tail functions and the exact small-sample KS p-value.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = column_drift(rng.normal(size=500), rng.normal(1.0, size=500), name="x")
    >>> (r.method, r.drifted, r.reference_rows)
    ('ks', True, 500)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from tuesday.errors import TuesdayError

__all__ = [
    "DEFAULT_DRIFT_SHARE",
    "DEFAULT_THRESHOLDS",
    "KINDS",
    "METHODS",
    "ColumnDrift",
    "DriftInputError",
    "DriftReport",
    "column_drift",
    "dataset_drift",
]

METHODS: tuple[str, ...] = ("ks", "chi2", "z", "wasserstein", "jensenshannon", "psi")
"""Drift methods this module knows."""

KINDS: tuple[str, ...] = ("numeric", "categorical")
"""Column kinds."""

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
"""Evidently's default threshold per method (p-value level or distance)."""

DEFAULT_DRIFT_SHARE = 0.5
"""Share of drifted columns at which the dataset counts as drifted (``>=``)."""

SMALL_SAMPLE_MAX_ROWS = 1000
"""Reference samples up to this many rows get statistical tests, larger ones distances."""

FEW_VALUES_MAX = 5
"""A numeric column with at most this many distinct values is compared as categories."""

BINARY_MAX_VALUES = 2
"""At most this many distinct values: the Z-test instead of chi-squared (small samples)."""

HISTOGRAM_MIN_VALUES = 20
"""Numeric JS/PSI bin into a Sturges histogram when the reference has more distinct values."""

WASSERSTEIN_MIN_STD = 0.001
"""Floor of the reference standard deviation that normalises the Wasserstein distance."""

_KS_EXACT_MAX_ROWS = 10_000  # scipy.stats.ks_2samp(method="auto") goes asymptotic above
_P_VALUE_METHODS = frozenset({"ks", "chi2", "z"})
_NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
_NUMERIC_INFERRED = frozenset(
    {"integer", "floating", "mixed-integer-float", "decimal", "boolean", "empty"}
)


class DriftInputError(TuesdayError, ValueError):
    """Drift was asked of inputs it cannot be computed on (also a ``ValueError``)."""

    kind = "invalid"

    def __init__(self, message: str, *, fix: str = "", details: Any = None) -> None:
        TuesdayError.__init__(self, message, fix=fix, details=details)


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column.

    Attributes:
        column: Column name.
        kind: ``"numeric"`` or ``"categorical"``.
        method: ``"ks"``, ``"chi2"``, ``"z"``, ``"wasserstein"``, ``"jensenshannon"`` or
            ``"psi"``.
        statistic: The p-value for ``ks``/``chi2``/``z``, the distance otherwise.
        threshold: The p-value level or distance the statistic was compared with.
        drifted: Whether the column drifted (``p <= t`` for ``ks``, ``p < t`` for
            ``chi2``/``z``, ``distance >= t`` otherwise; never when the statistic is NaN).
        reference_rows: Reference values used, after dropping nulls and infinities.
        current_rows: Current values used, after dropping nulls and infinities.
    """

    column: str
    kind: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict; a non-finite statistic becomes ``None``.

        Returns:
            The fields by name.
        """
        out = asdict(self)
        if not math.isfinite(self.statistic):
            out["statistic"] = None
        return out


@dataclass(frozen=True)
class DriftReport:
    """Drift of a dataset: every column plus the share that drifted.

    Attributes:
        columns: One result per column, in the order asked.
        share_drifted: Drifted columns / columns.
        drift_share_threshold: Share at which the dataset counts as drifted.
        dataset_drifted: ``share_drifted >= drift_share_threshold``.
    """

    columns: tuple[ColumnDrift, ...]
    share_drifted: float
    drift_share_threshold: float
    dataset_drifted: bool

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the drifted columns, in order."""
        return tuple(c.column for c in self.columns if c.drifted)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict, with the column counts added.

        Returns:
            ``columns`` (list of dicts), ``share_drifted``, ``drift_share_threshold``,
            ``dataset_drifted``, ``number_of_columns`` and ``number_of_drifted_columns``.
        """
        return {
            "columns": [c.to_dict() for c in self.columns],
            "share_drifted": self.share_drifted,
            "drift_share_threshold": self.drift_share_threshold,
            "dataset_drifted": self.dataset_drifted,
            "number_of_columns": len(self.columns),
            "number_of_drifted_columns": len(self.drifted_columns),
        }


# --------------------------------------------------------------------------- public API


def column_drift(
    reference: np.ndarray | pd.Series,
    current: np.ndarray | pd.Series,
    *,
    name: str,
    kind: str | None = None,
    method: str | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Drift of one column between a reference and a current sample.

    Args:
        reference: Reference values (1-D).
        current: Current values (1-D).
        name: Column name, used in the result and in error messages.
        kind: ``"numeric"`` or ``"categorical"``; by default numeric when the reference has
            a numeric, non-boolean dtype, categorical otherwise (as Evidently).
        method: One of :data:`METHODS`; by default chosen as Evidently does (see module doc).
        threshold: Overrides the method's default threshold.

    Returns:
        The column's drift.

    Raises:
        DriftInputError: (a ``ValueError``) on an unknown kind or method, a numeric-only
            method on a categorical column, non-numeric values in a numeric column, a bad
            threshold, or a sample with no values left after dropping nulls.

    Example:
        >>> column_drift(np.array(["a", "b"] * 50), np.array(["a"] * 100), name="c").method
        'z'
    """
    if kind is not None and kind not in KINDS:
        raise DriftInputError(
            f"Column '{name}': unknown kind {kind!r}. Allowed kinds: {', '.join(KINDS)}.",
            fix="Pass kind='numeric' or kind='categorical', or leave it out to infer it.",
        )
    if method is not None and method not in METHODS:
        raise DriftInputError(
            f"Column '{name}': unknown drift method {method!r}. "
            f"Allowed methods: {', '.join(METHODS)}.",
            fix="Use one of the allowed methods, or leave it out to choose as Evidently does.",
        )
    if threshold is not None:
        _check_threshold(name, threshold)

    ref_s = _as_series(reference, name, "reference")
    cur_s = _as_series(current, name, "current")
    if kind is None:
        kind = "numeric" if _is_numeric_dtype(ref_s.dtype) else "categorical"
    if method is not None and method in _NUMERIC_ONLY and kind != "numeric":
        raise DriftInputError(
            f"Column '{name}': method {method!r} needs a numeric column, but the column is {kind}.",
            fix="Use chi2, z, jensenshannon or psi for a categorical column.",
        )

    if kind == "numeric":
        ref = _finite_numeric(ref_s, name, "reference")
        cur = _finite_numeric(cur_s, name, "current")
        # one new buffer for both samples, each half sorted in place (never the caller's data)
        both = np.concatenate((ref, cur))
        n_ref = ref.size
        both[:n_ref].sort()
        both[n_ref:].sort()
        return _numeric_drift(both, n_ref, name=name, method=method, threshold=threshold)
    ref_codes, ref_uniques = _categorical_codes(ref_s, name, "reference")
    cur_codes, cur_uniques = _categorical_codes(cur_s, name, "current")
    ref_counts, cur_counts, uniques = _union_counts(
        ref_codes, ref_uniques, cur_codes, cur_uniques
    )
    return _categorical_drift(
        ref_counts, cur_counts, uniques, name=name, method=method, threshold=threshold
    )


def dataset_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    kinds: Mapping[str, str] | None = None,
) -> DriftReport:
    """Drift of every column of a dataset, and whether the dataset as a whole drifted.

    Args:
        reference: Reference data.
        current: Current data.
        columns: Columns to compare; all reference columns by default.
        methods: Method per column; columns left out get Evidently's automatic choice.
        thresholds: Threshold per column; columns left out get their method's default.
        drift_share: The dataset drifts when at least this share of columns drifted.
        kinds: Kind per column (``"numeric"``/``"categorical"``); inferred by default.

    Returns:
        The report, columns in the order asked.

    Raises:
        DriftInputError: (a ``ValueError``) on a missing or repeated column, no columns, a
            mapping naming a column not compared, ``drift_share`` outside ``[0, 1]``, or any
            error of :func:`column_drift`.

    Example:
        >>> ref = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
        >>> dataset_drift(ref, ref).dataset_drifted
        False
    """
    if (
        isinstance(drift_share, bool)
        or not isinstance(drift_share, (int, float))
        or not (0.0 <= float(drift_share) <= 1.0)
    ):
        raise DriftInputError(
            f"drift_share must be a number from 0 to 1, got {drift_share!r}.",
            fix="Pass e.g. drift_share=0.5 (Evidently's default).",
        )
    cols = list(reference.columns) if columns is None else list(columns)
    if not cols:
        raise DriftInputError(
            "No columns to compare: got an empty column list.",
            fix="Pass at least one column, or leave `columns` out to compare all of them.",
        )
    seen: set[Any] = set()
    for col in cols:
        if col in seen:
            raise DriftInputError(
                f"Column '{col}' is listed more than once in `columns`.",
                fix="List each column once.",
            )
        seen.add(col)
        for frame, label in ((reference, "reference"), (current, "current")):
            if col not in frame.columns:
                raise DriftInputError(
                    f"Column '{col}' is not in the {label} data; it has columns "
                    f"{[str(c) for c in frame.columns]}.",
                    fix="Compare only columns present in both datasets.",
                )
    methods = dict(methods or {})
    thresholds = dict(thresholds or {})
    kinds = dict(kinds or {})
    for label, mapping in (("methods", methods), ("thresholds", thresholds), ("kinds", kinds)):
        unknown = [k for k in mapping if k not in seen]
        if unknown:
            raise DriftInputError(
                f"`{label}` names columns that are not compared: {[str(k) for k in unknown]}; "
                f"compared columns are {[str(c) for c in cols]}.",
                fix=f"Remove them from `{label}` or add them to `columns`.",
            )

    results = tuple(
        column_drift(
            reference[col],
            current[col],
            name=str(col),
            kind=kinds.get(col),
            method=methods.get(col),
            threshold=thresholds.get(col),
        )
        for col in cols
    )
    share = sum(r.drifted for r in results) / len(results)
    return DriftReport(
        columns=results,
        share_drifted=share,
        drift_share_threshold=float(drift_share),
        dataset_drifted=bool(share >= drift_share),
    )


# --------------------------------------------------------------------------- input handling


def _check_threshold(name: str, threshold: Any) -> None:
    ok = (
        isinstance(threshold, (int, float, np.floating, np.integer))
        and not isinstance(threshold, bool)
        and math.isfinite(float(threshold))
        and float(threshold) >= 0.0
    )
    if not ok:
        raise DriftInputError(
            f"Column '{name}': threshold must be a finite number >= 0, got {threshold!r}.",
            fix="Pass a p-value level (e.g. 0.05) or a distance (e.g. 0.1).",
        )


def _as_series(values: Any, name: str, label: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DriftInputError(
            f"Column '{name}': the {label} sample must be 1-D, got shape {arr.shape}.",
            fix="Pass one column (a Series or a 1-D array).",
        )
    return pd.Series(arr, copy=False)


def _is_numeric_dtype(dtype: Any) -> bool:
    return bool(pd.api.types.is_numeric_dtype(dtype)) and not pd.api.types.is_bool_dtype(dtype)


def _empty_error(name: str, label: str, received: int) -> DriftInputError:
    what = (
        "an empty sample (0 rows)"
        if received == 0
        else f"{received} rows, all of them null or infinite"
    )
    return DriftInputError(
        f"Column '{name}': the {label} sample has no values to compare after dropping nulls; "
        f"received {what}.",
        fix=f"Pass a {label} sample with at least one non-null value, or leave the column out.",
    )


def _finite_numeric(s: pd.Series, name: str, label: str) -> np.ndarray:
    """The finite values of ``s`` as float64 (possibly a view of the caller's data)."""
    if not pd.api.types.is_numeric_dtype(s.dtype):
        if pd.api.types.infer_dtype(s, skipna=True) not in _NUMERIC_INFERRED:
            bad = next(
                (v for v in s if not pd.isna(v) and not isinstance(v, (int, float, np.number))),
                None,
            )
            raise DriftInputError(
                f"Column '{name}' is numeric, but the {label} sample holds non-numeric values "
                f"(dtype {s.dtype}, e.g. {bad!r}).",
                fix="Clean the values, or pass kind='categorical' for this column.",
            )
        s = pd.to_numeric(s)
    arr: np.ndarray = np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan))
    finite = np.isfinite(arr)
    out: np.ndarray = arr if finite.all() else arr[finite]
    if out.size == 0:
        raise _empty_error(name, label, len(s))
    return out


def _categorical_codes(s: pd.Series, name: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (``pandas.factorize``) of the non-null values of ``s``, and the values coded.

    Nulls (and ``±inf`` in float or object columns) are left out. String, categorical,
    integer and boolean columns are coded as they are (Arrow strings by Arrow itself),
    without making an array of Python objects first.
    """
    kept = s
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype):
        kept = s[s.notna()]
        kept = kept[~kept.isin([np.inf, -np.inf])]
    codes, uniques = pd.factorize(kept)
    if codes.size and codes.min() < 0:  # -1: a null pandas.factorize left out
        codes = codes[codes >= 0]
    if codes.size == 0:
        raise _empty_error(name, label, len(s))
    return np.asarray(codes), np.asarray(uniques)


def _union_counts(
    ref_codes: np.ndarray, ref_uniques: np.ndarray, cur_codes: np.ndarray, cur_uniques: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of every value of either sample, in order of first appearance in reference
    then current (the order ``pandas.factorize`` gives the two samples concatenated)."""
    union_codes, uniques = pd.factorize(np.concatenate((ref_uniques, cur_uniques)))
    k = len(uniques)
    n_ref_values = len(ref_uniques)
    ref_counts = np.zeros(k, dtype=np.int64)
    cur_counts = np.zeros(k, dtype=np.int64)
    np.add.at(
        ref_counts, union_codes[:n_ref_values], np.bincount(ref_codes, minlength=n_ref_values)
    )
    np.add.at(
        cur_counts,
        union_codes[n_ref_values:],
        np.bincount(cur_codes, minlength=len(cur_uniques)),
    )
    return ref_counts, cur_counts, np.asarray(uniques)


# --------------------------------------------------------------------------- method choice


def _auto_method(kind: str, reference_rows: int, n_values: int) -> str:
    """Evidently's default stattest (legacy ``registry._get_default_stattest``)."""
    few = kind == "categorical" or n_values <= FEW_VALUES_MAX
    if reference_rows <= SMALL_SAMPLE_MAX_ROWS:
        if not few:
            return "ks"
        return "chi2" if n_values > BINARY_MAX_VALUES else "z"
    return "jensenshannon" if few else "wasserstein"


def _result(
    name: str,
    kind: str,
    method: str,
    statistic: float,
    threshold: float | None,
    reference_rows: int,
    current_rows: int,
) -> ColumnDrift:
    t = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    if method == "ks":
        drifted = statistic <= t
    elif method in _P_VALUE_METHODS:
        drifted = statistic < t
    else:
        drifted = statistic >= t
    return ColumnDrift(
        column=name,
        kind=kind,
        method=method,
        statistic=float(statistic),
        threshold=t,
        drifted=bool(drifted),
        reference_rows=int(reference_rows),
        current_rows=int(current_rows),
    )


# --------------------------------------------------------------------------- numeric


def _n_distinct_sorted(sorted_values: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(sorted_values))) + 1


_CHUNK = 1 << 16  # values per block when walking the merged samples (temporaries stay small)


class _Merged:
    """Both sorted samples merged in one sorted order, with the two empirical CDFs.

    ``both`` holds the sorted reference values followed by the sorted current values. The
    merge is a stable ``argsort`` of these two sorted runs (one linear merge in numpy's
    timsort); which sample each merged value came from gives the CDFs by a cumulative
    count, instead of two binary searches per value. Inside a run of equal values the
    counts are not yet the CDFs (``searchsorted(side="right")``), but there the gap to the
    next value is 0; at the last value of the run they are exact.

    The CDF differences are computed block by block, so their temporaries stay small
    (fewer fresh pages to fault in than whole-length temporaries).
    """

    def __init__(self, both: np.ndarray, n_ref: int) -> None:
        self.both = both
        self.n_ref, self.n_cur = n_ref, both.size - n_ref
        self.order = np.argsort(both, kind="stable")
        self.gaps = np.diff(both[self.order])  # merged[i + 1] - merged[i]

    @property
    def n_distinct(self) -> int:
        return int(np.count_nonzero(self.gaps)) + 1

    def _cdf_gaps(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Blocks of ``|F_ref - F_cur|`` just after ``merged[i]``, ``i < size - 1``; exact
        where ``gaps[i] != 0``, meaningless (but finite) inside a run of equal values."""
        size = self.gaps.size
        ref_before = 0
        for start in range(0, size, _CHUNK):
            stop = min(start + _CHUNK, size)
            ref_count: np.ndarray = np.cumsum(self.order[start:stop] < self.n_ref, dtype=np.int64)
            ref_count += ref_before
            ref_before = int(ref_count[-1])
            cur_count = np.arange(start + 1, stop + 1)
            cur_count -= ref_count
            gap = ref_count / self.n_ref  # as scipy: integer count / sample size
            gap -= cur_count / self.n_cur
            yield slice(start, stop), np.abs(gap, out=gap)

    def wasserstein(self) -> float:
        """``scipy.stats.wasserstein_distance`` of the two samples: the same terms, summed
        as scipy does (one ``np.sum`` over all of them)."""
        terms = np.empty_like(self.gaps)
        for block, gap in self._cdf_gaps():
            np.multiply(gap, self.gaps[block], out=terms[block])
        return float(np.sum(terms))

    def ks_statistic(self) -> float:
        """``max |F_ref - F_cur|``: over the last value of each run of equal values (the
        CDFs are both 1 after the largest value)."""
        d = 0.0
        for block, gap in self._cdf_gaps():
            exact = gap[self.gaps[block] != 0]
            if exact.size:
                d = max(d, float(exact.max()))
        return d

    def distinct_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The distinct values, sorted, and how often each occurs in each sample."""
        last = np.flatnonzero(np.r_[self.gaps != 0, True])  # last index of each run
        values = self.both[self.order[last]]
        ref_count = np.cumsum(self.order < self.n_ref)[last]
        cur_count = last + 1 - ref_count
        return values, np.diff(ref_count, prepend=0), np.diff(cur_count, prepend=0)


def _numeric_drift(
    both: np.ndarray,
    n_ref: int,
    *,
    name: str,
    method: str | None,
    threshold: float | None,
) -> ColumnDrift:
    """Drift of a numeric column; ``both`` holds the finite reference values, sorted,
    then the finite current values, sorted."""
    ref, cur = both[:n_ref], both[n_ref:]
    n_cur = cur.size
    small_ks = method == "ks" and max(n_ref, n_cur) <= _KS_EXACT_MAX_ROWS
    merged = None if small_ks else _Merged(both, n_ref)
    if method is None:
        assert merged is not None
        method = _auto_method("numeric", n_ref, merged.n_distinct)

    stat: float
    if method == "ks":
        stat = _ks_pvalue(ref, cur, merged)
    elif method == "wasserstein":
        assert merged is not None
        norm = max(float(np.std(ref)), WASSERSTEIN_MIN_STD)
        stat = merged.wasserstein() / norm
    elif method in ("jensenshannon", "psi") and _n_distinct_sorted(ref) > (
        HISTOGRAM_MIN_VALUES
    ):
        edges = np.histogram_bin_edges(both, bins="sturges")
        ref_share = np.histogram(ref, edges)[0] / n_ref
        cur_share = np.histogram(cur, edges)[0] / n_cur
        stat = _distance(method, ref_share, cur_share)
    else:  # chi2, z, or JS/PSI over few distinct values: compare as categories
        assert merged is not None
        values, ref_counts, cur_counts = merged.distinct_counts()
        return _categorical_drift(
            ref_counts,
            cur_counts,
            values,
            name=name,
            method=method,
            threshold=threshold,
            kind="numeric",
        )
    return _result(name, "numeric", method, stat, threshold, n_ref, n_cur)


def _ks_statistic(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, merged: _Merged | None = None
) -> float:
    """Two-sided KS statistic ``max |F_ref - F_cur|`` over both samples' values."""
    if merged is None:
        merged = _Merged(np.concatenate((ref_sorted, cur_sorted)), ref_sorted.size)
    return merged.ks_statistic()


def _ks_pvalue(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, merged: _Merged | None = None
) -> float:
    """Two-sided KS p-value with ``scipy.stats.ks_2samp(method="auto")`` semantics."""
    n1, n2 = ref_sorted.size, cur_sorted.size
    if max(n1, n2) <= _KS_EXACT_MAX_ROWS:
        # Exact distribution (scipy falls back to asymptotic on its own if it must).
        return float(stats.ks_2samp(ref_sorted, cur_sorted, method="auto").pvalue)
    d = _ks_statistic(ref_sorted, cur_sorted, merged)
    m, n = sorted((float(n1), float(n2)), reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


# --------------------------------------------------------------------------- categorical


def _categorical_drift(
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    uniques: np.ndarray,
    *,
    name: str,
    method: str | None,
    threshold: float | None,
    kind: str = "categorical",
) -> ColumnDrift:
    """Drift from the counts of each value (``uniques``) in reference and current."""
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    if method is None:
        method = _auto_method(kind, n_ref, len(uniques))

    stat: float
    if method == "chi2":
        stat = _chi2_pvalue(ref_counts, cur_counts)
    elif method == "z":
        stat = _z_pvalue(ref_counts, cur_counts, uniques)
    elif method in ("jensenshannon", "psi"):
        stat = _distance(method, ref_counts / n_ref, cur_counts / n_cur)
    else:  # ks / wasserstein never reach here: rejected for categorical, numeric handled
        raise AssertionError(method)
    return _result(name, kind, method, stat, threshold, n_ref, n_cur)


def _chi2_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """``scipy.stats.chisquare(cur_counts, ref_counts * n_cur / n_ref).pvalue``."""
    f_exp = ref_counts * (cur_counts.sum() / ref_counts.sum())
    f_obs = cur_counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (f_obs - f_exp) ** 2 / f_exp
    statistic = float(terms.sum())
    dof = ref_counts.size - 1
    if dof < 1:
        return math.nan  # one category only: scipy's p-value is NaN too
    return float(special.chdtrc(dof, statistic))


def _z_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray, uniques: Any) -> float:
    """Evidently's two-proportion Z-test: smallest value vs the rest, two-sided."""
    if ref_counts.size == 1:
        return 1.0  # both samples hold the same single value
    values = list(uniques)
    try:
        first = min(range(len(values)), key=values.__getitem__)
    except TypeError:  # values of mixed, unorderable types
        first = min(range(len(values)), key=lambda i: (type(values[i]).__name__, str(values[i])))
    n1 = float(ref_counts.sum())
    n2 = float(cur_counts.sum())
    p1 = (n1 - float(ref_counts[first])) / n1
    p2 = (n2 - float(cur_counts[first])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - special.ndtr(abs(z))))


def _distance(method: str, ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    if method == "jensenshannon":
        return _jensenshannon(ref_share, cur_share)
    return _psi(ref_share, cur_share)


def _rel_entr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(x / y), 0.0)


def _jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """``scipy.spatial.distance.jensenshannon(p, q)`` (natural log)."""
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    js = float(np.sum(_rel_entr(p, m)) + np.sum(_rel_entr(q, m)))
    return math.sqrt(max(js, 0.0) / 2.0)


def _fill_empty(share: np.ndarray) -> np.ndarray:
    smallest = float(share[share != 0].min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(share == 0, fill, share)


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    """Evidently's population stability index over shares (empty shares filled)."""
    r = _fill_empty(ref_share)
    c = _fill_empty(cur_share)
    return float(np.sum((r - c) * np.log(r / c)))
