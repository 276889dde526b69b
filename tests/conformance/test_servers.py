"""Servers on the production profile (PostgreSQL + Redis + S3) only, the costliest tests:
a server killed under load loses no answered prediction and commits none twice, a clean
stop leaves no spool (the tests of tests/serve, unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.conftest import on_profile
from tests.serve.test_spool import (  # noqa: F401
    test_server_killed_under_load_loses_no_answered_prediction,
    test_sigterm_leaves_no_spool,
)


@pytest.fixture(params=["postgresql-redis-s3"], autouse=True)
def profile(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Iterator[dict[str, str]]:
    yield from on_profile(request.param, request, monkeypatch, tmp_path)
