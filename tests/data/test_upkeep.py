"""Compaction and vacuum of the tables that grow by small appends."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from deltalake import DeltaTable

from tuesday.data import tables, upkeep
from tuesday.data.predictions import PREDICTIONS, read_log
from tuesday.serve.prediction_log import PredictionLog
from tuesday.workspace import reconcile


def _rows(k: int) -> list[tuple]:
    return [(f"r{k}-{i}", "m", 1, f"e{i}", None, datetime(2016, 7, 1, 0, k % 60, i),
             float(k * 10 + i), "{}", "{}", "primary", float(i), None, None)
            for i in range(3)]


def _disk_files(ws, name: str) -> int:
    return len(list(ws.table_path(name).glob("*.parquet")))


def test_prediction_log_compacted_and_vacuumed_with_identical_content(ws_copy) -> None:
    log = PredictionLog(ws_copy, spool=False)
    for k in range(40):  # 40 flushes: 40 small files
        log.add(_rows(k))
        log.flush()
    before = read_log(ws_copy).sort_values("request_id").reset_index(drop=True)
    assert _disk_files(ws_copy, PREDICTIONS) == 40
    out = upkeep.tidy(ws_copy, PREDICTIONS, retention_hours=0)
    assert out["files_before"] == 40 and out["files_after"] == 1
    assert out["vacuumed"] == 40 and _disk_files(ws_copy, PREDICTIONS) == 1
    after = read_log(ws_copy).sort_values("request_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    log.add(_rows(99))  # the writer's open table goes on after the compaction
    log.flush()
    assert len(read_log(ws_copy)) == len(before) + 3


def test_a_small_table_is_left_alone(ws_copy) -> None:
    log = PredictionLog(ws_copy, spool=False)
    for k in range(3):
        log.add(_rows(k))
        log.flush()
    out = upkeep.tidy(ws_copy, PREDICTIONS, retention_hours=0)
    assert out["compacted_removed"] == 0 and out["files_after"] == 3


def test_source_tables_keep_the_versions_manifests_pin(ws_copy, ridership) -> None:
    pins = upkeep.pinned_versions(ws_copy)
    assert pins, "the trained workspace has runs that pin table versions"
    name, versions = next(iter(pins.items()))
    src = ridership.project.source(name)
    old = {v: tables.read_table(ws_copy, src, v).to_pandas() for v in versions}
    out = upkeep.tidy_workspace(ws_copy, [name], source_retention_hours=0, min_files=1)
    assert out is not None and out[-1]["table"] == name
    for v, frame in old.items():  # time travel to every pinned version still works
        pd.testing.assert_frame_equal(tables.read_table(ws_copy, src, v).to_pandas(), frame)
    dt = DeltaTable(str(ws_copy.table_path(name)))
    assert len(dt.file_uris()) == 1
    # the compaction's commits carry an upkeep record: reconciling keeps them (they
    # change no row) rather than rolling them back as writes nobody recorded
    newest = dt.version()
    assert reconcile(ws_copy, name) == []
    assert DeltaTable(str(ws_copy.table_path(name))).version() == newest


def test_tidying_never_runs_twice_at_once(ws_copy) -> None:
    with upkeep._exclusive(ws_copy) as mine:
        assert mine
        assert upkeep.tidy_workspace(ws_copy) is None
    assert upkeep.tidy_workspace(ws_copy) is not None
