"""The daily loop's tick on every profile: recorded once per (model, as-of), a repeat
returns the recorded outcome and changes nothing (the tests of tests/loop, unchanged)."""

from __future__ import annotations

from tests.loop.test_loop import (  # noqa: F401
    live,
    test_cli_loop_run_twice,
    test_tick_is_idempotent,
)
