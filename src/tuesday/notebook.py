"""tuesday from a notebook: the same steps as the ``tuesday`` command, as Python calls
whose results show as HTML in Jupyter and turn into DataFrames::

    import tuesday.notebook as tn
    t = tn.open("project.py")                    # workspace: .tuesday/ beside it
    t.ingest("ridership", "ridership.csv", as_of="2016-06-30")   # rows in, quarantined
    run = t.train("ridership_14d", as_of="2016-06-30")           # backtest vs baselines
    t.report("ridership_14d")                    # the evaluation report, inline
    t.plan("ridership_14d", run["version"])      # what promoting would change, its gates
    t.promote("ridership_14d", run["version"], as_of="2016-06-30")
    t.monitor("ridership_14d").to_frame()        # served accuracy per window

Every method calls the function its CLI command calls (``tuesday ingest`` calls
:func:`tuesday.data.tables.ingest_file`, and so on) and returns a :class:`Result`: its
``data`` is what ``--json`` prints, ``to_frame()`` a table of it, and it renders as
HTML as the last expression of a cell. Errors are the CLI's
:class:`~tuesday.errors.TuesdayError`, with the message and the fix.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuesday.project import LoadedProject, load_project, parse_time
from tuesday.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Notebook", "Result", "open"]


@dataclass(frozen=True)
class Result:
    """What a step returned: ``data`` (the JSON of its CLI command), a table of it
    (``to_frame()``) and how it shows in a notebook (``_repr_html_``).

    Example:
        >>> import pandas as pd
        >>> r = Result("Trained", {"version": 2}, pd.DataFrame({"rmse": [1.0]}))
        >>> r["version"], "<table" in r._repr_html_()
        (2, True)
    """

    title: str
    data: dict[str, Any]
    frame: pd.DataFrame = field(repr=False)
    html: str = field(default="", repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The result as a DataFrame (a copy)."""
        return self.frame.copy()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def _repr_html_(self) -> str:
        if self.html:
            return self.html
        return f"<h3>{html.escape(self.title)}</h3>" + self.frame.to_html(
            na_rep="&ndash;", float_format=lambda v: f"{v:.4g}")


def open(project: str | Path = "project.py",
         workspace: str | Path | None = None) -> Notebook:
    """Open a project and its workspace (default: ``$TUESDAY_WORKSPACE``, else
    ``.tuesday/`` beside the project, as the CLI does)."""
    loaded = load_project(project)
    root = workspace or os.environ.get("TUESDAY_WORKSPACE") or \
        Path(project).resolve().parent / ".tuesday"
    return Notebook(loaded, open_workspace(root))


