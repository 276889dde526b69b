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
