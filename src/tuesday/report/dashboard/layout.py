"""The dashboard's page shell and the small pieces every page uses: one inline style
sheet (no network), the top bar, figures tagged with where they come from, tables and
the health light.

A figure is written by :func:`fig`: its text, and in ``data-src`` / ``data-path`` the
JSON endpoint and the field it comes from, with the exact value in ``data-value``; the
browser tests read them back and compare each with the API's answer.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from tuesday.train.explanations import number, phrase
from tuesday.watch.monitor_html import slice_label

__all__ = ["CSS", "METRIC_WORDS", "baseline_colors", "baseline_words", "baselines_note", "esc",
           "feature_label", "fig", "light", "metric_name", "metric_text", "page", "pct",
           "slice_text", "table"]

#: what each metric measures, for a reader who does not know the abbreviation
METRIC_WORDS = {
    "rmse": "typical error", "mae": "average error", "wape": "error as a share of the total",
    "bias": "average over- or under-forecast", "mase": "error against a naive forecast",
    "auc": "how well it ranks", "log_loss": "log loss", "brier": "probability error",
}

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;
background:#f5f6f8;font-size:15px;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:.6em 1.5em;display:flex;align-items:center;
gap:1.5em}
header a{color:#fff;text-decoration:none}header .brand{font-weight:700;font-size:1.1em}
header .who{margin-left:auto;font-size:.9em;opacity:.9}
header form{display:inline;margin:0}header button{background:none;border:1px solid #fff8;
color:#fff;border-radius:4px;cursor:pointer;padding:.1em .6em}
main{max-width:76em;margin:1.2em auto;padding:0 1.2em}
h1{font-size:1.5em;margin:.2em 0 .6em}h2{font-size:1.2em;margin:0 0 .5em}
h3{font-size:1em;margin:1em 0 .3em}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1em 1.2em;
margin:0 0 1.1em}
.q{color:#56606b;font-size:.92em;margin:-.3em 0 .7em}
table{border-collapse:collapse;margin:.3em 0 .6em;font-size:.93em}
td,th{border-bottom:1px solid #e3e6ea;padding:.3em .7em;text-align:right;vertical-align:top;
white-space:nowrap}td.w{white-space:normal}
th{background:#f0f2f5;font-weight:600}th.l,td.l{text-align:left}
tr.lose td{background:#fff4f0}
.good{color:#16794c;font-weight:600}.bad{color:#b3261e;font-weight:600}
.note{color:#56606b;font-size:.9em}
.light{display:inline-block;width:.9em;height:.9em;border-radius:50%;vertical-align:-.1em;
margin-right:.35em;border:1px solid #0003}
.light.green{background:#2e9e5b}.light.amber{background:#f0a020}.light.red{background:#d93025}
.light.grey{background:#b8bec6}
.big{font-size:1.25em;font-weight:600}
.sentence{font-size:1.1em;background:#f3f7fc;border-left:4px solid #2b7bba;padding:.6em .9em}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{flex:1 1 14em;border:1px solid #e3e6ea;
border-radius:6px;padding:.6em .9em;background:#fafbfc}.card .k{color:#56606b;font-size:.85em}
svg{max-width:100%;height:auto;font-size:11px;font-family:inherit}
form.inline{display:inline}
input,select,button{font:inherit}input[type=text],input[type=date],input[type=password],select
{padding:.25em .4em;border:1px solid #b8bec6;border-radius:4px}
button.act,a.act{background:#1f3a5f;color:#fff;border:0;border-radius:4px;padding:.3em .9em;
cursor:pointer;text-decoration:none;display:inline-block}
.error{background:#fdecea;border:1px solid #f5c2bd;padding:.8em 1em;border-radius:6px}
nav.sub a{margin-right:1.2em}
table.overview td:nth-child(2){min-width:15em}table.overview td:nth-child(6){min-width:16em}
"""


def esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def metric_text(v: Any) -> str:
    """A metric value: three significant digits (a dash when unknown)."""
    return f"{v:.3g}" if _finite(v) else "–"


def metric_name(metric: str) -> str:
    """``rmse (typical error)``: the metric with what it measures."""
    words = METRIC_WORDS.get(metric)
    return f"{metric} ({words})" if words else metric


