"""Alerts: severity, de-duplication, acknowledgement, and delivery routes.

An alert is raised by the monitoring loop (drift, degraded quality, a failed ingest) and
stored in the ``alerts`` metadata table whatever its routes. Routes are declared in the
project as frozen dataclasses:

- :class:`Log`: Python logging (logger ``tuesday.watch.alerts``); the table is the record.
- :class:`Webhook`: an HTTP POST of a JSON body with a top-level ``"text"`` (what Slack,
  Mattermost, Rocket.Chat and Teams incoming webhooks show) plus structured fields.
- :class:`Email`: a plain-text message over SMTP, optionally with STARTTLS and a login
  whose user name and password are read from environment variables at send time.

Severities are ordered ``info < warning < critical``; a route only carries alerts at or
above its ``min_severity``.

De-duplication: alerts share a *dedup key* (by default ``model/kind/subject``). While an
alert with that key is open, raising it again only counts the occurrence (``count``,
``last_seen``, latest ``title`` and ``details``, highest severity) and retries the routes
whose delivery failed before. Once acknowledged, occurrences are still counted but no
route is notified. Once resolved, the next occurrence opens a new alert and notifies.

A failed delivery (receiver down, timeout, HTTP error, SMTP refusal) never raises out of
:func:`raise_alert`: it is recorded on the alert's deliveries with the error text and
logged as a warning. Time is the caller's ``as_of``, never the wall clock, so a replay
over history raises and de-duplicates the same alerts as the live loop did.

Example:
    >>> import tempfile
    >>> from datetime import datetime
    >>> from tuesday.workspace import open_workspace
    >>> ws = open_workspace(tempfile.mkdtemp())
    >>> routes = (Log(),)  # in a project: (Log(), Webhook(url=...), Email(...))
    >>> a = raise_alert(ws, model="demand", kind="drift", severity="warning",
    ...                 title="3 of 5 features drifted", details={"share": 0.6},
    ...                 as_of=datetime(2016, 7, 1), routes=routes)
    >>> b = raise_alert(ws, model="demand", kind="drift", severity="warning",
    ...                 title="3 of 5 features drifted", details={"share": 0.6},
    ...                 as_of=datetime(2016, 7, 2), routes=routes)
    >>> (b.id == a.id, b.count, len(b.deliveries))
    (True, 2, 1)
    >>> acknowledge(ws, a.id, actor="alice", note="looking", as_of=datetime(2016, 7, 2)).status
    'acknowledged'
    >>> resolve(ws, a.id, actor="alice", as_of=datetime(2016, 7, 3)).status
    'resolved'
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any

import httpx
import sqlalchemy as sa

from tuesday import meta
from tuesday.errors import Conflict, NotFound, TuesdayError
from tuesday.project.routes import (
    SEVERITY_RANK,
    Email,
    Log,
    Route,
    Webhook,
    check_severity,
)
from tuesday.workspace import Workspace

log = logging.getLogger(__name__)

#: statuses of an alert; an alert moves open -> acknowledged -> resolved (or open -> resolved)
STATUSES = ("open", "acknowledged", "resolved")

_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_TEXT_DETAILS = 10  # detail lines shown in a message's text


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Delivery:
    """One attempt to deliver an alert to one route."""

    route: str
    ok: bool
    error: str | None
    at: datetime


@dataclass(frozen=True)
class Alert:
    """A stored alert with all its delivery attempts, oldest first."""

    id: int
    dedup_key: str
    model: str
    kind: str
    severity: str
    title: str
    details: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    count: int
    status: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    deliveries: tuple[Delivery, ...]

    def delivered(self, route: str) -> bool:
        """Whether a delivery to the route (its ``key``) has succeeded."""
        return any(d.ok and d.route == route for d in self.deliveries)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["deliveries"] = [{"route": d.route, "ok": d.ok, "error": d.error,
                              "at": d.at.isoformat()} for d in self.deliveries]
        return out


# ---------------------------------------------------------------------------- raise


def raise_alert(ws: Workspace, *, model: str, kind: str, severity: str, title: str,
                details: Mapping[str, Any] | None = None, as_of: datetime,
                routes: Iterable[Route] = (), subject: str = "",
                dedup_key: str | None = None) -> Alert:
    """Record an occurrence of an alert and notify the routes that are due.

    A new alert (no unresolved alert with the same dedup key) is stored and sent to every
    route whose ``min_severity`` it reaches. A repeated occurrence of an open alert is
    counted; only routes not yet successfully delivered to are tried again. A repeated
    occurrence of an acknowledged alert is counted and notifies nobody. Delivery failures
    are recorded on the alert and logged; they never raise.

    Args:
        ws: The workspace.
        model: The model the alert is about.
        kind: What kind of problem (``"drift"``, ``"quality"``, ``"ingest"``...).
        severity: ``"info"``, ``"warning"`` or ``"critical"``.
        title: One line for people.
        details: JSON-ready facts (numbers, names); numpy scalars and datetimes are
            converted, NaN becomes null.
        as_of: The time of this occurrence (the loop's clock, not the wall clock).
        routes: Where to send it (:class:`Log`, :class:`Webhook`, :class:`Email`).
        subject: What within ``model``/``kind`` the alert is about (a feature, a slice),
            part of the default dedup key.
        dedup_key: Overrides the default key ``model/kind/subject``.

    Returns:
        The alert after this occurrence, with its deliveries.

    Example:
        >>> alert = raise_alert(ws, model="demand", kind="drift", severity="critical",
        ...                     title="Feature 'price' drifted", subject="price",
        ...                     details={"psi": 0.41}, as_of=as_of,
        ...                     routes=(Log(), Webhook("https://hooks.example.com/x")))
        ... # doctest: +SKIP
    """
    severity = check_severity(severity, "'severity' of an alert")
    _check_fields(model=model, kind=kind, title=title, as_of=as_of, details=details)
    route_list = _check_routes(routes)
    key = dedup_key if dedup_key is not None else \
        "/".join(p for p in (model, kind, subject) if p)
    if not isinstance(key, str) or not key.strip() or len(key) > 500:
        raise TuesdayError(f"The 'dedup_key' of an alert must be a non-empty string of at "
                           f"most 500 characters. Got {key!r}.",
                           fix="Pass a short key such as 'demand/drift/price'.")
    clean = _jsonable(dict(details or {}))

    try:
        alert_id, status = _record(ws, key, model, kind, severity, title, clean, as_of)
    except sa.exc.IntegrityError:
        # another process opened the same key between our read and our insert
        alert_id, status = _record(ws, key, model, kind, severity, title, clean, as_of)
    alert = get_alert(ws, alert_id)
    if status != "open":
        return alert
    return _notify(ws, alert, route_list, as_of)


def _check_fields(*, model: Any, kind: Any, title: Any, as_of: Any, details: Any) -> None:
    for name, value in (("model", model), ("kind", kind), ("title", title)):
        if not isinstance(value, str) or not value.strip():
            raise TuesdayError(f"The {name!r} of an alert must be a non-empty string. "
                               f"Got {value!r}.", fix=f"Pass {name}='...'.")
    if not isinstance(as_of, datetime):
        raise TuesdayError(f"The 'as_of' of an alert must be a datetime. Got {as_of!r}.",
                           fix="Pass the loop's time, e.g. as_of=datetime(2016, 7, 1).")
    if details is not None and not isinstance(details, Mapping):
        raise TuesdayError(f"The 'details' of an alert must be a dict. Got "
                           f"{type(details).__name__}.", fix="Pass details={'name': value}.")


def _notify(ws: Workspace, alert: Alert, routes: list[Route], as_of: datetime) -> Alert:
    """Deliver an open alert to the routes whose ``min_severity`` it reaches and that
    have not had it yet; record every attempt. The alert after that."""
    done = {d.route for d in alert.deliveries if d.ok}
    due = [r for r in routes
           if SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[r.min_severity] and r.key not in done]
    if not due:
        return alert
    attempts = [_deliver(route, alert) for route in due]
    with ws.engine().begin() as conn:
        conn.execute(meta.alert_deliveries.insert(), [
            {"alert_id": alert.id, "route": route.key, "ok": error is None, "error": error,
             "at": as_of} for route, error in zip(due, attempts, strict=True)])
    return get_alert(ws, alert.id)


def _check_routes(routes: Iterable[Route]) -> list[Route]:
    if isinstance(routes, Log | Webhook | Email):
        routes = (routes,)
    out: list[Route] = []
    seen: set[str] = set()
    for r in routes:
        if not isinstance(r, Log | Webhook | Email):
            raise TuesdayError(
                f"An alert route must be a Log, Webhook or Email. Got {type(r).__name__}.",
                fix="Declare routes as e.g. routes=(Log(), Webhook(url=...)).")
        if r.key not in seen:
            seen.add(r.key)
            out.append(r)
    return out


def _record(ws: Workspace, key: str, model: str, kind: str, severity: str, title: str,
            details: dict[str, Any], as_of: datetime) -> tuple[int, str]:
    """Insert a new alert or count an occurrence of the unresolved one; (id, status)."""
    a = meta.alerts
    with ws.engine().begin() as conn:
        row = conn.execute(sa.select(a.c.id, a.c.status, a.c.severity, a.c.last_seen)
                           .where(a.c.dedup_key == key, a.c.status != "resolved")
                           ).mappings().first()
        if row is None:
            new = conn.execute(a.insert().values(
                dedup_key=key, model=model, kind=kind, severity=severity, title=title,
                details=details, first_seen=as_of, last_seen=as_of, count=1, status="open"))
            pk = new.inserted_primary_key
            assert pk is not None
            return int(pk[0]), "open"
        highest = max(row["severity"], severity, key=lambda s: SEVERITY_RANK.get(s, 0))
        last_seen = as_of
        # a replay may raise an older occurrence after a newer one; a naive time in the
        # database cannot be compared with an aware one
        with contextlib.suppress(TypeError):
            last_seen = max(row["last_seen"], as_of)
        conn.execute(a.update().where(a.c.id == row["id"]).values(
            count=a.c.count + 1, last_seen=last_seen, severity=highest, title=title,
            details=details))
        return int(row["id"]), str(row["status"])


def _jsonable(value: Any) -> Any:
    """Details made JSON-safe: numpy scalars to Python, times to ISO, NaN/inf to None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return _jsonable(tolist())
    return str(value)


# ---------------------------------------------------------------------------- delivery


def _deliver(route: Route, alert: Alert) -> str | None:
    """Send the alert on one route; the error text, or None when it was delivered."""
    try:
        if route.kind == "log":
            _send_log(alert)
        elif route.kind == "webhook":
            assert isinstance(route, Webhook)
            _send_webhook(route, alert)
        else:
            assert isinstance(route, Email)
            _send_email(route, alert)
    except Exception as exc:  # a broken receiver must never break the loop
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("Alert %d (%s) could not be delivered to %s: %s", alert.id,
                    alert.dedup_key, route.key, error)
        return error
    return None


def message_text(alert: Alert) -> str:
    """The human summary of an alert: the webhook ``text`` and the email body's start.

    Example:
        >>> message_text(alert).splitlines()[0]  # doctest: +SKIP
        '[WARNING] demand drift: 3 of 5 features drifted'
    """
    head = f"[{alert.severity.upper()}] {alert.model} {alert.kind}: {alert.title}"
    if alert.count > 1:
        head += f" (seen {alert.count} times since {alert.first_seen.isoformat()})"
    lines = [head]
    for name, value in list(alert.details.items())[:_TEXT_DETAILS]:
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"- {name}: {shown[:200]}")
    if len(alert.details) > _TEXT_DETAILS:
        lines.append(f"- ... {len(alert.details) - _TEXT_DETAILS} more details")
    lines.append(f"alert #{alert.id}, key {alert.dedup_key}")
    return "\n".join(lines)


