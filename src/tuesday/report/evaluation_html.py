"""The evaluation report as HTML: one self-contained page (inline CSS and SVG charts,
no network, readable without JavaScript; a few lines of inline script only make tables
sortable), one renderer per section of the report dict built by
:func:`tuesday.report.evaluation.evaluation_report`: headline and overall metrics,
folds, slices, actual against predicted over time, calibration, residuals, feature
importance and the per-entity table.

A renderer reads only the dict, so a report loaded back from its JSON renders the same
page; a section missing from a partial dict is left out.

Example:
    >>> render_evaluation_body({"model": "m", "version": 1})[:36]
    '<div class="tuesday-report">\\n<style>'
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

from tuesday.charts import (
    Mark,
    Series,
    date_ticks,
    finite,
    histogram,
    line_chart,
    nice_ticks,
    tick_label,
)
from tuesday.report.explain_html import explanation_html

#: entity rows shown in the HTML table (the JSON keeps them all)
MAX_ENTITY_ROWS = 500

_CSS = """
.tuesday-report{font-family:system-ui,sans-serif;max-width:72em;margin:1em auto;color:#222}
.tuesday-report table{border-collapse:collapse;margin:.5em 0 1em}
.tuesday-report td,.tuesday-report th{border:1px solid #ccc;padding:.2em .55em;
text-align:right;vertical-align:top}
.tuesday-report th{background:#f3f3f3}
.tuesday-report th.l,.tuesday-report td.l{text-align:left}
.tuesday-report .bad{color:#b00;font-weight:bold}
.tuesday-report .ok{color:#070}
.tuesday-report .note{color:#555;font-size:.9em}
.tuesday-report .bar{display:inline-block;height:.8em;background:#4c78a8}
.tuesday-report svg{max-width:100%;height:auto;font-size:11px}
.tuesday-report table.sortable th{cursor:pointer}
.tuesday-report dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
.tuesday-report dt{font-weight:bold}.tuesday-report dd{margin:0}
"""

# Click a header to sort by that column; without JavaScript the tables stay as written.
_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (t) {
  if (t.dataset.bound) return; t.dataset.bound = "1";
  t.querySelectorAll("thead th").forEach(function (h, i) {
    h.title = "click to sort";
    h.addEventListener("click", function () {
      var body = t.tBodies[0], rows = Array.from(body.rows);
      var dir = h.dataset.dir === "asc" ? -1 : 1; h.dataset.dir = dir > 0 ? "asc" : "desc";
      function key(r) { var c = r.cells[i]; return c.dataset.v !== undefined ?
        c.dataset.v : c.textContent; }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        if (isNaN(nx) !== isNaN(ny)) return isNaN(nx) ? 1 : -1;
        if (!isNaN(nx)) return dir * (nx - ny);
        return dir * x.localeCompare(y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_COLORS = {"actual": "#222222", "model": "#1f77b4", "baseline": "#d62728"}


def render_evaluation_html(report: dict[str, Any]) -> str:
    """One self-contained HTML page for an evaluation report: inline CSS and SVG, no
    network, readable without JavaScript (inline script only sorts tables).

    Example:
        >>> page = render_evaluation_html({"model": "demand", "version": 2})
        >>> page.startswith("<!doctype html>") and "http" not in page
        True
    """
    e = html.escape
    title = f"Evaluation of {report.get('model', '?')} version {report.get('version', '?')}"
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{e(title)}</title>\n</head>\n<body>\n"
            f"{render_evaluation_body(report)}\n</body>\n</html>\n")


def render_evaluation_body(report: dict[str, Any]) -> str:
    """The report as an HTML fragment (its own scoped style), for notebooks and pages."""
    parts = [f'<div class="tuesday-report">\n<style>{_CSS}</style>',
             f'<h1>Evaluation of {_esc(report.get("model", "?"))} '
             f'&mdash; version {_esc(report.get("version", "?"))}</h1>']
    sections = (_html_headline, _html_folds, _html_slices, _html_over_time,
                _html_calibration, _html_residuals, _html_importance, _html_entities,
                _html_losses)
    for section in sections:
        try:
            parts.append(section(report))
        except (KeyError, TypeError, IndexError):  # a partial dict: show what there is
            continue
    parts.append(f"<script>{_SORT_JS}</script>\n</div>")
    return "\n".join(p for p in parts if p)


def _html_headline(r: dict[str, Any]) -> str:
    h = r["headline"]
    cls = "ok" if h["beats_baseline"] else "bad"
    lift = f"{h['lift']:+.1%}" if h["lift"] is not None else "&ndash;"
    facts = [
        ("Stage", _esc(r.get("stage"))),
        ("Trained as of", _esc(r.get("as_of"))),
        ("Task", f"{_esc(r['task'])}, target {_esc(r['target'])}, per {_esc(r['entity'])}"
                 + (f", horizon {_esc(r['horizon'])}" if r.get("horizon") else "")),
        (f"{_esc(h['primary'])} of the model", fmt(h["model"])),
        (f"{_esc(h['primary'])} of {_esc(h['best_baseline'])}", fmt(h["baseline"])),
        ("Lift over the best baseline", f"<span class={cls}>{lift}</span>"),
        ("Training rows", _int(h["train_rows"])),
        ("Backtest rows", f"{_int(h['backtest_rows'])} in {h['folds']} folds"),
        ("Entities", _int(h.get("entities"))),
        ("Train seconds", fmt(h["train_seconds"])),
        ("Model size", _bytes(h["model_bytes"])
         + (f", {_esc(h['model_format'])} format" if h.get("model_format") else "")),
        ("Features", _int(h["features"])),
    ]
    if h.get("predict_us_per_row") is not None:
        facts.append(("Predict time", f"{fmt(h['predict_us_per_row'])} µs per row"))
    facts.append(("Run", _esc(r.get("run_id"))))
    out = [f"<p class={cls}><b>{_esc(h['verdict'])}</b></p>"]
    if h.get("highlights"):
        out.append("<ul>" + "".join(f"<li>{_esc(s)}</li>" for s in h["highlights"])
                   + "</ul>")
    out.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    metrics = r["metrics"]
    out.append("<h2>Backtest metrics, all folds together</h2><table><thead><tr>"
               "<th class=l>predictor</th>"
               + "".join(f"<th>{_esc(m)}</th>" for m in metrics) + "</tr></thead><tbody>")
    rows = [("model", r["overall"]["model"]), *r["overall"]["baselines"].items()]
    for name, vals in rows:
        mark = " (best baseline)" if name == r["best_baseline"] else ""
        out.append(f"<tr><th class=l>{_esc(name)}{mark}</th>"
                   + "".join(f"<td>{fmt(vals.get(m))}</td>" for m in metrics) + "</tr>")
    out.append("</tbody></table>")
    cens = r.get("censored")
    if cens:
        out.append(f"<h2>Without the censored rows ({cens['rows']} of the test rows, "
                   f"{cens['share']:.1%}; training: {_esc(cens['action'])})</h2><table>"
                   "<thead><tr><th class=l>predictor</th>"
                   + "".join(f"<th>{_esc(m)}</th>" for m in metrics) + "</tr></thead><tbody>")
        without = cens["without"]
        for name, vals in [("model", without["model"]), *without["baselines"].items()]:
            out.append(f"<tr><th class=l>{_esc(name)}</th>"
                       + "".join(f"<td>{fmt(vals.get(m))}</td>" for m in metrics) + "</tr>")
        out.append("</tbody></table>")
    return "\n".join(out)


def _compare_table(rows: list[dict[str, Any]], r: dict[str, Any], lead: list[str],
                   lead_cells: Any) -> str:
    """Rows with the primary metric of the model and every baseline, and the lift."""
    p = r["primary"]
    heads = [*lead, f"model {p}", *(f"{b} {p}" for b in r["baselines"]),
             "best baseline here", "lift vs it"]
    out = ["<table class=sortable><thead><tr>"
           + "".join(f"<th>{_esc(x)}</th>" for x in heads) + "</tr></thead><tbody>"]
    for row in rows:
        cls = {True: " class=ok", False: " class=bad"}.get(row["beats_baseline"], "")
        lift = row["lift"]
        out.append("<tr>" + lead_cells(row)
                   + _num_td(row["model"].get(p))
                   + "".join(_num_td(row["baselines"][b].get(p)) for b in r["baselines"])
                   + f"<td class=l>{_esc(row.get('best_baseline') or '')}</td>"
                   + f"<td{cls} data-v=\"{_v(lift)}\">"
                   + (f"{lift:+.1%}" if lift is not None else "&ndash;") + "</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_folds(r: dict[str, Any]) -> str:
    folds = r["folds"]
    if not folds:
        return ""
    timed = any(f.get("first") for f in folds)
    lead = ["fold", *(["test days"] if timed else []), "test rows"]

    def cells(f: dict[str, Any]) -> str:
        period = f"<td class=l>{_esc(f['first'])} to {_esc(f['last'])}</td>" if timed else ""
        return f"<td>{f['fold']}</td>{period}{_num_td(f['test_rows'])}"

    return (f"<h2>{_esc(r['primary'])} per backtest fold</h2>"
            "<p class=note>Each fold trains on what was known before its cutoff and is "
            "judged on the rows after it. Every metric of every fold is in the JSON.</p>"
            + _compare_table(folds, r, lead, cells))


def _html_slices(r: dict[str, Any]) -> str:
    slices = r["slices"]
    if not slices:
        return ""
    out = [f"<h2>{_esc(r['primary'])} per slice</h2>"]
    for name in dict.fromkeys(s["slice"] for s in slices):
        rows = [s for s in slices if s["slice"] == name]
        out.append(f"<h3>{_esc(name)}</h3>")
        out.append(_compare_table(
            rows, r, [str(name), "rows"],
            lambda s: f"<td class=l>{_esc(s['label'])}</td>{_num_td(s['rows'])}"))
    return "\n".join(out)


def _html_over_time(r: dict[str, Any]) -> str:
    ot = r.get("over_time")
    if not ot or not ot["date"]:
        return ""
    days = pd.to_datetime(pd.Series(ot["date"]))
    x = ((days - days.iloc[0]) / pd.Timedelta(days=1)).tolist()
    ticks = date_ticks(days)
    starts = [Mark(float((pd.Timestamp(s["date"]) - days.iloc[0]) / pd.Timedelta(days=1)),
                   f"f{s['fold']}") for s in ot["fold_starts"]]
    agg = (f"summed over {ot['entities']} {r['entity']} values" if (ot["entities"] or 0) > 1
           else "one series")
    chart = line_chart(
        x, [Series("actual", ot["actual"], _COLORS["actual"]),
            Series("model", ot["model"], _COLORS["model"]),
            Series(ot["baseline"], ot["best_baseline"], _COLORS["baseline"], "4 3")],
        x_ticks=ticks, marks=starts, y_label=str(r["target"]),
        title=f"Actual and predicted {r['target']} per day over the backtest")
    return (f"<h2>Actual vs predicted over time</h2><p class=note>{_esc(r['target'])} per "
            f"day, {_esc(agg)}, over the {len(ot['date'])} backtest days; the dashed red "
            f"line is the best baseline, {_esc(ot['baseline'])}; dotted lines mark where "
            "each fold starts.</p>\n" + chart)


def _html_calibration(r: dict[str, Any]) -> str:
    cal = r.get("calibration")
    if not cal or not cal["bins"]:
        return ""
    binary = r["task"] == "binary"
    head = ("Calibration: predicted probability against the observed rate" if binary
            else "Actual vs predicted by predicted decile")
    out = [f"<h2>{head}</h2><p class=note>The {cal['rows']} backtest rows cut into ten "
           "equal groups by the model's prediction, lowest first. A well calibrated model "
           f"has the {'observed rate' if binary else 'mean actual'} close to the mean "
           "prediction in every group"
           + (f"; mean absolute gap {fmt(cal['mean_abs_gap'])}." if cal["mean_abs_gap"]
              is not None else ".") + "</p>",
           "<table class=calibration><thead><tr><th>decile</th><th>rows</th>"
           "<th>predicted from</th><th>predicted to</th><th>mean predicted</th>"
           f"<th>{'observed rate' if binary else 'mean actual'}</th><th>gap</th></tr>"
           "</thead><tbody>"]
    for b in cal["bins"]:
        out.append(f"<tr><td>{b['decile']}</td>{_num_td(b['rows'])}"
                   f"{_num_td(b['predicted_min'])}{_num_td(b['predicted_max'])}"
                   f"{_num_td(b['predicted_mean'])}{_num_td(b['observed'])}"
                   f"{_num_td(b['observed'] - b['predicted_mean'])}</tr>")
    out.append("</tbody></table>")
    xs = [b["predicted_mean"] for b in cal["bins"]]
    ys = [b["observed"] for b in cal["bins"]]
    lo, hi = (0.0, 1.0) if binary else (min(*xs, *ys), max(*xs, *ys))
    out.append(line_chart(
        xs, [Series("observed" if binary else "mean actual", ys, _COLORS["model"])],
        x_ticks=[(t, tick_label(t)) for t in nice_ticks(lo, hi)],
        y_label="observed rate" if binary else "mean actual", x_label="mean predicted",
        title=head, markers=True, x_range=(lo, hi), y_range=(lo, hi), diagonal=True))
    return "\n".join(out)


def _html_residuals(r: dict[str, Any]) -> str:
    res = r["residuals"]
    hist = res["histogram"]
    out = [f"<h2>Residuals</h2><p class=note>Residual = {_esc(res['definition'])}.</p>"]
    if hist["counts"]:
        out.append(histogram(hist["edges"], hist["counts"],
                              title="Residuals of the model over the backtest"))
        if hist["below"] or hist["above"]:
            out.append(f"<p class=note>Outside the chart: {hist['below']} rows below "
                       f"{fmt(hist['edges'][0])} and {hist['above']} above "
                       f"{fmt(hist['edges'][-1])}.</p>")
    folds = res["by_fold"]
    if folds:
        best = r["best_baseline"]
        out.append("<h3>Residual by fold</h3><table class=sortable><thead><tr>"
                   "<th>fold</th><th>rows</th><th>mean (bias)</th><th>mean absolute</th>"
                   "<th>5%</th><th>median</th><th>95%</th>"
                   f"<th>{_esc(best)} mean</th><th>{_esc(best)} mean absolute</th>"
                   "</tr></thead><tbody>")
        keys = ("rows", "mean", "mean_abs", "p05", "median", "p95", "baseline_mean",
                "baseline_mean_abs")
        for f in folds:
            out.append(f"<tr><td>{_esc(f['fold'])}</td>"
                       + "".join(_num_td(f.get(k)) for k in keys) + "</tr>")
        out.append("</tbody><tfoot><tr><th>all</th>"
                   + "".join(_num_td(res["overall"].get(k)) for k in keys)
                   + "</tr></tfoot></table>")
    return "\n".join(out)


def _html_importance(r: dict[str, Any]) -> str:
    imp = r.get("importance")
    if not imp:
        return ("<h2>Feature importance</h2><p class=note>Not available for this model "
                "file.</p>")
    feats = imp["features"]
    top = max((f["share"] for f in feats), default=0.0) or 1.0
    out = [f"<h2>Feature importance</h2><p class=note>{_esc(imp['source'])}, as a share "
           "of the total.</p><table class=sortable><thead><tr><th class=l>feature</th>"
           "<th>share</th><th class=l>&nbsp;</th></tr></thead><tbody>"]
    for f in feats:
        width = 100.0 * f["share"] / top
        out.append(f"<tr><td class=l>{_esc(f['feature'])}</td>"
                   f"<td data-v=\"{_v(f['share'])}\">{f['share']:.1%}</td>"
                   f"<td class=l style=\"width:20em\"><span class=bar "
                   f"style=\"width:{width:.1f}%\"></span></td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_entities(r: dict[str, Any]) -> str:
    ents = r.get("entities")
    if not ents:
        return ""
    rows = ents["rows"]
    shown = rows[:MAX_ENTITY_ROWS]
    metric, best = ents["metric"], ents["baseline"]
    note = (f"Model {metric} against the {metric} of {best} for each {ents['key']}, "
            f"over its backtest rows; the {ents['key']} values where the model loses most "
            "to the baseline (largest excess error) come first. Click a header to sort.")
    if len(rows) > len(shown):
        note += f" Showing {len(shown)} of {len(rows)}; the JSON report lists them all."
    out = [f"<h2>Per {_esc(ents['key'])}</h2><p class=note>{_esc(note)}</p>",
           "<table class=\"sortable entities\"><thead><tr>"
           f"<th class=l>{_esc(ents['key'])}</th><th>rows</th><th>mean actual</th>"
           f"<th>mean predicted</th><th>model {_esc(metric)}</th>"
           f"<th>{_esc(best)} {_esc(metric)}</th><th>excess error</th>"
           "<th>lift</th></tr></thead><tbody>"]
    for e in shown:
        diff = e["difference"]
        cls = " class=bad" if diff is not None and diff > 0 else ""
        lift = e["lift"]
        out.append(f"<tr><td class=l>{_esc(e['entity'])}</td>{_num_td(e['rows'])}"
                   f"{_num_td(e['actual_mean'])}{_num_td(e['predicted_mean'])}"
                   f"{_num_td(e['model'])}{_num_td(e['baseline'])}"
                   f"<td{cls} data-v=\"{_v(diff)}\">{fmt(diff)}</td>"
                   f"<td data-v=\"{_v(lift)}\">"
                   + (f"{lift:+.1%}" if lift is not None else "&ndash;") + "</td></tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_losses(r: dict[str, Any]) -> str:
    """The backtest rows where the model lost most to the best baseline, explained."""
    losses = r.get("losses")
    if not losses:
        return ""
    best = losses["baseline"]
    out = [f"<h2>Where the model lost most to {_esc(best)}, and why</h2>",
           f"<p class=note>The backtest rows whose {_esc(losses['error'])} exceeds "
           f"{_esc(best)}'s most, explained by {_esc(losses['explained_by'])}.</p>"]
    if not losses["rows"]:
        out.append(f"<p>The model's error is never larger than {_esc(best)}'s.</p>")
    binary = r.get("task") == "binary"
    for row in losses["rows"]:
        what = " ".join(str(v) for v in (row["entity"], row["time"]) if v is not None)
        out.append(f"<h3>{_esc(what)} (fold {_esc(row['fold'])}): actual {fmt(row['actual'])}"
                   f", model {fmt(row['model'])}, {_esc(best)} {fmt(row['baseline'])}</h3>")
        out.append(explanation_html(row["explanation"], title=f"Why the model said "
                                    f"{fmt(row['model'])} for {what}", binary=binary))
    return "\n".join(out)


# ---------------------------------------------------------------------- helpers


def fmt(v: Any) -> str:
    """A value as HTML text: numbers to four significant digits (whole numbers with
    thousands separators), yes/no, and a dash for a missing or non-finite value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        return f"{float(v):.4g}"
    return _esc(v)


def _int(v: Any) -> str:
    return f"{int(v):,}" if finite(v) else "&ndash;"


def _bytes(v: Any) -> str:
    if not finite(v):
        return "&ndash;"
    n = int(v)
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def _num_td(v: Any) -> str:
    return f'<td data-v="{_v(v)}">{fmt(v)}</td>'


def _v(v: Any) -> str:
    return repr(float(v)) if finite(v) else ""


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))
