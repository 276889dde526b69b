"""Who reads the dashboard: the workspace's role tokens, entered once on ``/ui/login``
and kept in an HttpOnly, SameSite=Strict cookie (``tuesday.serve.auth.COOKIE``). A
workspace without tokens is open, as the API is; a ``predict`` token cannot read.

A form that changes something (acknowledge, log out) must come from the dashboard
itself: a request whose ``Origin`` names another host is refused.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from tuesday.errors import TuesdayError
from tuesday.serve import auth
from tuesday.serve.auth import Forbidden
from tuesday.serve.state import State

__all__ = ["Reader", "check_origin", "form", "login_cookie", "logout_cookie", "reader"]


@dataclass(frozen=True)
class Reader:
    """The dashboard's reader: the token's name and role (both None when the workspace
    has no tokens: everyone may read and act)."""

    name: str | None
    role: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is None or self.role == "admin"


def reader(state: State, request: Request) -> Reader | None:
    """The reader of a request (cookie, else a Bearer header), or None when the
    workspace has tokens and the request has no valid one of a role that may read."""
    tokens = state.tokens.active()
    if not tokens:
        return Reader(None, None)
    token = request.cookies.get(auth.COOKIE)
    header = request.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    found = auth.role_of(tokens, token)
    if found is None or not auth.allowed(found[1], "read"):
        return None
    return Reader(*found)


def token_reader(state: State, token: str) -> Reader:
    """The reader a token entered on the login form stands for, or a clear error."""
    found = auth.role_of(state.tokens.active(), token)
    if found is None:
        raise TuesdayError("That token is not known (revoked, mistyped, or from another "
                           "workspace).",
                           fix="Paste a token made by `tuesday token create NAME --role "
                               "read`.")
    if not auth.allowed(found[1], "read"):
        raise Forbidden(f"Token {found[0]!r} has role {found[1]!r}, which cannot read the "
                        "dashboard.", fix="Use a token with role 'read' or 'admin'.")
    return Reader(*found)


def check_origin(request: Request) -> None:
    """Refuse a form posted from another site (its ``Origin`` names another host)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = urllib.parse.urlsplit(origin).netloc
        if host != request.headers.get("host"):
            raise Forbidden(f"A dashboard form was posted from {origin!r}, not from this "
                            "server.", fix="Use the dashboard's own pages.")


async def form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form body (the last value of each)."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {k: v for k, v in urllib.parse.parse_qsl(raw, keep_blank_values=True)}


def login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")


def logout_cookie(response: Response) -> None:
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
