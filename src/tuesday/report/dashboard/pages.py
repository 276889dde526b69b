"""The dashboard's pages under ``/ui/``: the models overview, one model, explain, and
the login form. Each page is server-rendered HTML with inline SVG charts, from the
payloads of :class:`~tuesday.report.dashboard.board.Board` (the JSON endpoints' own).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tuesday.charts import Series, sparkline
from tuesday.errors import TuesdayError
from tuesday.report.dashboard import accuracy, operations, session
from tuesday.report.dashboard.board import Board
from tuesday.report.dashboard.explain_page import explain_body
from tuesday.report.dashboard.layout import (
    esc,
    fig,
    light,
    metric_name,
    metric_text,
    page,
    table,
)
from tuesday.serve.auth import Forbidden
from tuesday.serve.state import State
from tuesday.train import evaluation
from tuesday.watch.monitor_html import when

__all__ = ["routes"]

PageFn = Callable[[Board, Request, session.Reader], Awaitable[Response]]


def _login_page(request: Request, *, status: int, message: str = "") -> HTMLResponse:
    nxt = request.query_params.get("next") or (
        request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if not nxt.startswith("/ui/") or nxt.startswith("/ui/login"):
        nxt = "/ui/"
    box = f'<p class="error">{esc(message)}</p>' if message else ""
    body = ("<section><h1>Sign in</h1>"
            "<p>This dashboard needs an API token with role <b>read</b> (or <b>admin</b>, "
            "which may also acknowledge alerts). Make one with <code>tuesday token create "
            "NAME --role read</code>; it is asked once and kept in this browser.</p>"
            f'{box}<form method="post" action="/ui/login">'
            f'<input type="hidden" name="next" value="{esc(nxt)}">'
            '<label>Token <input type="password" name="token" size="50" autofocus '
            'autocomplete="off"></label> <button class="act">Sign in</button></form>'
            "</section>")
    return HTMLResponse(page("Sign in", body), status_code=status)


def _error_page(exc: TuesdayError, reader: session.Reader | None) -> HTMLResponse:
    body = (f'<section class="error"><h1>That did not work</h1><p>{esc(exc.message)}</p>'
            + (f"<p><b>What to do:</b> {esc(exc.fix)}</p>" if exc.fix else "")
            + '<p><a href="/ui/">Back to the models</a></p></section>')
    return HTMLResponse(page("Error", body, reader=reader.name if reader else None),
                        status_code=exc.status)


def _guarded(state: State, board: Board, name: str, fn: PageFn, *, admin: bool = False,
             post: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A page endpoint: the reader signed in (else the login form, 401), forms only from
    this server, admin pages only for admins; errors as a page with their status."""
    async def handler(request: Request) -> Response:
        started = time.perf_counter()
        who: session.Reader | None = None
        try:
            who = session.reader(state, request)
            if who is None:
                response: Response = _login_page(
                    request, status=401, message="Sign in with a token to read this page."
                    if not request.cookies else "Your token is no longer valid; sign in "
                                                "again.")
            else:
                if post:
                    session.check_origin(request)
                if admin and not who.is_admin:
                    raise Forbidden(f"Token {who.name!r} has role {who.role!r}; only an "
                                    "admin may do this.",
                                    fix="Sign in with a token of role 'admin'.")
                response = await fn(board, request, who)
        except TuesdayError as exc:
            response = _error_page(exc, who)
        state.metrics.observe(name, response.status_code, time.perf_counter() - started)
        return response
    return handler


# --------------------------------------------------------------------------- pages


