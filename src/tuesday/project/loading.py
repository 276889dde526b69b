"""Loading a project module by path, and checking every declaration at once."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuesday.errors import TuesdayError
from tuesday.project.checks import check_project
from tuesday.project.models import Project


@dataclass(frozen=True)
class LoadedProject:
    """A project and the file it came from."""

    project: Project
    path: Path
    module: Any


def load_project(path: str | Path) -> LoadedProject:
    """Import a project module by file path and check every declaration.

    The module must define a ``Project`` named ``project``.
    """
    p = Path(path)
    if p.is_dir():
        raise TuesdayError(
            f"Project path {str(p)!r} is a folder; expected a Python file.",
            fix="Pass --project path/to/project.py.")
    if not p.is_file():
        raise TuesdayError(
            f"Project file {str(p)!r} does not exist.",
            fix="Pass --project path/to/project.py, or run from a folder holding project.py.",
        )
    mod_name = f"tuesday_project_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise TuesdayError(f"Project file {str(p)!r} is not a Python module.",
                           fix="Give a .py file that defines `project = Project(...)`.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except TuesdayError as exc:
        raise TuesdayError(f"Project file {str(p)!r}: {exc.message}", fix=exc.fix) from exc
    except SystemExit as exc:
        raise TuesdayError(
            f"Project file {str(p)!r} exited (sys.exit({exc.code!r})) while being imported.",
            fix="A project module only declares things; remove the exit call.") from exc
    except Exception as exc:  # the user's module failed: say where, keep their message
        raise TuesdayError(
            f"Project file {str(p)!r} failed to import: {type(exc).__name__}: {exc}.",
            fix="Run `python` on the file to see the full traceback and fix it.",
        ) from exc
    project = getattr(module, "project", None)
    if not isinstance(project, Project):
        raise TuesdayError(
            f"Project file {str(p)!r} must define `project = Project(...)`; "
            f"got {type(project).__name__} instead.",
            fix="Add `project = Project(name=..., sources=(...), models=(...))`.",
        )
    problems = check_project(project)
    if problems:
        raise TuesdayError(
            f"Project {project.name!r} ({p}) has {len(problems)} problem(s):\n- "
            + "\n- ".join(problems),
            fix="Fix the declarations in the project module.",
        )
    return LoadedProject(project, p.resolve(), module)