class Notebook:
    """A project and its workspace, with one method per CLI step (see the module)."""

    def __init__(self, loaded: LoadedProject, ws: Workspace) -> None:
        self.loaded = loaded
        self.workspace = ws

    def __repr__(self) -> str:
        return (f"Notebook(project={str(self.loaded.path)!r}, "
                f"workspace={str(self.workspace.root)!r})")

    def ingest(self, source: str, file: str | Path, *, as_of: Any = None) -> Result:
        """``tuesday ingest SOURCE FILE``: validate, append, quarantine what fails."""
        import pandas as pd

        from tuesday.data import derived, tables

        res = tables.ingest_file(self.workspace, self.loaded.project.source(source), file,
                                 as_of=_time(as_of))
        data = res.to_dict()
        made = derived.after_ingest(self.workspace, self.loaded.project, source)
        if made:
            data["derived"] = [m.to_dict() for m in made]
        frame = pd.DataFrame([{k: data.get(k) for k in (
            "received", "accepted", "quarantined", "table_version", "ingest_id")}])
        problems = pd.DataFrame(data.get("problems") or [])
        body = frame.to_html(index=False) + (
            "<h4>Problems</h4>" + problems.drop(columns=["examples"], errors="ignore")
            .to_html(index=False) if len(problems) else "")
        return Result(f"Ingested {file} into {source}", data, frame,
                      f"<h3>{html.escape(f'Ingested {file} into {source}')}</h3>{body}")

    def train(self, model: str, *, as_of: Any = None, executor: str = "local") -> Result:
        """``tuesday train MODEL``: backtest against the baselines, fit, register."""
        from tuesday.train import training

        res = training.train(self.workspace, self.loaded, model, _time(as_of),
                             executor=executor)
        data = {"model": model, "version": res.version, "run_id": res.run_id,
                "artifact": res.artifact, "metrics": res.metrics}
        m = res.metrics
        frame = _scores({"model": m["model"], **m["baselines"]})
        title = (f"{model} version {res.version}: backtest {m['primary']} "
                 f"{m['model'][m['primary']]:.4g}, best baseline {m['best_baseline']} "
                 f"{m['baselines'][m['best_baseline']][m['primary']]:.4g}")
        return Result(title, data, frame)

    def report(self, model: str, version: int | None = None) -> Result:
        """``tuesday report MODEL VERSION`` (default: the newest version), inline."""
        from tuesday.report.evaluation import EvaluationReport, evaluation_report

        version = version or self._newest(model)
        data = evaluation_report(self.workspace, self.loaded, model, version)
        frame = _scores({"model": data["overall"]["model"], **data["overall"]["baselines"]})
        return Result(f"Evaluation of {model} version {version}", data, frame,
                      EvaluationReport(data)._repr_html_())

    def plan(self, model: str, version: int) -> Result:
        """``tuesday plan MODEL VERSION``: what promoting would change; its gates."""
        from tuesday.release import registry

        data = registry.plan(self.workspace, self.loaded.project.model(model), version)
        verdict = "would pass its gates" if data["gates_passed"] else "would FAIL its gates"
        return Result(f"Promoting {model} version {version} {verdict}", data,
                      _gates(data["gates"]))

    def promote(self, model: str, version: int, *, as_of: Any = None,
                override_reason: str | None = None, actor: str = "notebook") -> Result:
        """``tuesday promote MODEL VERSION``: to production through its gates."""
        from tuesday.release import registry

        data = registry.promote(self.workspace, self.loaded.project.model(model), version,
                                as_of=_time(as_of), actor=actor,
                                override_reason=override_reason)
        return Result(f"{model} version {version} is in production"
                      + ("" if data["changed"] else " (already)"), data,
                      _gates(data["gates"]))

    def monitor(self, model: str, *, as_of: Any = None, period: str = "W") -> Result:
        """``tuesday monitor MODEL``: served accuracy against the baselines, drift, data
        health; the report page inline, the windows as the frame."""
        import pandas as pd

        from tuesday.watch import monitoring

        data = monitoring.monitor(self.workspace, self.loaded, model, _time(as_of),
                                  period=period)
        metric = data.get("primary_metric")
        rows = [{"start": w["start"], "end": w["end"], "rows": w["rows"],
                 "model": w["model"].get(metric),
                 **{b: v.get(metric) for b, v in w["baselines"].items()},
                 "beats_baseline": w.get("beats_baseline")}
                for w in data.get("windows") or []]
        return Result(f"Monitor of {model}: {data['status']}", data, pd.DataFrame(rows),
                      monitoring.render_html(data))

    def _newest(self, model: str) -> int:
        from tuesday.errors import NotFound
        from tuesday.release import registry

        self.loaded.project.model(model)
        found = registry.versions(self.workspace, model)
        if not found:
            raise NotFound(f"Model {model!r} has no registered version yet.",
                           fix=f"Train it first: t.train({model!r}).")
        return int(found[-1]["version"])


def _time(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return parse_time(value, what="as_of").to_pydatetime()


def _scores(by_name: dict[str, dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame.from_dict(by_name, orient="index").rename_axis("predictor")


def _gates(gates: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(gates)
