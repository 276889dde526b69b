"""Command line: ``tuesday COMMAND``. Every command is idempotent where it can be, prints
data as JSON with ``--json``, and exits non-zero with a one-paragraph explanation.

Exit codes: 0 ok, 1 internal error (a bug), 2 invalid input, 3 not found, 4 gate failed,
5 conflict, 7 validation failed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from tuesday.errors import TuesdayError, ValidationFailed
from tuesday.project import LoadedProject, load_project
from tuesday.project import parse_time as project_time
from tuesday.workspace import Workspace, open_workspace

console = Console(stderr=True)


class Ctx:
    def __init__(self, project: str | None, workspace: str | None) -> None:
        self.project_arg = project
        self.workspace_arg = workspace
        self._loaded: LoadedProject | None = None

    @property
    def loaded(self) -> LoadedProject:
        if self._loaded is None:
            self._loaded = load_project(self.project_path)
        return self._loaded

    @property
    def project_path(self) -> Path:
        return Path(self.project_arg or os.environ.get("TUESDAY_PROJECT") or "project.py")

    @property
    def workspace(self) -> Workspace:
        root = self.workspace_arg or os.environ.get("TUESDAY_WORKSPACE")
        if not root:
            root = str(self.project_path.resolve().parent / ".tuesday")
        return open_workspace(root)


def parse_time(value: str | None, *, what: str = "--as-of") -> datetime:
    """A time given on the command line; the wall clock (UTC) when not given."""
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return project_time(value, what=what).to_pydatetime()


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(human(data))


def run(fn: Callable[[], None]) -> None:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "project", metavar="PATH",
              help="Project module (default: $TUESDAY_PROJECT or ./project.py).")
@click.option("--workspace", "workspace", metavar="DIR",
              help="Workspace folder (default: $TUESDAY_WORKSPACE or .tuesday/ next to the "
                   "project).")
@click.version_option(package_name="tuesday")
@click.pass_context
def main(ctx: click.Context, project: str | None, workspace: str | None) -> None:
    """tuesday: from a notebook model to a production service that checks its data,
    serves fast, watches itself and explains itself."""
    ctx.obj = Ctx(project, workspace)


@main.command()
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
    from tuesday import tables

    def go() -> None:
        src = c.loaded.project.source(source)
        with console.status(f"ingesting {file}"):
            res = tables.ingest_file(c.workspace, src, file, as_of=parse_time(as_of))
        emit(res.to_dict(), as_json, lambda d: res.report.summary()
             + (f"\nTable version: {res.version}" if res.version is not None else ""))
        if res.report.accepted == 0 and res.report.received > 0:
            raise ValidationFailed(f"No row of {file!r} was accepted into {source!r}.",
                               fix=f"See the problems above; `tuesday quarantine {source}` "
                                   "shows the rows.")

    run(go)


@main.command()
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
    from tuesday import tables

    def go() -> None:
        src = c.loaded.project.source(source)
        if export:
            n = tables.export_quarantine(c.workspace, src, export, ingest_id=ingest_id)
            emit({"exported": n, "file": export}, as_json,
                 lambda d: f"{n} open quarantined row(s) written to {export}; fix them and "
                           f"run `tuesday ingest {source} {export}`.")
            return
        q = tables.quarantine(c.workspace, src, open_only=open_only)
        rows = q.tail(limit).to_dict(orient="records")
        emit({"total": len(q), "rows": rows}, as_json,
             lambda d: f"{d['total']} quarantined row(s)\n" + q.tail(limit).to_string())

    run(go)


@main.command()
@click.argument("model")
@as_of_opt
@click.option("--executor", type=click.Choice(["local", "process"]), default="local",
              show_default=True, help="Where backtest folds run: this process or a pool.")
@click.option("--mlflow-uri", envvar="TUESDAY_MLFLOW_URI", metavar="URI",
              help="Also log the run to MLflow at URI (e.g. sqlite:///mlflow.db).")
@json_opt
@pass_ctx
def train(c: Ctx, model: str, as_of: str | None, executor: str, mlflow_uri: str | None,
          as_json: bool) -> None:
    """Build the point-in-time training set, backtest MODEL and its baselines, fit, and
    register the new version as a candidate."""
    from tuesday import training

    def go() -> None:
        with console.status("training") as status:
            res = training.train(c.workspace, c.loaded, model, parse_time(as_of),
                                 progress=lambda m: status.update(m), executor=executor)
        data = {"model": model, "version": res.version, "run_id": res.run_id,
                "artifact": res.artifact, "metrics": res.metrics}
        if mlflow_uri:
            from tuesday import tracking

            data["mlflow_run_id"] = tracking.log_run(c.workspace, res.run_id, mlflow_uri)
        emit(data, as_json, lambda d: _train_text(d))

    run(go)


def _train_text(d: dict[str, Any]) -> str:
    m = d["metrics"]
    p = m["primary"]
    lines = [f"Model {d['model']} version {d['version']} registered as candidate "
             f"(run {d['run_id'][:12]}).",
             f"Backtest over {m['rows']} rows, {len(m['folds'])} folds:",
             f"  model            {p} {m['model'][p]:.4f}"]
    for name, vals in m["baselines"].items():
        lines.append(f"  {name:<16} {p} {vals[p]:.4f}")
    lines.append(f"Lift over best baseline ({m['best_baseline']}): {m['lift']:.1%}")
    return "\n".join(lines)


@main.command()
@click.argument("model")
@click.argument("version", type=int)
@click.option("--override-reason", help="Promote despite failed gates, recording why.")
@click.option("--actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@as_of_opt
@json_opt
@pass_ctx
def promote(c: Ctx, model: str, version: int, override_reason: str | None, actor: str,
            as_of: str | None, as_json: bool) -> None:
    """Move MODEL VERSION to production if it passes its gates."""
    from tuesday import registry

    def go() -> None:
        res = registry.promote(c.workspace, c.loaded.project.model(model), version,
                               as_of=parse_time(as_of), actor=actor,
                               override_reason=override_reason)
        emit(res, as_json, lambda d: f"{model} version {version} is in production"
             + ("" if d["changed"] else " (already)") + ".\n"
             + "\n".join(f"  gate {g['gate']}: {'pass' if g['passed'] else 'FAIL'} - "
                         f"{g['message']}" for g in d["gates"]))

    run(go)


@main.command()
@click.argument("model")
@click.option("--reason", default="rollback", show_default=True)
@click.option("--actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@as_of_opt
@json_opt
@pass_ctx
def rollback(c: Ctx, model: str, reason: str, actor: str, as_of: str | None,
             as_json: bool) -> None:
    """Restore the previous production version of MODEL."""
    from tuesday import registry

    def go() -> None:
        c.loaded.project.model(model)
        res = registry.rollback(c.workspace, model, as_of=parse_time(as_of), actor=actor,
                                reason=reason)
        emit(res, as_json, lambda d: f"{model}: version {d['version']} is back in "
             f"production (replaces {d['replaced']}).")

    run(go)


@main.command()
@click.argument("model", required=False)
@click.option("--audit", is_flag=True, help="Show the stage transitions instead.")
@json_opt
@pass_ctx
def models(c: Ctx, model: str | None, audit: bool, as_json: bool) -> None:
    """List model versions and their stages (or the audit trail)."""
    from tuesday import registry

    def go() -> None:
        if model:
            c.loaded.project.model(model)
        rows = registry.audit(c.workspace, model) if audit else \
            registry.versions(c.workspace, model)
        emit(rows, as_json, lambda d: "\n".join(
            "  ".join(f"{k}={v}" for k, v in r.items()) for r in d) or "none")

    run(go)


@main.command()
@click.argument("model")
@as_of_opt
@json_opt
@pass_ctx
def materialize(c: Ctx, model: str, as_of: str | None, as_json: bool) -> None:
    """Compute MODEL's online features for every entity as of --as-of (with daily data:
    the last day whose data is in) and store them for serving."""
    from tuesday import online

    def go() -> None:
        m = c.loaded.project.model(model)
        with console.status("materializing"):
            res = online.materialize(c.workspace, c.loaded.project, m, parse_time(as_of))
        emit(res, as_json, lambda d: f"{d['entities']} entities x {d['targets']} target(s) "
             f"stored for {model} (origin {d['origin']}).")

    run(go)


@main.command()
@click.argument("model")
@click.argument("version", type=int)
@json_opt
@pass_ctx
def report(c: Ctx, model: str, version: int, as_json: bool) -> None:
    """Write the evaluation report of MODEL VERSION (HTML that opens offline, and JSON):
    model against its baselines per fold, per slice and per entity, actual vs predicted,
    residuals, feature importance."""
    from tuesday.report import evaluation_report, write_evaluation_report

    def go() -> None:
        c.loaded.project.model(model)
        with console.status("writing the evaluation report"):
            json_path, html_path = write_evaluation_report(c.workspace, c.loaded, model,
                                                           version)
        if as_json:
            data = evaluation_report(c.workspace, c.loaded, model, version)
            emit({**data, "report_json": str(json_path), "report_html": str(html_path)},
                 True, str)
        else:
            click.echo(f"{html_path}\n{json_path}")

    run(go)


@main.group()
def runs() -> None:
    """Training runs: list, compare, reproduce."""


@runs.command("list")
@click.argument("model", required=False)
@json_opt
@pass_ctx
def runs_list(c: Ctx, model: str | None, as_json: bool) -> None:
    """List runs (of MODEL) with their version, stage and primary metric."""
    from tuesday import runs as runs_mod

    def go() -> None:
        if model:
            c.loaded.project.model(model)
        rows = runs_mod.list_runs(c.workspace, model)
        emit(rows, as_json, lambda d: "\n".join(
            f"{r['run_id'][:12]}  {r['model']}  v{r['version']}  {r['stage']}  "
            f"as of {r['as_of']}  {r['primary']} {r['value']:.4f}  lift {r['lift']:.1%}"
            for r in d) or "no runs")

    run(go)


@runs.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@json_opt
@pass_ctx
def runs_compare(c: Ctx, run_a: str, run_b: str, as_json: bool) -> None:
    """Every difference between two runs: data, code, parameters, metrics, slices."""
    from tuesday import runs as runs_mod

    def go() -> None:
        res = runs_mod.compare(c.workspace, run_a, run_b)
        emit(res, as_json, lambda d: f"{d['a'][:12]} vs {d['b'][:12]}: "
             f"{len(d['differences'])} difference(s)"
             + ("" if not d["same_artifact"] else " (same model file)") + "\n"
             + "\n".join(f"  {x['field']}: {x['a']} -> {x['b']}" for x in d["differences"]))

    run(go)


@main.command()
@click.argument("run_id")
@json_opt
@pass_ctx
def reproduce(c: Ctx, run_id: str, as_json: bool) -> None:
    """Train RUN_ID again from its recorded inputs and report any difference
    (exit 0 when identical, 5 when not)."""
    from tuesday import runs as runs_mod

    def go() -> None:
        with console.status("training again from the run's inputs"):
            res = runs_mod.reproduce(c.workspace, c.loaded, run_id)
        emit(res, as_json, lambda d: (
            f"run {d['run_id'][:12]} reproduced: identical model file "
            f"{d['artifact'][:12]}" if d["identical"] else
            f"run {d['run_id'][:12]} did NOT reproduce:\n" + "\n".join(
                f"  {p}" for p in d["differences"])
            + "".join(f"\n  metric {k}: {a} -> {b}"
                      for k, (a, b) in d["metric_differences"].items())))
        if not res["identical"]:
            sys.exit(5)

    run(go)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@pass_ctx
def serve(c: Ctx, host: str, port: int) -> None:
    """Run the HTTP server (predict, ground truth, health, /metrics, /docs)."""
    import uvicorn

    from tuesday.serving import create_app

    def go() -> None:
        app = create_app(c.workspace.root, c.project_path)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)

    run(go)


@main.command()
@click.argument("model")
@as_of_opt
@json_opt
@pass_ctx
def monitor(c: Ctx, model: str, as_of: str | None, as_json: bool) -> None:
    """Drift of served features and accuracy on ground truth; writes JSON and HTML."""
    from tuesday import monitoring

    def go() -> None:
        res = monitoring.monitor(c.workspace, c.loaded, model, parse_time(as_of))
        emit(res, as_json, _monitor_text)

    run(go)


def _monitor_text(d: dict[str, Any]) -> str:
    lines = [f"{d['model']} v{d['production_version']}: status {d['status']}, "
             f"{d['predictions_logged']} predictions logged."]
    q = d.get("quality")
    if q and q.get("rows_with_ground_truth"):
        lines.append(f"  on {q['rows_with_ground_truth']} rows with ground truth: model "
                     + ", ".join(f"{k} {v:.4f}" for k, v in q["model"].items()))
        for name, vals in q["baselines"].items():
            lines.append(f"  {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in vals.items()))
    if d.get("drift"):
        dd = d["drift"]
        drifted = [x["column"] for x in dd["columns"] if x["drifted"]]
        lines.append(f"  drift: {len(drifted)} of {len(dd['columns'])} features"
                     + (f" ({', '.join(drifted)})" if drifted else ""))
    lines.append(f"  report: {d['report_html']}")
    return "\n".join(lines)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.option("--days", default=42, show_default=True,
              help="Days of live operation to simulate after training.")
@pass_ctx
def demo(c: Ctx, as_json: bool, days: int) -> None:
    """Run the whole loop on the real Chicago ridership example: ingest history, train,
    promote, start the server, send real HTTP requests day by day, feed actuals, monitor.
    Uses --workspace if given, else a fresh temporary folder."""
    from tuesday.demo import run_demo

    def go() -> None:
        summary = run_demo(c.workspace_arg, days=days, quiet=as_json)
        emit(summary, as_json, lambda d: "")

    run(go)


if __name__ == "__main__":  # pragma: no cover
    main()
