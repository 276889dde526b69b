"""One JSON encoder for everything tuesday prints or answers: strict JSON.

Python's ``json`` writes a NaN or an infinity as the bare words ``NaN`` and
``Infinity``, which strict parsers (browsers, ``jq``, Go, Java) reject. :func:`dumps`
writes them as ``null``, numpy scalars and arrays as numbers and lists, times as ISO
8601 strings and anything else as its ``str``; it never writes a bare ``NaN``.

Example:
    >>> dumps({"wape": float("nan"), "rows": 3})
    '{"wape": null, "rows": 3}'
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

__all__ = ["dumps", "plain"]


def plain(value: Any) -> Any:
    """``value`` made of dicts, lists, strings, finite numbers, booleans and None."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays, pandas values
        return plain(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``value`` (NaN and infinities as null)."""
    return json.dumps(plain(value), indent=indent, allow_nan=False)