def webhook_body(alert: Alert) -> dict[str, Any]:
    """The JSON body a :class:`Webhook` route posts (Slack-compatible ``text``)."""
    return {
        "text": message_text(alert),
        "alert_id": alert.id,
        "severity": alert.severity,
        "model": alert.model,
        "kind": alert.kind,
        "title": alert.title,
        "details": alert.details,
        "dedup_key": alert.dedup_key,
        "count": alert.count,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
    }


def _send_log(alert: Alert) -> None:
    log.log(_LOG_LEVELS[alert.severity], "%s", message_text(alert).replace("\n", "; "))


def _send_webhook(route: Webhook, alert: Alert) -> None:
    r = httpx.post(route.url, json=webhook_body(alert), headers=dict(route.headers),
                   timeout=route.timeout)
    if not 200 <= r.status_code < 300:
        # the URL may hold a secret token: the error names the status, never the URL
        raise RuntimeError(f"receiver answered HTTP {r.status_code}: {r.text[:200]!r}")


def _send_email(route: Email, alert: Alert) -> None:
    msg = EmailMessage()
    subject = f"[tuesday] [{alert.severity.upper()}] {alert.model} {alert.kind}: {alert.title}"
    msg["Subject"] = " ".join(subject.split())[:250]
    msg["From"] = route.sender
    msg["To"] = ", ".join(route.to)
    msg.set_content(
        message_text(alert) + "\n\n"
        + f"Severity: {alert.severity}\nModel: {alert.model}\nKind: {alert.kind}\n"
        + f"First seen: {alert.first_seen.isoformat()}\n"
        + f"Last seen: {alert.last_seen.isoformat()}\nOccurrences: {alert.count}\n\n"
        + "Details:\n" + json.dumps(alert.details, indent=2, sort_keys=True) + "\n")
    credentials = None
    if route.username_env and route.password_env:
        missing = [v for v in (route.username_env, route.password_env) if v not in os.environ]
        if missing:
            raise RuntimeError(f"environment variable(s) {', '.join(missing)} not set for "
                               "the SMTP login")
        credentials = (os.environ[route.username_env], os.environ[route.password_env])
    with smtplib.SMTP(route.host, route.port, timeout=route.timeout) as smtp:
        if route.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if credentials:
            smtp.login(*credentials)
        refused = smtp.send_message(msg)
    if refused:  # some recipients accepted, some not
        raise RuntimeError(f"SMTP server refused {sorted(refused)}")


