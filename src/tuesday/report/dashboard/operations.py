"""The model page's operations sections: is it healthy today (drift per feature over
time, deployment variants compared with their intervals, the data's freshness), its
alerts (acknowledged by an admin), and what changed since the last version (versions
side by side, the newest against production, the audit of stage changes)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tuesday.charts import grid
from tuesday.report.dashboard.layout import (
    esc,
    feature_label,
    fig,
    metric_text,
    pct,
    slice_text,
    table,
)
from tuesday.watch.monitor_html import age, drift_rule, drift_shown, when

__all__ = ["alerts_section", "drift_section", "variants_section", "versions_section"]

_DRIFT_COLORS = {True: "#d93025", False: "#cfe8d8", None: "#eceff2"}


def drift_section(name: str, mon: dict[str, Any], model: Any) -> str:
    """Drift per feature per week, and the data's freshness."""
    src = f"/v1/models/{name}/monitor"
    dot = mon.get("drift_over_time") or {}
    out = ["<section id=drift><h2>Is the input data still like the training data?</h2>",
           '<p class="q">Each week, each feature of the served requests is compared with the '
           "same feature in the training data. A red cell: that week's values differ "
           "enough to matter (a statistical test). Drift alone is a warning, expected for "
           "seasonal inputs such as the weather; what counts is whether served accuracy "
           "stays better than the baselines.</p>"]
    wins, feats = dot.get("windows") or [], dot.get("features") or []
    if wins and feats:
        colors = [[_DRIFT_COLORS[d] for d in f["drifted"]] for f in feats]
        notes = []
        for f in feats:
            shown = drift_shown(f["method"] or "")
            notes.append([f"{f['feature']}, week of {w['start']}: " + (
                "too few values to test" if d is None else
                f"{'drifted' if d else 'no drift'} ({shown} {metric_text(s)})")
                for w, d, s in zip(wins, f["drifted"], f["statistic"], strict=True)])
        out.append(grid([feature_label(model, f["feature"]) for f in feats],
                        [w["start"] for w in wins], colors,
                        notes, title="Drift per feature per week",
                        legend=[(_DRIFT_COLORS[True], "drifted"),
                                (_DRIFT_COLORS[False], "no drift"),
                                (_DRIFT_COLORS[None], "too few values")]))
    d = mon.get("drift")
    if d:
        drifted = [c for c in d["columns"] if c["drifted"]]
        n = fig(d["number_of_drifted_columns"], src, "drift.number_of_drifted_columns")
        out.append(f"<p>Over all served requests: {n} of {d['number_of_columns']} features "
                   "drifted" + (": " + "; ".join(esc(feature_label(model, c["column"]))
                                               for c in drifted) if drifted else "")
                   + ".</p>")
        rows = [[esc(feature_label(model, c["column"])), esc(drift_shown(c["method"])),
                 fig(c["statistic"], src, f"drift.columns.{i}.statistic",
                     metric_text(c["statistic"])), drift_rule(c["method"], c["threshold"]),
                 "<span class=bad>yes</span>" if c["drifted"] else "no"]
                for i, c in enumerate(d["columns"])]
        out.append("<details><summary>Every feature's test</summary>"
                   + table(["feature", "measure", "value", "drifted when", "drifted"], rows)
                   + "</details>")
    elif not wins:
        out.append("<p>Not enough served requests yet to compare.</p>")
    health = mon.get("data_health") or []
    if health:
        rows = []
        for h in health:
            f = h.get("freshness") or {}
            status = ("<span class=bad>stale</span>" if f.get("ok") is False else
                      "fresh" if f.get("ok") else "no freshness rule declared")
            rows.append([esc(h["source"]), when(f.get("newest")), age(f.get("age_hours")),
                         status])
        out.append("<h3>Freshness of the data</h3>"
                   + table(["source", "newest row", "age (now)", "status"], rows))
    out.append("</section>")
    return "".join(out)


def variants_section(name: str, mon: dict[str, Any]) -> str:
    """Deployment variants (shadow, canary, A/B) compared, with their 95% intervals."""
    v = mon.get("variants") or {}
    comps = v.get("comparisons") or []
    per = v.get("variants") or []
    if len(per) < 2 and not comps:
        return ""
    src = f"/v1/models/{name}/monitor"
    out = ["<section id=variants><h2>Deployment variants compared</h2>",
           '<p class="q">When a challenger version takes part of the traffic (or shadows it), '
           "is it really better? The interval says how sure we are.</p>"]
    rows = []
    for i, c in enumerate(comps):
        lo, hi = c["ci95"]
        verdict = ("no significant difference" if not c["significant"] else
                   f"the {c['better']} is better")
        rows.append([esc(c["kind"]), f"v{c['challenger']['version']} "
                     f"({esc(c['challenger']['variant'])})",
                     f"v{c['reference']['version']} ({esc(c['reference']['variant'])})",
                     fig(c["challenger_value"], src, f"variants.comparisons.{i}.challenger_value",
                         metric_text(c["challenger_value"])),
                     fig(c["reference_value"], src, f"variants.comparisons.{i}.reference_value",
                         metric_text(c["reference_value"])),
                     f"{metric_text(lo)} to {metric_text(hi)}", esc(verdict)])
    if rows:
        metric = comps[0]["metric"]
        out.append(table(["kind", "challenger", "reference", f"challenger {esc(metric)}",
                          f"reference {esc(metric)}", "95% interval of the difference",
                          "verdict"], rows, left=3))
    out.append(table(["version", "variant", "served", "with ground truth"],
                     [[f"v{p['version']}", esc(p["variant"]), str(p["rows_served"]),
                       str(p["rows_with_ground_truth"])] for p in per], left=2))
    out.append("</section>")
    return "".join(out)


