"""Serving throughput and latency: tuesday's predict path against a floor and peers.

Side by side in one run, same machine, each server in turn on a free loopback port, all on
uvicorn with one worker, ``--log-level warning``, no access log, and uvloop + httptools
when the interpreter has them (reported per server). The load generator is wrk with a Lua
script that POSTs one JSON body per request, cycling over 1,000 customers.

    floor          bare Starlette: parse the JSON body, answer a constant
    fastapi        hand-written FastAPI: pydantic body, dict lookup of the customer's 14
                   features, the same LightGBM model (Booster.predict, num_threads=1)
    tuesday        `tuesday serve`: online store lookup, deployment routing, LightGBM,
                   business rules, prediction log (spooled to disk per request,
                   committed to a Delta table every 2 s)
    tuesday-nolog  the same with the prediction log off (TUESDAY_PREDICTION_LOG=off)
    tuesday-capi   the same with compiled inference off (TUESDAY_COMPILED=off): LightGBM's
                   single-row C API answers (the tuesday servers above are measured once
                   their model answers through its compiled trees)
    tuesday-explain  `tuesday serve` with every request explained ("explain": true):
                   exact TreeSHAP contributions, the sentence and the baseline
    bentoml        BentoML 1.4 service (bench/serving_bentoml.py), same lookup and model
    mlflow         `mlflow models serve` of the same model (mlflow.lightgbm flavor); its
                   body carries the 14 feature values (it has no lookup)

Load: "full" is wrk -t2 -c32 (closed loop: as fast as the server answers). "half" aims
at half of that server's full-load req/s: wrk has no rate option (wrk2 is not packaged
in Debian), so each connection waits 10 ms (wrk's Lua ``delay()``) after each answer and
the number of connections is tuned by two short probes until the achieved rate is about
half; the latency wrk reports runs from sending to the answer (the wait is not in it).

Pinning (on by default when the machine has 2+ cores): the server (and its children) on
CPU 0, wrk on CPU 1. Each round starts every server afresh (tuesday on a fresh copy of
the workspace); medians over rounds are reported.

Cold start: ``tuesday serve`` command to the first 200 answer of a predict request.

    python bench/serving.py                          # 10 s per measurement, 3 rounds
    python bench/serving.py --duration 5 --repeats 1 # a quick run
    python bench/serving.py --peers                  # with BentoML and mlflow
    python bench/serving.py --compare-src /tmp/old/src   # also tuesday from another tree
    python bench/serving.py --export-model /tmp/churn    # for bench/serving_compiled.py

The peers run in their own virtualenvs, made by hand (they pin other versions of
tuesday's dependencies)::

    python -m venv bench/.venv-bentoml && bench/.venv-bentoml/bin/pip install \\
        bentoml lightgbm numpy pandas uvloop httptools
    python -m venv bench/.venv-mlflow && bench/.venv-mlflow/bin/pip install \\
        mlflow lightgbm numpy pandas uvloop httptools

wrk: ``apt-get install -y wrk`` (Debian/Ubuntu) or ``brew install wrk``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PROJECT = ROOT / "src/tuesday/examples/churn/project.py"
INGESTED, TRAINED, SERVED = datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)
CUSTOMERS = 1_000
HALF_WAIT_MS = 10
#: 200 answers counted by wrk per port (warm-up, probes and measurements)
ANSWERED: dict[int, int] = {}


# --------------------------------------------------------------------------- setup


def build(root: Path) -> dict[str, Any]:
    """The churn example ingested, trained, promoted and materialized; the model file and
    every customer's online feature vector exported for the other servers."""
    from tuesday.data import online, tables
    from tuesday.data.materialize import materialize
    from tuesday.project import load_project
    from tuesday.release import registry
    from tuesday.train import training
    from tuesday.workspace import open_workspace

    started = time.perf_counter()
    loaded = load_project(PROJECT)
    files = loaded.module.example_files(root / "data")
    ws = open_workspace(root / "ws")
    for name, path in files.items():
        tables.ingest_file(ws, loaded.project.source(name), path, as_of=INGESTED)
    res = training.train(ws, loaded, "churn", TRAINED)
    model = loaded.project.model("churn")
    registry.promote(ws, model, res.version, as_of=SERVED, actor="bench")
    materialize(ws, loaded.project, model, SERVED)
    fitted = training.load_model(ws, res.manifest)
    model_txt = root / "model.txt"
    model_txt.write_text(fitted.model.model_to_string(num_iteration=-1))
    conn = online.connect(ws)
    ids = [f"C{i:05d}" for i in range(1, 5001)]
    names = list(res.manifest["features"])
    rows = {}
    for c in ids:
        rec = online.read(conn, "churn", c)
        by_name = dict(zip(rec.names, rec.vectors[""], strict=True))
        rows[c] = [by_name[n] for n in names]
    conn.close()
    feats = root / "features.json"
    feats.write_text(json.dumps({"names": names, "rows": rows}))
    import numpy as np

    x = np.array([[np.nan if v is None else v for v in rows[c]] for c in ids], dtype=float)
    expected = dict(zip(ids, fitted.model.predict(x, num_threads=1).tolist(), strict=True))
    return {"ws": ws.root, "model": model_txt, "features": feats, "names": names,
            "rows": rows, "expected": expected, "seconds": time.perf_counter() - started}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def has_fast_loops(python: str) -> bool:
    code = "import uvloop, httptools"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