# ---------------------------------------------------------------------------- lifecycle


def get_alert(ws: Workspace, alert_id: int) -> Alert:
    """One alert with its deliveries; NotFound when there is no such alert."""
    found = _load(ws, meta.alerts.c.id == alert_id)
    if not found:
        raise NotFound(f"Alert {alert_id!r} does not exist.",
                       fix="List the alerts with tuesday.watch.alerts.list_alerts(ws) and use "
                           "one of their ids.")
    return found[0]


def list_alerts(ws: Workspace, status: str | None = None,
                model: str | None = None) -> list[Alert]:
    """Alerts, oldest first, optionally only those with a status and/or of a model.

    Example:
        >>> [a.title for a in list_alerts(ws, status="open", model="demand")]  # doctest: +SKIP
        ['3 of 5 features drifted']
    """
    a = meta.alerts
    where: list[Any] = []
    if status is not None:
        if status not in STATUSES:
            raise TuesdayError(f"An alert status must be one of "
                               f"{', '.join(map(repr, STATUSES))}. Got {status!r}.",
                               fix="Use status='open', 'acknowledged' or 'resolved'.")
        where.append(a.c.status == status)
    if model is not None:
        where.append(a.c.model == model)
    return _load(ws, *where)


def acknowledge(ws: Workspace, alert_id: int, *, actor: str, note: str = "",
                as_of: datetime) -> Alert:
    """Mark an open alert as seen: further occurrences are counted but notify nobody.

    Acknowledging an acknowledged alert changes nothing; a resolved one is a Conflict.
    """
    alert = get_alert(ws, alert_id)
    _check_actor(actor)
    if alert.status == "acknowledged":
        return alert
    if alert.status == "resolved":
        raise Conflict(f"Alert {alert_id} was resolved by {alert.resolved_by} at "
                       f"{alert.resolved_at}; it cannot be acknowledged.",
                       fix="A new occurrence opens a new alert; acknowledge that one.")
    return _transition(ws, alert, "acknowledged", actor, note, as_of)


