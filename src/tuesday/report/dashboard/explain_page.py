"""The explain page's body: pick an entity and a time, or a request from the prediction
log; see the prediction, the baseline's forecast, the sentence and the waterfall of the
reasons."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tuesday.errors import TuesdayError
from tuesday.project import LoadedProject, Model
from tuesday.report.dashboard.layout import esc, fig, table
from tuesday.report.explain_html import explanation_html
from tuesday.train.explanations import number
from tuesday.watch.monitor_html import when

__all__ = ["explain_body"]


def _form(model: Model, tcol: str | None, entity: str | None, at: str | None,
          recent: list[dict[str, Any]], request_id: str | None) -> str:
    horizon = model.horizon and model.horizon != "0d"
    when_field = ""
    if tcol:
        kind = "date" if horizon else "text"
        hint = "the day forecast" if horizon else "time to score at (default: now)"
        when_field = (f'<label>{esc(tcol)} <input type="{kind}" name="at" '
                      f'value="{esc((at or "")[:10] if horizon else at or "")}" '
                      f'title="{esc(hint)}"></label> ')
    out = ['<section><h2>Which prediction?</h2><form method="get" class="pick">'
           f'<label>{esc(model.entity.key)} <input type="text" name="entity" '
           f'value="{esc(entity or "")}" required></label> {when_field}'
           '<button class="act">Explain</button></form>']
    if request_id and all(r["request_id"] != request_id for r in recent):
        recent = [{"request_id": request_id, "entity": "this request", "target_time": None,
                   "served_at": None, "prediction": None}, *recent]
    if recent:
        opts = "".join(
            f'<option value="{esc(r["request_id"])}"'
            + (" selected" if r["request_id"] == request_id else "") + ">"
            f'{esc(r["entity"])} · {when(r["target_time"] or r["served_at"])} · '
            f'{esc(number(r["prediction"]))} (served {when(r["served_at"])})</option>'
            if r["served_at"] else f"{esc(r['request_id'])}</option>"
            for r in recent)
        out.append('<form method="get" class="pick"><label>or a served answer '
                   f'<select name="request_id">{opts}</select></label> '
                   '<button class="act">Explain</button></form>')
    out.append("</section>")
    return "".join(out)


def explain_body(model: Model, loaded: LoadedProject, result: dict[str, Any] | None,
                 problem: TuesdayError | None, recent: list[dict[str, Any]], *,
                 entity: str | None, at: str | None, request_id: str | None,
                 src: str) -> str:
    """The page's body (``src``: the JSON endpoint that answers the same question)."""
    tcol = loaded.project.source(model.label_source).time
    out = [f"<h1>Why did {esc(model.name)} say that?</h1>",
           _form(model, tcol, entity, at, recent, request_id)]
    if problem is not None:
        out.append(f'<section class="error"><p>{esc(problem.message)}</p>'
                   + (f"<p><b>What to do:</b> {esc(problem.fix)}</p>" if problem.fix else "")
                   + "</section>")
    if result is None:
        return "".join(out)
    e = result["explanation"]
    binary = model.task == "binary"

    def shown(v: Any) -> str:
        return f"{v:.1%}" if binary and isinstance(v, float) else number(v)

    bl = e.get("baseline") or {}
    t = result.get("target_time")
    day = pd.Timestamp(t).strftime("%a %d %b %Y") if t else ""
    what = ", ".join(str(x) for x in (result.get("entity"), day) if x)
    cards = [("the model's prediction", fig(result["prediction"], src, "prediction",
                                            shown(result["prediction"]))),
             (f"the simple baseline ({esc(bl.get('name'))})" if bl else "simple baseline",
              fig(bl.get("prediction"), src, "explanation.baseline.prediction",
                  shown(bl.get("prediction"))) if bl else "not known for this row"),
             ("the model's average prediction",
              fig(e["expected"], src, "explanation.expected", shown(e["expected"]))),
             ("version", f"v{esc(result['model_version'])}"
              + (f" · served {when(result['served_at'])}" if result.get("request_id")
                 else " · computed now, not logged"))]
    out.append(f"<section><h2>{esc(what)}</h2><div class=cards>"
               + "".join(f'<div class="card"><div class="k">{k}</div>'
                         f'<span class="big">{v}</span></div>' for k, v in cards)
               + "</div>")
    out.append(explanation_html(e, title=f"Why {shown(result['prediction'])} for {what}",
                                binary=binary))
    rows = [[esc(c["text"]), esc(name), fig(c["shift"], src,
                                            f"explanation.contributions.{name}.shift",
                                            ("+" if c["shift"] >= 0 else "−")
                                            + shown(abs(c["shift"])))]
            for name, c in e["contributions"].items()]
    out.append("<details><summary>Every feature's part</summary>"
               + table(["reason", "feature", "moves the prediction by"], rows, left=2)
               + "</details></section>")
    return "".join(out)
