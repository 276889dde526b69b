"""Every command of the README runs as written, in order, as a new user would run it.

The ```bash blocks are read from README.md; each line (continuations joined) runs in
bash from the folder the previous lines left it in, starting in an empty folder with no
``$TUESDAY_PROJECT`` or ``$TUESDAY_WORKSPACE``. Nothing is substituted. Only the
commands in ``SKIP`` are left out, each with its reason; every other line must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

#: commands not run here, by how the line starts, and why
SKIP = {
    "pip install": "installs the package: the tests run in the installed environment",
    "python -m pytest": "runs the test suite itself",
    "tuesday serve": "runs in the foreground until stopped; tests/cli/test_first_hour.py "
                     "starts it, waits for its ready line and stops it",
    "tuesday loop schedule": "runs in the foreground until stopped (tests/loop covers the "
                             "scheduler)",
    "tuesday replay": "long-running: a year of days, minutes of work (tests/loop/"
                      "test_replay.py replays shorter spans)",
}


def commands(text: str) -> list[str]:
    """The command lines of the ```bash blocks, ``\\`` continuations joined."""
    out: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        out += [line.strip() for line in joined.splitlines() if line.strip()]
    return out


def skipped(line: str) -> str | None:
    return next((why for start, why in SKIP.items() if line.startswith(start)), None)


def test_the_readme_has_commands_and_every_skip_is_used() -> None:
    lines = commands(README.read_text())
    assert len(lines) > 10
    for start in SKIP:
        assert any(line.startswith(start) for line in lines), f"unused skip {start!r}"


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TUESDAY_PROJECT", "TUESDAY_WORKSPACE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if env.get("PYTHONPATH"):  # the commands run elsewhere: the same package, found there
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve())
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    cwd = tmp_path / "user"
    cwd.mkdir()
    where = tmp_path / "cwd"
    ran = []
    for line in commands(README.read_text()):
        if skipped(line):
            continue
        script = f"cd {str(cwd)!r} && {line}\npwd > {str(where)!r}\n"
        res = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True,
                             text=True, timeout=1800)
        assert res.returncode == 0, (f"README command failed (exit {res.returncode}): "
                                     f"{line}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
        assert "Traceback" not in res.stderr, res.stderr[-3000:]
        cwd = Path(where.read_text().strip())
        ran.append(line)
    assert any(line.startswith("tuesday train") for line in ran)
