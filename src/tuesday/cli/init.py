"""``tuesday init FILE...``: a first project file written from the data files."""

from __future__ import annotations

from pathlib import Path

import click

from tuesday.cli.app import emit, json_opt, run
from tuesday.errors import Conflict


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", default="project.py", show_default=True,
              type=click.Path(dir_okay=False), help="The project file to write.")
@click.option("--name", default="project", show_default=True, help="The project's name.")
@click.option("--force", is_flag=True, help="Overwrite the project file if it exists.")
@json_opt
def init(files: tuple[str, ...], output: str, name: str, force: bool, as_json: bool) -> None:
    """Write a project file from data FILES (CSV or Parquet): one source per file with its
    contract inferred from the values (types, ranges, allowed values, uniqueness, time
    column), the entity and a first model guessed and marked REVIEW. The file loads as it
    is: `tuesday check` it, then ingest the files."""

    def go() -> None:
        from tuesday.data.infer import project_text
        from tuesday.project import load_project

        out = Path(output)
        if out.exists() and not force:
            raise Conflict(f"{str(out)!r} exists; tuesday init does not overwrite it.",
                           fix="Pass --output another.py, or --force to overwrite it.")
        text = project_text(list(files), name=name)
        out.write_text(text)
        loaded = load_project(out)  # the file written must load as it is
        p = loaded.project
        emit({"project": str(out), "sources": [s.name for s in p.sources],
              "models": [m.name for m in p.models]}, as_json,
             lambda d: f"wrote {d['project']}: {len(d['sources'])} source(s) "
                       f"({', '.join(d['sources'])}), {len(d['models'])} model(s); review "
                       "the lines marked REVIEW, then `tuesday ingest SOURCE FILE`.")

    run(go)


COMMANDS = (init,)
