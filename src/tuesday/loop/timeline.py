"""The replay timeline: what the loop did day by day and what it achieved, built from
the replay's own workspace, and its report page.

:func:`timeline` turns the per-day records of a replay into a JSON-ready dict: accuracy
of what was served per target day (actual, served forecast, each baseline, and the
rolling WAPE over :data:`ROLLING_DAYS` days), the per-day loop outcomes, the events
(shocks, alerts raised and resolved, retrains, promotions, versions left awaiting
approval, failed retrains), and for each shock how long the loop took to notice and
whether accuracy came back. :func:`render_timeline` draws it as a self-contained HTML
page (inline SVG from :mod:`tuesday.charts`, no scripts, no network);
:func:`write_timeline` writes both under the workspace's ``reports/``.

Example:
    >>> page = render_timeline(tl)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tuesday.charts import Band, Mark, Series, date_ticks, finite, line_chart
from tuesday.data import tables
from tuesday.data.predictions import read_log
from tuesday.loop.shocks import Shock
from tuesday.project import LoadedProject, Model, Policy
from tuesday.release import registry
from tuesday.train import evaluation
from tuesday.workspace import Workspace

ROLLING_DAYS = 14
#: accuracy counts as recovered when the rolling WAPE is back within this factor of
#: its level in the 28 days before the shock
RECOVERY = 1.5


def timeline(ws: Workspace, loaded: LoadedProject, model_name: str,
             days: list[dict[str, Any]], shocks: Sequence[Shock], policy: Policy,
             start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """The replay's timeline: per-target accuracy (daily and rolling) against the
    baselines, per-day loop outcomes, events, and what happened after each shock.

    Args:
        ws: The replay's workspace.
        loaded: The project as replayed.
        model_name: The model replayed.
        days: One record per replayed day: ``date``, ``ingested``, ``served``,
            ``serve_errors`` and the day's ``tick`` outcome.
        shocks: The shocks applied (resolved to their source and column).
        policy: The loop policy of the replay.
        start: The first day.
        end: The last day.
    """
    model = loaded.project.model(model_name)
    acc = _accuracy(ws, loaded, model)
    events: list[dict[str, Any]] = [
        {"date": str(pd.Timestamp(s.start).date()), "kind": "shock", "text": s.describe()}
        for s in shocks]
    per_day = [_day_row(d) for d in days]
    for d in days:
        events.extend(_day_events(d["date"], d["tick"]))
    events.sort(key=lambda e: e["date"])
    return {
        "model": model_name, "start": str(start.date()), "end": str(end.date()),
        "policy": policy.to_dict(), "shocks": [_shock_summary(s, per_day, acc, model)
                                               for s in shocks],
        "metric": "wape", "rolling_days": ROLLING_DAYS,
        "baselines": [b.name for b in model.baselines],
        "summary": {
            "days": len(per_day),
            "retrains": sum(1 for d in per_day if d["retrained"]),
            "promotions": sum(1 for d in per_day if d["promoted"]),
            "alerts": sum(len(d["alerts"]) for d in per_day),
            "served": sum(d["served"] for d in per_day),
            "serve_errors": sum(d["serve_errors"] for d in per_day),
            "versions": [v["version"] for v in registry.versions(ws, model_name)],
            "accuracy": _overall(acc, model),
        },
        "days": per_day, "events": events, "accuracy": acc.to_dict(orient="records"),
    }


def _day_row(d: dict[str, Any]) -> dict[str, Any]:
    """One replayed day of the timeline: what the tick saw and did, what was served."""
    t = d["tick"]
    mon = t.get("monitor") or {}
    return {"date": d["date"], "status": t["status"],
            "monitor": mon.get("status"), "drift_share": mon.get("drift_share"),
            "drifted": mon.get("drifted_columns", []),
            "production_version": t.get("production_version"),
            "reasons": t["reasons"], "held": t.get("held"),
            "retrained": (t["retrained"] or {}).get("version"),
            "promoted": t.get("promoted"), "awaiting_approval": t.get("awaiting_approval"),
            "alerts": [a["kind"] for a in t["alerts"] if a["count"] == 1],
            "served": d["served"], "serve_errors": d["serve_errors"],
            "ingested": d["ingested"]}


def _day_events(date: str, t: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one tick outcome: new alerts, resolved alerts, a retrain, a
    promotion, a version left awaiting approval, a failed retrain."""
    events = []
    for a in t["alerts"]:
        if a["count"] == 1:  # a new alert, not another occurrence of an open one
            events.append({"date": date, "kind": "alert", "alert": a["kind"],
                           "severity": a["severity"], "text": a["title"]})
    for r in t.get("resolved_alerts", []):
        events.append({"date": date, "kind": "resolved", "alert": r["kind"],
                       "text": f"{r['kind']} alert resolved: {r['note']}"})
    if t["retrained"]:
        r = t["retrained"]
        events.append({"date": date, "kind": "retrain", "version": r["version"],
                       "text": f"trained v{r['version']} ({'; '.join(t['reasons'])}); "
                               f"backtest lift over {r['best_baseline']} "
                               f"{r['lift']:.1%}"})
    if t.get("promoted"):
        events.append({"date": date, "kind": "promotion", "version": t["promoted"],
                       "text": f"v{t['promoted']} promoted to production"})
    if t.get("awaiting_approval"):
        events.append({"date": date, "kind": "awaiting_approval",
                       "version": t["awaiting_approval"],
                       "text": f"v{t['awaiting_approval']} left as a candidate awaiting "
                               "approval"})
    if t["status"] == "retrain_failed":
        events.append({"date": date, "kind": "retrain_failed", "text": t["error"]})
    return events


