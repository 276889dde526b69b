"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a
real ``tuesday serve``: the login form keeps the token, a page without one is refused,
every page loads with no console error and no failed request, every figure shown equals
the JSON API's answer, and an admin acknowledges an alert. Each page's screenshot is
written under ``tests/artifacts/ui/`` (or ``$TUESDAY_UI_ARTIFACTS``); the run's summary
names the folder."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.report.dashboard.served import ARTIFACTS, MODEL
from tuesday.data.predictions import read_log
from tuesday.watch import alerts
from tuesday.workspace import Workspace

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("the browser tests need Debian's chromium (apt-get install chromium; CI "
                "installs it from .ci/system-packages)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the browser tests need Playwright for Python "
                                      "(the dev extra)")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def signed_in(browser: Any, server: str, tokens: dict[str, str]) -> Iterator[Any]:
    """A browser context signed in through the login form, as an admin."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    page.goto(f"{server}/ui/login")
    page.fill("input[name=token]", tokens["admin"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{server}/ui/")
    yield ctx
    ctx.close()


class Watched:
    """A page with every console error, failed request and error answer it met."""

    def __init__(self, ctx: Any) -> None:
        self.page = ctx.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(
            f"request failed: {r.url} ({r.failure})"))
        self.page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}")
                     if r.status >= 400 else None)

    def open(self, url: str) -> Any:
        return self.page.goto(url, wait_until="load")


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _number(text: str) -> tuple[float, float] | None:
    """A figure's text as a number and half its last digit ("16,020": 16020 +- 0.5;
    "+55.4%": 0.554 +- 0.0005; "0.881": 0.881 +- 0.0005); None for a dash."""
    t = text.strip().replace("−", "-").replace(",", "").replace("+", "")
    if t in ("–", ""):
        return None
    scale = 0.01 if t.endswith("%") else 1.0
    t = re.sub(r"[^0-9eE.\-]", "", t)
    mantissa = re.split("[eE]", t)[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exp = int(re.split("[eE]", t)[1]) if re.search("[eE]", t) else 0
    return float(t) * scale, 0.5 * 10.0 ** (exp - decimals) * scale


def _field(body: Any, path: str) -> Any:
    for part in path.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def _check_figures(ctx: Any, server: str, page: Any) -> int:
    """Each figure's exact value is the API's field, and its text shows that value."""
    figs = page.eval_on_selector_all(
        "[data-src]", "els => els.map(e => [e.dataset.src, e.dataset.path, e.dataset.value, "
                      "e.textContent])")
    answers: dict[str, Any] = {}
    for src, path, value, text in figs:
        if src not in answers:
            r = ctx.request.get(f"{server}{src}")  # the page's own cookie
            assert r.status == 200, (src, r.text())
            answers[src] = r.json()
        want = _field(answers[src], path)
        if value == "":
            assert want is None and text.strip() == "–", (src, path, want, text)
            continue
        assert float(value) == want, (src, path, value, want)
        shown = _number(text)
        assert shown is not None, (src, path, text)
        assert abs(abs(shown[0]) - abs(want)) <= shown[1] * (1 + 1e-9), (src, path, text,
                                                                          want)
    return len(figs)


def test_a_page_without_a_token_is_refused_and_the_login_form_keeps_it(
        browser: Any, server: str, tokens: dict[str, str]) -> None:
    ctx = browser.new_context(viewport={"width": 1200, "height": 700})
    page = ctx.new_page()
    r = page.goto(f"{server}/ui/models/{MODEL}")
    assert r.status == 401
    assert page.locator("h1").inner_text() == "Sign in"
    assert page.locator("input[name=token]").get_attribute("type") == "password"
    _shot(page, "login")
    page.fill("input[name=token]", tokens["read"])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{server}/ui/models/{MODEL}")  # back where the reader was going
    assert page.locator("h1").inner_text() == MODEL
    cookie = next(c for c in ctx.cookies() if c["name"] == "tuesday_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the token
    # a read token sees no acknowledge button; logging out asks for the token again
    assert page.locator("button:has-text('acknowledge')").count() == 0
    page.click("button:has-text('log out')")
    page.wait_for_url(f"{server}/ui/login")
    assert page.goto(f"{server}/ui/").status == 401
    ctx.close()


def _pages(board_ws: Workspace) -> list[tuple[str, str]]:
    log = read_log(board_ws, MODEL)
    rid = log[log["variant"] == "primary"]["request_id"].iloc[-1]
    return [("overview", "/ui/"), ("model", f"/ui/models/{MODEL}"),
            ("explain", f"/ui/models/{MODEL}/explain?entity=Clark_Lake&at=2016-08-05"),
            ("explain-logged", f"/ui/models/{MODEL}/explain?request_id={rid}")]


def test_every_page_loads_clean_and_shows_the_apis_figures(
        signed_in: Any, server: str, board_ws: Workspace) -> None:
    counts = {}
    for name, path in _pages(board_ws):
        w = Watched(signed_in)
        r = w.open(f"{server}{path}")
        assert r.status == 200, (name, r.status)
        assert w.page.locator("h1").count() == 1
        assert w.page.locator(".error").count() == 0, w.page.locator(".error").inner_text()
        assert w.problems == [], (name, w.problems)
        hosts = w.page.eval_on_selector_all(
            "[src],[href]", "els => els.map(e => e.getAttribute('src') || "
                            "e.getAttribute('href'))")
        assert not [h for h in hosts if re.match(r"(https?:)?//", h)], name  # nothing remote
        _shot(w.page, name)
        counts[name] = _check_figures(signed_in, server, w.page)
        w.page.close()
    assert counts["overview"] >= 2 and counts["model"] >= 40 and counts["explain"] >= 10, counts


def test_model_page_draws_the_charts_a_reader_looks_at(signed_in: Any, server: str) -> None:
    w = Watched(signed_in)
    w.open(f"{server}/ui/models/{MODEL}")
    titles = w.page.eval_on_selector_all("svg title", "els => els.map(e => e.textContent)")
    for want in ("Served rmse per week", "Backtest rmse per fold", "Backtest rmse per slice",
                 "Drift per feature per week"):
        assert want in titles, titles[:10]
    assert w.page.locator("svg rect[fill='#d93025']").count() > 0  # a drifted week
    box = w.page.locator("section#slices svg").bounding_box()
    assert box["width"] > 600  # drawn at a readable size
    w.page.close()


def test_an_admin_acknowledges_an_alert_on_the_model_page(
        signed_in: Any, server: str, board_ws: Workspace) -> None:
    alert = alerts.raise_alert(board_ws, model=MODEL, kind="data", severity="warning",
                               title="source 'weather' arrived late",
                               as_of=read_log(board_ws, MODEL)["served_at"].max())
    w = Watched(signed_in)
    w.open(f"{server}/ui/models/{MODEL}#alerts")
    row = w.page.locator("section#alerts tr", has_text="source 'weather' arrived late")
    row.locator("button:has-text('acknowledge')").click()
    w.page.wait_for_load_state("load")
    row = w.page.locator("section#alerts tr", has_text="source 'weather' arrived late")
    assert "acknowledged by admin-person" in row.inner_text()
    _shot(w.page, "model-after-acknowledge")
    assert alerts.get_alert(board_ws, alert.id).status == "acknowledged"
    assert w.problems == [], w.problems
    w.page.close()
