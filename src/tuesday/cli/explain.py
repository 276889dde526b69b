"""``tuesday explain``: why the model says what it says for one entity and time, or why
it said what it said in a logged answer, in plain words with each feature's part."""

from __future__ import annotations

from typing import Any

import click

from tuesday.cli.app import Ctx, emit, json_opt, pass_ctx, run


@click.command()
@click.argument("model")
@click.option("--entity", help="The entity key (e.g. a station, a customer).")
@click.option("--at", "at", metavar="TIME",
              help="The target time of the prediction (e.g. 2016-07-05); for a model "
                   "without a horizon, the time to score at (default: now).")
@click.option("--request-id", help="Explain a logged answer instead: its request id "
                                   "(with --entity when the request held several rows).")
@click.option("--top", default=8, show_default=True, type=click.IntRange(min=1),
              help="Features listed in the text output.")
@json_opt
@pass_ctx
def explain(c: Ctx, model: str, entity: str | None, at: str | None,
            request_id: str | None, top: int, as_json: bool) -> None:
    """Explain one prediction of MODEL: the production version's answer for --entity at
    --at (computed now, not logged), or a logged answer by --request-id. Prints the
    sentence and each feature's part in the target's units."""
    from tuesday.errors import TuesdayError
    from tuesday.serve.explaining import explain_logged
    from tuesday.serve.predictor import Predictor

    def go() -> None:
        m = c.loaded.project.model(model)
        if request_id is not None:
            out = explain_logged(c.workspace, c.loaded, request_id, entity=entity)
            if out["model"] != m.name:
                raise TuesdayError(f"Request {request_id} was answered by model "
                                   f"{out['model']!r}, not {model!r}.",
                                   fix=f"Run `tuesday explain {out['model']} --request-id "
                                       f"{request_id}`.")
        else:
            if entity is None:
                raise TuesdayError("Say which prediction to explain: --entity KEY (and --at "
                                   "TIME), or --request-id ID of a logged answer.",
                                   fix=f"Run e.g. `tuesday explain {model} --entity E --at "
                                       "2016-07-05`.")
            out = _explain_now(c, Predictor, m, entity, at)
        emit(out, as_json, lambda d: _text(d, top))

    run(go)


def _explain_now(c: Ctx, predictor_type: Any, m: Any, entity: str, at: str | None
                 ) -> dict[str, Any]:
    """The production version's explained answer for one row, not logged."""
    tcol = c.loaded.project.source(m.label_source).time
    row: dict[str, Any] = {m.entity.key: entity}
    if at is not None and tcol:
        row[tcol] = at
    predictor = predictor_type(c.workspace, c.loaded, log_predictions=False)
    try:
        body = predictor.predict(m.name, [row], explain=True)
    finally:
        predictor.close()
    answer = body["predictions"][0]
    return {"model": m.name, "model_version": answer.get("model_version",
                                                         body["model_version"]),
            "entity": entity, "key": m.entity.key,
            "target_time": answer.get(tcol) if tcol else None,
            "prediction": answer["prediction"], "explanation": answer["explanation"]}


def _text(d: dict[str, Any], top: int) -> str:
    from tuesday.train.explanations import number

    e = d["explanation"]
    lines = [e["sentence"], "",
             f"{d['model']} version {d['model_version']}; expected value "
             f"{number(e['expected'])} (the prediction with no feature information); each "
             "feature's part:"]
    items = list(e["contributions"].items())
    width = max((len(c["text"]) for _, c in items[:top]), default=0)
    for _, c in items[:top]:
        lines.append(f"  {c['text']:<{width}}  {'+' if c['shift'] >= 0 else '-'}"
                     f"{number(abs(c['shift']))}")
    if len(items) > top:
        rest = sum(c["shift"] for _, c in items[top:])
        lines.append(f"  {f'{len(items) - top} other features':<{width}}  "
                     f"{'+' if rest >= 0 else '-'}{number(abs(rest))}")
    return "\n".join(lines)


COMMANDS = (explain,)