def _accuracy(ws: Workspace, loaded: LoadedProject, model: Model) -> pd.DataFrame:
    """Per target day: actual, served prediction and baselines, with rolling WAPE."""
    logged = read_log(ws, model.name)
    cols = ["date", "version", "actual", "prediction", *(b.name for b in model.baselines)]
    if logged.empty:
        return pd.DataFrame(columns=cols)
    logged = logged[logged["variant"] != "shadow"]
    logged = logged.sort_values("served_at").drop_duplicates(["entity", "target_time"],
                                                             keep="last")
    src = loaded.project.source(model.label_source)
    labels = tables.read_table(ws, src).to_pandas()
    key, tcol = model.entity.key, src.time
    assert tcol is not None
    labels = labels[[key, tcol, model.target]].rename(
        columns={key: "entity", tcol: "target_time", model.target: "actual"})
    labels["entity"] = labels["entity"].astype(str)
    j = logged.merge(labels, on=["entity", "target_time"], how="left")
    bl = pd.DataFrame([json.loads(s) for s in j["baselines"]], index=j.index)
    names = [b.name for b in model.baselines if b.name in bl.columns]
    j = pd.concat([j, bl[names]], axis=1)
    return daily_accuracy(j, names)


def daily_accuracy(j: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Per target day of ``j`` (one row per item and target: ``target_time``,
    ``version``, ``actual``, ``prediction`` and one column per baseline in ``names``):
    the sums over items, each forecast's per-item absolute error and the actuals it is
    judged on, and the rolling per-item WAPE."""
    j = j.assign(date=pd.to_datetime(j["target_time"]).dt.normalize())
    have = j[j["actual"].notna()]
    per = []
    for date, g in j.groupby("date", sort=True):
        row: dict[str, Any] = {"date": date, "version": int(g["version"].max()),
                               "actual": _sum_or_none(g["actual"]),
                               "prediction": _sum_or_none(g["prediction"])}
        for n in names:
            row[n] = _sum_or_none(g[n])
        per.append(row)
    frame = pd.DataFrame(per).set_index("date")
    # per item: each item-day's error, summed per day, on the rows where the actual and
    # that forecast are both known (the day's store total hides errors that cancel)
    for col in ("prediction", *names):
        both = have[have[col].notna()]
        err = (both[col] - both["actual"]).abs().groupby(both["date"]).sum()
        mass = both["actual"].abs().groupby(both["date"]).sum()
        frame[f"item_error_{col}"] = err.reindex(frame.index)
        frame[f"item_actual_{col}"] = mass.reindex(frame.index)
    # rolling per-item WAPE over the last ROLLING_DAYS target days with ground truth
    daily = frame[[c for c in frame.columns if c.startswith("item_")]]
    daily = daily.reindex(pd.date_range(frame.index.min(), frame.index.max(), freq="D"))
    roll = daily.rolling(f"{ROLLING_DAYS}D", min_periods=1).sum()
    cnt = daily["item_actual_prediction"].notna().astype(int).rolling(
        f"{ROLLING_DAYS}D").sum()
    for col, out in (("prediction", "wape"), *((n, f"wape_{n}") for n in names)):
        ok = (cnt >= ROLLING_DAYS // 2) & (roll[f"item_actual_{col}"] > 0)
        frame[out] = (roll[f"item_error_{col}"] / roll[f"item_actual_{col}"]).where(ok)
    frame = frame.reset_index()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return frame.replace({np.nan: None})


def _sum_or_none(s: pd.Series) -> float | None:
    s = s.dropna()
    return float(s.sum()) if len(s) else None


#: how the timeline's WAPE aggregates, said beside every figure
AGGREGATIONS = {
    "item": "per item: the sum over item-days of |forecast - actual| over the sum of "
            "actuals",
    "total": "store total: the sum over days of |total forecast - total actual| over the "
             "sum of actuals (errors of items that cancel within a day do not count)",
}


def _wape(acc: pd.DataFrame, col: str, lo: str, hi: str, how: str = "item") -> float | None:
    """WAPE of ``col`` over the target days in ``[lo, hi)`` that have ground truth,
    per item (``how='item'``) or of the day's total over items (``'total'``)."""
    if acc.empty or col not in acc.columns:
        return None
    w = acc[(acc["date"] >= lo) & (acc["date"] < hi) & acc["actual"].notna()
            & acc[col].notna()]
    if w.empty:
        return None
    if how == "item":
        err, mass = f"item_error_{col}", f"item_actual_{col}"
        if err not in w.columns:
            return None
        denom = float(w[mass].astype(float).sum())
        return float(w[err].astype(float).sum()) / denom if denom else None
    denom = w["actual"].astype(float).abs().sum()
    return float((w[col].astype(float) - w["actual"].astype(float)).abs().sum() / denom) \
        if denom else None


def _best(acc: pd.DataFrame, model: Model, lo: str, hi: str, how: str = "item"
          ) -> tuple[str | None, float | None, bool | None]:
    """The best baseline over ``[lo, hi)``, its WAPE, and whether what was served beats
    it (the shared rule, :func:`tuesday.train.evaluation.verdict`)."""
    vals = {b.name: _wape(acc, b.name, lo, hi, how) for b in model.baselines}
    v = evaluation.verdict("wape", _none_nan(_wape(acc, "prediction", lo, hi, how)),
                           {k: _none_nan(x) for k, x in vals.items()}, "lower")
    if v.best_baseline is None:
        return None, None, None
    return v.best_baseline, vals[v.best_baseline], v.beats


def _none_nan(v: float | None) -> float:
    return float("nan") if v is None else v


def _overall(acc: pd.DataFrame, model: Model) -> dict[str, Any]:
    """WAPE of what was served over the whole replay, per item (the figure that judges
    it) and of the store total, each against its best baseline."""
    lo, hi = "0000", "9999"
    out: dict[str, Any] = {"aggregation": "item", "definition": AGGREGATIONS["item"]}
    for how, into in (("item", out), ("total", {})):
        name, value, beats = _best(acc, model, lo, hi, how)
        into.update(wape=_wape(acc, "prediction", lo, hi, how), best_baseline=name,
                    baseline_wape=value, beats_baseline=beats)
        if how == "total":
            out["store_total"] = {**into, "definition": AGGREGATIONS["total"]}
    out["days_with_ground_truth"] = int(acc["actual"].notna().sum()) if len(acc) else 0
    return out


def _shock_summary(s: Shock, days: list[dict[str, Any]], acc: pd.DataFrame,
                   model: Model) -> dict[str, Any]:
    """When the loop noticed the shock, what it did, and whether accuracy came back."""
    start = pd.Timestamp(s.start)
    after = [d for d in days if d["date"] >= str(start.date())]
    out: dict[str, Any] = {**s.to_dict(), "first_alert": None, "first_retrain": None,
                           "first_promotion": None}
    alert = next((d for d in after if d["alerts"]), None)
    if alert is not None:
        out["first_alert"] = {"date": alert["date"], "kinds": alert["alerts"],
                              "days_after": _days_after(alert["date"], start)}
    retrain = next((d for d in after if d["retrained"]), None)
    if retrain is not None:
        out["first_retrain"] = {"date": retrain["date"], "version": retrain["retrained"],
                                "reasons": retrain["reasons"],
                                "days_after": _days_after(retrain["date"], start)}
    promo = next((d for d in after if d["promoted"]), None)
    if promo is not None:
        out["first_promotion"] = {"date": promo["date"], "version": promo["promoted"],
                                  "days_after": _days_after(promo["date"], start)}
    day = pd.Timedelta(days=1)
    out["before"] = _window(acc, model, start - 28 * day, start)
    out["during"] = _window(acc, model, start, start + ROLLING_DAYS * day)
    last = pd.Timestamp(acc["date"].max()) if len(acc) else start
    out["after"] = _window(acc, model, last - 27 * day, last + day)
    out["recovered_on"] = _recovered_on(acc, start, out["before"]["wape"])
    out["recovered"] = out["recovered_on"] is not None
    return out


def _days_after(date: str, start: pd.Timestamp) -> int:
    return (pd.Timestamp(date) - start).days


def _window(acc: pd.DataFrame, model: Model, lo: pd.Timestamp,
            hi: pd.Timestamp) -> dict[str, Any]:
    """WAPE of what was served and of the best baseline over target days [lo, hi)."""
    a, b = str(lo.date()), str(hi.date())
    name, value, beats = _best(acc, model, a, b)
    return {"from": a, "to": b, "wape": _wape(acc, "prediction", a, b),
            "best_baseline": name, "baseline_wape": value, "beats_baseline": beats,
            "store_total_wape": _wape(acc, "prediction", a, b, "total")}


def _recovered_on(acc: pd.DataFrame, start: pd.Timestamp,
                  before: float | None) -> dict[str, Any] | None:
    """The first day, once the shock's first ROLLING_DAYS are over, when the rolling
    WAPE is back within RECOVERY x its level ``before`` the shock; None if never."""
    if before is None or not len(acc) or "wape" not in acc.columns:
        return None
    later = acc[(acc["date"] >= str((start + pd.Timedelta(days=ROLLING_DAYS)).date()))
                & acc["wape"].notna()]
    back = later[later["wape"].astype(float) <= RECOVERY * before]
    if not len(back):
        return None
    return {"date": back["date"].iloc[0], "wape": float(back["wape"].iloc[0]),
            "days_after": _days_after(back["date"].iloc[0], start)}


# ------------------------------------------------------------------------- reports


def write_timeline(ws: Workspace, tl: dict[str, Any]) -> dict[str, str]:
    """Write the timeline as JSON and as a self-contained HTML page."""
    base = ws.reports / f"replay-{tl['model']}-{tl['start']}-{tl['end']}"
    jp, hp = base.with_suffix(".json"), base.with_suffix(".html")
    paths = {"report_json": str(jp), "report_html": str(hp)}
    jp.write_text(json.dumps({**tl, **paths}, indent=1, default=str))
    hp.write_text(render_timeline(tl))
    return paths


_COLORS = {"prediction": "#1f5fbf", "actual": "#222", "wape": "#1f5fbf"}
_BASELINE_COLORS = ("#d9822b", "#3a9d5d", "#8e44ad", "#b03a2e")
#: how each kind of event is drawn, in colours none of the series use: (colour, shape);
#: "line" is a vertical line, "band" shades each run of consecutive days, the others are
#: glyphs along the top of the chart, one per day with the day's count
_EVENT_STYLE = {"shock": ("#000000", "line"), "alert": ("#f4d03f", "band"),
                "resolved": ("#95a5a6", "circle"), "retrain": ("#34495e", "square"),
                "promotion": ("#e91e63", "triangle"),
                "awaiting_approval": ("#00acc1", "diamond"),
                "retrain_failed": ("#6d4c41", "cross")}
#: the row of glyphs of each kind (retrains on top, then what became of them)
_EVENT_ROW = {"retrain": 0, "retrain_failed": 0, "promotion": 1, "awaiting_approval": 1,
              "resolved": 2}


def render_timeline(tl: dict[str, Any]) -> str:
    """A self-contained HTML page (inline SVG, no scripts, no network) of a timeline."""
    e = html.escape
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>Replay {e(tl['model'])} {e(tl['start'])} to {e(tl['end'])}</title>",
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        ".k{display:inline-block;width:1em;height:.6em;margin:0 .3em}"
        "svg{background:#fff;border:1px solid #eee;max-width:100%;height:auto;"
        "font-size:11px}</style>",
        f"<h1>Replay of {e(tl['model'])}: {e(tl['start'])} to {e(tl['end'])}</h1>",
        *_html_summary(tl), *_html_shocks(tl), *_html_charts(tl), *_html_events(tl),
    ]
    if tl.get("seconds"):
        parts.append("<h2>Where the time went (seconds)</h2><table>" + "".join(
            f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in tl["seconds"].items())
            + "</table>")
    return "\n".join(parts)