def _overview_row(r: dict[str, Any], way: str) -> list[str]:
    name = r["model"]
    src = f"/v1/models/{name}/monitor"
    recent = r["recent"]
    metric = r["metric"]
    last = recent[-1] if recent else None
    served = "no ground truth yet"
    if last and last["model"] is not None and last["baseline"] is not None:
        i = r["recent_first"] + len(recent) - 1
        better = evaluation.better(metric, last["model"], last["baseline"], way)
        mine = fig(last["model"], src, f"windows.{i}.model.{metric}",
                   metric_text(last["model"]))
        best = last["best_baseline"]
        theirs = fig(last["baseline"], src, f"windows.{i}.baselines.{best}.{metric}",
                     metric_text(last["baseline"]))
        served = (f"model {mine}, {esc(best)} {theirs}: "
                  + ("<span class=good>model better</span>" if better else
                     "<span class=bad>baseline better</span>")
                  + f'<br><span class="note">week of {esc(last["start"])}</span>')
    spark = sparkline([Series("model", [w["model"] for w in recent], "#1f4e9c"),
                       Series("baseline", [w["baseline"] for w in recent], "#d35400",
                              dash="4 3")], title=f"served {metric}, model and best baseline",
                      size=(200, 44))
    prod = (f"v{r['production_version']}" if r["production_version"] is not None
            else "none")
    if r["deployment"] != "single":
        prod += f'<br><span class="note">v{r["newest_version"]} in {esc(r["deployment"])}</span>'
    newest = (f"v{r['newest_version']} ({esc(r['newest_stage'])})"
              if r["newest_version"] is not None else "–")
    return [f'<a href="/ui/models/{quote(name)}"><b>{esc(name)}</b></a><br>'
            f'<span class="note">{esc(r["target"])} per {esc(r["entity"])}; '
            f"{esc(r['metric'])}</span>",
            light(r["health"]), prod, newest, when(r["last_trained"]),
            served, spark or "–",
            str(r["open_alerts"]) if r["open_alerts"] else "none"]


async def overview(board: Board, _request: Request, who: session.Reader) -> Response:
    data = await asyncio.to_thread(board.overview)
    rows = []
    for r in data["models"]:
        way = evaluation.direction(board.model(r["model"])).get(r["metric"], "lower")
        rows.append(_overview_row(r, way))
    metrics = sorted({metric_name(r["metric"]) for r in data["models"]})
    body = ("<h1>Models</h1><section><p class=q>Is each model better than the simple way, "
            "and is it healthy today? Served accuracy compares each week's predictions "
            "with what really happened, against the best simple baseline on the same "
            f"rows ({esc(', '.join(metrics))}: lower is better for errors); the small "
            "chart shows the last weeks (solid: model, dashed: baseline).</p>"
            + table(["model", "health", "in production", "newest version", "last trained",
                     "served accuracy, latest week", "last weeks", "open alerts"], rows,
                    left=8, cls="overview", wrap=(0, 1, 5))
            + "</section>")
    return HTMLResponse(page("Models", body, reader=who.name))


async def model_page(board: Board, request: Request, who: session.Reader) -> Response:
    name = board.model(request.path_params["model"]).name
    v, mon = await asyncio.gather(asyncio.to_thread(board.versions, name),
                                  asyncio.to_thread(board.monitor, name))
    rep = await asyncio.to_thread(board.report, name) if v["versions"] else None
    model = board.model(name)
    way = evaluation.direction(model).get(model.primary_metric, "lower")
    crumbs = '<p class="note"><a href="/ui/">Models</a> › ' + esc(name) + "</p>"
    prod = v["production_version"]
    head = [f"<h1>{esc(name)}</h1>",
            f'<p><a class="act" href="/ui/models/{quote(name)}/explain">Explain a prediction'
            '</a></p><nav class="sub note"><a href="#served">Served accuracy</a>'
            '<a href="#backtest">Backtest</a><a href="#slices">Slices</a>'
            '<a href="#losses">Where it loses</a>'
            '<a href="#drift">Drift</a><a href="#alerts">Alerts</a><a href="#versions">'
            "Versions</a></nav>",
            '<section><div class="cards">',
            f'<div class="card"><div class="k">health</div>{light(mon["health"])}</div>',
            '<div class="card"><div class="k">in production</div><span class="big">'
            + (f"version {fig(prod, f'/v1/models/{name}/versions', 'production_version')}"
               if prod is not None else "none") + "</span></div>",
            f'<div class="card"><div class="k">forecasts</div>{esc(model.target)} per '
            f"{esc(model.entity.key)}" + (f", {esc(model.horizon)} ahead"
                                          if model.horizon and model.horizon != "0d" else "")
            + "</div>",
            '<div class="card"><div class="k">predictions logged</div>'
            + fig(mon.get("predictions_logged"), f"/v1/models/{name}/monitor",
                  "predictions_logged") + "</div></div></section>"]
    parts = [*head, accuracy.served_section(name, mon, way != "higher", model)]
    if rep is not None:
        parts += [accuracy.backtest_section(name, rep, model),
                  accuracy.slices_section(name, rep, mon, model),
                  accuracy.losses_section(name, rep)]
    parts += [operations.drift_section(name, mon, model),
              operations.variants_section(name, mon),
              operations.alerts_section(name, mon, who.is_admin),
              operations.versions_section(name, v, model)]
    return HTMLResponse(page(name, "".join(parts), reader=who.name, crumbs=crumbs))


