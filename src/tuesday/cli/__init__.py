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
    from tuesday.data import tables

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
    from tuesday.data import tables

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
    from tuesday.train import training

    def go() -> None:
        with console.status("training") as status:
            res = training.train(c.workspace, c.loaded, model, parse_time(as_of),
                                 progress=lambda m: status.update(m), executor=executor)
        data = {"model": model, "version": res.version, "run_id": res.run_id,
                "artifact": res.artifact, "metrics": res.metrics}
        if mlflow_uri:
            from tuesday.train import tracking

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
    from tuesday.release import registry

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
    from tuesday.release import registry

    def go() -> None:
        c.loaded.project.model(model)
        res = registry.rollback(c.workspace, model, as_of=parse_time(as_of), actor=actor,
                                reason=reason)
        emit(res, as_json, lambda d: f"{model}: version {d['version']} is back in "
             f"production (replaces {d['replaced']}).")

    run(go)


@main.command()
@click.argument("model")
@click.argument("version", type=int)
@json_opt
@pass_ctx
def plan(c: Ctx, model: str, version: int, as_json: bool) -> None:
    """Show what promoting MODEL VERSION would change, without changing anything:
    gates, overall and per-slice metrics against production, the deployment it ends.
    Exits 4 when a gate fails."""
    from tuesday.release import registry

    def go() -> None:
        res = registry.plan(c.workspace, c.loaded.project.model(model), version)
        emit(res, as_json, _plan_text)
        if not res["gates_passed"]:
            sys.exit(4)

    run(go)


def _plan_text(d: dict[str, Any]) -> str:
    o = d["overall"]
    prod = d["production_version"]
    lines = [f"{d['model']} version {d['version']} ({d['stage']}) -> production"
             + (f", replacing version {prod}" if prod else "")
             + ("" if d["transition_allowed"] else "  [NOT ALLOWED from this stage]"),
             f"  {d['metric']}: {o['version']:.4f}"
             + (f" vs production {o['production']:.4f}" if o["production"] is not None else "")
             + f" vs best baseline {o['best_baseline']} {o['baseline']:.4f}"]
    lines += [f"  gate {g['gate']}: {'pass' if g['passed'] else 'FAIL'} - {g['message']}"
              for g in d["gates"]]
    for r in d["slices"]:
        change = "" if r["worse_by"] is None else f" ({r['worse_by']:+.1%} worse)" \
            if r["worse_by"] > 0 else f" ({-r['worse_by']:.1%} better)"
        lines.append(f"  slice {r['slice']}={r['value']}: {r['version']:.4f}"
                     + (f" vs {r['production']:.4f}{change}" if r["production"] is not None
                        else ""))
    if d["deployment_after"]:
        lines.append(f"  ends the {d['deployment']['mode']} deployment of version "
                     f"{d['deployment']['version']}")
    lines.append("  gates: " + ("all pass" if d["gates_passed"] else "FAIL (promote would "
                                "be refused without --override-reason)"))
    return "\n".join(lines)


@main.command()
@click.argument("model")
@click.argument("mode", type=click.Choice(["single", "shadow", "canary", "ab"]))
@click.argument("version", type=int, required=False)
@click.option("--percent", type=float, help="Share of traffic for the challenger "
              "(canary default 10, ab default 50).")