def _html_summary(tl: dict[str, Any]) -> list[str]:
    e = html.escape
    s = tl["summary"]
    parts = [
        f"<p>{s['days']} days; {s['served']} predictions served ({s['serve_errors']} "
        f"without features); {s['retrains']} retrain(s), {s['promotions']} promotion(s), "
        f"{s['alerts']} new alert(s); versions {', '.join(map(str, s['versions']))}. "
        f"Backtest folds per training: {tl.get('folds')}.</p>",
    ]
    a = s["accuracy"]
    if a["wape"] is not None:
        tot = a.get("store_total") or {}
        parts.append(f"<p>Accuracy of what was served over {a['days_with_ground_truth']} "
                     f"days with ground truth: WAPE per item {a['wape']:.3f}; best "
                     f"baseline {e(str(a['best_baseline']))} {_f(a['baseline_wape'])}"
                     f" ({'the model wins' if a.get('beats_baseline') else 'the baseline wins'}"
                     f"). Store total: WAPE {_f(tot.get('wape'))}, best baseline "
                     f"{e(str(tot.get('best_baseline')))} {_f(tot.get('baseline_wape'))}."
                     f"</p><p class=note>{e(a['definition'])}; {e(tot.get('definition', ''))}."
                     "</p>")
    parts.append("<h2>Policy</h2><p>" + e(", ".join(
        f"{k}={v}" for k, v in tl["policy"].items())) + "</p>")
    return parts


