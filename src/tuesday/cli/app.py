"""The ``tuesday`` click group and what every command shares: the context (project and
workspace, opened on first use), times given on the command line, printing a result
(``--json`` or text), and turning a :class:`~tuesday.errors.TuesdayError` into its
message, its fix and its exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from tuesday import encoding
from tuesday.errors import TuesdayError
from tuesday.project import LoadedProject, load_project
from tuesday.project import parse_time as project_time
from tuesday.workspace import Workspace, open_workspace

console = Console(stderr=True)

#: a model version or record id on the command line: a whole number from 1 to 2**63 - 1
#: (what the metadata database can hold), refused by click otherwise
NUMBER = click.IntRange(min=1, max=2**63 - 1)


class Ctx:
    """The global options of a command; the project is loaded, and the workspace opened,
    only when a command first asks for them."""

    def __init__(self, project: str | None, workspace: str | None,
                 metadata_url: str | None = None, online_url: str | None = None,
                 storage_url: str | None = None) -> None:
        self.project_arg = project
        self.workspace_arg = workspace
        self.metadata_url_arg = metadata_url
        self.online_url_arg = online_url
        self.storage_url_arg = storage_url
        self._loaded: LoadedProject | None = None

    @property
    def loaded(self) -> LoadedProject:
        if self._loaded is None:
            path = self.project_path
            if not path.exists():
                raise TuesdayError(
                    f"Project file {str(path)!r} does not exist (looked at "
                    f"{str(path.resolve())!r}: {self._project_source()}).",
                    fix="Pass --project path/to/project.py, set $TUESDAY_PROJECT, or run "
                        "from a folder holding project.py (`tuesday example ridership DIR` "
                        "writes one).")
            self._loaded = load_project(path)
        return self._loaded

    def _project_source(self) -> str:
        if self.project_arg:
            return "from --project"
        env = os.environ.get("TUESDAY_PROJECT")
        return f"from $TUESDAY_PROJECT={env}" if env else \
            "the default ./project.py; --project and $TUESDAY_PROJECT are not set"

    @property
    def project_path(self) -> Path:
        return Path(self.project_arg or os.environ.get("TUESDAY_PROJECT") or "project.py")

    @property
    def workspace(self) -> Workspace:
        root = self.workspace_arg or os.environ.get("TUESDAY_WORKSPACE")
        if not root:  # next to the project: there must be one, or nothing is created
            root = str(self.loaded.path.parent / ".tuesday")
        return open_workspace(root, metadata=self.metadata_url_arg,
                              online=self.online_url_arg, storage=self.storage_url_arg)


def parse_time(value: str | None, *, what: str = "--as-of") -> datetime:
    """A time given on the command line; the wall clock (UTC) when not given."""
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return project_time(value, what=what).to_pydatetime()


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON, or as the text ``human(data)``."""
    if as_json:
        click.echo(encoding.dumps(data, indent=2))
    else:
        click.echo(human(data))


def run(fn: Callable[[], None]) -> None:
    """Call ``fn``; on a :class:`TuesdayError` print its message and fix, exit its code."""
    try:
        fn()
    except TuesdayError as exc:
        console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True)
        if exc.fix:
            console.print(f"[bold]fix:[/] {exc.fix}", highlight=False)
        sys.exit(exc.exit_code)


pass_ctx = click.make_pass_decorator(Ctx)
json_opt = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
as_of_opt = click.option("--as-of", help="Logical time of the operation (default: now, UTC).")
actor_opt = click.option("--actor", default=lambda: os.environ.get("USER", "cli"),
                         show_default="$USER")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "project", metavar="PATH",
              help="Project module (default: $TUESDAY_PROJECT or ./project.py).")
@click.option("--workspace", "workspace", metavar="DIR",
              help="Workspace folder (default: $TUESDAY_WORKSPACE or .tuesday/ next to the "
                   "project).")
@click.option("--metadata-url", "metadata_url", metavar="URL",
              help="Metadata database: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
                   "(default: $TUESDAY_METADATA_URL, else the workspace folder's).")
@click.option("--online-url", "online_url", metavar="URL",
              help="Online store: sqlite or redis://HOST:6379/0 (default: "
                   "$TUESDAY_ONLINE_URL, else the workspace folder's).")
@click.option("--storage-url", "storage_url", metavar="URL",
              help="Tables, quarantine and artifacts: a folder or s3://BUCKET/PREFIX "
                   "(default: $TUESDAY_STORAGE_URL, else the workspace folder).")
@click.version_option(package_name="tuesday")
@click.pass_context
def main(ctx: click.Context, project: str | None, workspace: str | None,
         metadata_url: str | None, online_url: str | None, storage_url: str | None) -> None:
    """tuesday: from a notebook model to a production service that checks its data,
    serves fast, watches itself and explains itself."""
    ctx.obj = Ctx(project, workspace, metadata_url, online_url, storage_url)


def _set_global(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """``--project`` / ``--workspace`` given after the command name: the same as before."""
    if value is not None:
        obj = ctx.find_object(Ctx)
        if obj is not None:
            setattr(obj, f"{param.name}_arg", value)


GLOBAL_OPTIONS = (("project", "PATH"), ("workspace", "DIR"), ("metadata-url", "URL"),
                  ("online-url", "URL"), ("storage-url", "URL"))


def share_global_options(group: click.Group) -> None:
    """Accept ``--project``, ``--workspace`` and the location URLs after the command
    name too, on every command and subcommand (``tuesday demo --workspace DIR`` and
    ``tuesday --workspace DIR demo`` are the same)."""
    for command in group.commands.values():
        taken = {o for p in command.params for o in p.opts}
        if isinstance(command, click.Group):
            share_global_options(command)
            continue
        for name, metavar in GLOBAL_OPTIONS:
            if f"--{name}" not in taken:
                command.params.append(click.Option(
                    [f"--{name}"], metavar=metavar, expose_value=False,
                    callback=_set_global, help=f"As `tuesday --{name}` (before the command)."))