@click.option("--reason", default="", help="Why; kept in the deployment history.")
@click.option("--actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@as_of_opt
@json_opt
@pass_ctx
def deploy(c: Ctx, model: str, mode: str, version: int | None, percent: float | None,
           reason: str, actor: str, as_of: str | None, as_json: bool) -> None:
    """Route MODEL's traffic: single (production only), shadow VERSION (logged, never
    returned), canary VERSION --percent P, or ab VERSION --percent P (sticky per entity)."""
    from tuesday.release import registry

    def go() -> None:
        c.loaded.project.model(model)
        res = registry.deploy(c.workspace, model, mode, version, percent=percent,
                              as_of=parse_time(as_of), actor=actor, reason=reason)
        emit(res, as_json, lambda d: f"{model}: {d['mode']}"
             + (f" with version {d['version']} ({d['percent']:g} %)" if d["version"] else "")
             + f"; production version {d['production_version']}.")

    run(go)


@main.group()
def token() -> None:
    """API tokens with a role (predict, read, admin) for the server."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["predict", "read", "admin"]), required=True)
@pass_ctx
def token_create(c: Ctx, name: str, role: str) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    from tuesday.serve import auth

    def go() -> None:
        click.echo(auth.create(c.workspace, name, role, as_of=parse_time(None)))

    run(go)


@token.command("list")
@json_opt
@pass_ctx
def token_list(c: Ctx, as_json: bool) -> None:
    """List token names and roles (never the tokens)."""
    from tuesday.serve import auth

    def go() -> None:
        emit(auth.listing(c.workspace), as_json, lambda d: "\n".join(
            f"{t['name']}  {t['role']}  created {t['created_at']}" for t in d) or "none")

    run(go)


@token.command("revoke")
@click.argument("name")
@pass_ctx
def token_revoke(c: Ctx, name: str) -> None:
    """Revoke a token by name; the server refuses it within a second."""
    from tuesday.serve import auth

    def go() -> None:
        auth.revoke(c.workspace, name, as_of=parse_time(None))
        click.echo(f"token {name!r} revoked")

    run(go)


@main.command()
@click.argument("model")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Rows to score (.parquet or .csv) with the entity key and target time.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the answers (.parquet or .csv).")
@click.option("--chunk-rows", default=5000, show_default=True, type=click.IntRange(min=1))
@json_opt
@pass_ctx
def predict(c: Ctx, model: str, input_path: str, output_path: str, chunk_rows: int,
            as_json: bool) -> None:
    """Score a file of any size with the production version (and deployment), in chunks;
    every prediction is logged. Rows that cannot be answered get an error column."""
    from tuesday.serve.batch import predict_file

    def go() -> None:
        with console.status("scoring"):
            res = predict_file(c.workspace, c.loaded, model, Path(input_path),
                               Path(output_path), chunk_rows=chunk_rows)
        emit(res.to_dict(), as_json, lambda d: f"{d['predicted']} of {d['rows']} rows "
             f"predicted, {d['errors']} with an error; written to {d['output']}.")

    run(go)


@main.command()
@click.argument("model", required=False)
@click.option("--audit", is_flag=True, help="Show the stage transitions instead.")
@json_opt
@pass_ctx
def models(c: Ctx, model: str | None, audit: bool, as_json: bool) -> None:
    """List model versions and their stages (or the audit trail)."""
    from tuesday.release import registry

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
    from tuesday.data.materialize import materialize as materialize_online

    def go() -> None:
        m = c.loaded.project.model(model)
        with console.status("materializing"):
            res = materialize_online(c.workspace, c.loaded.project, m, parse_time(as_of))
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
    from tuesday.report.evaluation import evaluation_report, write_evaluation_report

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
    from tuesday.train import runs as runs_mod

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
    from tuesday.train import runs as runs_mod

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
    from tuesday.train import runs as runs_mod

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
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes; each loads its models after it starts.")
@click.option("--scheduler", is_flag=True,
              help="Also run the daily loop tick of every model (see `tuesday loop run`).")
@click.option("--at", default="06:00", show_default=True, metavar="HH:MM",
              help="With --scheduler: the time of day (UTC) of the tick.")
@pass_ctx
def serve(c: Ctx, host: str, port: int, workers: int, scheduler: bool, at: str) -> None:
    """Run the HTTP server (predict, batch, events, ground truth, admin, /metrics, /docs);
    with --scheduler the daily loop runs in the same (parent) process."""
    import threading

    import uvicorn

    from tuesday.loop import daily as loop
    from tuesday.serve import auth

    def go() -> None:
        c.loaded  # noqa: B018  (check the project before starting anything)
        ws = c.workspace
        if host not in ("127.0.0.1", "localhost", "::1") and not auth.active(ws):
            console.print(f"[bold yellow]warning:[/] listening on {host} with no API "
                          "tokens: anyone who reaches the port can predict and promote. "
                          "Create one with `tuesday token create NAME --role admin`.")
        os.environ["TUESDAY_WORKSPACE"] = str(ws.root)
        os.environ["TUESDAY_PROJECT"] = str(c.project_path.resolve())
        # an import string and a factory: uvicorn spawns fresh worker processes, and each
        # builds its app (and loads LightGBM) after it started, never across a fork
        stop = threading.Event()
        if scheduler:  # one scheduler, in this process, whatever the number of workers
            loop._parse_at(at)  # a bad --at fails now, not in the thread
            threading.Thread(target=loop.run_scheduler, args=(ws, c.loaded),
                             kwargs={"at": at, "stop": stop}, daemon=True,
                             name="tuesday-scheduler").start()
        try:
            uvicorn.run("tuesday.serve.server:app_from_env", factory=True, host=host, port=port,
                        workers=workers, log_level="warning", access_log=False,
                        timeout_graceful_shutdown=10)
        finally:
            stop.set()

    run(go)


def _pairs(values: tuple[str, ...], what: str, number: bool) -> dict[str, Any]:
    """``FEATURE=VALUE`` options as a dict (numbers for thresholds)."""
    out: dict[str, Any] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TuesdayError(f"{what} must look like FEATURE=VALUE. Got {v!r}.",
                               fix=f"e.g. {what} temp_last_known="
                                   + ("0.2" if number else "psi"))
        try:
            out[name.strip()] = float(value) if number else value.strip()
        except ValueError:
            raise TuesdayError(f"{what} {v!r}: the threshold must be a number.",
                               fix=f"e.g. {what} {name.strip()}=0.2") from None
    return out


@main.command()
@click.argument("model")
@as_of_opt
@click.option("--period", default="W", show_default=True, metavar="ALIAS",
              help="Time windows of the quality table: D, W (Monday to Sunday) or M.")
@click.option("--drift-method", "drift_methods", multiple=True, metavar="FEATURE=METHOD",
              help="Drift method of a feature (ks, wasserstein, psi, jensenshannon, chi2, z). "
                   "Repeatable.")
@click.option("--drift-threshold", "drift_thresholds", multiple=True,
              metavar="FEATURE=VALUE", help="Drift threshold of a feature. Repeatable.")
@click.option("--metrics-url", metavar="URL",
              help="The server's /metrics URL, for service health (error rate, p99). "
                   "Sends $TUESDAY_TOKEN as a Bearer token when set.")
@click.option("--alert", is_flag=True,
              help="Raise the alerts the report calls for (Log route, plus the model "
                   "policy's routes).")
@click.option("--max-error-rate", default=0.01, show_default=True,
              type=click.FloatRange(0, 1), help="With --alert: service error rate above "
                                               "which a critical alert is raised.")
@json_opt
@pass_ctx
def monitor(c: Ctx, model: str, as_of: str | None, period: str,
            drift_methods: tuple[str, ...], drift_thresholds: tuple[str, ...],
            metrics_url: str | None, alert: bool, max_error_rate: float,
            as_json: bool) -> None:
    """Drift, accuracy on ground truth (per window, slice and deployment variant),
    estimated accuracy before labels (binary models), data and service health; writes
    JSON and HTML; with --alert raises alerts."""
    from tuesday.watch import health, monitoring

    def go() -> None:
        if period not in ("D", "W", "M"):
            raise TuesdayError(f"--period must be D, W or M. Got {period!r}.",
                               fix="Use --period W for weekly windows.")
        text = health.fetch_metrics(metrics_url, token=os.environ.get("TUESDAY_TOKEN")) \
            if metrics_url else None
        res = monitoring.monitor(
            c.workspace, c.loaded, model, parse_time(as_of), period=period,
            drift_methods=_pairs(drift_methods, "--drift-method", False),
            drift_thresholds=_pairs(drift_thresholds, "--drift-threshold", True),
            metrics_text=text, alert=alert, max_error_rate=max_error_rate)
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
    m = d.get("primary_metric")
    for w in (d.get("windows") or [])[-4:]:
        best = w.get("best_baseline")
        lines.append(f"  window {w['start']}..{w['end']}: {w['rows']} rows, {m} "
                     f"{w['model'][m]:.4f}"
                     + (f" vs {best} {w['baselines'][best][m]:.4f}" if best else ""))
    for cmp_ in (d.get("variants") or {}).get("comparisons", []):
        lines.append(f"  {cmp_['kind']}: {cmp_['note']}")
    est = d.get("performance_estimate")
    if est:
        e = est["pending"]["estimate"]
        lines.append(f"  ESTIMATE (CBPE) on {est['pending']['rows']} rows awaiting labels: "
                     f"accuracy {e['accuracy']:.4f}, roc_auc {e['roc_auc']:.4f}")
    if d.get("drift"):
        dd = d["drift"]
        drifted = [x["column"] for x in dd["columns"] if x["drifted"]]
        lines.append(f"  drift: {len(drifted)} of {len(dd['columns'])} features"
                     + (f" ({', '.join(drifted)})" if drifted else ""))
    s = d.get("service_health")
    if s:
        lines.append(f"  service: {s['requests']} requests, error rate "
                     + ("-" if s["error_rate"] is None else f"{s['error_rate']:.2%}")
                     + ", p99 " + ("-" if s.get("p99_seconds") is None
                                   else f"{s['p99_seconds'] * 1000:.1f} ms"))
    for p in d.get("problems") or []:
        lines.append(f"  problem: {p}")
    for a in d.get("alerts") or []:
        lines.append(f"  alert #{a['id']} [{a['severity']}] {a['title']}")
    if d.get("report_html"):
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
    from tuesday.cli.demo import run_demo

    def go() -> None:
        summary = run_demo(c.workspace_arg, days=days, quiet=as_json)
        emit(summary, as_json, lambda d: "")

    run(go)


# ----------------------------------------------------------------- loop and replay


@main.group("loop")
def loop_group() -> None:
    """The daily loop: monitor, retrain and promote by the model's Policy, alert."""


def _loop_text(d: dict[str, Any]) -> str:
    mon = d.get("monitor") or {}
    lines = [f"{d['model']} tick as of {d['as_of']}: {d['status']}"
             + (" (recorded earlier; nothing done)" if d.get("repeated") else "")]
    if mon:
        q = mon.get("quality") or {}
        lines.append(f"  monitor: {mon['status']}; drift share {mon.get('drift_share')}; "
                     f"{q.get('rows', 0)} rows of ground truth"
                     + (f" ({q['why']})" if q.get("why") else ""))
    for r in d["reasons"]:
        lines.append(f"  retrain: {r}")
    if d.get("held"):
        lines.append(f"  held: {d['held']}")
    if d.get("retrained"):
        lines.append(f"  trained version {d['retrained']['version']}")
    if d.get("promoted"):
        lines.append(f"  promoted version {d['promoted']} to production")
    if d.get("awaiting_approval"):
        lines.append(f"  version {d['awaiting_approval']} awaits approval: `tuesday promote "
                     f"{d['model']} {d['awaiting_approval']}`")
    if d.get("error"):
        lines.append(f"  error: {d['error']}")
    for a in d["alerts"]:
        lines.append(f"  alert [{a['severity']}] {a['title']}")
    return "\n".join(lines)


@loop_group.command("run")
@click.argument("model")
@as_of_opt
@click.option("--ingest", "ingest_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="First ingest DIR/SOURCE.csv (or .parquet) for each source present.")
@json_opt
@pass_ctx
def loop_run(c: Ctx, model: str, as_of: str | None, ingest_dir: str | None,
             as_json: bool) -> None:
    """One tick of MODEL's daily job: monitor, decide, retrain, gates, materialize, alert.

    Idempotent: the same MODEL and --as-of again prints the recorded outcome and does
    nothing. Exit 0 when done, 4 when a retrained version failed its gates and awaits
    approval, 7 (or 1) when retraining failed, 5 for a tick older than the last one.
    """
    from tuesday.loop import daily as loop

    def go() -> None:
        with console.status("loop tick") as status:
            out = loop.tick(c.workspace, c.loaded, model, parse_time(as_of),
                            ingest=ingest_dir, progress=lambda m: status.update(m))
        emit(out, as_json, _loop_text)
        if out["exit_code"]:
            sys.exit(out["exit_code"])

    run(go)


@loop_group.command("ticks")
@click.argument("model")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1))
@json_opt
@pass_ctx
def loop_ticks(c: Ctx, model: str, limit: int, as_json: bool) -> None:
    """The recorded ticks of MODEL, newest first."""
    from tuesday.loop import daily as loop

    def go() -> None:
        c.loaded.project.model(model)
        rows = loop.ticks(c.workspace, model, limit=limit)
        emit(rows, as_json, lambda d: "\n".join(
            f"{r['as_of']}  {r['status']:<17} v{r['production_version']}  "
            + "; ".join(r["reasons"]) for r in d) or "no ticks")

    run(go)