def _html_shocks(tl: dict[str, Any]) -> list[str]:
    e = html.escape
    if not tl["shocks"]:
        return []

    def ev(x: dict[str, Any] | None, what: str = "") -> str:
        if not x:
            return "none"
        return f"{x['date']} (+{x['days_after']} d){what}"

    parts = ["<h2>Shocks</h2><table><tr><th>shock</th><th>first alert</th>"
             "<th>first retrain</th><th>first promotion</th><th>WAPE before</th>"
             "<th>first 14 days</th><th>last 28 days</th><th>recovered (rolling WAPE "
             f"within {RECOVERY:g}x of before)</th></tr>"]
    for sh in tl["shocks"]:
        fa = sh["first_alert"]
        parts.append(
            f"<tr><td>{e(sh['text'])}</td>"
            f"<td>{e(ev(fa, ': ' + ', '.join(fa['kinds']) if fa else ''))}</td>"
            f"<td>{e(ev(sh['first_retrain']))}</td><td>{e(ev(sh['first_promotion']))}"
            f"</td><td>{_win(sh['before'])}</td><td>{_win(sh['during'])}</td>"
            f"<td>{_win(sh['after'])}</td><td>{e(ev(sh['recovered_on']))}</td>"
            "</tr>")
    parts.append("</table>")
    return parts


