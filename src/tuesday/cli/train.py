"""``tuesday train``, ``tuesday report``, ``tuesday runs list|compare`` and
``tuesday reproduce``: training a model, its evaluation report, and its recorded runs."""

from __future__ import annotations

import sys
from typing import Any

import click

from tuesday.cli.app import (
    NUMBER,
    Ctx,
    as_of_opt,
    console,
    emit,
    json_opt,
    parse_time,
    pass_ctx,
    run,
)


@click.command()
@click.argument("model")
@as_of_opt
@click.option("--executor", type=click.Choice(["local", "process"]), default="local",
              show_default=True, help="Where backtest folds run: this process or a pool.")
@click.option("--mlflow-uri", envvar="TUESDAY_MLFLOW_URI", metavar="URI",
              help="Also log the run to MLflow at URI (e.g. sqlite:///mlflow.db).")
@click.option("--folds", type=click.IntRange(min=1), default=None,
              help="Backtest folds (default: as the model declares; fewer is faster and "
                   "judges the gates on fewer days). The model file is the same.")
@json_opt
@pass_ctx
def train(c: Ctx, model: str, as_of: str | None, executor: str, mlflow_uri: str | None,
          folds: int | None, as_json: bool) -> None:
    """Build the point-in-time training set, backtest MODEL and its baselines, fit, and
    register the new version as a candidate."""
    from tuesday.cli.progress import progress
    from tuesday.train import training

    def go() -> None:
        with progress(console) as report:
            res = training.train(c.workspace, c.loaded, model, parse_time(as_of),
                                 progress=report, executor=executor, folds=folds)
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


@click.command()
@click.argument("model")
@click.argument("version", type=NUMBER)
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


@click.group()
def runs() -> None:
    """Training runs: list, compare (`tuesday reproduce RUN` trains one again)."""


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


@click.command()
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


COMMANDS = (train, report, runs, reproduce)
