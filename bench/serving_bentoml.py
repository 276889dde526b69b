"""BentoML side of bench/serving.py: the same model and lookup as the hand-written
FastAPI endpoint, as a BentoML 1.4 service. Runs in bench/.venv-bentoml:

    cd bench && BENCH_MODEL=... BENCH_FEATURES=... \\
        .venv-bentoml/bin/bentoml serve serving_bentoml:Churn --port 3000

One worker and no access log, like the other servers of the benchmark.
"""

from __future__ import annotations

import json
import os

import bentoml
import lightgbm as lgb
import numpy as np


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Churn:
    def __init__(self) -> None:
        self.booster = lgb.Booster(model_file=os.environ["BENCH_MODEL"])
        with open(os.environ["BENCH_FEATURES"]) as f:
            self.rows = json.load(f)["rows"]

    @bentoml.api
    async def predict(self, customer_id: str) -> dict:
        values = self.rows[customer_id]
        x = np.array([[np.nan if v is None else v for v in values]], dtype=float)
        return {"customer_id": customer_id,
                "prediction": float(self.booster.predict(x, num_threads=1)[0])}