def _html_charts(tl: dict[str, Any]) -> list[str]:
    """Actual against served and baselines, rolling WAPE, and drift share, each with
    the events as vertical lines."""
    e = html.escape
    acc = tl["accuracy"]
    dates = [r["date"] for r in acc]
    bls = tl["baselines"]
    events = tl["events"]
    parts = []
    head = "Actual, served forecast and baselines (by target day)"
    series = [Series("actual", [r["actual"] for r in acc], _COLORS["actual"]),
              Series("served forecast", [r["prediction"] for r in acc],
                     _COLORS["prediction"])]
    series += [Series(b, [r.get(b) for r in acc], _BASELINE_COLORS[i % 4])
               for i, b in enumerate(bls)]
    parts.append(f"<h2>{e(head)}</h2>")
    parts.append(day_chart(dates, series, events, title=head))
    head = f"Rolling {tl['rolling_days']}-day WAPE (lower is better)"
    series = [Series("model", [r.get("wape") for r in acc], _COLORS["wape"])]
    series += [Series(b, [r.get(f"wape_{b}") for r in acc], _BASELINE_COLORS[i % 4])
               for i, b in enumerate(bls)]
    parts.append(f"<h2>{e(head)}</h2>")
    parts.append(day_chart(dates, series, events, title=head))
    head = f"Share of served features drifted (last {tl['policy']['drift_window']}, per tick)"
    parts.append(f"<h2>{e(head)}</h2>")
    parts.append(day_chart([d["date"] for d in tl["days"]],
                           [Series("drift share", [d["drift_share"] for d in tl["days"]],
                                   "#c0392b")], events,
                           title=head, y_min=0.0, y_max=1.0, threshold=0.5))
    parts.append("<p>" + " ".join(_legend_entry(k) for k in _EVENT_STYLE) + "</p>")
    return parts