def resolve(ws: Workspace, alert_id: int, *, actor: str, note: str = "",
            as_of: datetime) -> Alert:
    """Close an open or acknowledged alert: the next occurrence opens a new alert.

    Resolving a resolved alert changes nothing.
    """
    alert = get_alert(ws, alert_id)
    _check_actor(actor)
    if alert.status == "resolved":
        return alert
    return _transition(ws, alert, "resolved", actor, note, as_of)


def _check_actor(actor: Any) -> None:
    if not isinstance(actor, str) or not actor.strip():
        raise TuesdayError(f"The 'actor' must name who acts on the alert. Got {actor!r}.",
                           fix="Pass actor='your name'.")


def _transition(ws: Workspace, alert: Alert, to: str, actor: str, note: str,
                as_of: datetime) -> Alert:
    a = meta.alerts
    values: dict[str, Any] = (
        {"acknowledged_by": actor, "acknowledged_at": as_of} if to == "acknowledged"
        else {"resolved_by": actor, "resolved_at": as_of})
    if note:
        values["note"] = f"{alert.note}\n{note}" if alert.note else note
    with ws.engine().begin() as conn:
        done = conn.execute(a.update().where(a.c.id == alert.id, a.c.status == alert.status)
                            .values(status=to, **values)).rowcount
    if not done:
        raise Conflict(f"Alert {alert.id} changed while it was being {to}.",
                       fix="Look at it again with get_alert and retry.")
    return get_alert(ws, alert.id)


def _load(ws: Workspace, *where: Any) -> list[Alert]:
    a, d = meta.alerts, meta.alert_deliveries
    with ws.engine().connect() as conn:
        rows = conn.execute(sa.select(a).where(*where).order_by(a.c.id)).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        by_alert: dict[int, list[Delivery]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            for r in conn.execute(sa.select(d).where(d.c.alert_id.in_(ids[chunk:chunk + 500]))
                                  .order_by(d.c.id)).mappings():
                by_alert[r["alert_id"]].append(
                    Delivery(route=r["route"], ok=bool(r["ok"]), error=r["error"], at=r["at"]))
    return [Alert(**{k: v for k, v in r.items()}, deliveries=tuple(by_alert[r["id"]]))
            for r in rows]
