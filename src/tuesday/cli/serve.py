"""``tuesday serve``, ``predict``, ``materialize`` and ``token create|list|revoke``:
answering requests (online and in batch), the online features they read, and the API
tokens the server accepts."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import click

from tuesday import encoding
from tuesday.cli.app import Ctx, as_of_opt, console, emit, json_opt, parse_time, pass_ctx, run
from tuesday.errors import TuesdayError


@click.group()
def token() -> None:
    """API tokens with a role (predict, read, admin) for the server."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["predict", "read", "admin"]), required=True)
@json_opt
@pass_ctx
def token_create(c: Ctx, name: str, role: str, as_json: bool) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    from tuesday.serve import auth

    def go() -> None:
        secret = auth.create(c.workspace, name, role, as_of=parse_time(None))
        emit({"name": name, "role": role, "token": secret}, as_json, lambda d: d["token"])

    run(go)


@token.command("list")
@json_opt
@pass_ctx
def token_list(c: Ctx, as_json: bool) -> None:
    """List token names and roles (never the tokens)."""
    from tuesday.serve import auth

    def go() -> None:
        emit(auth.listing(c.workspace), as_json, lambda d: "\n".join(
            f"{t['name']}  {t['role']}  created {t['created_at']}" for t in d) or "none")

    run(go)


@token.command("revoke")
@click.argument("name")
@json_opt
@pass_ctx
def token_revoke(c: Ctx, name: str, as_json: bool) -> None:
    """Revoke a token by name; the server refuses it within a second."""
    from tuesday.serve import auth

    def go() -> None:
        auth.revoke(c.workspace, name, as_of=parse_time(None))
        emit({"name": name, "revoked": True}, as_json, lambda d: f"token {name!r} revoked")

    run(go)


@click.command()
@click.argument("model")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Rows to score (.parquet or .csv) with the entity key and target time.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the answers (.parquet or .csv).")
@click.option("--chunk-rows", default=5000, show_default=True, type=click.IntRange(min=1))
@click.option("--explain", is_flag=True,
              help="Also write each row's explanation: the sentence ('explanation'), the "
                   "expected value and one contribution_FEATURE column per feature, in the "
                   "target's units (slower: exact TreeSHAP per row).")
@json_opt
@pass_ctx
def predict(c: Ctx, model: str, input_path: str, output_path: str, chunk_rows: int,
            explain: bool, as_json: bool) -> None:
    """Score a file of any size with the production version (and deployment), in chunks;
    every prediction is logged. Rows that cannot be answered get an error column."""
    from tuesday.errors import ValidationFailed
    from tuesday.serve.batch import predict_file

    def go() -> None:
        with console.status("scoring"):
            res = predict_file(c.workspace, c.loaded, model, Path(input_path),
                               Path(output_path), chunk_rows=chunk_rows, explain=explain)
        if res.rows and res.errors == res.rows:
            raise ValidationFailed(
                f"None of the {res.rows} rows of {input_path!r} could be answered; the "
                f"first error: {res.first_error}", fix="Fix the input file (the errors "
                f"are in the 'error' column of {output_path!r}), or run `tuesday materialize "
                f"{model}` if they say no online features were found, and run again.")
        if res.errors:
            console.print(f"[bold yellow]warning:[/] {res.errors} of {res.rows} rows could "
                          f"not be answered (see the 'error' column); the first: "
                          f"{res.first_error}", highlight=False)
        emit(res.to_dict(), as_json, lambda d: f"{d['predicted']} of {d['rows']} rows "
             f"predicted, {d['errors']} with an error; written to {d['output']}.")

    run(go)


@click.command()
@click.argument("model")
@as_of_opt
@json_opt
@pass_ctx
def materialize(c: Ctx, model: str, as_of: str | None, as_json: bool) -> None:
    """Compute MODEL's online features for every entity as of --as-of (with daily data:
    the last day whose data is in) and store them for serving."""
    from tuesday.data.materialize import materialize as materialize_online

    def go() -> None:
        m = c.loaded.project.model(model)
        with console.status("materializing"):
            res = materialize_online(c.workspace, c.loaded.project, m, parse_time(as_of))
        emit(res, as_json, lambda d: f"{d['entities']} entities x {d['targets']} target(s) "
             f"stored for {model} (origin {d['origin']}).")

    run(go)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Server processes; each loads its models after it starts.")
