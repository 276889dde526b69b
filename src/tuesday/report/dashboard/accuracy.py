"""The model page's accuracy sections: is the model better than the simple way, served
and in the backtest, per fold and per slice, and where does it lose (the entities that
lose most to the baseline, and the backtest rows that lost most, explained)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from tuesday.charts import Series, bars, line_chart
from tuesday.report.dashboard.layout import (
    baseline_colors,
    baselines_note,
    esc,
    fig,
    metric_name,
    metric_text,
    pct,
    slice_text,
    table,
)
from tuesday.report.explain_html import explanation_html

__all__ = ["backtest_section", "losses_section", "served_section", "slices_section"]

#: the series colours: the model first, then each baseline
COLORS = ("#1f4e9c", "#d35400", "#7f8c8d", "#8e44ad", "#16a085")
#: entities listed as losing most to the baseline
MAX_ENTITIES = 10


def _series(rows: list[dict[str, Any]], metric: str, model: Any) -> list[Series]:
    """The model's line and each baseline's (dashed, one colour per baseline)."""
    colors = baseline_colors(model, COLORS)
    out = [Series("model", [(r.get("model") or {}).get(metric) for r in rows], COLORS[0])]
    out += [Series(f"{b} (baseline)", [((r.get("baselines") or {}).get(b) or {}).get(metric)
                                       for r in rows], c, dash="5 3")
            for b, c in colors.items()
            if any(b in (r.get("baselines") or {}) for r in rows)]
    return out


def served_section(name: str, mon: dict[str, Any], lower_is_better: bool, model: Any) -> str:
    """Served accuracy on ground truth: overall, and per window against the baselines."""
    src = f"/v1/models/{name}/monitor"
    q = mon.get("quality") or {}
    metric = mon.get("primary_metric") or ""
    out = ["<section id=served><h2>Served predictions against what happened</h2>",
           f'<p class="q">Once the true values arrive, is the model closer to them than the '
           f"simple baselines were? {esc(metric_name(metric))}: "
           f"{'lower' if lower_is_better else 'higher'} is better.</p>", baselines_note(model)]
    best = q.get("best_baseline")
    if not q.get("rows_with_ground_truth") or not best:
        served = q.get("rows_served") or 0
        out.append(f"<p>{served} predictions served; none has its true value yet, so "
                   "served accuracy cannot be judged.</p></section>")
        return "".join(out)
    beats = q.get("beats_baseline")
    word = ("<span class=good>better than</span>" if beats else
            "<span class=bad>worse than</span>")
    n = fig(q["rows_with_ground_truth"], src, "quality.rows_with_ground_truth")
    mine = fig(q["model"][metric], src, f"quality.model.{metric}",
               metric_text(q["model"][metric]))
    theirs = fig(q["baselines"][best][metric], src, f"quality.baselines.{best}.{metric}",
                 metric_text(q["baselines"][best][metric]))
    out.append(f'<p class="big">On {n} served predictions with their true value, the '
               f"model's {esc(metric)} is {mine}, {word} the best baseline, {esc(best)}: "
               f"{theirs}.</p>")
    rows = mon.get("windows") or []
    if len(rows) >= 2:
        every = max(1, math.ceil(len(rows) / 10))
        ticks = [(float(i), str(rows[i]["start"])) for i in range(0, len(rows), every)]
        out.append(line_chart(list(range(len(rows))), _series(rows, metric, model),
                              x_ticks=ticks, title=f"Served {metric} per week",
                              y_label=metric, x_label="week starting", markers=True))
    cells = []
    for i, r in enumerate(rows[-12:], start=max(0, len(rows) - 12)):
        b = r.get("best_baseline")
        cells.append([esc(r["start"]), fig(r["rows"], src, f"windows.{i}.rows"),
                      fig(r["model"].get(metric), src, f"windows.{i}.model.{metric}",
                          metric_text(r["model"].get(metric))),
                      esc(b or "–"),
                      fig((r["baselines"].get(b) or {}).get(metric) if b else None, src,
                          f"windows.{i}.baselines.{b}.{metric}",
                          metric_text((r["baselines"].get(b) or {}).get(metric) if b
                                      else None)),
                      "<span class=good>yes</span>" if r.get("beats_baseline")
                      else "<span class=bad>no</span>"])
    if cells:
        out.append("<details><summary>Week by week</summary>" + table(
            ["week starting", "rows", f"model {esc(metric)}", "best baseline that week",
             f"its {esc(metric)}", "model better?"], cells, left=1) + "</details>")
    out.append("</section>")
    return "".join(out)


def backtest_section(name: str, rep: dict[str, Any], model: Any) -> str:
    """The backtest: the report's verdict, and the primary metric per fold."""
    src = f"/v1/models/{name}/report"
    h = rep.get("headline") or {}
    p = rep.get("primary", "")
    out = ["<section id=backtest><h2>Backtest: the model against the simple baselines</h2>",
           '<p class="q">Before it served, the model and each baseline forecast the same '
           "past periods (folds), each trained only on the days before.</p>",
           f'<p class="big {"good" if h.get("beats_baseline") else "bad"}">'
           f'{esc(h.get("verdict", ""))}</p>']
    if h.get("highlights"):
        out.append("<ul>" + "".join(f"<li>{esc(s)}</li>" for s in h["highlights"]) + "</ul>")
    folds = rep.get("folds") or []
    if len(folds) >= 2:
        every = max(1, math.ceil(len(folds) / 10))
        ticks = [(float(i), str(folds[i].get("first") or folds[i]["fold"]))
                 for i in range(0, len(folds), every)]
        out.append(line_chart(list(range(len(folds))), _series(folds, p, model),
                              x_ticks=ticks, title=f"Backtest {p} per fold", y_label=p,
                              x_label="fold starting", markers=True))
    won = sum(1 for f in folds if f.get("beats_baseline"))
    out.append(f'<p>The model beats {esc(rep.get("best_baseline"))} in '
               f"{won} of {len(folds)} folds; "
               f'lift over it, all folds together: '
               f'{fig(h.get("lift"), src, "headline.lift", pct(h.get("lift"), True))}.</p>')
    out.append("</section>")
    return "".join(out)


