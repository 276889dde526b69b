"""The dashboard's JSON endpoints and its sign-in, through a real server on 127.0.0.1:
each endpoint answers what the stage below computes (the monitor, the report, the
registry, the alerts), drift per week is the Kolmogorov-Smirnov test of scipy, the role
tokens hold, and the pages ask for a token and keep it in an HttpOnly cookie."""

from __future__ import annotations

import html
import http.client
import io
import json
import re
import urllib.parse
from typing import Any

import pyarrow.parquet as pq
import pytest
from scipy import stats

from tests.report.dashboard.served import LAST, MODEL
from tests.serve.live import call
from tuesday import encoding
from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject
from tuesday.release import registry
from tuesday.report.evaluation import evaluation_report
from tuesday.watch import alerts, quality
from tuesday.watch.monitoring import monitor
from tuesday.workspace import Workspace


def _get(server: str, path: str, token: str | None) -> tuple[int, Any]:
    return call(f"{server}{path}",
                headers={"Authorization": f"Bearer {token}"} if token else None)


def _raw(server: str, method: str, path: str, *, body: str | None = None,
         headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One request, redirects not followed."""
    host = urllib.parse.urlsplit(server).netloc
    conn = http.client.HTTPConnection(host, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    return conn.getresponse()


def test_endpoints_need_a_read_token(server: str, tokens: dict[str, str]) -> None:
    for path in (f"/v1/models/{MODEL}/versions", f"/v1/models/{MODEL}/report",
                 f"/v1/models/{MODEL}/monitor", "/v1/alerts",
                 f"/v1/models/{MODEL}/explain?entity=Clark_Lake&at=2016-08-05"):
        assert _get(server, path, None)[0] == 401, path
        assert _get(server, path, tokens["predict"])[0] == 403, path
        status, body = _get(server, path, tokens["read"])
        assert status == 200, (path, body)


def test_versions_are_the_registry_newest_first(server: str, tokens: dict[str, str],
                                                board_ws: Workspace) -> None:
    _, v = _get(server, f"/v1/models/{MODEL}/versions", tokens["read"])
    assert [s["version"] for s in v["versions"]] == [2, 1]
    assert v["production_version"] == 1
    for s in v["versions"]:
        stored = registry.get_version(board_ws, MODEL, s["version"])["metrics"]
        assert s["metrics"] == stored["model"]
        assert s["baseline"] == stored["baselines"][stored["best_baseline"]][stored["primary"]]
        assert s["lift"] == stored["lift"]
    assert [a["to_stage"] for a in v["audit"]] == [a["to_stage"] for a in
                                                  registry.audit(board_ws, MODEL)]
    assert v["deployment"]["mode"] == "shadow" and v["deployment"]["version"] == 2
    assert v["newest_versus_production"]["version"] == 2


def test_report_is_the_evaluation_report(server: str, tokens: dict[str, str],
                                         board_ws: Workspace,
                                         ridership: LoadedProject) -> None:
    _, rep = _get(server, f"/v1/models/{MODEL}/report", tokens["read"])
    assert rep == json.loads(json.dumps(evaluation_report(board_ws, ridership, MODEL, 1)))
    _, rep2 = _get(server, f"/v1/models/{MODEL}/report?version=2", tokens["read"])
    assert rep2["version"] == 2 and len(rep2["folds"]) == 3
    status, err = _get(server, f"/v1/models/{MODEL}/report?version=two", tokens["read"])
    assert status == 400 and "'version' must be a whole number" in err["message"]
    status, err = _get(server, f"/v1/models/{MODEL}/report?version=9", tokens["read"])
    assert status == 404 and "has no version 9" in err["message"]
    status, err = _get(server, "/v1/models/nope/report", tokens["read"])
    assert status == 404


def test_monitor_is_the_monitor_report_with_drift_per_week(
        server: str, tokens: dict[str, str], board_ws: Workspace,
        ridership: LoadedProject) -> None:
    at = LAST.isoformat()
    _, mon = _get(server, f"/v1/models/{MODEL}/monitor?as_of={at}", tokens["read"])
    direct = monitor(board_ws, ridership, MODEL, LAST, write=False)
    assert mon["quality"] == encoding.plain(direct["quality"])  # NaN as null
    assert mon["windows"] == encoding.plain(direct["windows"])
    assert mon["variants"]["comparisons"][0]["kind"] == "shadow"
    # drift per week: scipy's two-sample KS p-value of the served values against the
    # version's training reference, for each numeric feature and week with enough values
    dot = mon["drift_over_time"]
    prod = registry.production(board_ws, MODEL)
    ref = pq.read_table(io.BytesIO(board_ws.get_artifact(
        prod["manifest"]["reference"]["sha256"]))).to_pandas()
    log = read_log(board_ws, MODEL)
    log = log[log["variant"] != "shadow"].reset_index(drop=True)
    feats = quality.feature_frame(log)
    week = quality.when(log).dt.to_period("W").astype(str)
    assert [w["window"] for w in dot["windows"]] == sorted(week.unique())
    checked = 0
    for f in dot["features"]:
        if f["method"] != "ks":  # a feature with few distinct values gets chi-squared
            continue
        for w, p, drifted in zip(dot["windows"], f["statistic"], f["drifted"], strict=True):
            cur = feats.loc[(week == w["window"]).to_numpy(), f["feature"]].dropna()
            if len(cur) < 5:
                assert p is None and drifted is None
                continue
            want = stats.ks_2samp(ref[f["feature"]].dropna(), cur.astype(float)).pvalue
            assert p == pytest.approx(want, rel=1e-6, abs=1e-12)
            assert drifted == (p <= f["threshold"])
            checked += 1
    assert checked >= 20
    assert mon["health"]["color"] in ("amber", "red")
    assert {a["id"] for a in mon["open_alerts"]} == {
        a.id for a in alerts.list_alerts(board_ws, model=MODEL) if a.status != "resolved"}


def test_explain_by_entity_and_by_request_id(server: str, tokens: dict[str, str],
                                             board_ws: Workspace) -> None:
    _, e = _get(server, f"/v1/models/{MODEL}/explain?entity=Clark_Lake&at=2016-08-05",
                tokens["read"])
    total = e["explanation"]["expected_raw"] + sum(
        c["raw"] for c in e["explanation"]["contributions"].values())
    assert total == pytest.approx(e["prediction"], abs=1e-9)
    log = read_log(board_ws, MODEL)
    served = log[log["variant"] == "primary"].iloc[0]
    _, g = _get(server, f"/v1/requests/{served['request_id']}/explain", tokens["read"])
    assert g["prediction"] == served["prediction"] and g["variant"] == "primary"
    assert g["explanation"]["prediction"] == pytest.approx(served["raw_prediction"],
                                                          abs=1e-9)
    status, err = _get(server, f"/v1/models/{MODEL}/explain", tokens["read"])
    assert status == 400 and "Say which prediction" in err["message"]
    status, err = _get(server, f"/v1/requests/{'0' * 32}/explain", tokens["read"])
    assert status == 404 and "No logged prediction" in err["message"]
    status, err = _get(server, f"/v1/models/{MODEL}/explain?entity=Clark_Lake&at=2030-01-01",
                       tokens["read"])
    assert status == 404 and "no online features" in err["message"]


def test_alerts_list_and_acknowledge_by_an_admin(server: str, tokens: dict[str, str],
                                                 board_ws: Workspace) -> None:
    _, body = _get(server, "/v1/alerts?status=open", tokens["read"])
    ids = [a["id"] for a in body["alerts"]]
    assert ids and ids == sorted(ids, reverse=True)  # newest first
    status, err = _get(server, "/v1/alerts?status=bogus", tokens["read"])
    assert status == 400 and "'status' must be one of" in err["message"]
    url = f"{server}/v1/alerts/{ids[-1]}/acknowledge"
    assert call(url, {"note": "x"}, headers={
        "Authorization": f"Bearer {tokens['read']}"})[0] == 403
    status, done = call(url, {"note": "looking into it"},
                        headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert status == 200 and done["status"] == "acknowledged"
    assert done["acknowledged_by"] == "admin-person"
    assert alerts.get_alert(board_ws, ids[-1]).note == "looking into it"
    status, err = call(f"{server}/v1/alerts/99999/acknowledge", {},
                       headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert status == 404


def test_openapi_lists_the_dashboards_endpoints_with_their_roles(server: str) -> None:
    _, spec = call(f"{server}/openapi.json")
    roles = {(p, m): op.get("x-role") for p, item in spec["paths"].items()
             for m, op in item.items()}
    for path in ("report", "monitor", "versions"):
        assert roles[(f"/v1/models/{{model}}/{path}", "get")] == "read"
    assert roles[(f"/v1/models/{MODEL}/explain", "get")] == "read"
    assert roles[("/v1/requests/{request_id}/explain", "get")] == "read"
    assert roles[("/v1/alerts", "get")] == "read"
    assert roles[("/v1/alerts/{alert}/acknowledge", "post")] == "admin"
    for path in ("batch",):
        assert roles[(f"/v1/models/{MODEL}/{path}", "post")] == "predict"
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "cookie"}


def test_pages_ask_for_a_token_and_keep_it_in_an_httponly_cookie(
        server: str, tokens: dict[str, str]) -> None:
    r = _raw(server, "GET", "/ui/")
    page = r.read().decode()
    assert r.status == 401 and 'action="/ui/login"' in page and "role <b>read</b>" in page
    for token, status, says in (("nope", 400, "That token is not known"),
                                (tokens["predict"], 403, "cannot read the dashboard")):
        r = _raw(server, "POST", "/ui/login", body=urllib.parse.urlencode(
            {"token": token, "next": "/ui/"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == status and says in r.read().decode()
    r = _raw(server, "POST", "/ui/login", body=urllib.parse.urlencode(
        {"token": tokens["read"], "next": f"/ui/models/{MODEL}"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 303 and r.getheader("location") == f"/ui/models/{MODEL}"
    cookie = r.getheader("set-cookie")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    jar = cookie.split(";")[0]
    r = _raw(server, "GET", "/ui/", headers={"Cookie": jar})
    assert r.status == 200 and "signed in as read-person" in r.read().decode()
    # the cookie also reads the JSON endpoints (GET only), not the admin ones
    r = _raw(server, "GET", f"/v1/models/{MODEL}/versions", headers={"Cookie": jar})
    assert r.status == 200 and json.loads(r.read())["production_version"] == 1
    r = _raw(server, "POST", f"/ui/models/{MODEL}/alerts/1/acknowledge",
             headers={"Cookie": jar, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403 and "only an admin may do this" in r.read().decode()


def test_a_form_from_another_site_is_refused(server: str, tokens: dict[str, str]) -> None:
    r = _raw(server, "POST", f"/ui/models/{MODEL}/alerts/1/acknowledge", headers={
        "Cookie": f"tuesday_token={tokens['admin']}", "Origin": "http://evil.example",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403
    assert "posted from 'http://evil.example'" in html.unescape(r.read().decode())


def test_overview_figures_come_from_the_monitor(server: str, tokens: dict[str, str]) -> None:
    """Every figure of a page names its endpoint and field; here, read without a
    browser, each equals the endpoint's answer (the browser tests do it on every page)."""
    r = _raw(server, "GET", "/ui/", headers={"Authorization": f"Bearer {tokens['read']}"})
    page = r.read().decode()
    figs = re.findall(r'data-src="([^"]+)" data-path="([^"]+)" data-value="([^"]*)"', page)
    assert figs
    for src, path, value in figs:
        _, body = _get(server, src.replace("&amp;", "&"), tokens["read"])
        got: Any = body
        for part in path.split("."):
            got = got[int(part)] if isinstance(got, list) else got[part]
        assert float(value) == got, (src, path)
