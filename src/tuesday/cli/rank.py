"""``tuesday rank`` and ``tuesday ope``: slates for a file of rank requests, and the
off-policy estimate of a ranking version on what production served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tuesday.cli.app import NUMBER, Ctx, console, emit, json_opt, pass_ctx, run


@click.command()
@click.argument("model")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Rank requests, one JSON object per line (NDJSON).")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the slates, one JSON object per line.")
@json_opt
@pass_ctx
def rank(c: Ctx, model: str, input_path: str, output_path: str, as_json: bool) -> None:
    """Rank a file of requests with the production version (its rules, exploration and
    deployment), one slate per line; every candidate is logged as by the server. A line
    that cannot be ranked gets an error."""
    import json

    from tuesday.errors import TuesdayError, ValidationFailed
    from tuesday.serve.endpoints.rank import rank_lines
    from tuesday.serve.predictor import Predictor
    from tuesday.serve.ranker import Ranker

    def go() -> None:
        src = Path(input_path)
        if not src.is_file():
            raise TuesdayError(f"Input file {input_path!r} does not exist.",
                               fix="Check the path given to --input.")
        predictor = Predictor(c.workspace, c.loaded)
        rk = Ranker(predictor)
        rk.model(model)
        predictor.route(model)
        out = Path(output_path)
        tmp = out.with_name(out.name + ".partial")
        lines = src.read_text(encoding="utf-8", errors="replace").splitlines()
        ranked = errors = 0
        first: str | None = None
        try:
            with console.status("ranking"), tmp.open("w", encoding="utf-8") as f:
                for line in rank_lines(rk, model, lines):
                    f.write(line)
                    if '"error"' in line[:200] and "slate" not in line:
                        errors += 1
                        first = first or json.loads(line)["error"]
                    else:
                        ranked += 1
            predictor.log.close()
        finally:
            predictor.close()
        tmp.replace(out)
        if errors and not ranked:
            raise ValidationFailed(f"None of the {errors} requests of {input_path!r} could "
                                   f"be ranked; the first error: {first}",
                                   fix="Fix the requests and run again.")
        emit({"requests": ranked + errors, "ranked": ranked, "errors": errors,
              "output": str(out), "first_error": first}, as_json,
             lambda d: f"{d['ranked']} of {d['requests']} requests ranked, {d['errors']} "
                       f"with an error; written to {d['output']}.")

    run(go)


@click.command()
@click.argument("model")
@click.argument("version", type=NUMBER)
@click.option("--estimator", "estimators", multiple=True,
              type=click.Choice(["ips", "snips", "dm", "dr"]),
              help="Estimators to run (default: ips, snips and dr).")
@click.option("--confidence", default=0.95, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True))
@json_opt
@pass_ctx
def ope(c: Ctx, model: str, version: int, estimators: tuple[str, ...], confidence: float,
        as_json: bool) -> None:
    """Estimate MODEL VERSION's click rate off-policy on the slates production served and
    the clicks posted back, beside production's realised click rate."""
    from tuesday.errors import NotFound
    from tuesday.release import ope as release_ope
    from tuesday.release import registry

    def go() -> None:
        m = c.loaded.project.model(model)
        row = registry.get_version(c.workspace, m.name, version)
        current = registry.production(c.workspace, m.name)
        if current is None:
            raise NotFound(f"Model {model!r} has no production version whose logged slates "
                           "to evaluate on.",
                           fix=f"Promote one with `tuesday promote {model} VERSION` and serve.")
        res = release_ope.evaluate(c.workspace, m, row, current,
                                   estimators=estimators or ("ips", "snips", "dr"),
                                   confidence=confidence)
        emit(res, as_json, _text)

    run(go)


def _text(d: dict[str, Any]) -> str:
    lines = [f"{d['model']} version {d['version']} on production version "
             f"{d['production']}'s log: {d['message']}"]
    if d.get("realised") is not None:
        lines.append(f"  production realised click rate {d['realised']:.5f}")
    for name, e in d.get("estimates", {}).items():
        lines.append(f"  {name:5s} {e['value']:.5f}  ({e['confidence']:.0%} interval "
                     f"{e['lower']:.5f} to {e['upper']:.5f}, effective impressions "
                     f"{e['effective_rows']:.0f})")
    return "\n".join(lines)


COMMANDS = (rank, ope)