async def explain(board: Board, request: Request, who: session.Reader) -> Response:
    name = board.model(request.path_params["model"]).name
    q = request.query_params
    entity, at, rid = q.get("entity") or None, q.get("at") or None, q.get("request_id") or None
    result: dict[str, Any] | None = None
    problem: TuesdayError | None = None
    src = f"/v1/models/{quote(name)}/explain?" + urlencode(
        {k: v for k, v in (("entity", entity), ("at", at)) if v})
    try:
        if rid:
            src = f"/v1/requests/{quote(rid)}/explain"
            result = await asyncio.to_thread(board.explain_request, rid)
            if result["model"] != name:
                raise TuesdayError(f"Request {rid} was answered by model "
                                   f"{result['model']!r}, not {name!r}.",
                                   fix=f"Open /ui/models/{result['model']}/explain.")
        elif entity:
            result = await asyncio.to_thread(functools.partial(board.explain, name,
                                                               entity=entity, at=at))
    except TuesdayError as exc:
        result, problem = None, exc
    recent = await asyncio.to_thread(board.recent_requests, name)
    body = explain_body(board.model(name), board.state.loaded, result, problem, recent,
                        entity=entity, at=at, request_id=rid, src=src)
    crumbs = (f'<p class="note"><a href="/ui/">Models</a> › <a href="/ui/models/'
              f'{quote(name)}">{esc(name)}</a> › explain</p>')
    # a question the data cannot answer is said on the page, which is itself fine
    return HTMLResponse(page(f"Explain {name}", body, reader=who.name, crumbs=crumbs))


async def acknowledge(board: Board, request: Request, who: session.Reader) -> Response:
    name = board.model(request.path_params["model"]).name
    try:
        alert_id = int(request.path_params["alert"])
    except ValueError:
        raise TuesdayError(f"{request.path_params['alert']!r} is not an alert id.",
                           fix="Use the dashboard's acknowledge button.") from None
    fields = await session.form(request)
    await asyncio.to_thread(board.acknowledge, alert_id, who.name or "dashboard",
                            fields.get("note", ""))
    return RedirectResponse(f"/ui/models/{quote(name)}#alerts", status_code=303)


# ------------------------------------------------------------------ login, logout


def _login(state: State) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        if request.method == "GET":
            return _login_page(request, status=200)
        try:
            session.check_origin(request)
            fields = await session.form(request)
            token = fields.get("token", "").strip()
            if state.tokens.active():
                session.token_reader(state, token)
        except TuesdayError as exc:
            return _login_page(request, status=exc.status, message=exc.message)
        nxt = fields.get("next") or "/ui/"
        if not nxt.startswith("/ui/") or nxt.startswith("//"):
            nxt = "/ui/"
        response = RedirectResponse(nxt, status_code=303)
        session.login_cookie(response, request, token)
        return response
    return handler


async def _logout(request: Request) -> Response:
    try:
        session.check_origin(request)
    except TuesdayError as exc:
        return HTMLResponse(page("Error", f"<p>{esc(exc.message)}</p>"), status_code=403)
    response = RedirectResponse("/ui/login", status_code=303)
    session.logout_cookie(response)
    return response


def routes(state: State, board: Board) -> list[BaseRoute]:
    """The pages' routes."""
    def guarded(name: str, fn: PageFn, **kw: bool) -> Callable[[Request], Awaitable[Response]]:
        return _guarded(state, board, name, fn, **kw)

    m = "/ui/models/{model}"
    return [
        Route("/ui/", guarded("ui_overview", overview), methods=["GET"]),
        Route(m, guarded("ui_model", model_page), methods=["GET"]),
        Route(f"{m}/explain", guarded("ui_explain", explain), methods=["GET"]),
        Route(f"{m}/alerts/{{alert}}/acknowledge",
              guarded("ui_acknowledge", acknowledge, admin=True, post=True),
              methods=["POST"]),
        Route("/ui/login", _login(state), methods=["GET", "POST"]),
        Route("/ui/logout", _logout, methods=["POST"]),
    ]