@loop_group.command("schedule")
@click.argument("models", nargs=-1)
@click.option("--at", default="06:00", show_default=True, help="Time of day (UTC), HH:MM.")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Stop after this many days (default: run until interrupted).")
@pass_ctx
def loop_schedule(c: Ctx, models: tuple[str, ...], at: str, days: int | None) -> None:
    """Run the daily tick of MODELS (default: every model) at --at, in the foreground.
    The same tick as `tuesday loop run` (run that from cron instead, if you prefer)."""
    from tuesday.loop import daily as loop

    def go() -> None:
        console.print(f"scheduler: daily tick at {at} UTC of "
                      f"{', '.join(models) or 'every model'}; Ctrl-C stops")
        try:
            loop.run_scheduler(c.workspace, c.loaded, models, at=at, max_days=days,
                               on_tick=lambda o: click.echo(json.dumps(o, default=str)))
        except KeyboardInterrupt:
            console.print("scheduler stopped")

    run(go)


@main.command("replay")
@click.argument("model")
@click.option("--start", required=True, help="First day (history known then trains v1).")
@click.option("--end", required=True, help="Last day.")
@click.option("--shock", "shocks", multiple=True, metavar="SHOCK",
              help="e.g. 'scale=0.6 from 2015-03-01', 'stuck:weather.temp=50 from "
                   "2015-06-01', 'rename:ridership.station=OLD>NEW from 2015-06-01'. "
                   "Repeatable.")