def alerts_section(name: str, mon: dict[str, Any], can_ack: bool) -> str:
    """The model's open and acknowledged alerts; an admin acknowledges them here."""
    alerts = list(reversed(mon.get("open_alerts") or []))
    out = ["<section id=alerts><h2>Alerts</h2>",
           '<p class="q">What the monitor raised and nobody has resolved yet.</p>']
    if not alerts:
        out.append("<p>No open alert.</p></section>")
        return "".join(out)
    rows = []
    for a in alerts:
        if a["status"] == "open" and can_ack:
            act = (f'<form class="inline" method="post" action="/ui/models/{quote(name)}/'
                   f'alerts/{int(a["id"])}/acknowledge"><button class="act">acknowledge'
                   "</button></form>")
        elif a["status"] == "acknowledged":
            act = f"acknowledged by {esc(a['acknowledged_by'])}"
        else:
            act = "open (an admin can acknowledge it)"
        sev = "bad" if a["severity"] == "critical" else ""
        rows.append([f'<span class="{sev}">{esc(a["severity"])}</span>', esc(a["title"]),
                     when(a["first_seen"]), when(a["last_seen"]), str(a["count"]),
                     act])
    out.append(table(["severity", "what", "first seen", "last seen", "times", ""], rows,
                     left=2, wrap=(1,)))
    out.append("</section>")
    return "".join(out)


def versions_section(name: str, v: dict[str, Any], model: Any) -> str:
    """Versions side by side, the newest against production, and the audit."""
    src = f"/v1/models/{name}/versions"
    out = ["<section id=versions><h2>Versions: what changed</h2>",
           '<p class="q">Each trained version against its best baseline (backtest), newest '
           "first, and every stage change with who made it and why.</p>"]
    vs = v.get("versions") or []
    metrics = list((vs[0].get("metrics") or {}).keys()) if vs else []
    rows = []
    for i, s in enumerate(vs[:12]):
        rows.append([f"v{s['version']}", esc(s["stage"]), when(s["created_at"]),
                     *(fig(s["metrics"].get(m), src, f"versions.{i}.metrics.{m}",
                           metric_text(s["metrics"].get(m))) for m in metrics),
                     esc(s.get("best_baseline")),
                     fig(s.get("baseline"), src, f"versions.{i}.baseline",
                         metric_text(s.get("baseline"))),
                     fig(s.get("lift"), src, f"versions.{i}.lift", pct(s.get("lift"), True))])
    if rows:
        primary = vs[0].get("primary") or ""
        out.append(table(["version", "stage", "trained", *(esc(m) for m in metrics),
                          "best baseline", f"its {esc(primary)}", "better than it by"], rows,
                         left=3,
                         row_cls=["" if s["stage"] != "production" else "prod"
                                  for s in vs[:12]]))
    nv = v.get("newest_versus_production")
    if nv and nv.get("versus_production"):
        vp = nv["versus_production"]
        cls = "bad" if vp.get("worse") else "good"
        out.append(f'<p class="{cls}">Newest version: {esc(vp["text"])} (backtest).</p>')
        folds = {s["version"]: s["folds"] for s in vs}
        prod = v.get("production_version")
        if prod in folds and folds[prod] != folds.get(nv["version"]):
            out.append(f'<p class="note">Careful: version {nv["version"]} was backtested on '
                       f"{folds.get(nv['version'])} folds and production on {folds[prod]}, so "
                       "their backtest figures cover different periods. Served accuracy side "
                       "by side (a shadow or canary deployment) is the fair comparison.</p>")
        worse = [s for s in nv.get("slices") or []
                 if s.get("worse_by") is not None and s["worse_by"] > 0]
        if worse:
            out.append("<p>Slices where it is worse than production: " + "; ".join(
                f"{esc(slice_text(model, s['slice'], s['value']))} (by {pct(s['worse_by'])})"
                for s in worse[:8]) + ".</p>")
    audit = list(reversed(v.get("audit") or []))[:15]
    if audit:
        out.append("<h3>Stage changes</h3>" + table(
            ["when", "version", "from", "to", "by", "why"],
            [[when(a["at"]), f"v{a['version']}", esc(a["from_stage"] or "–"),
              esc(a["to_stage"]), esc(a["actor"]), esc(a["reason"])] for a in audit],
            left=6, wrap=(5,)))
    dep = v.get("deployment") or {}
    if dep.get("mode") and dep["mode"] != "single":
        out.append(f"<p>Deployment: {esc(dep['mode'])} with v{esc(dep.get('version'))} at "
                   f"{esc(dep.get('percent'))}% of the traffic.</p>")
    out.append("</section>")
    return "".join(out)