def _legend_entry(kind: str) -> str:
    """A kind of event as the charts draw it, then its name."""
    color, shape = _EVENT_STYLE[kind]
    name = html.escape(kind.replace("_", " "))
    if shape == "band":
        return (f"<span class=k style='background:{color};opacity:.6'></span>{name}"
                "&emsp;")
    glyph = {"line": "&#9475;", "circle": "&#9679;", "square": "&#9632;",
             "triangle": "&#9650;", "diamond": "&#9670;", "cross": "&#10005;"}[shape]
    return f"<span style='color:{color}'>{glyph}</span> {name}&emsp;"


def event_marks(events: Sequence[dict[str, Any]], first: pd.Timestamp,
                last: pd.Timestamp) -> tuple[list[Mark], list[Band]]:
    """The events between ``first`` and ``last`` as chart marks, x in days since
    ``first``: one glyph per kind and day (the day's count as its label when more than
    one, every text in its tooltip), one band per run of consecutive alert days.

    Example:
        >>> ev = [{"date": d, "kind": "alert", "text": "drift"} for d in
        ...       ("2015-03-02", "2015-03-03", "2015-03-05")]
        >>> marks, bands = event_marks(ev, pd.Timestamp("2015-03-01"),
        ...                            pd.Timestamp("2015-03-31"))
        >>> [(b.x0, b.x1) for b in bands], marks
        ([(1.0, 3.0), (4.0, 5.0)], [])
    """
    by_day: dict[tuple[str, str], list[str]] = {}
    for ev in events:
        if first <= pd.Timestamp(ev["date"]) <= last:
            by_day.setdefault((ev["kind"], ev["date"]), []).append(str(ev["text"]))
    marks, alert_days = [], []
    for (kind, day), texts in sorted(by_day.items(), key=lambda kv: kv[0][1]):
        x = float((pd.Timestamp(day) - first) / pd.Timedelta(days=1))
        color, shape = _EVENT_STYLE.get(kind, ("#999", "circle"))
        if shape == "band":
            alert_days.append((x, day, texts))
            continue
        note = f"{day}: {len(texts)} {kind.replace('_', ' ')}: " + "; ".join(texts[:5]) + (
            f"; and {len(texts) - 5} more" if len(texts) > 5 else "")
        marks.append(Mark(x, label=str(len(texts)) if len(texts) > 1 else "", color=color,
                          dash="5 3" if shape == "line" else "", note=note, shape=shape,
                          row=_EVENT_ROW.get(kind, 0)))
    return marks, _alert_bands(alert_days)