@click.option("--workspace", "replay_ws", type=click.Path(file_okay=False), metavar="DIR",
              help="A new or empty folder for the replay (default: a fresh temporary one).")
@click.option("--data", type=click.Path(file_okay=False), metavar="DIR",
              help="History as SOURCE.csv/.parquet files (default: the project module's "
                   "example_frames()).")
@click.option("--folds", type=click.IntRange(min=1), default=None,
              help="Backtest folds per training (default: as declared; fewer is faster).")
@click.option("--schedule", default=None, help="Override the policy: retrain every N days "
                                               "('7d'), or 'none'.")
@click.option("--drift-ticks", type=click.IntRange(min=1), default=None,
              help="Override the policy: retrain after N drifted ticks.")
@click.option("--auto-promote/--no-auto-promote", default=None,
              help="Override the policy: promote retrained versions that pass their gates.")
@json_opt
@pass_ctx
def replay_cmd(c: Ctx, model: str, start: str, end: str, shocks: tuple[str, ...],
               replay_ws: str | None, data: str | None, folds: int | None,
               schedule: str | None, drift_ticks: int | None, auto_promote: bool | None,
               as_json: bool) -> None:
    """Replay MODEL's daily loop from --start to --end with a virtual clock: ingest each
    day's data, serve the horizon's forecast, monitor, alert, retrain and promote by
    policy. Writes a timeline report (HTML and JSON)."""
    import dataclasses

    from tuesday.loop import daily as loop
    from tuesday.loop import replay

    def go() -> None:
        pol = loop.policy_for(c.loaded.project.model(model))
        changes: dict[str, Any] = {}
        if schedule is not None:
            changes["schedule"] = None if schedule.lower() == "none" else schedule
        if drift_ticks is not None:
            changes["drift_ticks"] = drift_ticks
        if auto_promote is not None:
            changes["auto_promote"] = auto_promote
        pol = dataclasses.replace(pol, **changes)
        problems = loop.check_policy(pol, f"Model {model!r}")
        if problems:
            raise TuesdayError(" ".join(problems), fix="Fix the policy options.")
        with console.status("replaying") as status:
            tl = replay.replay(c.loaded, model, start, end,
                               workspace=replay_ws or c.workspace_arg, policy=pol,
                               shocks=[replay.Shock.parse(s) for s in shocks], data=data,
                               folds=folds, progress=lambda m: status.update(m))
        short = {k: tl[k] for k in ("model", "start", "end", "workspace", "summary",
                                    "shocks", "seconds", "report_html", "report_json")}
        emit(tl if as_json else short, as_json, _replay_text)

    run(go)


