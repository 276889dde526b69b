"""API tokens with roles: ``predict``, ``read`` and ``admin``.

A token is shown once when created; the workspace keeps only its sha256. The server
asks for ``Authorization: Bearer TOKEN`` as soon as one active token exists (a
workspace without tokens serves openly, which suits a laptop on loopback; ``tuesday
serve`` warns when it listens beyond loopback without tokens).

What each role may call:

* ``predict``: predict, batch, events and ground truth;
* ``read``: the model list (``GET /v1/models``), a model's versions, deployment, report,
  monitor and explanations (``GET .../versions``, ``.../deployment``, ``.../report``,
  ``.../monitor``, ``.../explain``), the alerts (``GET /v1/alerts``), ``/metrics`` and the
  dashboard (``/ui/``, where the token is entered once and kept in a cookie);
* ``admin``: everything, including promote, rollback, deployments and acknowledging
  alerts.

Example:
    >>> allowed("admin", "predict"), allowed("read", "predict")
    (True, False)
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tuesday import meta
from tuesday.errors import Conflict, NotFound, TuesdayError
from tuesday.workspace import Workspace

ROLES = ("predict", "read", "admin")
#: the cookie a dashboard reader's token is kept in (HttpOnly, SameSite=Strict); the
#: server takes it, instead of an Authorization header, on GET requests only
COOKIE = "tuesday_token"


class Unauthorized(TuesdayError):
    status = 401
    exit_code = 2
    kind = "unauthorized"


class Forbidden(TuesdayError):
    status = 403
    exit_code = 2
    kind = "forbidden"


def allowed(role: str, needed: str) -> bool:
    return role == "admin" or role == needed


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(ws: Workspace, name: str, role: str, *, as_of: datetime) -> str:
    """A new token for ``name`` with ``role``; the plain token is returned only here."""
    if role not in ROLES:
        raise TuesdayError(f"Token role must be one of {', '.join(ROLES)}; got {role!r}.",
                           fix="Pass --role predict, --role read or --role admin.")
    if not name.strip():
        raise TuesdayError("A token needs a non-empty name (who or what uses it).",
                           fix="Pass a name such as 'checkout-service'.")
    token = "tue_" + secrets.token_urlsafe(32)
    t = meta.tokens
    with ws.engine().begin() as conn:
        if conn.execute(sa.select(t.c.name).where(t.c.name == name)).first():
            raise Conflict(f"A token named {name!r} already exists.",
                           fix=f"Revoke it first (`tuesday token revoke {name}`) or pick "
                               "another name.")
        conn.execute(t.insert().values(digest=digest(token), name=name, role=role,
                                       created_at=as_of, revoked_at=None))
    return token


def revoke(ws: Workspace, name: str, *, as_of: datetime) -> None:
    t = meta.tokens
    with ws.engine().begin() as conn:
        n = conn.execute(t.delete().where(t.c.name == name)).rowcount
    if not n:
        raise NotFound(f"There is no token named {name!r}.",
                       fix="List them with `tuesday token list`.")


def listing(ws: Workspace) -> list[dict[str, Any]]:
    t = meta.tokens
    with ws.engine().connect() as conn:
        return [{"name": r.name, "role": r.role, "created_at": r.created_at}
                for r in conn.execute(sa.select(t).order_by(t.c.name))]


def active(ws: Workspace) -> dict[str, tuple[str, str]]:
    """digest -> (name, role) of every active token."""
    t = meta.tokens
    with ws.engine().connect() as conn:
        return {r.digest: (r.name, r.role) for r in conn.execute(sa.select(t))}


def cookie_bearer(value: str | None) -> str | None:
    """The Authorization header a token kept in the dashboard's cookie stands for."""
    return f"Bearer {value}" if value else None


def role_of(tokens: dict[str, tuple[str, str]], token: str | None) -> tuple[str, str] | None:
    """(name, role) of a token, or None when it is not an active one."""
    return tokens.get(digest(token.strip())) if token else None


def check(tokens: dict[str, tuple[str, str]], header: str | None,
          needed: str) -> str | None:
    """The caller's name, or an error; None when the workspace has no tokens."""
    if not tokens:
        return None
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("This endpoint needs an API token; the request has no "
                           "'Authorization: Bearer TOKEN' header.",
                           fix="Create one with `tuesday token create NAME --role "
                               f"{needed}` and send it as a Bearer token.")
    found = tokens.get(digest(header[7:].strip()))
    if found is None:
        raise Unauthorized("The API token is not known (revoked or mistyped).",
                           fix="Check the token, or create a new one with `tuesday token "
                               "create`.")
    name, role = found
    if not allowed(role, needed):
        raise Forbidden(f"Token {name!r} has role {role!r}; this endpoint needs role "
                        f"{needed!r}.",
                        fix=(f"Use a token with role {needed!r} or 'admin'." if needed != "admin"
                             else "Use a token with role 'admin'."))
    return name
