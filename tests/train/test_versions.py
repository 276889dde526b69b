"""New model versions: numbered without gaps or doubles when several processes train the
same model at once."""

from __future__ import annotations

import multiprocessing as mp
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from tuesday import meta
from tuesday.train import versions
from tuesday.workspace import open_workspace

MODEL = "m"
PER_PROCESS = 8


def _register_many(root: str, tag: str, start: mp.synchronize.Event) -> None:
    ws = open_workspace(root)
    digest = ws.put_artifact(b"not a lightgbm file: no check")
    start.wait()
    for i in range(PER_PROCESS):
        versions.register(ws, MODEL, run_id=f"{tag}-{i}", artifact=digest,
                          manifest={"artifact": {"format": "json"}}, metrics={},
                          as_of=datetime(2024, 1, 1))


def test_concurrent_trainings_get_distinct_consecutive_versions(tmp_path: Path) -> None:
    open_workspace(tmp_path)
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path), f"p{k}", start))
             for k in range(3)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    ws = open_workspace(tmp_path)
    with ws.engine().connect() as conn:
        got = conn.execute(sa.select(meta.model_versions.c.version, meta.runs.c.run_id)
                           .join(meta.runs, meta.runs.c.run_id == meta.model_versions.c.run_id)
                           .where(meta.model_versions.c.model == MODEL)).all()
    assert sorted(v for v, _ in got) == list(range(1, 3 * PER_PROCESS + 1))
    assert len({r for _, r in got}) == 3 * PER_PROCESS
