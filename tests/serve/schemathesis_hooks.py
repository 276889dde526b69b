"""Schemathesis hooks for the server's batch bodies (``SCHEMATHESIS_HOOKS``): NDJSON and
CSV are text, sent as the generated string's UTF-8 bytes."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson", "application/jsonl", "text/csv")
def text_body(_ctx: Any, value: Any) -> bytes | None:
    """A string as its UTF-8 bytes; anything else is not a text body (sent empty)."""
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "replace") if isinstance(value, str) else None
