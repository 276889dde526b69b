"""``tuesday monitor`` and ``tuesday alerts list|ack|resolve``: watching a model in
production, and the alerts that raises."""

from __future__ import annotations

import os
from typing import Any

import click

from tuesday.cli.app import (
    NUMBER,
    Ctx,
    actor_opt,
    as_of_opt,
    emit,
    json_opt,
    parse_time,
    pass_ctx,
    run,
)
from tuesday.errors import TuesdayError


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


@click.command()
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
        if c.loaded.project.model(model).task == "ranking":
            from tuesday.watch import slates

            emit(slates.report(c.workspace, c.loaded, model, parse_time(as_of),
                               period=period), as_json, _slate_text)
            return
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
    from tuesday.watch.monitor_html import headline

    word, _, sentence = headline(d)
    lines = [f"{d['model']} v{d['production_version']}: {word} (status {d['status']}), "
             f"{d['predictions_logged']} predictions logged."]
    if sentence:
        lines.append(f"  {sentence}")
    if d.get("time_basis"):
        lines.append(f"  time: {d['time_basis']}.")
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


@click.group("alerts")
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
@click.argument("alert_id", type=NUMBER)
@click.option("--note", default="", help="Why, or what is being done.")
@actor_opt
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
@click.argument("alert_id", type=NUMBER)
@click.option("--note", default="", help="What fixed it.")
@actor_opt
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


def _slate_text(d: dict[str, Any]) -> str:
    """The slate report as lines: one per period, then the whole."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.1%}"

    def rate(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    lines = [f"{d['model']}: slates served up to {d['as_of'][:16]}, by {d['period']}"]
    rows = d["periods"] + ([{**d["overall"], "period": "all"}] if d["overall"] else [])
    for r in rows:
        lines.append(f"  {r['period']:>12}  requests {r['requests']:>6}  explored "
                     f"{pct(r['explored_share']):>6}  click rate {rate(r['click_rate'])} "
                     f"(explored {rate(r['click_rate_explored'])}, model "
                     f"{rate(r['click_rate_exploited'])})  coverage {pct(r['coverage'])}  "
                     f"exposure Gini {rate(r['exposure_gini'])}")
    if not d["periods"]:
        lines.append("  no slate served yet")
    return "\n".join(lines)


COMMANDS = (monitor, alerts_group)