def baseline_words(b: Any) -> str:
    """What a simple baseline forecasts, in words."""
    return {
        "naive": "the last value known",
        "seasonal_naive": f"the value one season ({b.season} days) back, as recent as the "
                          "forecast allows",
        "seasonal_mean": f"the average of the last {b.seasons} values one season "
                         f"({b.season} days) apart",
        "moving_average": f"the average of the last {b.window} days known",
        "croston": "a smoothed rate for items that sell now and then",
        "tsb": "a smoothed rate for items that sell now and then",
        "mean": "the average of the training data",
        "prior": "the rate of positives in the training data",
        "rule": "a rule written in the project",
    }.get(b.kind, b.kind)


def baselines_note(model: Any) -> str:
    """One line naming each of the model's baselines and what it forecasts."""
    return ('<p class="note">The simple baselines: ' + "; ".join(
        f"<b>{esc(b.name)}</b>, {esc(baseline_words(b))}" for b in model.baselines)
        + ".</p>")


def baseline_colors(model: Any, colors: Sequence[str]) -> dict[str, str]:
    """One colour per baseline, in the model's order, the same on every chart (the first
    colour is the model's)."""
    return {b.name: colors[1 + i % (len(colors) - 1)] for i, b in enumerate(model.baselines)}


def feature_label(model: Any, name: str) -> str:
    """A feature as a reader says it, without a value ("rides 14 days earlier"); its
    name when its phrase needs a value."""
    f = next((f for f in model.features if f.name == name), None)
    if f is None or f.describe is not None:
        return name
    text = phrase(f, None).removesuffix(" (missing)").replace("missing ", "", 1)
    return name if "missing" in text else text


def slice_text(model: Any, name: str, value: Any) -> str:
    """A slice value as a reader says it: the feature's own phrase ("it is a Monday"),
    else ``slice: value``."""
    f = next((f for f in model.features if f.name == name), None)
    if f is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return phrase(f, float(value))
    return slice_label({"slice": name, "value": value})


def pct(v: Any, signed: bool = False) -> str:
    return (f"{v:+.1%}" if signed else f"{v:.1%}") if _finite(v) else "–"


def fig(value: Any, src: str, path: str, text: str | None = None) -> str:
    """A figure with where it comes from: the endpoint ``src`` and the field ``path``
    (dot-separated, list positions as numbers) of its JSON answer."""
    shown = text if text is not None else (number(value) if _finite(value) else "–")
    exact = repr(float(value)) if _finite(value) else ""
    return (f'<span class="fig" data-src="{esc(src)}" data-path="{esc(path)}" '
            f'data-value="{exact}">{esc(shown)}</span>')


def light(health: dict[str, str]) -> str:
    """The health light: a coloured dot and its reason."""
    color = health.get("color", "grey")
    return (f'<span class="light {esc(color)}" title="{esc(color)}"></span>'
            f'<span class="health-text">{esc(health.get("text"))}</span>')


def table(head: Sequence[str], rows: Iterable[Sequence[str]], *, left: int = 1,
          cls: str = "", row_cls: Sequence[str] | None = None,
          wrap: Sequence[int] = ()) -> str:
    """An HTML table; cells are already HTML. The first ``left`` columns align left;
    the columns ``wrap`` may wrap their text (the others stay on one line)."""
    def td(i: int) -> str:
        return " ".join(c for c in ("l" if i < left else "", "w" if i in wrap else "") if c)

    out = [f'<table class="{esc(cls)}"><thead><tr>'
           + "".join(f'<th class="{td(i)}">{h}</th>' for i, h in enumerate(head))
           + "</tr></thead><tbody>"]
    for k, r in enumerate(rows):
        rc = f' class="{row_cls[k]}"' if row_cls and row_cls[k] else ""
        out.append(f"<tr{rc}>" + "".join(f'<td class="{td(i)}">{c}</td>'
                                         for i, c in enumerate(r)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def page(title: str, body: str, *, reader: str | None = None, crumbs: str = "") -> str:
    """A whole page: the top bar (with the reader and a log-out button when signed in),
    ``crumbs`` and ``body``."""
    who = ""
    if reader:
        who = (f'<span class="who">signed in as {esc(reader)} '
               '<form method="post" action="/ui/logout"><button>log out</button></form>'
               "</span>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{esc(title)} · tuesday</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{CSS}</style></head><body>"
            '<header><a class="brand" href="/ui/">tuesday</a>'
            f'<a href="/ui/">Models</a><a href="/docs">API</a>{who}</header>'
            f"<main>{crumbs}{body}</main></body></html>")
