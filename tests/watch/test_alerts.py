"""Alerts: routes against a real local HTTP receiver and a real local SMTP server,
de-duplication, acknowledgement, resolution, severity filtering, failed deliveries."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tuesday import meta
from tuesday.errors import Conflict, NotFound, TuesdayError
from tuesday.project.routes import Email, Log, Webhook
from tuesday.watch.alerts import acknowledge, get_alert, list_alerts, raise_alert, resolve
from tuesday.workspace import Workspace, open_workspace

T0 = datetime(2016, 7, 1, 6, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ HTTP receiver


class _Receiver:
    """What the local HTTP server received, and what it answers next."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers in order; 200 once they run out
        self.hang = False  # hold every answer until `release` is set
        self.release = threading.Event()
        self.url = ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        rec = self.server.receiver
        body = self.rfile.read(int(self.headers["Content-Length"]))
        rec.requests.append({"path": self.path, "headers": dict(self.headers),
                             "body": json.loads(body)})
        if rec.hang:
            rec.release.wait(10)
        status = rec.statuses.pop(0) if rec.statuses else 200
        payload = b"ok" if status == 200 else b"invalid_payload"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: _Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client gave up on a held answer: nothing to report


@pytest.fixture()
def receiver() -> Iterator[_Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = rec = _Receiver()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/secret"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


# ------------------------------------------------------------------ SMTP server


class _Mailbox:
    """aiosmtpd handler keeping every message; refuses recipients named refuse@..."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("refuse@"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append({
            "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
            "message": message_from_bytes(envelope.original_content),
            "login": session.auth_data if session.authenticated else None,
        })
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
    return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)


@pytest.fixture()
def smtp() -> Iterator[tuple[_Mailbox, int]]:
    box = _Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port,
                            authenticator=_authenticate, auth_require_tls=False)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return open_workspace(tmp_path / "ws")


def _raise(ws: Workspace, routes: Any, *, as_of: datetime = T0, severity: str = "warning",
           kind: str = "drift", **kw: Any) -> Any:
    args: dict[str, Any] = {"model": "demand", "kind": kind, "severity": severity,
                            "title": "3 of 5 features drifted",
                            "details": {"share_drifted": 0.6, "features": ["price", "temp"]},
                            "as_of": as_of, "routes": routes, **kw}
    return raise_alert(ws, **args)


def _body(msg: Message) -> str:
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


# ------------------------------------------------------------------ delivery


def test_webhook_posts_slack_compatible_json(ws, receiver) -> None:
    route = Webhook(receiver.url, headers=(("X-Team", "forecasting"),))
    alert = _raise(ws, (route,))
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req["path"] == "/services/T0/B0/secret"
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["X-Team"] == "forecasting"
    body = req["body"]
    assert isinstance(body["text"], str)
    assert body["text"].startswith("[WARNING] demand drift: 3 of 5 features drifted")
    assert "share_drifted: 0.6" in body["text"]
    assert {k: body[k] for k in ("alert_id", "severity", "model", "kind", "title", "count")} \
        == {"alert_id": alert.id, "severity": "warning", "model": "demand", "kind": "drift",
            "title": "3 of 5 features drifted", "count": 1}
    assert body["details"] == {"share_drifted": 0.6, "features": ["price", "temp"]}
    assert body["first_seen"] == T0.isoformat()
    [d] = alert.deliveries
    assert (d.ok, d.error, d.at) == (True, None, T0)
    # the stored route name never shows the URL's secret path
    assert d.route.startswith("webhook:127.0.0.1:") and "secret" not in d.route


def test_email_sends_subject_and_plain_text_body(ws, smtp) -> None:
    box, port = smtp
    route = Email("127.0.0.1", port, "tuesday@example.com",
                  ("ops@example.com", "ds@example.com"), min_severity="critical")
    alert = _raise(ws, (route,), severity="critical", kind="quality",
                   details={"rmse": 4.2, "baseline_rmse": 3.1})
    assert len(box.messages) == 1
    got = box.messages[0]
    assert got["from"] == "tuesday@example.com"
    assert got["to"] == ["ops@example.com", "ds@example.com"]
    assert got["login"] is None
    msg = got["message"]
    assert msg["Subject"] == "[tuesday] [CRITICAL] demand quality: 3 of 5 features drifted"
    assert msg["To"] == "ops@example.com, ds@example.com"
    assert msg.get_content_type() == "text/plain"
    body = _body(msg)
    assert "- rmse: 4.2" in body and '"baseline_rmse": 3.1' in body
    assert f"alert #{alert.id}" in body and "Occurrences: 1" in body
    assert alert.deliveries[0].ok and alert.deliveries[0].route == route.key


def test_email_login_reads_credentials_from_environment(ws, smtp, monkeypatch) -> None:
    box, port = smtp
    route = Email("127.0.0.1", port, "tuesday@example.com", ("ops@example.com",),
                  username_env="TUESDAY_TEST_SMTP_USER",
                  password_env="TUESDAY_TEST_SMTP_PASSWORD")
    monkeypatch.delenv("TUESDAY_TEST_SMTP_USER", raising=False)
    monkeypatch.delenv("TUESDAY_TEST_SMTP_PASSWORD", raising=False)
    alert = _raise(ws, (route,))
    assert not alert.deliveries[0].ok and box.messages == []
    assert "TUESDAY_TEST_SMTP_USER, TUESDAY_TEST_SMTP_PASSWORD not set" in \
        str(alert.deliveries[0].error)
    monkeypatch.setenv("TUESDAY_TEST_SMTP_USER", "alerts")
    monkeypatch.setenv("TUESDAY_TEST_SMTP_PASSWORD", "s3cret")
    alert = _raise(ws, (route,), as_of=T0 + timedelta(hours=1))  # retried on the next raise
    assert [d.ok for d in alert.deliveries] == [False, True]
    assert [m["login"] for m in box.messages] == ["alerts"]


def test_log_route_logs_at_the_alert_severity(ws, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="tuesday.watch.alerts"):
        _raise(ws, (Log(),), severity="info", kind="a")
        _raise(ws, (Log(),), severity="critical", kind="b")
    got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tuesday.watch.alerts"]
    assert [lvl for lvl, _ in got] == [logging.INFO, logging.CRITICAL]
    assert got[1][1].startswith("[CRITICAL] demand b: 3 of 5 features drifted;")
    assert [a.deliveries[0].route for a in list_alerts(ws)] == ["log", "log"]


# ------------------------------------------------------------------ dedup, ack, resolve


def test_repeated_alert_is_counted_not_resent(ws, receiver, smtp) -> None:
    box, port = smtp
    routes = (Log(), Webhook(receiver.url),
              Email("127.0.0.1", port, "tuesday@example.com", ("ops@example.com",)))
    first = _raise(ws, routes)
    second = _raise(ws, routes, as_of=T0 + timedelta(days=1),
                    details={"share_drifted": 0.8})
    assert second.id == first.id
    assert (second.count, second.first_seen, second.last_seen) == (2, T0, T0 + timedelta(days=1))
    assert second.details == {"share_drifted": 0.8}  # the latest occurrence's facts
    assert len(receiver.requests) == 1 and len(box.messages) == 1
    assert len(second.deliveries) == 3 and all(d.ok for d in second.deliveries)
    # another subject is another alert
    other = _raise(ws, routes, subject="price")
    assert other.id != first.id and other.dedup_key == "demand/drift/price"
    assert first.dedup_key == "demand/drift"
    assert len(receiver.requests) == 2
    # an explicit key groups whatever the model and kind
    a = _raise(ws, (), dedup_key="nightly-job")
    b = _raise(ws, (), dedup_key="nightly-job", kind="other")
    assert a.id == b.id and b.count == 2
    # an older occurrence replayed late does not move last_seen backwards
    late = _raise(ws, routes, as_of=T0 - timedelta(days=3))
    assert (late.count, late.last_seen) == (3, T0 + timedelta(days=1))


def test_acknowledged_alert_is_silent_until_resolved(ws, receiver) -> None:
    routes = (Webhook(receiver.url),)
    alert = _raise(ws, routes)
    acked = acknowledge(ws, alert.id, actor="alice", note="retraining tonight",
                        as_of=T0 + timedelta(hours=1))
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_at, acked.note) == \
        ("acknowledged", "alice", T0 + timedelta(hours=1), "retraining tonight")
    assert acknowledge(ws, alert.id, actor="bob", note="", as_of=T0) == acked  # idempotent
    again = _raise(ws, routes, as_of=T0 + timedelta(days=1), severity="critical")
    assert (again.id, again.count, again.status) == (alert.id, 2, "acknowledged")
    assert len(receiver.requests) == 1
    done = resolve(ws, alert.id, actor="bob", note="retrained v2", as_of=T0 + timedelta(days=2))
    assert (done.status, done.resolved_by, done.resolved_at) == \
        ("resolved", "bob", T0 + timedelta(days=2))
    assert done.note == "retraining tonight\nretrained v2"
    with pytest.raises(Conflict, match=f"Alert {alert.id} was resolved by bob"):
        acknowledge(ws, alert.id, actor="carol", note="", as_of=T0 + timedelta(days=3))
    reopened = _raise(ws, routes, as_of=T0 + timedelta(days=3))
    assert reopened.id != alert.id
    assert (reopened.status, reopened.count, reopened.first_seen) == \
        ("open", 1, T0 + timedelta(days=3))
    assert len(receiver.requests) == 2
    assert receiver.requests[1]["body"]["alert_id"] == reopened.id
    assert [a.status for a in list_alerts(ws)] == ["resolved", "open"]


def test_resolve_an_open_alert_directly(ws) -> None:
    alert = _raise(ws, ())
    assert resolve(ws, alert.id, actor="alice", as_of=T0).status == "resolved"
    assert resolve(ws, alert.id, actor="alice", as_of=T0).resolved_at == T0  # idempotent


def test_min_severity_filters_each_route(ws, receiver, smtp) -> None:
    box, port = smtp
    routes = (Log(), Webhook(receiver.url),
              Email("127.0.0.1", port, "t@example.com", ("ops@example.com",),
                    min_severity="critical"))
    info = _raise(ws, routes, severity="info", kind="a")
    warning = _raise(ws, routes, severity="warning", kind="b")
    critical = _raise(ws, routes, severity="critical", kind="c")
    assert [d.route for d in info.deliveries] == ["log"]
    assert [d.route.split(":")[0] for d in warning.deliveries] == ["log", "webhook"]
    assert [d.route.split(":")[0] for d in critical.deliveries] == ["log", "webhook", "email"]
    assert [r["body"]["kind"] for r in receiver.requests] == ["b", "c"]
    assert len(box.messages) == 1
    # an open alert that escalates reaches the routes its new severity qualifies for
    escalated = _raise(ws, routes, severity="critical", kind="a")
    assert (escalated.id, escalated.severity, escalated.count) == (info.id, "critical", 2)
    assert [d.route.split(":")[0] for d in escalated.deliveries] == ["log", "webhook", "email"]
    assert len(box.messages) == 2
    # a lower occurrence does not lower it
    assert _raise(ws, routes, severity="info", kind="a").severity == "critical"


# ------------------------------------------------------------------ failures


def test_receiver_down_is_recorded_not_raised(ws, caplog) -> None:
    down = Webhook(f"http://127.0.0.1:{_free_port()}/hook", timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="tuesday.watch.alerts"):
        alert = _raise(ws, (Log(), down))
    assert [a.id for a in list_alerts(ws)] == [alert.id]
    log_d, hook_d = alert.deliveries
    assert log_d.ok
    assert not hook_d.ok and "ConnectError" in str(hook_d.error)
    assert any("could not be delivered" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_failed_delivery_is_retried_on_next_raise(ws, receiver) -> None:
    receiver.statuses = [500]
    routes = (Log(), Webhook(receiver.url))
    first = _raise(ws, routes)
    assert [d.ok for d in first.deliveries] == [True, False]
    assert "HTTP 500" in str(first.deliveries[1].error)
    assert "secret" not in str(first.deliveries[1].error)
    second = _raise(ws, routes, as_of=T0 + timedelta(hours=1))
    assert [(d.route.split(":")[0], d.ok) for d in second.deliveries] == \
        [("log", True), ("webhook", False), ("webhook", True)]
    assert second.deliveries[2].at == T0 + timedelta(hours=1)
    assert receiver.requests[1]["body"]["count"] == 2
    third = _raise(ws, routes, as_of=T0 + timedelta(hours=2))
    assert len(third.deliveries) == 3 and len(receiver.requests) == 2


def test_webhook_timeout_is_recorded(ws, receiver) -> None:
    receiver.hang = True
    alert = _raise(ws, (Webhook(receiver.url, timeout=0.3),))
    [d] = alert.deliveries
    assert not d.ok and "Timeout" in str(d.error)


def test_smtp_refusal_is_recorded(ws, smtp) -> None:
    box, port = smtp
    everyone = Email("127.0.0.1", port, "t@example.com", ("refuse@example.com",))
    some = Email("127.0.0.1", port, "t@example.com", ("ops@example.com", "refuse@x.org"))
    alert = _raise(ws, (everyone, some))
    d_all, d_some = alert.deliveries
    assert not d_all.ok and "SMTPRecipientsRefused" in str(d_all.error)
    assert not d_some.ok and "refused ['refuse@x.org']" in str(d_some.error)
    assert [m["to"] for m in box.messages] == [["ops@example.com"]]


def test_smtp_server_down_is_recorded(ws) -> None:
    route = Email("127.0.0.1", _free_port(), "t@example.com", ("ops@example.com",),
                  timeout=2.0)
    [d] = _raise(ws, (route,)).deliveries
    assert not d.ok and "ConnectionRefusedError" in str(d.error)


# ------------------------------------------------------------------ validation, lookups


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Webhook("ftp://hooks.example.com/x"), "must be an http:// or https:// URL"),
    (lambda: Webhook("hooks.slack.com/services/x"), "must be an http:// or https:// URL"),
    (lambda: Webhook("https://h.example.com", timeout=0), "positive number of seconds"),
    (lambda: Webhook("https://h.example.com", headers=(("X-A", "1\n2"),)),
     "'headers' of a Webhook route must be"),
    (lambda: Webhook("https://h.example.com", min_severity="urgent"),
     r"must be one of 'info', 'warning', 'critical'\. Got 'urgent'"),
    (lambda: Log(min_severity="WARNING"), "'min_severity' of a Log route"),
    (lambda: Email("smtp.example.com", 25, "t@example.com", ()), "has no recipients"),
    (lambda: Email("smtp.example.com", 25, "t@example.com", "ops@example.com"),
     "must be a tuple of email addresses"),
    (lambda: Email("smtp.example.com", 25, "t@example.com", ("ops",)),
     r"must hold email addresses\. Got \['ops'\]"),
    (lambda: Email("smtp.example.com", 25, "tuesday", ("ops@example.com",)),
     "'sender' of an Email route"),
    (lambda: Email("smtp.example.com", 0, "t@example.com", ("ops@example.com",)),
     "integer from 1 to 65535"),
    (lambda: Email("", 25, "t@example.com", ("ops@example.com",)), "'host' of an Email"),
    (lambda: Email("smtp.example.com", 25, "t@example.com", ("ops@example.com",),
                   username_env="SMTP_USER", password_env="hunter2!"),
     "NAME of an environment variable"),
    (lambda: Email("smtp.example.com", 25, "t@example.com", ("ops@example.com",),
                   username_env="SMTP_USER"), "both 'username_env' and 'password_env'"),
], ids=["scheme", "no-scheme", "timeout", "header", "severity", "log-severity",
        "no-recipients", "to-string", "bad-recipient", "sender", "port", "host",
        "password-literal", "half-login"])
def test_route_declarations_are_validated(make, match) -> None:
    with pytest.raises(TuesdayError, match=match) as exc:
        make()
    assert exc.value.fix


def test_password_literal_is_not_echoed() -> None:
    with pytest.raises(TuesdayError) as exc:
        Email("smtp.example.com", 25, "t@example.com", ("ops@example.com",),
              username_env="SMTP_USER", password_env="hunter2!")
    assert "hunter2" not in str(exc.value)


def test_raise_alert_arguments_are_validated(ws) -> None:
    with pytest.raises(TuesdayError, match="'severity' of an alert must be one of"):
        _raise(ws, (), severity="fatal")
    with pytest.raises(TuesdayError, match="route must be a Log, Webhook or Email"):
        _raise(ws, ("https://hooks.example.com",))
    with pytest.raises(TuesdayError, match="'as_of' of an alert must be a datetime"):
        _raise(ws, (), as_of="2016-07-01")
    with pytest.raises(TuesdayError, match="'title' of an alert must be a non-empty"):
        _raise(ws, (), title=" ")
    assert list_alerts(ws) == []


def test_unknown_alert_id_is_not_found(ws) -> None:
    for call in (lambda: get_alert(ws, 999),
                 lambda: acknowledge(ws, 999, actor="a", note="", as_of=T0),
                 lambda: resolve(ws, 999, actor="a", note="", as_of=T0)):
        with pytest.raises(NotFound, match="Alert 999 does not exist") as exc:
            call()
        assert "list_alerts" in exc.value.fix and exc.value.status == 404


def test_list_alerts_filters_by_status_and_model(ws) -> None:
    a = _raise(ws, ())
    b = raise_alert(ws, model="churn", kind="drift", severity="info", title="t", details={},
                    as_of=T0, routes=())
    acknowledge(ws, b.id, actor="alice", note="", as_of=T0)
    assert [x.id for x in list_alerts(ws)] == [a.id, b.id]
    assert [x.id for x in list_alerts(ws, status="open")] == [a.id]
    assert [x.id for x in list_alerts(ws, status="acknowledged", model="churn")] == [b.id]
    assert list_alerts(ws, status="resolved") == []
    assert [x.id for x in list_alerts(ws, model="demand")] == [a.id]
    with pytest.raises(TuesdayError, match="status must be one of"):
        list_alerts(ws, status="closed")


def test_details_are_stored_as_json(ws) -> None:
    alert = _raise(ws, (), details={"psi": np.float64(0.25), "n": np.int64(7),
                                    "missing": float("nan"), "at": datetime(2016, 7, 1),
                                    "bins": np.array([1, 2])})
    assert get_alert(ws, alert.id).details == {"psi": 0.25, "n": 7, "missing": None,
                                                "at": "2016-07-01T00:00:00", "bins": [1, 2]}
    assert json.loads(json.dumps(alert.to_dict()))["details"]["psi"] == 0.25


def test_database_refuses_two_unresolved_alerts_for_one_key(ws) -> None:
    alert = _raise(ws, ())
    row = {"dedup_key": alert.dedup_key, "model": "demand", "kind": "drift",
           "severity": "info", "title": "t", "details": {}, "first_seen": T0,
           "last_seen": T0, "count": 1, "status": "open"}
    with pytest.raises(sa.exc.IntegrityError), ws.engine().begin() as conn:
        conn.execute(meta.alerts.insert().values(**row))
    resolve(ws, alert.id, actor="a", as_of=T0)
    with ws.engine().begin() as conn:  # a resolved one does not count
        conn.execute(meta.alerts.insert().values(**row))
