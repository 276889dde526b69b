"""Long commands show where they are: plain progress lines on stderr without a terminal
(a cron log), a rich bar in one, and stdout left to --json."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

import tuesday.examples
from tuesday.cli.progress import Reporter, progress
from tuesday.project import load_project

CHURN = Path(tuesday.examples.__file__).parent / "churn" / "project.py"


def _plain() -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    return Reporter(Console(file=out, force_terminal=False, width=200)), out


def test_plain_lines_count_items_and_say_time_left() -> None:
    report, out = _plain()
    report("backtesting")
    report("fold", 0, 12)
    for k in range(1, 13):
        report("fold", k, 12)
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"backtesting \(\d+ s\)", lines[0])
    assert re.fullmatch(r"fold 1/12 done, \d+ s left", lines[1])
    assert re.fullmatch(r"fold 12/12 done in \d+ s", lines[-1])
    assert all(re.fullmatch(r"fold \d+/12 done(, \d+ s left| in \d+ s)", x)
               for x in lines[1:])


def test_plain_lines_stay_about_ten_per_kind_of_work() -> None:
    report, out = _plain()
    report("day", 0, 365)
    for k in range(1, 366):
        report("day", k, 365)
    lines = out.getvalue().splitlines()
    assert 9 <= len(lines) <= 12
    assert lines[-1].startswith("day 365/365 done")


def test_terminal_gets_a_bar_with_counts() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with progress(console) as report:
        assert report.bar is not None
        report("fold", 0, 4)
        report("fold", 3, 4)
        task = report.bar.tasks[0]
        assert (task.description, task.completed, task.total) == ("fold", 3, 4)


def test_train_prints_fold_lines_on_stderr_and_clean_json(tmp_path: Path) -> None:
    files = load_project(CHURN).module.example_files(tmp_path / "data")
    base = [sys.executable, "-m", "tuesday", "--project", str(CHURN), "--workspace",
            str(tmp_path / "ws")]
    for name, path in files.items():
        subprocess.run([*base, "ingest", name, str(path), "--as-of", "2024-01-01"],
                       check=True, capture_output=True)
    out = subprocess.run([*base, "train", "churn", "--as-of", "2024-01-02", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == 1
    assert re.search(r"^fold 1/5 done, \d+ s left$", out.stderr, re.M), out.stderr
    assert re.search(r"^fold 5/5 done in \d+ s$", out.stderr, re.M), out.stderr


def test_ingest_of_a_large_file_counts_megabytes_and_names_its_steps(tmp_path: Path) -> None:
    """A 9 MB churn file (the example's rows repeated with new keys): the plain lines
    count the megabytes read and name each step, and --json stays clean on stdout."""
    import pandas as pd

    files = load_project(CHURN).module.example_files(tmp_path / "data")
    name, path = next((n, p) for n, p in files.items() if str(p).endswith(".csv"))
    frame = pd.read_csv(path)
    key = load_project(CHURN).project.source(name).key
    copies = []
    size = path.stat().st_size
    for k in range(-(-9_500_000 // size)):
        part = frame.copy()
        for col in key:
            part[col] = part[col].astype(str) + f"-{k}"
        copies.append(part)
    big = tmp_path / "big.csv"
    pd.concat(copies).to_csv(big, index=False)
    assert big.stat().st_size >= 8 << 20
    base = [sys.executable, "-m", "tuesday", "--project", str(CHURN), "--workspace",
            str(tmp_path / "ws")]
    out = subprocess.run([*base, "ingest", name, str(big), "--as-of", "2024-01-01", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["received"] == sum(len(c) for c in copies)
    assert re.search(r"^MB read \d+/\d+ done, \d+ s left$", out.stderr, re.M), out.stderr
    assert re.search(r"^MB read (\d+)/\1 done in \d+ s$", out.stderr, re.M), out.stderr
    assert re.search(r"^parsing big\.csv \(\d+ s\)$", out.stderr, re.M), out.stderr
    assert re.search(r"^checking [\d,]+ rows against the contract of ", out.stderr, re.M)
    assert re.search(r"^writing [\d,]+ accepted and [\d,]+ quarantined rows", out.stderr,
                     re.M)


def test_a_replay_keeps_its_alerts_off_the_terminal(caplog) -> None:
    """A year of virtual days raises hundreds of alerts: the replay's summary counts them;
    they are not printed one by one. Outside a replay the Log route still prints."""
    import logging

    from tuesday.cli.loop import _alerts_kept_off_stderr

    alerts_log = logging.getLogger("tuesday.watch.alerts")
    with _alerts_kept_off_stderr():
        alerts_log.critical("drift on 9 of 10 features")
    assert "drift" not in caplog.text  # reached no handler above its own
    alerts_log.critical("served accuracy degraded")
    assert "served accuracy degraded" in caplog.text