def slices_section(name: str, rep: dict[str, Any], mon: dict[str, Any], model: Any) -> str:
    """Per slice (a product, a store, a day of the week): model against the best
    baseline, in the backtest, and served when ground truth has arrived."""
    src = f"/v1/models/{name}/report"
    p, best = rep.get("primary", ""), rep.get("best_baseline", "")
    rows = rep.get("slices") or []
    out = ["<section id=slices><h2>For each slice</h2>",
           '<p class="q">Is it better than the simple way for my product, store or day? '
           f"Backtest {esc(p)} of the model against {esc(best)} per slice value.</p>"]
    if not rows:
        out.append("<p>The model declares no slices.</p></section>")
        return "".join(out)
    labels = [slice_text(model, r["slice"], r["value"]) for r in rows]
    out.append(bars(labels, [
        Series("model", [r["model"].get(p) for r in rows], COLORS[0]),
        Series(f"{best} (baseline)", [(r["baselines"].get(best) or {}).get(p) for r in rows],
               baseline_colors(model, COLORS).get(best, COLORS[1]))],
        title=f"Backtest {p} per slice", x_label=p, value_text=metric_text))
    cells, cls = [], []
    for i, r in enumerate(rows):
        cells.append([esc(labels[i]), fig(r.get("rows"), src, f"slices.{i}.rows"),
                      fig(r["model"].get(p), src, f"slices.{i}.model.{p}",
                          metric_text(r["model"].get(p))),
                      fig((r["baselines"].get(best) or {}).get(p), src,
                          f"slices.{i}.baselines.{best}.{p}",
                          metric_text((r["baselines"].get(best) or {}).get(p))),
                      fig(r.get("lift"), src, f"slices.{i}.lift", pct(r.get("lift"), True))])
        cls.append("lose" if r.get("beats_baseline") is False else "")
    lost = sum(1 for c in cls if c)
    out.append(f"<p>The model is better than {esc(best)} on {len(rows) - lost} of {len(rows)} "
               "slice values" + (f"; the {lost} shaded below are where the baseline wins."
                                 if lost else ".") + "</p>")
    out.append(table(["slice", "rows", f"model {esc(p)}", f"{esc(best)} {esc(p)}",
                      "model better by"], cells, row_cls=cls))
    served = mon.get("slices") or []
    if served:
        msrc = f"/v1/models/{name}/monitor"
        metric = mon.get("primary_metric") or p
        srows = []
        for i, r in enumerate(served):
            b = r.get("best_baseline")
            srows.append([esc(slice_text(model, r["slice"], r["value"])),
                          fig(r["rows"], msrc, f"slices.{i}.rows"),
                          fig(r["model"].get(metric), msrc, f"slices.{i}.model.{metric}",
                              metric_text(r["model"].get(metric))),
                          esc(b or "–"),
                          metric_text((r["baselines"].get(b) or {}).get(metric) if b
                                      else None),
                          "<span class=good>yes</span>" if r.get("beats_baseline")
                          else "<span class=bad>no</span>"])
        out.append("<h3>Served, on ground truth</h3>" + table(
            ["slice", "rows", f"model {esc(metric)}", "best baseline", f"its {esc(metric)}",
             "model better?"], srows))
    out.append("</section>")
    return "".join(out)


