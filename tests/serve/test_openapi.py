"""The OpenAPI document is complete and true: every route with the role it needs and
every status it answers; schemathesis runs over it against a real server on 127.0.0.1
(0 server errors, 0 violations)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from starlette.testclient import TestClient

from tests.serve.live import call, live_server
from tuesday.serve import auth
from tuesday.serve.server import create_app

MODEL = "ridership_14d"
ROOT = Path(__file__).resolve().parents[2]
ROLES = {
    (f"/v1/models/{MODEL}/predict", "post"): "predict",
    (f"/v1/models/{MODEL}/batch", "post"): "predict",
    ("/v1/models/{model}/promote", "post"): "admin",
    ("/v1/models/{model}/rollback", "post"): "admin",
    ("/v1/models/{model}/deployment", "get"): "read",
    ("/v1/models/{model}/deployment", "put"): "admin",
    ("/v1/ground-truth/ridership", "post"): "predict",
    ("/v1/models", "get"): "read",
    ("/metrics", "get"): "read",
    ("/health", "get"): None,
    ("/ready", "get"): None,
    ("/openapi.json", "get"): None,
    ("/docs", "get"): None,
}


def test_spec_lists_every_route_with_its_role_and_errors(served_ws, ridership) -> None:
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        spec = client.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        ops = {(p, m): op for p, item in spec["paths"].items() for m, op in item.items()}
        assert set(ROLES) <= set(ops), set(ROLES) - set(ops)
        for key, role in ROLES.items():
            op = ops[key]
            assert op.get("x-role") == role, key
            want = ([{"bearer": []}] + ([{"cookie": []}] if key[1] == "get" else [])
                    if role else [])
            assert op["security"] == want, key
            if role:
                for code in ("400", "401", "403", "413", "500", "503"):
                    assert code in op["responses"], (key, code)
        # every route of the server is in the spec (other methods: 405 with Allow)
        r = client.delete(f"/v1/models/{MODEL}/deployment")
        assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"GET", "PUT"}
        r = client.get(f"/v1/models/{MODEL}/predict")
        assert r.status_code == 405 and "POST" in r.headers["allow"]


def test_openapi_is_open_like_docs_and_the_rest_needs_a_token(served_ws, ridership) -> None:
    auth.create(served_ws, "ops", "admin", as_of=datetime(2016, 7, 1))
    with TestClient(create_app(served_ws.root, ridership.path)) as client:
        for path in ("/health", "/ready", "/docs", "/openapi.json"):
            assert client.get(path).status_code == 200, path
        assert client.get("/v1/models").status_code == 401
        assert client.get("/metrics").status_code == 401


def test_schemathesis_finds_no_server_error_and_no_violation(served_ws, tmp_path: Path
                                                             ) -> None:
    token = auth.create(served_ws, "fuzz", "admin", as_of=datetime(2016, 7, 1))
    st = Path(sys.executable).with_name("st")
    with live_server(served_ws.root) as (base, proc):
        assert call(f"{base}/openapi.json")[0] == 200
        done = subprocess.run(
            [str(st), "run", f"{base}/openapi.json", "--checks", "all",
             "-H", f"Authorization: Bearer {token}", "--max-examples", "8", "--seed", "7",
             "--request-timeout", "30", "--max-failures", "20", "--workers", "1",
             "--phases", "examples,coverage,fuzzing"],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "NO_COLOR": "1",
                 "SCHEMATHESIS_HOOKS": "tests.serve.schemathesis_hooks",
                 "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
            cwd=ROOT)
        assert proc.poll() is None, "the server died under schemathesis"
    assert done.returncode == 0, done.stdout[-30000:] + done.stderr[-3000:]
