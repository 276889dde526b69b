"""The quarantine: every row with a problem (and every malformed row of the file), with
its reasons and its original values as a JSON object."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tuesday.data.contracts.arrays import arrow_mask, np_mask
from tuesday.data.contracts.findings import MAX_EXAMPLES, Findings, plain_value
from tuesday.data.contracts.raw import RawColumn
from tuesday.data.contracts.report import Problem


def quarantine_frame(st: Findings, raws: list[RawColumn],
                     malformed: tuple[tuple[int, str, str], ...]
                     ) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows kept (no problem found) and the quarantine: ``row``, ``reasons``
    (``check:column`` in check order, joined by ``"; "``) and ``values``; the malformed
    rows of the file last, with their raw text."""
    any_bad = np.zeros(st.n, bool)
    for mask in st.bad.values():
        any_bad |= mask
    bad_idx = np.flatnonzero(any_bad)
    quarantined = pd.DataFrame({
        "row": st.rows[bad_idx].astype("int64"),
        "reasons": _reasons(st, bad_idx).tolist(),
        "values": json_rows(raws, bad_idx),
    })
    if malformed:
        quarantined = pd.concat([quarantined, pd.DataFrame({
            "row": np.array([m[0] for m in malformed], dtype="int64"),
            "reasons": [f"malformed_row: {m[2]}" for m in malformed],
            "values": [json.dumps({"_line": m[1]}) for m in malformed]})], ignore_index=True)
    return ~any_bad, quarantined


def _reasons(st: Findings, bad_idx: np.ndarray) -> np.ndarray:
    """The reasons of each row of ``bad_idx``, one text per row."""
    reasons = np.full(len(bad_idx), None, dtype=object)
    for key in sorted(st.bad, key=st.rank):
        hit = np.flatnonzero(st.bad[key][bad_idx])
        first = np.asarray([r is None for r in reasons[hit]], dtype=bool)
        reasons[hit[first]] = key
        later = hit[~first]
        if len(later):
            reasons[later] = reasons[later] + f"; {key}"
    return reasons


def malformed_problem(malformed: tuple[tuple[int, str, str], ...]) -> Problem:
    """The problem reporting the rows that could not be split into columns (and the
    line of the first stray quote, if any)."""
    stray = [reason for _, _, reason in malformed if "quote" in reason]
    more = f" ({len(stray) - 1} more such line(s))" if len(stray) > 1 else ""
    return Problem(
        "malformed_row", "*", len(malformed),
        "These rows could not be split into the header's columns (a stray or missing "
        "separator or quote); they are quarantined as written."
        + (f" The first: {stray[0]}{more}." if stray else ""),
        tuple({"row": r, "value": text[:200]} for r, text, _ in malformed[:MAX_EXAMPLES]))


def json_rows(raws: list[RawColumn], idx: np.ndarray) -> list[str]:
    """The original values of rows ``idx`` as JSON objects, one string per row."""
    if not len(idx):
        return []
    take = pa.array(idx, pa.int64())
    parts = [pc.binary_join_element_wise(pa.scalar(json.dumps(r.name) + ": "),
                                         _json_column(r, idx, take), pa.scalar(""))
             for r in raws]
    if not parts:
        return ["{}"] * len(idx)
    body = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts,
                                                                         pa.scalar(", "))
    return pc.binary_join_element_wise(pa.scalar("{"), body, pa.scalar("}"),
                                       pa.scalar("")).to_pylist()


def _json_column(r: RawColumn, idx: np.ndarray, take: pa.Array) -> pa.Array:
    if r.arrow is None:
        assert r.objects is not None
        return _json_python(r.objects.iloc[idx].tolist())
    a = r.arrow.take(take)
    t = a.type
    null = pa.scalar("null")
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        a = a.cast(pa.string())
        special = np_mask(pc.match_substring_regex(a, '["\\\\\\x00-\\x1f]'))
        text = a
        if special.any():
            text = pc.replace_substring(pc.replace_substring(a, "\\", "\\\\"), '"', '\\"')
        out = pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'), pa.scalar(""))
        control = special & np_mask(pc.match_substring_regex(a, "[\\x00-\\x1f]"))
        if control.any():  # rare: let json escape control characters
            fixed = out.to_pylist()
            for i in np.flatnonzero(control).tolist():
                fixed[i] = json.dumps(a[i].as_py())
            out = pa.array(fixed, pa.string())
        return pc.fill_null(out, null)
    if pa.types.is_integer(t):
        return pc.fill_null(pc.cast(a, pa.string()), null)
    if pa.types.is_floating(t):
        f = pc.cast(a, pa.float64())
        values = f.to_numpy(zero_copy_only=False)
        text = pc.replace_substring_regex(pc.cast(f, pa.string()), "^(-?[0-9]+)$", "\\1.0")
        text = pc.if_else(arrow_mask(np.isposinf(values)), pa.scalar("Infinity"), text)
        text = pc.if_else(arrow_mask(np.isneginf(values)), pa.scalar("-Infinity"), text)
        return pc.if_else(arrow_mask(np.isnan(values)), null, text)
    if pa.types.is_boolean(t):
        return pc.fill_null(pc.if_else(a, pa.scalar("true"), pa.scalar("false")), null)
    if pa.types.is_timestamp(t) and t.tz is None:
        text = pc.cast(pc.cast(a, pa.timestamp("us"), safe=False), pa.string())
        text = pc.replace_substring_regex(pc.replace_substring(text, " ", "T",
                                                               max_replacements=1),
                                          "\\.000000$", "")
        return pc.fill_null(pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'),
                                                        pa.scalar("")), null)
    if pa.types.is_date(t):
        text = pc.cast(pc.cast(a, pa.date32()), pa.string())
        return pc.fill_null(pc.binary_join_element_wise(pa.scalar('"'), text, pa.scalar('"'),
                                                        pa.scalar("")), null)
    if pa.types.is_null(t):
        return pa.array(["null"] * len(a), pa.string())
    return _json_python(a.to_pylist())


def _json_python(values: list[Any]) -> pa.Array:
    return pa.array([json.dumps(plain_value(v), default=str) for v in values], pa.string())
