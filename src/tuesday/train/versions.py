"""A training run's record and the new model version it creates.

Training writes both in one transaction, with the version's first audited transition
(to ``candidate`` by default); the registry (:mod:`tuesday.release.registry`) then moves
versions between stages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tuesday import meta
from tuesday.errors import Conflict
from tuesday.train.model_file import check_lightgbm_text
from tuesday.workspace import Workspace

#: tries to number a new version before giving up with a Conflict
ATTEMPTS = 5


def register(ws: Workspace, model: str, *, run_id: str, artifact: str,
             manifest: dict[str, Any], metrics: dict[str, Any], as_of: datetime,
             stage: str = "candidate", actor: str = "tuesday") -> int:
    """Record a run and a new model version; returns the version number. A LightGBM
    model file is checked first (``model_file.check_lightgbm_text``), so a broken file is
    never registered."""
    art = manifest.get("artifact") or {}
    if art.get("format") == "lightgbm-text":
        check_lightgbm_text(ws.get_artifact(artifact),
                            what=f"The model file of {model!r} (artifact {artifact[:12]})")
    for _ in range(ATTEMPTS):
        try:
            return _insert(ws, model, run_id=run_id, artifact=artifact, manifest=manifest,
                           metrics=metrics, as_of=as_of, stage=stage, actor=actor)
        except sa.exc.IntegrityError:  # another process took the number (PostgreSQL)
            continue
    raise Conflict(f"Model {model!r}: {ATTEMPTS} attempts to number a new version collided "
                   "with other trainings of the same model.",
                   fix="Retry the training; train one model from one place at a time.")


def _insert(ws: Workspace, model: str, *, run_id: str, artifact: str,
            manifest: dict[str, Any], metrics: dict[str, Any], as_of: datetime,
            stage: str, actor: str) -> int:
    # the write transaction holds SQLite's write lock from the first read, so the number
    # read is still the newest when the row is written; PostgreSQL's unique key catches
    # the rare double and the caller takes the next number
    mv, runs = meta.model_versions, meta.runs
    with ws.write_transaction() as conn:
        last = conn.execute(sa.select(sa.func.max(mv.c.version))
                            .where(mv.c.model == model)).scalar()
        version = int(last or 0) + 1
        manifest = {**manifest, "version": version}
        conn.execute(runs.insert().values(run_id=run_id, model=model, as_of=as_of,
                                          created_at=as_of, manifest=manifest,
                                          metrics=metrics, artifact=artifact))
        conn.execute(mv.insert().values(model=model, version=version, stage=stage,
                                        run_id=run_id, artifact=artifact, created_at=as_of))
        conn.execute(meta.transitions.insert().values(
            model=model, version=version, from_stage=None, to_stage=stage, actor=actor,
            reason=f"trained by run {run_id[:12]}", at=as_of))
    return version