def _replay_text(d: dict[str, Any]) -> str:
    s = d["summary"]
    a = s["accuracy"]
    lines = [f"Replayed {d['model']} {d['start']} to {d['end']} in {d['seconds']['total']}s: "
             f"{s['days']} days, {s['served']} forecasts served, {s['retrains']} retrain(s), "
             f"{s['promotions']} promotion(s), {s['alerts']} new alert(s)."]
    if a["wape"] is not None:
        lines.append(f"  WAPE of what was served {a['wape']:.3f}; best baseline "
                     f"{a['best_baseline']} {a['baseline_wape']:.3f}")
    for sh in d["shocks"]:
        fa = sh["first_alert"]
        lines.append(f"  shock: {sh['text']}: first alert "
                     + (f"{fa['date']} (+{fa['days_after']} d, {', '.join(fa['kinds'])})"
                        if fa else "none")
                     + f"; recovered: {'yes' if sh['recovered'] else 'no'}")
    lines.append(f"  timeline: {d['report_html']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------- alerts


@main.group("alerts")
def alerts_group() -> None:
    """Alerts raised by `tuesday monitor --alert` and the daily loop."""


def _alert_line(a: dict[str, Any]) -> str:
    return (f"#{a['id']:<4} {a['status']:<12} {a['severity']:<8} {a['model']}/{a['kind']}: "
            f"{a['title']} (x{a['count']}, last {a['last_seen']})")


@alerts_group.command("list")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]),
              help="Only alerts with this status.")
