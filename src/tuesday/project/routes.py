"""Where alerts go: routes a project declares in its policy.

- :class:`Log`: Python logging (logger ``tuesday.watch.alerts``); the alerts table is the
  record.
- :class:`Webhook`: an HTTP POST of a JSON body with a top-level ``"text"`` (what Slack,
  Mattermost, Rocket.Chat and Teams incoming webhooks show) plus structured fields.
- :class:`Email`: a plain-text message over SMTP, optionally with STARTTLS and a login
  whose user name and password are read from environment variables at send time.

Severities are ordered ``info < warning < critical``; a route only carries alerts at or
above its ``min_severity``. Delivery lives in :mod:`tuesday.watch.alerts`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tuesday.errors import TuesdayError

#: severities, lowest first
SEVERITIES = ("info", "warning", "critical")

SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")


def check_severity(value: Any, what: str) -> str:
    if value not in SEVERITY_RANK:
        raise TuesdayError(
            f"The {what} must be one of {', '.join(map(repr, SEVERITIES))}. Got {value!r}.",
            fix="Use 'info', 'warning' or 'critical'.")
    return str(value)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Log:
    """Route alerts to Python logging (logger ``tuesday.watch.alerts``).

    Args:
        min_severity: The lowest severity this route carries.

    Example:
        >>> Log(min_severity="warning").key
        'log'
    """

    min_severity: str = "info"
    kind: str = field(default="log", init=False)

    def __post_init__(self) -> None:
        check_severity(self.min_severity, "'min_severity' of a Log route")

    @property
    def key(self) -> str:
        """The route's name in the alert's deliveries."""
        return "log"


@dataclass(frozen=True)
class Webhook:
    """Route alerts to an HTTP endpoint as a Slack-compatible JSON POST.

    The body has a top-level ``"text"`` (a readable summary that Slack-style incoming
    webhooks display) and the fields ``alert_id``, ``severity``, ``model``, ``kind``,
    ``title``, ``details``, ``dedup_key``, ``count``, ``first_seen`` and ``last_seen``.
    Any non-2xx answer counts as a failed delivery.

    Args:
        url: ``http://`` or ``https://`` URL of the receiver.
        min_severity: The lowest severity this route carries.
        timeout: Seconds to wait for the receiver.
        headers: Extra request headers as ``(name, value)`` pairs.

    Example:
        >>> Webhook("https://hooks.example.com/T0/B0/x", min_severity="critical").key
        'webhook:hooks.example.com/0879add6'
    """

    url: str
    min_severity: str = "warning"
    timeout: float = 5.0
    headers: tuple[tuple[str, str], ...] = ()
    kind: str = field(default="webhook", init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise TuesdayError(
                f"The 'url' of a Webhook route must be an http:// or https:// URL with a "
                f"host. Got {self.url!r}.",
                fix="Pass the receiver's full URL, e.g. 'https://hooks.slack.com/services/...'.")
        check_severity(self.min_severity, "'min_severity' of a Webhook route")
        if (isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float)
                or not self.timeout > 0):
            raise TuesdayError(
                f"The 'timeout' of a Webhook route must be a positive number of seconds. "
                f"Got {self.timeout!r}.", fix="Use e.g. timeout=5.0.")
        headers = self.headers
        if not isinstance(headers, tuple | list) or not all(
                isinstance(h, tuple | list) and len(h) == 2
                and isinstance(h[0], str) and _HEADER_NAME.fullmatch(h[0])
                and isinstance(h[1], str) and "\n" not in h[1] and "\r" not in h[1]
                for h in headers):
            raise TuesdayError(
                f"The 'headers' of a Webhook route must be (name, value) pairs of strings, "
                f"with no line breaks. Got {headers!r}.",
                fix="Use e.g. headers=(('Authorization', 'Bearer ...'),).")
        object.__setattr__(self, "headers", tuple((str(n), str(v)) for n, v in headers))

    @property
    def key(self) -> str:
        """The route's name in the alert's deliveries (the URL's path may be a secret, so
        only its host and a short hash of the whole URL are shown)."""
        parts = urlsplit(self.url)  # netloc may hold user:password, hostname does not
        host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        return f"webhook:{host}/{_short_hash(self.url)}"


@dataclass(frozen=True)
class Email:
    """Route alerts to email recipients over SMTP, as plain text.

    Args:
        host: SMTP server host.
        port: SMTP server port (25, 587 with STARTTLS, 1025 for a local relay...).
        sender: The From address.
        to: The recipients' addresses (a tuple, at least one).
        min_severity: The lowest severity this route carries.
        starttls: Upgrade the connection with STARTTLS before sending.
        username_env: Name of the environment variable holding the SMTP user name.
        password_env: Name of the environment variable holding the SMTP password.
        timeout: Seconds to wait for the server.

    Example:
        >>> Email("smtp.example.com", 587, "tuesday@example.com", ("ops@example.com",),
        ...       starttls=True, username_env="SMTP_USER", password_env="SMTP_PASSWORD").key
        'email:smtp.example.com:587:ops@example.com'
    """

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    min_severity: str = "warning"
    starttls: bool = False
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 10.0
    kind: str = field(default="email", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise TuesdayError(f"The 'host' of an Email route must be a host name. "
                               f"Got {self.host!r}.", fix="Use e.g. host='smtp.example.com'.")
        if isinstance(self.port, bool) or not isinstance(self.port, int) \
                or not 0 < self.port < 65536:
            raise TuesdayError(f"The 'port' of an Email route must be an integer from 1 to "
                               f"65535. Got {self.port!r}.", fix="Use e.g. port=587.")
        if not isinstance(self.sender, str) or not _ADDRESS.fullmatch(self.sender):
            raise TuesdayError(f"The 'sender' of an Email route must be an email address. "
                               f"Got {self.sender!r}.", fix="Use e.g. 'tuesday@example.com'.")
        if isinstance(self.to, str) or not isinstance(self.to, tuple | list):
            raise TuesdayError(
                f"The 'to' of an Email route must be a tuple of email addresses. "
                f"Got {self.to!r}.", fix="Use e.g. to=('ops@example.com',).")
        if not self.to:
            raise TuesdayError("The 'to' of an Email route has no recipients.",
                               fix="Give at least one address, e.g. to=('ops@example.com',).")
        bad = [a for a in self.to if not isinstance(a, str) or not _ADDRESS.fullmatch(a)]
        if bad:
            raise TuesdayError(
                f"The 'to' of an Email route must hold email addresses. Got {bad!r}.",
                fix="Use plain addresses like 'ops@example.com', one per item.")
        object.__setattr__(self, "to", tuple(self.to))
        check_severity(self.min_severity, "'min_severity' of an Email route")
        for name in ("username_env", "password_env"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str)
                                      or not _ENV_NAME.fullmatch(value)):
                raise TuesdayError(
                    f"The {name!r} of an Email route must be the NAME of an environment "
                    f"variable (never the secret itself). Got a value that is not a "
                    f"variable name.",
                    fix=f"Use e.g. {name}='SMTP_{name.split('_')[0].upper()}' and set "
                        "that variable where tuesday runs.")
        if (self.username_env is None) != (self.password_env is None):
            raise TuesdayError(
                "An Email route needs both 'username_env' and 'password_env' to log in, "
                "or neither.", fix="Give both variable names, or drop both.")
        if (isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float)
                or not self.timeout > 0):
            raise TuesdayError(
                f"The 'timeout' of an Email route must be a positive number of seconds. "
                f"Got {self.timeout!r}.", fix="Use e.g. timeout=10.0.")

    @property
    def key(self) -> str:
        """The route's name in the alert's deliveries."""
        to = ",".join(self.to)
        if len(to) > 200:
            to = f"{self.to[0]}+{len(self.to) - 1}/{_short_hash(to)}"
        return f"email:{self.host}:{self.port}:{to}"


Route = Log | Webhook | Email