def _alert_bands(days: list[tuple[float, str, list[str]]]) -> list[Band]:
    """Runs of consecutive alert days as bands, each with the run's alerts as tooltip."""
    color = _EVENT_STYLE["alert"][0]
    runs: list[list[tuple[float, str, list[str]]]] = []
    for d in days:
        if runs and d[0] - runs[-1][-1][0] <= 1.0:
            runs[-1].append(d)
        else:
            runs.append([d])
    bands = []
    for run in runs:
        texts = [t for _, _, ts in run for t in ts]
        kinds = sorted(set(texts))
        bands.append(Band(run[0][0], run[-1][0] + 1.0, color,
                          f"{run[0][1]} to {run[-1][1]}: {len(texts)} new alert(s): "
                          + "; ".join(kinds[:5]) + ("; ..." if len(kinds) > 5 else "")))
    return bands


def _html_events(tl: dict[str, Any]) -> list[str]:
    e = html.escape
    parts = ["<h2>Events</h2><table><tr><th>date</th><th>kind</th><th>what</th></tr>"]
    for ev_ in tl["events"]:
        parts.append(f"<tr><td>{e(ev_['date'])}</td><td>{e(ev_['kind'])}"
                     f"{(' ' + e(ev_['alert'])) if ev_.get('alert') else ''}</td>"
                     f"<td>{e(str(ev_['text']))}</td></tr>")
    parts.append("</table>")
    return parts


def day_chart(dates: Sequence[str], series: Sequence[Series],
              events: Sequence[dict[str, Any]] = (), *, title: str,
              y_min: float | None = None, y_max: float | None = None,
              threshold: float | None = None) -> str:
    """A line chart over days (``YYYY-MM-DD``), one value per day in each series;
    ``None`` values leave gaps; ``events`` (``date``, ``kind``, ``text``) are drawn as
    :func:`event_marks` draws them. The y axis starts at ``y_min`` (default: zero, or the lowest
    value if negative) and ends at ``y_max`` (default: the highest value).

    Example:
        >>> day_chart(["2015-03-01", "2015-03-02"], [Series("rides", [3, 4], "#222")],
        ...           title="Rides").startswith("<svg")
        True
    """
    if not dates:
        return "<p>No data.</p>"
    days = pd.to_datetime(pd.Series(list(dates)))
    x = ((days - days.iloc[0]) / pd.Timedelta(days=1)).tolist()
    vals = [float(v) for s in series for v in s.values if finite(v)]
    lo = y_min if y_min is not None else min([0.0, *vals])
    hi = y_max if y_max is not None else (max(vals) if vals else 1.0)
    hi = hi if hi > lo else lo + 1.0
    marks, bands = event_marks(events, days.iloc[0], days.iloc[-1])
    return line_chart(x, series, x_ticks=date_ticks(days), marks=marks, bands=bands,
                      title=title,
                      x_range=(0.0, max(x[-1], 1.0)), y_range=(lo, hi),
                      threshold=threshold, size=(960, 240))


def _f(v: float | None) -> str:
    return "&ndash;" if v is None else f"{v:.3f}"


def _win(w: dict[str, Any] | None) -> str:
    if not w:
        return "&ndash;"
    return (f"{_f(w['wape'])} (baseline {html.escape(str(w['best_baseline']))} "
            f"{_f(w['baseline_wape'])})")
