"""One rank request of 100 candidates through the full path, against a hand-written
FastAPI + LightGBM endpoint ranking the same candidates with the same model.

    fastapi   bench/serving_apps.py's ``fastapi_rank_app``: pydantic body, the items'
              features from a dict, Booster.predict over the 100 candidates, top 10
    tuesday   `tuesday serve`, POST /v1/models/top_n/rank: each candidate's online
              features (the catalog lookups and the ratings windows computed at the
              request's time from the event state), LightGBM, the business rules (drop
              already rated, boost new movies, at most 4 per genre), epsilon-greedy
              exploration with each shown item's position probability, every candidate
              in the prediction log
    tuesday-nolog  the same with the prediction log off (TUESDAY_PREDICTION_LOG=off)

The model is the movielens example's ``top_n`` (lambdarank), trained on the real ratings;
the 200 request bodies are real users' requests (their candidates, topped up to 100 with
other movies). Load by wrk, as bench/serving.py does (its helpers: free loopback ports,
uvicorn with one worker, the server on CPU 0 and wrk on CPU 1, ``-c`` connections in a
closed loop). Compiled trees are off for both (the FastAPI app has none either).

    PYTHONPATH=src .venv/bin/python bench/serving_rank.py --duration 10 --connections 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import serving  # noqa: E402  (bench/serving.py: the servers' harness)

ROOT = BENCH.parent
PROJECT = ROOT / "src/tuesday/examples/movielens/project.py"
AS_OF = datetime(2016, 10, 17)
CANDIDATES = 100
BODIES = 200


def build(root: Path) -> dict[str, object]:
    from tuesday.data import online, tables
    from tuesday.data.materialize import materialize
    from tuesday.project import load_project
    from tuesday.release import registry
    from tuesday.train import training
    from tuesday.workspace import open_workspace

    loaded = load_project(PROJECT)
    ws = open_workspace(root / "ws")
    frames = loaded.module.example_frames()
    for name, frame in frames.items():
        tables.ingest_frame(ws, loaded.project.source(name), frame, as_of=AS_OF, file=name)
    res = training.train(ws, loaded, "top_n", AS_OF)
    model = loaded.project.model("top_n")
    registry.promote(ws, model, res.version, as_of=AS_OF, actor="bench")
    materialize(ws, loaded.project, model, AS_OF)
    fitted = training.load_model(ws, res.manifest)
    (root / "model.txt").write_text(fitted.model.model_to_string(num_iteration=-1))
    names = list(res.manifest["features"])
    # each movie's stored vector and its ratings windows at AS_OF, as the FastAPI app's dict
    from tuesday.data import events

    plan = events.plan(loaded.project, model)
    conn = online.connect(ws)
    rows = {}
    import pandas as pd

    at = pd.Timestamp(AS_OF)
    for m in frames["movies"]["movie_id"]:
        rec = online.read(conn, "top_n", m)
        values = dict(zip(rec.names, rec.vectors[""], strict=True)) if rec else {}
        values.update(plan.values(conn, m, at))
        rows[m] = [values.get(n) for n in names]
    conn.close()
    (root / "items.json").write_text(json.dumps({"names": names, "rows": rows}))
    rng = np.random.default_rng(0)
    req = frames["requests"]
    movies = frames["movies"]["movie_id"].to_numpy()
    bodies = []
    for _rid, g in list(req.groupby("request_id", sort=True))[-BODIES:]:
        cands = [{"movie_id": m, "genre_affinity": float(a)}
                 for m, a in zip(g["movie_id"], g["genre_affinity"], strict=True)]
        have = {c["movie_id"] for c in cands}
        for m in rng.permutation(movies):
            if len(cands) >= CANDIDATES:
                break
            if m not in have:
                cands.append({"movie_id": str(m), "genre_affinity": 0.2})
        bodies.append(json.dumps({"ts": AS_OF.isoformat(), "size": 10,
                                  "user_ratings": int(g["user_ratings"].iloc[0]),
                                  "user_mean_rating": float(g["user_mean_rating"].iloc[0]),
                                  "candidates": cands[:CANDIDATES]}))
    return {"ws": root / "ws", "model": root / "model.txt", "items": root / "items.json",
            "bodies": bodies}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args()
    pin_srv, pin_wrk = (None, None) if args.no_pin or (os.cpu_count() or 1) < 2 else ("0", "1")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        data = build(tmp)
        bodies = data["bodies"]
        assert isinstance(bodies, list)
        py = sys.executable
        uv = ["--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
              "--no-access-log", "--factory"]
        env = {"BENCH_MODEL": str(data["model"]), "BENCH_ITEMS": str(data["items"]),
               "TUESDAY_COMPILED": "off"}
        servers = [
            serving.Server("fastapi", [py, "-m", "uvicorn", "serving_apps:fastapi_rank_app",
                                       *uv], "/rank", bodies, env, cwd=BENCH),
            serving.Server("tuesday", [py, "-c", "from tuesday.cli import main; main()",
                                       "--project", str(PROJECT), "--workspace", "{ws}",
                                       "serve", "--port", "{port}"],
                           "/v1/models/top_n/rank", bodies, env, cwd=ROOT,
                           workspace=Path(str(data["ws"]))),
            serving.Server("tuesday-nolog", [py, "-c", "from tuesday.cli import main; main()",
                                             "--project", str(PROJECT), "--workspace", "{ws}",
                                             "serve", "--port", "{port}"],
                           "/v1/models/top_n/rank", bodies,
                           {**env, "TUESDAY_PREDICTION_LOG": "off"}, cwd=ROOT,
                           workspace=Path(str(data["ws"]))),
        ]
        print(f"one rank request: {CANDIDATES} candidates, a slate of 10; wrk -c"
              f"{args.connections}, {args.duration:g} s, server on CPU {pin_srv}")
        print(f"{'server':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
              f"{'CPU us/req':>11}")
        for srv in servers:
            running, _took = serving.start(srv, tmp, pin_srv)
            try:
                script = serving.lua_script(srv.path, bodies, None, tmp)
                serving.wrk(running.port, script, connections=args.connections, seconds=2,
                            pin=pin_wrk)
                r = serving.wrk(running.port, script, connections=args.connections,
                                seconds=args.duration, pin=pin_wrk, sid=running.proc.pid)
            finally:
                running.stop()
            print(f"{srv.name:10} {r['rps']:8.1f} {r['p50']:8.2f} {r['p99']:8.2f} "
                  f"{r['errors']:7.0f} {r['cpu_us']:11.0f}")


if __name__ == "__main__":
    main()
