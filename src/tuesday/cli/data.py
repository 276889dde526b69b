"""``tuesday ingest`` and ``tuesday quarantine``: data in through the sources' contracts,
and the rows that failed them."""

from __future__ import annotations

import click

from tuesday.cli.app import Ctx, as_of_opt, console, emit, json_opt, parse_time, pass_ctx, run
from tuesday.cli.progress import progress
from tuesday.errors import ValidationFailed


@click.command()
@click.argument("source")
@click.argument("file", type=click.Path())
@as_of_opt
@json_opt
@pass_ctx
def ingest(c: Ctx, source: str, file: str, as_of: str | None, as_json: bool) -> None:
    """Validate FILE (CSV or Parquet) against SOURCE's contract and append a new version.

    Rows that fail go to quarantine with their reasons; nothing is lost. Ingesting the
    label source is how ground truth (actuals) arrives.
    """
    from tuesday.data import derived, tables

    def go() -> None:
        src = c.loaded.project.source(source)
        with progress(console) as report:
            res = tables.ingest_file(c.workspace, src, file, as_of=parse_time(as_of),
                                     progress=report)
            if derived.readers(c.loaded.project, src.name):
                report("computing the derived sources that read it")
            made = derived.after_ingest(c.workspace, c.loaded.project, src.name)
        out = res.to_dict()
        if made:
            out["derived"] = [m.to_dict() for m in made]
        emit(out, as_json, lambda d: res.report.summary()
             + (f"\nTable version: {res.version}" if res.version is not None else "")
             + "".join(f"\nDerived {m.source}: version {m.version} ({m.mode}"
                       + (f", {m.days} day(s)" if m.days is not None else "")
                       + f"), {m.report.accepted} row(s)" for m in made))
        if res.report.accepted == 0 and res.report.received > 0:
            raise ValidationFailed(f"No row of {file!r} was accepted into {source!r}.",
                               fix=f"See the problems above; `tuesday quarantine {source}` "
                                   "shows the rows.")

    run(go)


@click.command()
@click.argument("source")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("--open", "open_only", is_flag=True,
              help="Only rows not yet fixed by a re-ingest.")
@click.option("--export", "export", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the open rows as a CSV to fix and re-ingest with `tuesday ingest`.")
@click.option("--ingest", "ingest_id", metavar="ID", help="With --export: one ingest only.")
@json_opt
@pass_ctx
def quarantine(c: Ctx, source: str, limit: int, open_only: bool, export: str | None,
               ingest_id: str | None, as_json: bool) -> None:
    """Show quarantined rows of SOURCE with their reasons and original values, or export
    them to fix and re-ingest (the re-ingest records which entries it resolved)."""
    from tuesday.data import tables

    def go() -> None:
        src = c.loaded.project.source(source)
        if export:
            files = tables.export_quarantine_files(c.workspace, src, export,
                                                   ingest_id=ingest_id)
            n = sum(rows for _, _, rows in files)
            emit({"exported": n, "file": str(files[0][1]) if len(files) == 1 else None,
                  "files": [{"ingest_id": i, "file": str(f), "rows": rows}
                            for i, f, rows in files]}, as_json,
                 lambda d: "\n".join(
                     f"{rows} open quarantined row(s) of ingest {i[:12]} written to {f}; fix "
                     f"them and run `tuesday ingest {source} {f}`." for i, f, rows in files))
            return
        q = tables.quarantine(c.workspace, src, open_only=open_only)
        rows = q.tail(limit).to_dict(orient="records")
        emit({"total": len(q), "rows": rows}, as_json,
             lambda d: f"{d['total']} quarantined row(s)" + ("\n" + q.tail(limit).to_string()
                                                          if len(q) else ""))

    run(go)


COMMANDS = (ingest, quarantine)
