"""Checks across rows and over time (``tuesday.project.row_checks``): duplicate groups,
offsetting pairs, references, spikes, gaps, SQL conditions, and repairs of spellings.

They run on the typed batch after the keys, with the rows of the table they need
(``Existing``: a reader of the table's columns, filtered); each returns what it found as
a ``CheckCount`` for the report, flags rows (``flag_NAME`` columns) or quarantines them
through ``Findings`` with the reason ``KIND:NAME``. Vectorised with numpy and pandas;
only the few candidate rows of a pairing are matched one by one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.arrays import np_mask, valid_mask
from tuesday.data.contracts.findings import Findings, plain_value
from tuesday.data.contracts.report import CheckCount
from tuesday.errors import TuesdayError
from tuesday.project import (
    Condition,
    Contract,
    DuplicateGroups,
    Gaps,
    OffsettingPairs,
    References,
    Repair,
    Spike,
    duration,
)
from tuesday.project.row_checks import check_name, flag_column

#: reads the table's rows: (columns, key column, values it must hold or None) -> Arrow
Existing = Callable[[list[str], str | None, list[Any] | None], pa.Table]
_MIX = np.uint64(0x9E3779B97F4A7C15)


def apply_repairs(typed: dict[str, pa.Array], contract: Contract) -> list[CheckCount]:
    """Replace the declared spellings by their canonical values, in place (before the
    value checks), and count them."""
    out = []
    for check in contract.checks:
        if not isinstance(check, Repair) or check.column not in typed:
            continue
        arr = typed[check.column]
        mapping = {str(k): str(v) for k, v in dict(check.mapping).items()}
        col = contract.column(check.column)
        if check.fold and col is not None and col.allowed:
            canon = {str(a).strip().casefold(): str(a) for a in col.allowed}
            for u in pc.unique(arr).to_pylist():
                if u is not None and u not in mapping and u not in col.allowed and \
                        u.strip().casefold() in canon:
                    mapping[u] = canon[u.strip().casefold()]
        counts: dict[str, int] = {}
        if mapping:
            old = pa.array(list(mapping), pa.string())
            idx = pc.index_in(arr, value_set=old)
            hit = valid_mask(idx) & valid_mask(arr)
            if hit.any():
                found = np.asarray(idx.fill_null(0), dtype=np.int64)
                new = pa.array(list(mapping.values()), pa.string()).take(pa.array(found))
                typed[check.column] = pc.if_else(pa.array(hit), new, arr)
                for k, c in zip(*np.unique(found[hit], return_counts=True), strict=True):
                    counts[list(mapping)[int(k)]] = int(c)
        rows = sum(counts.values())
        out.append(CheckCount(
            "repair", check_name(check), "repair", rows, len(counts), check.label,
            f"{rows} value(s) of {check.column!r} were spelt another way and were "
            "replaced by their canonical value.",
            {"spellings": [{"from": k, "to": mapping[k], "rows": v}
                           for k, v in sorted(counts.items())]}))
    return out


def row_checks(st: Findings, contract: Contract, typed: dict[str, pa.Array], *,
               time: str | None, existing: Existing | None
               ) -> tuple[dict[str, np.ndarray], list[CheckCount]]:
    """Run every cross-row check of ``contract`` except repairs: the flag columns (a
    mask each) and the counts for the report."""
    flags: dict[str, np.ndarray] = {}
    counts: list[CheckCount] = []
    b = _Batch(contract, typed)
    for check in contract.checks:
        if isinstance(check, Repair):
            continue
        alive = _alive(st)  # rows an earlier check quarantined are not looked at again
        found: tuple[np.ndarray | None, CheckCount]
        if isinstance(check, DuplicateGroups):
            found = _duplicates(st, check, b, existing)
        elif isinstance(check, OffsettingPairs):
            found = _pairs(st, check, b, alive)
        elif isinstance(check, References):
            found = _references(st, check, b, time, existing, flags, alive)
        elif isinstance(check, Spike):
            found = _spikes(st, check, b, time, existing, alive)
        elif isinstance(check, Gaps):
            found = _gaps(check, b, time, existing, alive)
        else:
            found = _condition(st, check, typed, alive)
        mask, count = found
        if check.action == "flag" and mask is not None:
            flags[flag_column(check)] = mask
        counts.append(count)
    return flags, counts


def _alive(st: Findings) -> np.ndarray:
    out = np.ones(st.n, bool)
    for mask in st.bad.values():
        out &= ~mask
    return out


class _Batch:
    """The typed batch, with its columns as pandas converted once, when first asked."""

    def __init__(self, contract: Contract, typed: dict[str, pa.Array]) -> None:
        self.contract = contract
        self.typed = typed
        self.n = len(next(iter(typed.values()))) if typed else 0
        self._pandas: dict[str, pd.Series] = {}

    def col(self, name: str) -> pd.Series:
        if name not in self._pandas:
            self._pandas[name] = self.typed[name].to_pandas()
        return self._pandas[name]

    def frame(self, cols: Sequence[str], rows: np.ndarray | None = None) -> pd.DataFrame:
        """Columns ``cols`` as pandas, of the rows at positions ``rows`` (all if None)."""
        if rows is None:
            return pd.DataFrame({c: self.col(c) for c in dict.fromkeys(cols)})
        take = pa.array(rows, pa.int64())
        return pa.table({c: self.typed[c].take(take) for c in dict.fromkeys(cols)}
                        ).to_pandas()

    def numbers(self, name: str) -> np.ndarray:
        arr = self.typed[name]
        return np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), float)

    def text(self, cols: Sequence[str]) -> Callable[[int], Any]:
        def value(i: int) -> Any:
            return "|".join(str(plain_value(self.typed[c][i].as_py())) for c in cols)
        return value


def _codes(arrays: Sequence[pa.Array]) -> np.ndarray:
    """A group code per row of the key ``arrays`` (-1 where a part is missing)."""
    n = len(arrays[0]) if arrays else 0
    code = np.zeros(n, np.int64)
    valid = np.ones(n, bool)
    for arr in arrays:
        enc = pc.dictionary_encode(arr)
        idx = enc.indices
        valid &= valid_mask(idx)
        k = np.asarray(idx.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
        code = code * max(len(enc.dictionary), 1) + k
        if len(arrays) > 1:
            code = np.unique(code, return_inverse=True)[1].astype(np.int64)
    return np.where(valid, code, -1)


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def _signature(h: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """One value per run of rows: equal for runs holding the same rows in any order."""
    if not len(h):
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        mixed = (h ^ (h >> np.uint64(29))) * _MIX
        a = np.add.reduceat(h, starts)
        b = np.add.reduceat(mixed, starts)
        n = np.diff(np.r_[starts, len(h)]).astype(np.uint64)
        return a ^ (b * np.uint64(31)) ^ (n * _MIX)


# ------------------------------------------------------------------ duplicate groups


def _runs(b: _Batch, check: DuplicateGroups) -> np.ndarray:
    """Where each posting starts: the group key changes, or the sequence does not grow."""
    new = np.zeros(b.n, bool)
    new[:1] = True
    if b.n < 2:
        return new
    for c in check.group:
        arr = b.typed[c]
        diff = pc.not_equal(arr.slice(1), arr.slice(0, b.n - 1))
        both_null = np.asarray(pc.and_(arr.slice(1).is_null(), arr.slice(0, b.n - 1).is_null()))
        new[1:] |= np.asarray(diff.fill_null(True).to_numpy(zero_copy_only=False)) & ~both_null
    if check.sequence is not None:
        seq = b.numbers(check.sequence)
        with np.errstate(invalid="ignore"):
            new[1:] |= ~(seq[1:] > seq[:-1])
    return new


def _duplicates(st: Findings, check: DuplicateGroups, b: _Batch, existing: Existing | None
                ) -> tuple[np.ndarray, CheckCount]:
    """Postings of a group after its first one: copies (the same rows) or conflicts."""
    name, cols = check_name(check), list(check.group)
    new_run = _runs(b, check)
    starts = np.flatnonzero(new_run)
    take = pa.array(starts, pa.int64())
    run_code = _codes([b.typed[c].take(take) for c in cols])
    seen_before = _existing_signatures(check, b, starts, run_code, existing)
    counts = np.bincount(run_code[run_code >= 0], minlength=int(run_code.max(initial=-1)) + 1)
    run_cand = (run_code >= 0) & (counts[np.maximum(run_code, 0)] > 1) if len(counts) else \
        np.zeros(len(run_code), bool)
    if seen_before:
        run_cand |= np.isin(run_code, list(seen_before))
    run_of = np.cumsum(new_run) - 1
    copy = np.zeros(len(starts), bool)
    conflict = np.zeros(len(starts), bool)
    if run_cand.any():
        rows = np.flatnonzero(run_cand[run_of])
        sub_starts = np.flatnonzero(np.r_[True, run_of[rows][1:] != run_of[rows][:-1]])
        sig = np.zeros(len(starts), np.uint64)
        sig[run_cand] = _signature(_hashes(b.frame(b.contract.names, rows)), sub_starts)
        cand = np.flatnonzero(run_cand)
        _, first = np.unique(run_code[cand], return_index=True)
        is_first = np.zeros(len(starts), bool)
        is_first[cand[first]] = True
        ref = dict(zip(run_code[is_first & run_cand].tolist(), sig[is_first & run_cand],
                       strict=True))
        ref.update(seen_before)
        later = run_cand & (~is_first | np.isin(run_code, list(seen_before)))
        ref_sig = np.array([ref.get(int(g), np.uint64(0)) for g in run_code[later]],
                           dtype=np.uint64)
        copy[later] = sig[later] == ref_sig
        conflict[later] = sig[later] != ref_sig
    found = copy[run_of] if b.n else np.zeros(0, bool)
    bad = conflict[run_of] if b.n else np.zeros(0, bool)
    groups = len(set(run_code[copy].tolist()))
    label = ", ".join(cols)
    if check.action == "quarantine":  # every posting of a duplicated group
        found = np.isin(run_code[run_of], np.unique(run_code[copy])) & ~bad
    if check.action in ("drop_copy", "quarantine"):
        st.flag("duplicate_group", name, found,
                f"These rows repeat a whole group ({label}) posted before, in this batch or "
                f"the table; {'the copy' if check.action == 'drop_copy' else 'every copy'} "
                "is kept in quarantine so that nothing is counted twice.", b.text(cols))
    st.flag("duplicate_group_conflict", name, bad,
            f"A group ({label}) was posted again with different rows; neither posting is "
            "picked silently: the later one is quarantined for review.", b.text(cols))
    verb = {"drop_copy": "dropped (kept in quarantine)", "quarantine": "quarantined",
            "flag": "flagged"}[check.action]
    return found, CheckCount(
        "duplicate_group", name, check.action, int(found.sum()), groups, check.label,
        f"{groups} {check.label} posted more than once; {int(found.sum())} row(s) {verb}.",
        {"conflicts": int(bad.sum()),
         "conflict_groups": len(set(run_code[conflict].tolist()))})


def _existing_signatures(check: DuplicateGroups, b: _Batch, starts: np.ndarray,
                         run_code: np.ndarray, existing: Existing | None
                         ) -> dict[int, np.uint64]:
    """The signature of each batch group already in the table (its first posting), by
    the group's code among the batch's postings."""
    if existing is None or not b.n:
        return {}
    cols = list(check.group)
    names = list(b.contract.names)
    keys = pc.unique(b.typed[cols[0]].take(pa.array(starts))).drop_null().to_pylist()
    old = existing(names, cols[0], keys)
    if not old.num_rows:
        return {}
    take = pa.array(starts, pa.int64())
    mine = [b.typed[c].take(take) for c in cols]
    theirs = [old.column(c).combine_chunks().cast(b.typed[c].type) for c in cols]
    both = _codes([pa.concat_arrays([m, t]) for m, t in zip(mine, theirs, strict=True)])
    batch_codes, old_codes = both[: len(starts)], both[len(starts):]
    to_batch = dict(zip(batch_codes.tolist(), run_code.tolist(), strict=True))
    order = np.argsort(old_codes, kind="stable")
    sorted_codes = old_codes[order]
    group_starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    frame = old.select(names).take(pa.array(order)).to_pandas()
    sig = _signature(_hashes(frame), group_starts)
    return {to_batch[int(c)]: s for c, s in zip(sorted_codes[group_starts], sig, strict=True)
            if int(c) in to_batch and int(c) >= 0}


# ----------------------------------------------------------------- offsetting pairs


def _pairs(st: Findings, check: OffsettingPairs, b: _Batch, alive: np.ndarray
           ) -> tuple[np.ndarray, CheckCount]:
    """A negative row and the latest earlier unpaired positive row of its group with
    the opposite value (both without a reference)."""
    name = check_name(check)
    v = b.numbers(check.value)
    free = alive.copy()
    if check.reference is not None:
        free &= ~valid_mask(b.typed[check.reference])
    with np.errstate(invalid="ignore"):
        neg = (v < 0) & free
    found = np.zeros(b.n, bool)
    pairs = 0
    if neg.any():
        # only the groups of the negative rows: their first key column narrows it down
        first = b.typed[check.group[0]]
        near = np.flatnonzero(np.asarray(pc.is_in(first, value_set=pc.unique(
            first.filter(pa.array(neg)))).fill_null(False)) & free)
        take = pa.array(near, pa.int64())
        code = _codes([b.typed[c].take(take) for c in check.group])
        positives: dict[int, list[int]] = {}
        for k in np.flatnonzero(v[near] > 0).tolist():
            positives.setdefault(int(code[k]), []).append(int(near[k]))
        for k in np.flatnonzero(v[near] < 0).tolist():
            i = int(near[k])
            for j in reversed(positives.get(int(code[k]), [])):
                if j < i and not found[j] and v[j] == -v[i] and code[k] >= 0:
                    found[i] = found[j] = True
                    pairs += 1
                    break
    label = ", ".join(check.group)
    if check.action == "quarantine":
        st.flag("offsetting_pair", name, found,
                f"A row and its exact reversal ({check.value} +q then -q within one "
                f"{label}, with no reference): both are quarantined.", b.text(check.group))
    return found, CheckCount(
        "offsetting_pair", name, check.action, int(found.sum()), pairs, check.label,
        f"{pairs} pair(s): a row of {check.value!r} reversed exactly by a later row within "
        f"one ({label}), with no reference (a void); {int(found.sum())} row(s) "
        f"{'flagged' if check.action == 'flag' else 'quarantined'}.")


# ---------------------------------------------------------------------- references


def _references(st: Findings, check: References, b: _Batch, time: str | None,
                existing: Existing | None, flags: dict[str, np.ndarray], alive: np.ndarray
                ) -> tuple[np.ndarray, CheckCount]:
    """Rows whose reference names an earlier row's ``to`` value, in the batch or the
    table; the others are missing references."""
    name = check_name(check)
    t = check.time or time
    ref_arr = b.typed[check.column]
    has = valid_mask(ref_arr) & alive
    ok = np.zeros(b.n, bool)
    idx = np.flatnonzero(has)
    groups = 0
    if len(idx):
        refs = ref_arr.take(pa.array(idx, pa.int64())).cast(b.typed[check.to].type)
        wanted = pc.unique(refs)
        cols = [check.to, *([t] if t else [])]
        mine = np.flatnonzero(np.asarray(pc.is_in(b.typed[check.to], value_set=wanted)
                                         .fill_null(False)))
        parts = [b.frame(cols, mine)]
        if existing is not None:
            old = existing(cols, check.to, wanted.to_pylist())
            if old.num_rows:
                parts.append(old.select(cols).to_pandas())
        targets = pd.concat(parts, ignore_index=True)
        when = targets.groupby(check.to)[t].min() if t else \
            pd.Series(True, index=targets[check.to].unique())
        found = pd.Series(refs.to_pylist()).map(when)
        good = found.notna().to_numpy()
        if t:
            at = b.frame([t], idx)[t].reset_index(drop=True)
            good = good & (found < at).fillna(False).to_numpy(bool)
        ok[idx[good]] = True
        groups = len(set(refs.filter(pa.array(good)).to_pylist()))
    missing = has & ~ok
    where = f"{check.column!r} -> {check.to!r}"
    if check.missing == "flag":
        flags[f"{flag_column(check)}_missing"] = missing
    else:
        st.flag("reference_missing", name, missing,
                f"These rows refer through {where} to a row that is not in the batch or the "
                "table" + (f", or not earlier by {t!r}" if t else "") + "; a refund must "
                "point at an earlier receipt.", b.text([check.column]))
    return ok, CheckCount(
        "reference", name, check.action, int(ok.sum()), groups, check.label,
        f"{int(ok.sum())} row(s) refer through {where} to {groups} earlier {check.label}; "
        f"{int(missing.sum())} refer to none and are "
        f"{'flagged' if check.missing == 'flag' else 'quarantined'}.",
        {"missing": int(missing.sum())})


# ------------------------------------------------------------------------- series


def _series_context(frame: pd.DataFrame, cols: list[str], t: str, value: str | None,
                    existing: Existing | None, reach: pd.Timedelta) -> pd.DataFrame:
    """The batch rows of the series (``_pos`` their position) and the table's rows of
    the same series within ``reach`` of the batch's times (``_pos`` -1)."""
    keep = [*cols, t, *([value] if value else [])]
    mine = frame[keep].assign(_pos=np.arange(len(frame)))
    if existing is None or not len(frame) or frame[t].isna().all():
        return mine
    old = existing(keep, cols[0], frame[cols[0]].dropna().unique().tolist())
    if not old.num_rows:
        return mine
    o = old.select(keep).to_pandas()
    lo, hi = frame[t].min() - reach, frame[t].max() + reach
    o = o[(o[t] >= lo) & (o[t] <= hi)]
    return pd.concat([mine, o.assign(_pos=-1)], ignore_index=True)