@dataclass
class Server:
    name: str
    cmd: list[str]
    path: str
    bodies: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = BENCH
    answer: Any = None  # body -> prediction, to check the first answer
    workspace: Path | None = None  # tuesday: a fresh copy per start
    python: str = sys.executable
    compiled: bool = False  # tuesday: wait until its model answers compiled


def post(port: int, path: str, body: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Running:
    def __init__(self, srv: Server, port: int, proc: subprocess.Popen[bytes], log: Path,
                 ws: Path | None) -> None:
        self.srv, self.port, self.proc, self.log, self.ws = srv, port, proc, log, ws

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def wait_compiled(port: int, timeout: float = 180.0) -> float:
    """Seconds until tuesday's /metrics says the served version answers through its
    compiled trees (it answers through LightGBM's C API while they are built)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        if 'tuesday_model_compiled{model="churn",version="1"} 1.0' in text:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise RuntimeError(f"the model was not compiled within {timeout} s")


def start(srv: Server, tmp: Path, pin: str | None, *, timeout: float = 180.0
          ) -> tuple[Running, float]:
    """Start a server; wait for its first 200 predict answer; returns it and the seconds
    from the command to that answer."""
    port = free_port()
    ws = None
    env = {**os.environ, **srv.env}
    cmd = [c.replace("{port}", str(port)) for c in srv.cmd]
    if srv.workspace is not None:
        ws = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{srv.name}-"))
        shutil.copytree(srv.workspace, ws, dirs_exist_ok=True)
        cmd = [c.replace("{ws}", str(ws)) for c in cmd]
    if pin is not None:
        cmd = ["taskset", "-c", pin, *cmd]
    log = tmp / f"{srv.name}-{port}.log"
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=srv.cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    running = Running(srv, port, proc, log, ws)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{srv.name} exited with {proc.returncode}: "
                               f"{log.read_text()[-2000:]}")
        if time.perf_counter() - started > timeout:
            running.stop()
            raise RuntimeError(f"{srv.name} did not answer in {timeout} s: "
                               f"{log.read_text()[-2000:]}")
        try:
            status, body = post(port, srv.path, srv.bodies[0], timeout=30)
            if status == 200:
                took = time.perf_counter() - started
                if srv.answer is not None:
                    srv.answer(srv.bodies[0], body)
                return running, took
        except OSError:
            pass
        time.sleep(0.01)


# ----------------------------------------------------------------------------- wrk

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {BODIES}
local reqs = {}
local i = 0
function init(args)
  for k, b in ipairs(bodies) do reqs[k] = wrk.format(nil, "{PATH}", nil, b) end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
{DELAY}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"p50\\":%d,\\"p90\\":%d," ..
    "\\"p99\\":%d,\\"max\\":%d,\\"mean\\":%f,\\"non2xx\\":%d,\\"socket_errors\\":%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def lua_script(path: str, bodies: list[str], delay_ms: int | None, folder: Path) -> Path:
    lua_bodies = "{" + ",".join(json.dumps(b) for b in bodies) + "}"
    delay = f"function delay() return {delay_ms} end" if delay_ms else ""
    text = LUA.replace("{BODIES}", lua_bodies).replace("{PATH}", path).replace(
        "{DELAY}", delay)
    f = folder / f"wrk-{abs(hash((path, delay_ms, len(bodies))))}.lua"
    f.write_text(text)
    return f


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of the live processes of session ``sid``: the server
    and every process it started (BentoML and mlflow run several)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after ")": state ppid pgrp session ... utime stime
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wrk(port: int, script: Path, *, connections: int, seconds: float,
        pin: str | None, sid: int | None = None) -> dict[str, float]:
    threads = max(1, min(2, connections))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}"]
    if pin is not None:
        cmd = ["taskset", "-c", pin, *cmd]
    cpu0 = session_cpu(sid) if sid is not None else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = session_cpu(sid) - cpu0 if sid is not None else float("nan")
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    secs = r["duration_us"] / 1e6
    ANSWERED[port] = ANSWERED.get(port, 0) + r["requests"] - r["non2xx"]
    return {"rps": r["requests"] / secs, "p50": r["p50"] / 1000, "p90": r["p90"] / 1000,
            "p99": r["p99"] / 1000, "max": r["max"] / 1000, "requests": r["requests"],
            "errors": r["non2xx"] + r["socket_errors"], "connections": connections,
            "cpu_us": cpu / max(r["requests"], 1) * 1e6}


def half_load(running: Running, folder: Path, full: dict[str, float], seconds: float,
              pin: str | None) -> dict[str, float]:
    """wrk with a 10 ms wait per connection after each answer, the connection count tuned
    so that the rate is about half the full-load rate."""
    srv = running.srv
    target = full["rps"] / 2
    script = lua_script(srv.path, srv.bodies, HALF_WAIT_MS, folder)
    c = max(1, round(target * (HALF_WAIT_MS + full["p50"] / 2) / 1000))
    for _ in range(2):
        probe = wrk(running.port, script, connections=c, seconds=2, pin=pin)
        c = max(1, round(c * target / max(probe["rps"], 1e-9)))
    out = wrk(running.port, script, connections=c, seconds=seconds, pin=pin,
              sid=running.proc.pid)
    out["target"] = target
    return out


# --------------------------------------------------------------------------- servers


def servers(data: dict[str, Any], args: argparse.Namespace) -> list[Server]:
    ids = [f"C{i:05d}" for i in range(1, CUSTOMERS + 1)]
    by_id = [json.dumps({"customer_id": c}) for c in ids]
    expected = data["expected"]

    def check_id(body: str, answer: bytes) -> None:
        got = json.loads(answer)["prediction"]
        want = expected[json.loads(body)["customer_id"]]
        if got != want:
            raise RuntimeError(f"wrong prediction: {got} != {want}")

    env = {"BENCH_MODEL": str(data["model"]), "BENCH_FEATURES": str(data["features"])}
    uv = ["--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
          "--no-access-log", "--factory"]
    py = sys.executable
    out = [
        Server("floor", [py, "-m", "uvicorn", "serving_apps:floor_app", *uv], "/predict",
               by_id, env),
        Server("fastapi", [py, "-m", "uvicorn", "serving_apps:fastapi_app", *uv],
               "/predict", by_id, env, answer=check_id),
    ]

    def tuesday(name: str, src: Path | None, extra_env: dict[str, str],
                bodies: list[str] = by_id) -> Server:
        cli = [py, "-c", "from tuesday.cli import main; main()", "--project", str(PROJECT),
               "--workspace", "{ws}", "serve", "--port", "{port}"]
        e = dict(extra_env)
        if src is not None:
            e["PYTHONPATH"] = str(src)
        return Server(name, cli, "/v1/models/churn/predict", bodies, e, cwd=ROOT,
                      answer=check_id, workspace=data["ws"],
                      compiled=e.get("TUESDAY_COMPILED") != "off" and src is None)

    out.append(tuesday("tuesday", None, {}))
    out.append(tuesday("tuesday-nolog", None, {"TUESDAY_PREDICTION_LOG": "off"}))
    out.append(tuesday("tuesday-capi", None, {"TUESDAY_COMPILED": "off"}))
    # every request explained (its contributions, expected value and sentence)
    out.append(tuesday("tuesday-explain", None, {}, [
        json.dumps({"customer_id": c, "explain": True}) for c in ids]))
    if args.compare_src:
        out.append(tuesday("tuesday-before", Path(args.compare_src).resolve(), {}))
    if args.peers:
        bento = BENCH / ".venv-bentoml/bin/bentoml"
        if bento.exists():
            out.append(Server("bentoml", [str(bento), "serve", "serving_bentoml:Churn",
                                          "--host", "127.0.0.1", "--port", "{port}"],
                              "/predict", by_id, env, answer=check_id,
                              python=str(BENCH / ".venv-bentoml/bin/python")))
        else:
            print(f"bentoml: skipped, {bento} is missing (see the module docstring)")
        mlf = BENCH / ".venv-mlflow/bin/mlflow"
        if mlf.exists():
            mdir = data["model"].parent / "mlflow-model"
            if not mdir.exists():
                subprocess.run([str(BENCH / ".venv-mlflow/bin/python"),
                                str(BENCH / "serving_mlflow.py"), str(data["model"]),
                                str(mdir)], check=True, capture_output=True)
            names = data["names"]
            bodies = [json.dumps({"dataframe_split": {"columns": names,
                                                      "data": [data["rows"][c]]}})
                      for c in ids]
            order = dict(zip(bodies, ids, strict=True))

            def check_mlflow(body: str, answer: bytes) -> None:
                got = json.loads(answer)["predictions"][0]
                if got != expected[order[body]]:
                    raise RuntimeError(f"mlflow: wrong prediction {got}")

            out.append(Server("mlflow", [str(mlf), "models", "serve", "-m", str(mdir),
                                         "--env-manager", "local", "-h", "127.0.0.1",
                                         "-p", "{port}", "-w", "1"],
                              "/invocations", bodies,
                              {"UVICORN_LOG_LEVEL": "warning", "UVICORN_ACCESS_LOG": "false"},
                              answer=check_mlflow,
                              python=str(BENCH / ".venv-mlflow/bin/python")))
        else:
            print(f"mlflow: skipped, {mlf} is missing (see the module docstring)")
    if args.only:
        keep = set(args.only.split(","))
        out = [s for s in out if s.name in keep]
    return out


def logged_rows(ws: Path) -> int:
    from tuesday.data.predictions import read_log
    from tuesday.workspace import open_workspace

    return len(read_log(open_workspace(ws), "churn"))


def cold_starts(data: dict[str, Any], tmp: Path, n: int, pin: str | None) -> list[float]:
    """`tuesday serve` (the console script) to the first 200 predict answer."""
    exe = shutil.which("tuesday") or sys.executable
    pre = [] if exe.endswith("tuesday") else ["-c", "from tuesday.cli import main; main()"]
    srv = Server("cold", [exe, *pre, "--project", str(PROJECT), "--workspace", "{ws}",
                          "serve", "--port", "{port}"], "/v1/models/churn/predict",
                 [json.dumps({"customer_id": "C00001"})], cwd=ROOT, workspace=data["ws"])
    out = []
    for _ in range(n):
        running, took = start(srv, tmp, pin)
        running.stop()
        out.append(took)
    return out


# ---------------------------------------------------------------------------- report


def med(vals: list[float]) -> float:
    return float(statistics.median(vals)) if vals else float("nan")


def report(results: dict[str, list[dict[str, Any]]], loads: list[tuple[float, ...]],
           colds: list[float], info: dict[str, Any]) -> str:
    lines = []
    floor = med([r["full"]["rps"] for r in results.get("floor", [])])
    lines.append("| server | full req/s | x floor | p50 ms | p99 ms | CPU us/req | half: conns "
                 "| req/s | p50 ms | p99 ms | non-2xx | uvloop+httptools |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
                 "| --- |")
    for name, rs in results.items():
        if not rs:
            continue
        f = {k: med([r["full"][k] for r in rs]) for k in ("rps", "p50", "p99", "cpu_us")}
        h = {k: med([r["half"][k] for r in rs]) for k in ("rps", "p50", "p99", "connections")}
        errors = sum(r["full"]["errors"] + r["half"]["errors"] for r in rs)
        # 0: the server's workers left its session (BentoML's do), so it was not seen
        cpu = f"{f['cpu_us']:,.0f}" if f["cpu_us"] > 0 else "n/a"
        lines.append(f"| {name} | {f['rps']:,.0f} | {f['rps'] / floor:.2f} | {f['p50']:.2f} "
                     f"| {f['p99']:.2f} | {cpu} | {h['connections']:.0f} "
                     f"| {h['rps']:,.0f} "
                     f"| {h['p50']:.2f} | {h['p99']:.2f} | {errors} "
                     f"| {'yes' if info['fast'].get(name) else 'no'} |")
    lines.append("")

    def ratio(a: str, b: str, key: str, load: str = "full") -> str:
        if a not in results or b not in results or not results[a] or not results[b]:
            return "n/a"
        x = med([r[load][key] for r in results[a]])
        y = med([r[load][key] for r in results[b]])
        return f"{x / y:.2f}"

    lines.append(f"- tuesday / floor req/s: {ratio('tuesday', 'floor', 'rps')} (goal >= 0.6)")
    lines.append(f"- tuesday / fastapi req/s: {ratio('tuesday', 'fastapi', 'rps')}")
    for peer in ("bentoml", "mlflow", "tuesday-before"):
        if peer in results:
            lines.append(f"- tuesday / {peer} req/s: {ratio('tuesday', peer, 'rps')}")
    if "tuesday-before" in results:
        lines.append("- CPU per request, tuesday / tuesday-before (an unexplained request "
                     f"against the tree before explanations): "
                     f"{ratio('tuesday', 'tuesday-before', 'cpu_us')}")
    if "tuesday-explain" in results:
        lines.append("- CPU per request, explained / unexplained: "
                     f"{ratio('tuesday-explain', 'tuesday', 'cpu_us')}")
    if "tuesday-nolog" in results:
        lines.append("- p99 with the log / without, full load: "
                     f"{ratio('tuesday', 'tuesday-nolog', 'p99')}; half load: "
                     f"{ratio('tuesday', 'tuesday-nolog', 'p99', 'half')} (goal <= 1.10)")
        lines.append("- req/s with the log / without, full load: "
                     f"{ratio('tuesday', 'tuesday-nolog', 'rps')}")
    if info.get("logged"):
        lines.append("- prediction log check (rows written / 200 answers counted by wrk, which "
                     "misses the few in flight when it stops): "
                     f"{', '.join(info['logged'])}")
    if colds:
        lines.append(f"- cold start (`tuesday serve` to the first 200 predict answer): "
                     f"median {med(colds):.2f} s of {len(colds)} "
                     f"({', '.join(f'{c:.2f}' for c in colds)}) (goal < 2 s)")
    lines.append(f"- load average (1 min) before/after each round: "
                 f"{'; '.join('/'.join(f'{x:.1f}' for x in la) for la in loads)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--connections", type=int, default=32, help="full-load connections")
    ap.add_argument("--repeats", type=int, default=3, help="rounds over all servers")
    ap.add_argument("--peers", action="store_true", help="also BentoML and mlflow")
    ap.add_argument("--compare-src", metavar="DIR",
                    help="also serve with the tuesday package found in DIR (a src folder)")
    ap.add_argument("--only", help="comma-separated server names")
    ap.add_argument("--cold-starts", type=int, default=3)
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and wrk")
    ap.add_argument("--json", metavar="FILE", help="write every measurement here")
    ap.add_argument("--export-model", metavar="DIR",
                    help="only build, and write model.txt and rows.npy (every customer's "
                         "features) to DIR for bench/serving_compiled.py")
    args = ap.parse_args()
    if args.export_model:
        import numpy as np

        out = Path(args.export_model)
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp_b:
            data = build(Path(tmp_b))
            shutil.copy(data["model"], out / "model.txt")
            rows = [[np.nan if v is None else v for v in r] for r in data["rows"].values()]
            np.save(out / "rows.npy", np.array(rows, dtype=float))
        print(f"wrote {out / 'model.txt'} and {out / 'rows.npy'}")
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu) or "
                 "`brew install wrk`, then run this again.")
    pin_server = pin_wrk = None
    if not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        pin_server, pin_wrk = "0", "1"
    with tempfile.TemporaryDirectory(prefix="tuesday-bench-serving-") as tmp_s:
        tmp = Path(tmp_s)
        print("building the churn workspace ...", flush=True)
        data = build(tmp / "build")
        print(f"  built in {data['seconds']:.1f} s", flush=True)
        srvs = servers(data, args)
        info: dict[str, Any] = {"fast": {s.name: has_fast_loops(s.python) for s in srvs},
                                "logged": []}
        results: dict[str, list[dict[str, Any]]] = {s.name: [] for s in srvs}
        loads: list[tuple[float, ...]] = []
        for rnd in range(args.repeats):
            before = os.getloadavg()[0]
            for srv in srvs:
                try:
                    running, took = start(srv, tmp, pin_server)
                except RuntimeError as exc:
                    print(f"  {srv.name}: {exc}", flush=True)
                    continue
                try:
                    if srv.compiled:
                        wait_compiled(running.port)
                    script = lua_script(srv.path, srv.bodies, None, tmp)
                    wrk(running.port, script, connections=args.connections, seconds=2,
                        pin=pin_wrk)  # warm-up
                    full = wrk(running.port, script, connections=args.connections,
                               seconds=args.duration, pin=pin_wrk, sid=running.proc.pid)
                    half = half_load(running, tmp, full, args.duration, pin_wrk)
                finally:
                    running.stop()
                results[srv.name].append({"full": full, "half": half, "start_s": took})
                if running.ws is not None and "nolog" not in srv.name:
                    n = logged_rows(running.ws)
                    answered = ANSWERED.get(running.port, 0) + 1  # + the first check
                    info["logged"].append(f"{srv.name} {n:,}/{answered:,}")
                print(f"  round {rnd + 1} {srv.name:15s} full {full['rps']:8,.0f}/s "
                      f"cpu {full['cpu_us']:5.0f} us/req p50 {full['p50']:6.2f} "
                      f"p99 {full['p99']:6.2f} ms | half "
                      f"c={half['connections']} {half['rps']:8,.0f}/s p50 "
                      f"{half['p50']:6.2f} p99 {half['p99']:6.2f} ms | errors "
                      f"{full['errors'] + half['errors']}", flush=True)
            loads.append((before, os.getloadavg()[0]))
        colds = cold_starts(data, tmp, args.cold_starts, pin_server) \
            if args.cold_starts else []
        text = report(results, loads, colds, info)
        print()
        print(text)
        if args.json:
            Path(args.json).write_text(json.dumps({"results": results, "loads": loads,
                                                   "cold_starts": colds, "info": info},
                                                  indent=1, default=str))


if __name__ == "__main__":
    main()