def losses_section(name: str, rep: dict[str, Any]) -> str:
    """Where the model loses: the entities with the largest excess error over the best
    baseline, and the backtest rows that lost most, explained."""
    src = f"/v1/models/{name}/report"
    ents = rep.get("entities") or {}
    out = ["<section id=losses><h2>Where the model loses</h2>",
           '<p class="q">Which entities does the simple baseline forecast better, and why did '
           "the model get the worst days wrong?</p>"]
    rows = [r for r in ents.get("rows") or [] if (r.get("difference") or 0) > 0]
    if ents:
        losing, count = ents.get("losing", 0), ents.get("count", 0)
        key, bl = esc(ents.get("key")), esc(ents.get("baseline"))
        out.append(f"<p>In the backtest, the model beats {bl} for every {key} ({count})."
                   if not losing else
                   f"<p>In the backtest, {bl} has a smaller {esc(ents.get('metric'))} than the "
                   f"model for {losing} of {count} {key} values; the worst:</p>")
    if rows:
        cells = []
        for i, r in enumerate(rows[:MAX_ENTITIES]):
            link = (f'<a href="/ui/models/{quote(name)}/explain?entity='
                    f'{quote(str(r["entity"]))}">{esc(r["entity"])}</a>')
            cells.append([link, fig(r["rows"], src, f"entities.rows.{i}.rows"),
                          fig(r["model"], src, f"entities.rows.{i}.model",
                              metric_text(r["model"])),
                          fig(r["baseline"], src, f"entities.rows.{i}.baseline",
                              metric_text(r["baseline"])),
                          fig(r["difference"], src, f"entities.rows.{i}.difference",
                              metric_text(r["difference"]))])
        out.append(table([esc(ents["key"]), "rows", f"model {esc(ents['metric'])}",
                          f"{esc(ents['baseline'])} {esc(ents['metric'])}", "excess error"],
                         cells))
    losses = rep.get("losses") or {}
    if losses.get("rows"):
        out.append(f"<h3>The backtest days the model lost most to {esc(losses['baseline'])}"
                   "</h3>")
        out.append('<p class="note">Each explained by the model of its backtest fold, the one '
                   "that made that forecast.</p>")
        for k, row in enumerate(losses["rows"][:3]):
            what = " ".join(str(v) for v in (row["entity"], row["time"]) if v is not None)
            out.append(f"<p><b>{esc(what)}</b>: what happened {metric_text(row['actual'])}; "
                       f"the model said {metric_text(row['model'])}, "
                       f"{esc(losses['baseline'])} {metric_text(row['baseline'])}.</p>")
            if k == 0:
                out.append(explanation_html(row["explanation"], title=f"Why the model said "
                                            f"{metric_text(row['model'])} for {what}",
                                            binary=rep.get("task") == "binary", top=6))
            else:
                out.append(f'<p class="sentence">{esc(row["explanation"]["sentence"])}</p>')
    out.append("</section>")
    return "".join(out)
