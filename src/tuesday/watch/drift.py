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
coded by Arrow) and ``bincount`` for category counts (the statistics themselves are in
``tuesday.watch.stattests``). scipy is used only for distribution tail functions and the
exact small-sample KS p-value.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = column_drift(rng.normal(size=500), rng.normal(1.0, size=500), name="x")
    >>> (r.method, r.drifted, r.reference_rows)
    ('ks', True, 500)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from tuesday.watch.drift_samples import (
    DriftInputError,
    as_series,
    categorical_codes,
    is_numeric_dtype,
    sorted_samples,
    union_counts,
)
from tuesday.watch.stattests import (
    KS_EXACT_MAX_ROWS,
    Merged,
    chi2_pvalue,
    distance,
    ks_pvalue,
    n_distinct_sorted,
    z_pvalue,
)

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

_P_VALUE_METHODS = frozenset({"ks", "chi2", "z"})
_NUMERIC_ONLY = frozenset({"ks", "wasserstein"})


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
    _check_column_options(name, kind, method, threshold)
    ref_s = as_series(reference, name, "reference")
    cur_s = as_series(current, name, "current")
    kind = _column_kind(name, ref_s, kind, method)
    if kind == "numeric":
        both, n_ref = sorted_samples(ref_s, cur_s, name)
        return _numeric_drift(both, n_ref, name=name, method=method, threshold=threshold)
    ref_codes, ref_uniques = categorical_codes(ref_s, name, "reference")
    cur_codes, cur_uniques = categorical_codes(cur_s, name, "current")
    ref_counts, cur_counts, uniques = union_counts(
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
    _check_drift_share(drift_share)
    cols = _checked_columns(reference, current, columns)
    methods = dict(methods or {})
    thresholds = dict(thresholds or {})
    kinds = dict(kinds or {})
    _check_mappings(cols, methods=methods, thresholds=thresholds, kinds=kinds)
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


def _check_column_options(
    name: str, kind: str | None, method: str | None, threshold: float | None
) -> None:
    """Refuse an unknown kind or method, or a bad threshold, of one column."""
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


def _column_kind(name: str, ref_s: pd.Series, kind: str | None, method: str | None) -> str:
    """The column's kind (inferred from the reference's dtype when not given), checked
    against a numeric-only method."""
    if kind is None:
        kind = "numeric" if is_numeric_dtype(ref_s.dtype) else "categorical"
    if method is not None and method in _NUMERIC_ONLY and kind != "numeric":
        raise DriftInputError(
            f"Column '{name}': method {method!r} needs a numeric column, but the column is {kind}.",
            fix="Use chi2, z, jensenshannon or psi for a categorical column.",
        )
    return kind


def _check_drift_share(drift_share: Any) -> None:
    if (
        isinstance(drift_share, bool)
        or not isinstance(drift_share, (int, float))
        or not (0.0 <= float(drift_share) <= 1.0)
    ):
        raise DriftInputError(
            f"drift_share must be a number from 0 to 1, got {drift_share!r}.",
            fix="Pass e.g. drift_share=0.5 (Evidently's default).",
        )


def _checked_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None
) -> list[Any]:
    """The columns to compare (all of the reference's by default): at least one, each
    once, each in both datasets."""
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
    return cols


def _check_mappings(cols: list[Any], **mappings: Mapping[Any, Any]) -> None:
    """Refuse a per-column mapping (``methods``, ``thresholds``, ``kinds``) that names a
    column not compared."""
    compared = set(cols)
    for label, mapping in mappings.items():
        unknown = [k for k in mapping if k not in compared]
        if unknown:
            raise DriftInputError(
                f"`{label}` names columns that are not compared: {[str(k) for k in unknown]}; "
                f"compared columns are {[str(c) for c in cols]}.",
                fix=f"Remove them from `{label}` or add them to `columns`.",
            )


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
    small_ks = method == "ks" and max(n_ref, n_cur) <= KS_EXACT_MAX_ROWS
    merged = None if small_ks else Merged(both, n_ref)
    if method is None:
        assert merged is not None
        method = _auto_method("numeric", n_ref, merged.n_distinct)

    stat: float
    if method == "ks":
        stat = ks_pvalue(ref, cur, merged)
    elif method == "wasserstein":
        assert merged is not None
        norm = max(float(np.std(ref)), WASSERSTEIN_MIN_STD)
        stat = merged.wasserstein() / norm
    elif method in ("jensenshannon", "psi") and n_distinct_sorted(ref) > (
        HISTOGRAM_MIN_VALUES
    ):
        edges = np.histogram_bin_edges(both, bins="sturges")
        ref_share = np.histogram(ref, edges)[0] / n_ref
        cur_share = np.histogram(cur, edges)[0] / n_cur
        stat = distance(method, ref_share, cur_share)
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
        stat = chi2_pvalue(ref_counts, cur_counts)
    elif method == "z":
        stat = z_pvalue(ref_counts, cur_counts, uniques)
    elif method in ("jensenshannon", "psi"):
        stat = distance(method, ref_counts / n_ref, cur_counts / n_cur)
    else:  # ks / wasserstein never reach here: rejected for categorical, numeric handled
        raise AssertionError(method)
    return _result(name, kind, method, stat, threshold, n_ref, n_cur)