@click.option("--scheduler", is_flag=True,
              help="Also run the daily loop tick of every model (see `tuesday loop run`).")
@click.option("--at", default="06:00", show_default=True, metavar="HH:MM",
              help="With --scheduler: the time of day (UTC) of the tick.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Largest request body in MB (default $TUESDAY_MAX_BODY_MB or 64; a "
                   "batch: $TUESDAY_MAX_BATCH_MB or 2048); beyond it the answer is 413.")
@json_opt
@pass_ctx
def serve(c: Ctx, host: str, port: int, workers: int, scheduler: bool, at: str,
          max_body_mb: float | None, as_json: bool) -> None:
    """Run the HTTP server (predict, batch, events, ground truth, admin, /metrics, /docs)
    and the dashboard at /ui/;
    with --scheduler the daily loop runs in the same (parent) process. Once it answers,
    prints its URL, the docs URL, the model versions served and whether tokens are
    needed (one JSON line with --json). A port in use exits 2."""
    import uvicorn

    from tuesday import storage
    from tuesday.loop import daily as loop
    from tuesday.serve import auth

    def go() -> None:
        c.loaded  # noqa: B018  (check the project before starting anything)
        ws = c.workspace
        if host not in ("127.0.0.1", "localhost", "::1") and not auth.active(ws):
            console.print(f"[bold yellow]warning:[/] listening on {host} with no API "
                          "tokens: anyone who reaches the port can predict and promote. "
                          "Create one with `tuesday token create NAME --role admin`.")
        bound = _free_port(host, port)
        threading.Thread(target=_announce, args=(c, host, bound, as_json), daemon=True,
                         name="tuesday-announce").start()
        os.environ["TUESDAY_WORKSPACE"] = str(ws.root)
        for kind, var in storage.ENV.items():  # the workers open the same locations
            os.environ[var] = getattr(ws.locations, kind) or ""
        os.environ["TUESDAY_PROJECT"] = str(c.project_path.resolve())
        if max_body_mb is not None:
            os.environ["TUESDAY_MAX_BODY_MB"] = str(max_body_mb)
        # an import string and a factory: uvicorn spawns fresh worker processes, and each
        # builds its app (and loads LightGBM) after it started, never across a fork
        stop = threading.Event()
        if scheduler:  # one scheduler, in this process, whatever the number of workers
            loop.parse_at(at)  # a bad --at fails now, not in the thread
            threading.Thread(target=loop.run_scheduler, args=(ws, c.loaded),
                             kwargs={"at": at, "stop": stop}, daemon=True,
                             name="tuesday-scheduler").start()
        try:
            uvicorn.run("tuesday.report.dashboard:app_from_env", factory=True, host=host,
                        port=bound, workers=workers, log_level="warning", access_log=False,
                        timeout_graceful_shutdown=10)
        finally:
            stop.set()

    run(go)


def _free_port(host: str, port: int) -> int:
    """``port`` (or, for 0, a free one) after checking nothing listens on it."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise TuesdayError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc} (another server, "
                f"perhaps another `tuesday serve`, holds the port).",
                fix=f"Stop the other server, or pass another port (--port {port + 1}, or "
                    "--port 0 for any free one).") from None
        return int(sock.getsockname()[1])


def _announce(c: Ctx, host: str, port: int, as_json: bool, deadline: float = 120.0) -> None:
    """Once the server answers ``/health``: its URL, docs URL, models and token rule."""
    import time
    import urllib.request

    from tuesday.release import registry
    from tuesday.serve import auth

    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    else:
        return
    models = {m.name: (p["version"] if (p := registry.production(c.workspace, m.name))
                       else None) for m in c.loaded.project.models}
    tokens = bool(auth.active(c.workspace))
    info = {"status": "ready", "url": url, "docs": f"{url}/docs",
            "dashboard": f"{url}/ui/", "models": models, "tokens_required": tokens}
    if as_json:  # one line, for a script waiting on it
        click.echo(encoding.dumps(info))
        return
    click.echo(f"serving {url} (docs {url}/docs, dashboard {url}/ui/); models: "
               + (", ".join(f"{n} v{v}" if v else f"{n} (no production version)"
                            for n, v in models.items()) or "none")
               + ("; requests need a Bearer token" if tokens else
                  "; no tokens: every endpoint is open") + ".")


COMMANDS = (token, predict, materialize, serve)
