"""A model's input tables as of a time: every source it reads, at the version known then.

Derived sources among them are brought up to date with their inputs first
(``tuesday.data.derived``), so that a version of each exists for every ingest of its
inputs.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from tuesday.data import derived
from tuesday.data.tables import read_tables, sources_used, versions_as_of
from tuesday.errors import ValidationFailed
from tuesday.project import Model, Project
from tuesday.workspace import Workspace


def model_tables(ws: Workspace, project: Project, model: Model, as_of: datetime
                 ) -> tuple[dict[str, int], dict[str, pa.Table]]:
    """The versions (and tables) of every source a model reads, as ingested (or, for a
    derived source, computed from the inputs ingested) at or before ``as_of``; a clear
    error when its label source has no data yet."""
    names = sources_used(project, model)
    derived.refresh(ws, project, names)
    versions = versions_as_of(ws, names, as_of)
    label = project.source(model.label_source)
    if model.label_source not in versions:
        raise ValidationFailed(
            f"Model {model.name!r} has no labels: source {model.label_source!r} has no "
            f"version ingested at or before {as_of:%Y-%m-%d %H:%M}.",
            fix=(f"Ingest the inputs of {model.label_source!r} ("
                 f"{', '.join(label.derive.inputs)})" if label.derive is not None else
                 f"Run `tuesday ingest {model.label_source} FILE`")
            + " (or pass a later --as-of).")
    return versions, read_tables(ws, project, names, versions)