@click.option("--model", help="Only alerts of this model.")
@json_opt
@pass_ctx
def alerts_list(c: Ctx, status: str | None, model: str | None, as_json: bool) -> None:
    """List alerts, oldest first."""
    from tuesday.watch import alerts

    def go() -> None:
        rows = [a.to_dict() for a in alerts.list_alerts(c.workspace, status=status,
                                                        model=model)]
        emit(rows, as_json, lambda d: "\n".join(_alert_line(a) for a in d) or "no alerts")

    run(go)


@alerts_group.command("ack")
@click.argument("alert_id", type=int)
@click.option("--note", default="", help="Why, or what is being done.")
@click.option("--actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@as_of_opt
@json_opt
@pass_ctx
def alerts_ack(c: Ctx, alert_id: int, note: str, actor: str, as_of: str | None,
               as_json: bool) -> None:
    """Acknowledge ALERT_ID: further occurrences are counted but notify nobody."""
    from tuesday.watch import alerts

    def go() -> None:
        a = alerts.acknowledge(c.workspace, alert_id, actor=actor, note=note,
                               as_of=parse_time(as_of))
        emit(a.to_dict(), as_json, _alert_line)

    run(go)


@alerts_group.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--note", default="", help="What fixed it.")
@click.option("--actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@as_of_opt
@json_opt
@pass_ctx
def alerts_resolve(c: Ctx, alert_id: int, note: str, actor: str, as_of: str | None,
                   as_json: bool) -> None:
    """Resolve ALERT_ID: the next occurrence opens a new alert."""
    from tuesday.watch import alerts

    def go() -> None:
        a = alerts.resolve(c.workspace, alert_id, actor=actor, note=note,
                           as_of=parse_time(as_of))
        emit(a.to_dict(), as_json, _alert_line)

    run(go)