def _frame_codes(frame: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    return frame.groupby(list(cols), sort=False, dropna=True).ngroup().to_numpy()


def _spikes(st: Findings, check: Spike, b: _Batch, time: str | None,
            existing: Existing | None, alive: np.ndarray) -> tuple[np.ndarray, CheckCount]:
    """Values far from both neighbours that are close to each other."""
    name, t = check_name(check), check.time or time or ""
    cols = list(check.series)
    contract, typed = b.contract, b.typed
    frame = b.frame([*cols, t, check.column])
    rows = _series_context(frame, cols, t, check.column, existing, pd.Timedelta(days=60))
    pos_all = rows["_pos"].to_numpy()
    dead = np.zeros(len(rows), bool)
    dead[pos_all >= 0] = ~alive[pos_all[pos_all >= 0]]
    rows = rows[rows[check.column].notna() & rows[t].notna() & ~dead]
    rows = rows.sort_values([*cols, t], kind="stable").reset_index(drop=True)
    code = _frame_codes(rows, cols)
    x = pd.to_numeric(rows[check.column], errors="coerce").to_numpy(float)
    same_prev = np.r_[False, code[1:] == code[:-1]]
    same_next = np.r_[code[:-1] == code[1:], False]
    p = np.r_[np.nan, x[:-1]]
    nx = np.r_[x[1:], np.nan]
    with np.errstate(invalid="ignore"):
        jump = np.minimum(np.abs(x - p), np.abs(x - nx))
        spike = same_prev & same_next & (jump >= check.min_jump) & \
            (jump > check.factor * np.abs(nx - p))
    pos = rows["_pos"].to_numpy()
    mine = pos >= 0
    found = np.zeros(len(frame), bool)
    found[pos[spike & mine]] = True
    undecided = int((mine & same_prev & ~same_next).sum())
    if check.action == "repair" and found.any():
        mean = (p + nx) / 2
        col = contract.column(check.column)
        fixed = np.round(mean) if col is not None and col.dtype == "int" else mean
        values = pd.to_numeric(frame[check.column], errors="coerce").to_numpy(float).copy()
        values[pos[spike & mine]] = fixed[spike & mine]
        arr = pa.array(values, pa.float64(), mask=~valid_mask(typed[check.column]))
        typed[check.column] = arr.cast(typed[check.column].type)
    elif check.action == "quarantine":
        st.flag("spike", name, found,
                f"A value of {check.column!r} far from both its neighbours in its series "
                f"({', '.join(cols)}) while they are close to each other: a one-period "
                "spike that reverts, most likely a typo.", b.text([*cols, t]))
    series = int(frame.loc[found, cols].drop_duplicates().shape[0]) if found.any() else 0
    done = {"quarantine": "quarantined", "flag": "flagged",
            "repair": "replaced by the mean of their neighbours"}[check.action]
    return found, CheckCount(
        "spike", name, check.action, int(found.sum()), series, check.label,
        f"{int(found.sum())} value(s) of {check.column!r} jump away from both neighbours "
        f"and back, in {series} {check.label}: {done}.", {"undecided": undecided})


def _gaps(check: Gaps, b: _Batch, time: str | None, existing: Existing | None,
          alive: np.ndarray) -> tuple[None, CheckCount]:
    """Periods missing between consecutive rows of a series (batch and table)."""
    name, t = check_name(check), check.time or time or ""
    cols = list(check.series)
    frame = b.frame([*cols, t])[alive]
    step = duration(check.every, what=f"every of the gaps check {name!r}")
    rows = _series_context(frame, cols, t, None, existing, step * 366)
    rows = rows[rows[t].notna()].drop_duplicates([*cols, t])
    rows = rows.sort_values([*cols, t], kind="stable").reset_index(drop=True)
    code = _frame_codes(rows, cols)
    times = rows[t].to_numpy("datetime64[us]")
    pos = rows["_pos"].to_numpy()
    gap = np.zeros(len(rows), np.int64)
    if len(rows) > 1:
        diff = (times[1:] - times[:-1]) / step.to_timedelta64()
        # a gap counts where a batch row ends or starts it (not one inside the table)
        near = (code[1:] == code[:-1]) & ((pos[1:] >= 0) | (pos[:-1] >= 0))
        gap[1:] = np.where(near, np.maximum(np.floor(diff).astype(np.int64) - 1, 0), 0)
    hit = np.flatnonzero(gap > 0)
    examples = [{"series": "|".join(str(plain_value(rows[c].iat[i])) for c in cols),
                 "after": pd.Timestamp(times[i - 1]).isoformat(),
                 "before": pd.Timestamp(times[i]).isoformat(), "missing": int(gap[i])}
                for i in hit[:5]]
    series = len(set(code[hit].tolist()))
    missing = int(gap.sum())
    return None, CheckCount(
        "gap", name, "report", missing, series, check.label,
        f"{missing} period(s) of {check.every} missing in {series} {check.label} "
        f"({', '.join(cols)}) that should have one row every {check.every}.",
        {"examples": examples})


# ----------------------------------------------------------------------- conditions


_LOCAL = threading.local()


def _duckdb() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB connection (opening one costs about 50 ms)."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET threads TO 2")
        _LOCAL.con = con
    return con


def _condition(st: Findings, check: Condition, typed: dict[str, pa.Array],
               alive: np.ndarray) -> tuple[np.ndarray, CheckCount]:
    name = check_name(check)
    try:
        rel = _duckdb().from_arrow(pa.table(typed))
        res = rel.project(f"coalesce(({check.where}), false) AS hit").to_arrow_table()
        mask = np_mask(res.column(0)) & alive
    except duckdb.Error as exc:
        raise TuesdayError(
            f"The condition {check.where!r} of check {name!r} could not be evaluated: "
            f"{exc}", fix="Write it as a DuckDB SQL condition over the contract's "
                          f"columns ({', '.join(typed)}).") from exc
    message = check.message or f"Rows where {check.where} holds."
    if check.action == "quarantine":
        st.flag("condition", name, mask, message)
    return mask, CheckCount(
        "condition", name, check.action, int(mask.sum()), int(mask.sum()), check.label,
        f"{int(mask.sum())} row(s) where {check.where}: "
        f"{'kept with flag_' + name if check.action == 'flag' else 'quarantined'}. "
        + (check.message or ""))
