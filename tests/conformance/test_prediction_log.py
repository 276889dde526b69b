"""Prediction-log durability on every profile: writers in several processes at once
(the test of tests/serve, unchanged); servers killed under load are in test_servers.py."""

from __future__ import annotations

from tests.serve.test_prediction_log import (  # noqa: F401
    test_writers_in_several_processes_append_every_row_once,
)
