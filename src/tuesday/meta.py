"""Metadata schema (SQLAlchemy Core): ingests, table versions, runs, model versions,
stage transitions (the audit), deployments, tokens, alerts, loop ticks, ingest keys and
the lineage of derived versions.

The same schema, in SQLAlchemy Core types only, lives in SQLite (the embedded default:
WAL, under the workspace folder) or PostgreSQL (``postgresql+psycopg://...``); the test
suite runs the registry and the conformance suite on both.

The schema is versioned by table ``schema_version`` (one row) and upgraded in place by
:func:`upgrade`, which runs the steps of ``MIGRATIONS`` past the recorded version in the
same transaction that creates missing tables. A versioned table of our own rather than
Alembic: the schema is created by ``create_all`` from this module on either engine, the
steps are a few lines of Core each, and they run inside tuesday's own opening of a
workspace, with no migration scripts folder to ship and no second tool to run; a database
whose version is newer than this tuesday knows is refused (see ``workspace.engine``).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

ingests = sa.Table(
    "ingests",
    metadata,
    sa.Column("ingest_id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("as_of", sa.DateTime, nullable=False),
    sa.Column("received", sa.Integer, nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("table_version", sa.Integer, nullable=True),
    sa.Column("report", sa.JSON, nullable=False),
)

table_versions = sa.Table(
    "table_versions",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("total_rows", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("ingest_id", sa.String(32), nullable=False),
    sa.Column("as_of", sa.DateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("as_of", sa.DateTime, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("manifest", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("artifact", sa.String(64), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("artifact", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("from_stage", sa.String(20), nullable=True),
    sa.Column("to_stage", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("percent", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

quarantine_resolutions = sa.Table(
    "quarantine_resolutions",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("ingest_id", sa.String(32), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True),
    sa.Column("resolved_by", sa.String(32), nullable=False, index=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("as_of", sa.DateTime, nullable=False),
)

#: one row per alert; a dedup key has at most one alert that is not resolved
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(500), nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    sa.Column("acknowledged_at", sa.DateTime, nullable=True),
    sa.Column("resolved_by", sa.String(200), nullable=True),
    sa.Column("resolved_at", sa.DateTime, nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)
sa.Index("alerts_one_unresolved_per_key", alerts.c.dedup_key, unique=True,
         sqlite_where=alerts.c.status != "resolved",
         postgresql_where=alerts.c.status != "resolved")

#: every delivery attempt of an alert to a route, successful or not
alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False, index=True),
    sa.Column("route", sa.String(300), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("at", sa.DateTime, nullable=False),
)

#: one row per tick of the daily loop (``tuesday loop run``): running the same
#: (model, as_of) again returns the recorded outcome instead of doing the work twice
loop_ticks = sa.Table(
    "loop_ticks",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("as_of", sa.DateTime, primary_key=True),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("outcome", sa.JSON, nullable=False),
)

#: what each ingest read: a digest of its source, as-of time and content (the file's
#: bytes, or the frame's values); ingesting the same content again for the same source
#: and as-of is recognised as a retry and not appended twice
ingest_keys = sa.Table(
    "ingest_keys",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("content_key", sa.String(64), primary_key=True),
    sa.Column("ingest_id", sa.String(32), nullable=False, unique=True),
)

#: the lineage of each version of a derived source: the input versions it was computed
#: from, and how (``full``, or ``incremental`` over ``days`` days: the runs of day
#: numbers in ``replaced``)
derived_versions = sa.Table(
    "derived_versions",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("days", sa.Integer, nullable=True),
    sa.Column("replaced", sa.JSON, nullable=True),
    sa.Column("as_of", sa.DateTime, nullable=False),
)
#: the version of this schema; a database with a higher one is refused
SCHEMA_VERSION = 1

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

#: step that brings a database from version ``n - 1`` to ``n``, by ``n`` (tables and
#: indexes new in ``n`` are made by ``create_all`` first); version 1 is the first
#: versioned schema, and a workspace made before it has its tables already
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: lambda conn: None}


class UnknownSchema(Exception):
    """The database holds a schema version this tuesday does not know."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def upgrade(conn: sa.Connection) -> int:
    """Create missing tables and run the migrations past the recorded version, in the
    caller's transaction; the version found before. Raises ``UnknownSchema`` for a
    version newer than ``SCHEMA_VERSION``, before changing anything."""
    insp = sa.inspect(conn)
    found = 0
    if insp.has_table("schema_version"):
        got = conn.execute(sa.select(schema_version.c.version)).scalar()
        found = int(got) if got is not None else 0
    if found > SCHEMA_VERSION:
        raise UnknownSchema(found)
    if found == SCHEMA_VERSION:
        return found
    metadata.create_all(conn)
    for n in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[n](conn)
    if found == 0:
        conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION))
    else:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return found
