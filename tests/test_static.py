"""Static checks run as part of the test suite: ruff and mypy must be clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cmd", [
    [sys.executable, "-m", "ruff", "check", "src", "tests"],
    [sys.executable, "-m", "mypy"],
], ids=["ruff", "mypy"])
def test_static_checks(cmd: list[str]) -> None:
    assert shutil.which(cmd[0]) or Path(cmd[0]).exists()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
