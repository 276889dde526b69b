"""``tuesday example NAME DIR``: an example project and its data as files, to start from."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import click

from tuesday.cli.app import emit, json_opt, parse_time, run
from tuesday.errors import NotFound

#: the examples shipped in ``tuesday.examples``
EXAMPLES = ("ridership", "churn", "transactions", "store", "recommend", "movielens")


@click.command()
@click.argument("name", metavar="NAME")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--until", metavar="DATE",
              help="Only the rows known by this ISO 8601 date (ridership, transactions, "
                   "store, recommend, movielens).")
@json_opt
def example(name: str, folder: str, until: str | None, as_json: bool) -> None:
    """Write example NAME (ridership, churn, transactions, store, recommend or movielens)
    to DIR: its project.py and one CSV file per source under DIR/data/, ready for
    `tuesday ingest`."""

    def go() -> None:
        if name not in EXAMPLES:
            raise NotFound(f"There is no example {name!r}; the examples are "
                           f"{', '.join(EXAMPLES)}.", fix="e.g. tuesday example ridership demo/")
        module = importlib.import_module(f"tuesday.examples.{name}.project")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        project = out / "project.py"
        shutil.copyfile(str(module.__file__), project)
        kwargs: dict[str, Any] = {}
        if until is not None:
            if name == "churn":
                raise click.UsageError("--until applies to every example but churn.")
            kwargs["until"] = parse_time(until, what="--until").isoformat()
        files = module.example_files(out / "data", **kwargs)
        sources = {s.name for s in module.project.sources}
        data = {"project": str(project),
                "files": {source: str(path) for source, path in files.items()
                          if source in sources},
                "other_files": {what: str(path) for what, path in files.items()
                                if what not in sources}}
        emit(data, as_json, lambda d: _text(d, out))

    run(go)


def _text(d: dict[str, Any], out: Path) -> str:
    lines = [f"wrote {d['project']} and {len(d['files'])} data file(s); next:",
             f"  cd {out}"]
    lines += [f"  tuesday ingest {source} data/{Path(path).name}"
              for source, path in d["files"].items()]
    lines += [f"also written: data/{Path(path).name} ({what})"
              for what, path in d.get("other_files", {}).items()]
    return "\n".join(lines)


COMMANDS = (example,)
