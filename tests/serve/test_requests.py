"""Requests that try to crash or exhaust the server: bodies beyond the limit (413,
answered without reading the rest), deep nesting, versions beyond 63 bits."""

from __future__ import annotations

import http.client
import json
import socket
import time
from urllib.parse import urlparse

import pytest
from starlette.testclient import TestClient

from tests.serve.live import call, live_server
from tuesday.errors import TuesdayError
from tuesday.serve.handling import MAX_DEPTH, body_limits, parse_json
from tuesday.serve.server import create_app

MODEL = "ridership_14d"
ROW = {"station": "Clark_Lake", "date": "2016-07-05"}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_500, 100_000])
def test_deep_nesting_is_refused_naming_the_limit(depth: int) -> None:
    for raw in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        with pytest.raises(TuesdayError, match=f"deeper than {MAX_DEPTH} levels"):
            parse_json(raw)


def test_brackets_in_strings_do_not_count_as_nesting() -> None:
    body = {"rows": [{"station": "[" * 500 + "{" * 500, "date": "2016-07-05"}]}
    assert parse_json(json.dumps(body).encode()) == body
    rows = {"rows": [dict(ROW) for _ in range(500)]}
    assert parse_json(json.dumps(rows).encode()) == rows


def test_bad_limits_are_named() -> None:
    with pytest.raises(TuesdayError, match="TUESDAY_MAX_BODY_MB must be a positive number"):
        body_limits(-1)
    assert body_limits(1, 2) == (1 << 20, 2 << 20)


def test_nesting_and_huge_versions_answer_400(served_ws, ridership) -> None:
    deep = b"[" * 1_500 + b"]" * 1_500
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        for path in (f"/v1/models/{MODEL}/predict", f"/v1/models/{MODEL}/promote",
                     "/v1/ground-truth/ridership"):
            r = client.post(path, content=deep, headers={"content-type": "application/json"})
            assert r.status_code == 400 and "deeper than" in r.json()["message"], (path, r.text)
        for v in (2**70, 2**63, 0, -1):
            r = client.post(f"/v1/models/{MODEL}/promote", json={"version": v})
            assert r.status_code == 400, (v, r.text)
            assert "from 1 to 9223372036854775807" in r.json()["message"]
            r = client.put(f"/v1/models/{MODEL}/deployment",
                           json={"mode": "canary", "version": v, "percent": 10})
            assert r.status_code == 400, (v, r.text)
        assert client.get("/health").status_code == 200


def _raw_request(base: str, head: str, chunks: list[bytes]) -> tuple[int, bytes, int]:
    """Send ``head`` then as many of ``chunks`` as the server takes; the status, the
    answer and how many chunks were sent before the answer came."""
    u = urlparse(base)
    sock = socket.create_connection((u.hostname, u.port), timeout=60)
    try:
        sock.sendall(head.encode())
        sent = 0
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            sock.setblocking(False)
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break  # the server answered before the body was all sent
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status, resp.read(), sent
    finally:
        sock.close()


def test_body_limit_answers_413_without_reading_the_rest(served_ws) -> None:
    path = f"/v1/models/{MODEL}/predict"
    with live_server(served_ws.root, "--max-body-mb", "1") as (base, proc):
        # announced: 400 MB that are never sent; the answer comes at once
        host = urlparse(base).netloc
        status, body, _ = _raw_request(
            base, f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                  f"\r\nContent-Length: {400 << 20}\r\n\r\n", [b"{"])
        assert status == 413, body
        assert json.loads(body)["error"] == "body_too_large"
        assert "limit of 1 MB" in json.loads(body)["message"]
        # chunked, no length: refused once past the limit, long before 400 chunks of 64 KB
        chunk = b"x" * 65_536
        chunks = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(400)]
        status, body, sent = _raw_request(
            base, f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json"
                  "\r\nTransfer-Encoding: chunked\r\n\r\n", chunks)
        assert status == 413, body
        # answered before the 26 MB were all sent (how many chunks the kernel's socket
        # buffers take before the server's answer arrives depends on the machine's load)
        assert sent < len(chunks), sent
        # under the limit it answers as usual, and the server is alive
        deadline = time.monotonic() + 30
        while call(f"{base}/ready")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert call(base + path, ROW)[0] == 200
        assert proc.poll() is None


def test_batch_line_that_breaks_csv_is_answered_not_a_broken_stream(served_ws, ridership
                                                                    ) -> None:
    """A carriage return inside a CSV line (schemathesis found it) made the streamed answer
    break off mid-response; it is that line's error now."""
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        r = client.post(f"/v1/models/{MODEL}/batch", content=b"station,date\nClark_Lake,"
                        b"2016-07-05\n\xd0\x1f\xd8\rg\xf2\x94\n",
                        headers={"content-type": "text/csv"})
        assert r.status_code == 200
        lines = [json.loads(ln) for ln in r.text.splitlines()]
        assert len(lines) == 2 and "not valid CSV" in lines[1]["error"]
        r = client.post(f"/v1/models/{MODEL}/batch", content=b"",
                        headers={"content-type": "text/csv"})
        assert r.status_code == 400 and "empty" in r.json()["message"]
