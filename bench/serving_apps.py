"""The comparison servers of bench/serving.py, each an ASGI app factory for uvicorn.

* ``floor_app``: bare Starlette, one JSON endpoint that parses the body and answers a
  constant: the floor every Python server on uvicorn pays.
* ``fastapi_app``: what a user would write by hand: FastAPI, a pydantic body, a dict of
  feature rows by customer id, the same LightGBM model through ``Booster.predict`` (with
  ``num_threads=1``: LightGBM's default of one thread per core costs about 2 ms per
  row on this machine; passing it is the strongest version of the naive endpoint).

Both read the model file and the features (JSON: ``{"names": [...], "rows": {id:
[values]}}``) from ``BENCH_MODEL`` and ``BENCH_FEATURES``.
"""

# no `from __future__ import annotations`: FastAPI must see the body model's real type
import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def floor_app() -> Starlette:
    async def predict(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        return JSONResponse({"customer_id": body.get("customer_id"), "prediction": 0.5})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def fastapi_app() -> Any:
    import lightgbm as lgb
    import numpy as np
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel

    booster = lgb.Booster(model_file=os.environ["BENCH_MODEL"])
    with open(os.environ["BENCH_FEATURES"]) as f:
        data = json.load(f)
    rows: dict[str, list[float | None]] = data["rows"]

    class Customer(BaseModel):
        customer_id: str

    class Answer(BaseModel):
        customer_id: str
        prediction: float

    app = FastAPI()

    @app.post("/predict")
    async def predict(req: Customer) -> Answer:
        values = rows.get(req.customer_id)
        if values is None:
            raise HTTPException(404, f"unknown customer {req.customer_id}")
        x = np.array([[np.nan if v is None else v for v in values]], dtype=float)
        p = float(booster.predict(x, num_threads=1)[0])
        return Answer(customer_id=req.customer_id, prediction=p)

    return app


def fastapi_rank_app() -> Any:
    """A hand-written ranking endpoint: FastAPI, a pydantic body (the user's fields and
    the candidates with their affinity), each candidate's item features from a dict
    (``BENCH_ITEMS``: ``{"names": [...], "rows": {id: [values]}}``, the model's features in
    order, with the request's fields left null), the same LightGBM model over all
    candidates at once, the top ``size`` by score. No rules, no exploration, no log."""
    import lightgbm as lgb
    import numpy as np
    from fastapi import FastAPI
    from pydantic import BaseModel

    booster = lgb.Booster(model_file=os.environ["BENCH_MODEL"])
    with open(os.environ["BENCH_ITEMS"]) as f:
        data = json.load(f)
    names: list[str] = data["names"]
    rows: dict[str, list[float | None]] = data["rows"]
    at = {n: i for i, n in enumerate(names)}

    class Candidate(BaseModel):
        movie_id: str
        genre_affinity: float | None = None

    class RankRequest(BaseModel):
        user_ratings: float
        user_mean_rating: float
        size: int = 10
        candidates: list[Candidate]

    app = FastAPI()

    @app.post("/rank")
    async def rank(req: RankRequest) -> dict[str, Any]:
        x = np.array([[np.nan if v is None else v for v in rows[c.movie_id]]
                      for c in req.candidates], dtype=float)
        x[:, at["user_ratings"]] = req.user_ratings
        x[:, at["user_mean_rating"]] = req.user_mean_rating
        x[:, at["genre_affinity"]] = [np.nan if c.genre_affinity is None else
                                      c.genre_affinity for c in req.candidates]
        p = booster.predict(x, num_threads=1)
        top = np.argsort(-p, kind="stable")[:req.size]
        return {"slate": [{"movie_id": req.candidates[i].movie_id, "position": k + 1,
                           "score": float(p[i])} for k, i in enumerate(top)]}

    return app
