"""The fast predict path: LightGBM's single-row API gives the same numbers as
``Booster.predict``, and a server with the prediction log off answers the same."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from tuesday.data import online
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.release import registry
from tuesday.serve.inference import SingleRow
from tuesday.serve.server import app_from_env, create_app
from tuesday.train import training


def test_single_row_api_equals_booster_predict(trained_ws) -> None:
    v1 = registry.get_version(trained_ws, "ridership_14d", 1)
    fitted = training.load_model(trained_ws, v1["manifest"])
    fast = SingleRow.of(fitted)
    assert fast is not None
    rng = np.random.default_rng(7)
    x = rng.normal(0, 50, size=(2_000, fast.ncol))
    x[rng.random(x.shape) < 0.1] = np.nan  # missing values take the default branches
    want = fitted.predict(x, num_threads=1)
    got = np.array([fast.predict(x[i:i + 1])[0] for i in range(len(x))])
    np.testing.assert_array_equal(got, want)  # bit for bit
    with pytest.raises(ValueError, match="features"):
        fast.predict(x[:1, :3])


def test_single_row_api_is_only_for_lightgbm() -> None:
    class Linear:
        kind, model = "linear", {"coef": [1.0]}

    assert SingleRow.of(Linear()) is None


def test_server_without_prediction_log_answers_the_same(served_ws, ridership,
                                                        monkeypatch) -> None:
    rows = [{"station": "Clark_Lake", "date": f"2016-07-{d:02d}"} for d in range(1, 15)]
    answers = {}
    for log_on in (True, False):
        app = create_app(served_ws.root, ridership.path, log_predictions=log_on)
        with TestClient(app) as client:
            one = client.post("/v1/models/ridership_14d/predict", json=rows[4]).json()
            many = client.post("/v1/models/ridership_14d/predict", json={"rows": rows}).json()
            metrics = client.get("/metrics").text
        answers[log_on] = ([one["prediction"]] + [p["prediction"] for p in many["predictions"]])
        assert ('tuesday_predictions_total{model="ridership_14d",variant="primary",'
                'version="1"} 15.0') in metrics
        assert len(read_log(served_ws, "ridership_14d")) == 15  # the first server's rows
    assert answers[True] == answers[False]
    monkeypatch.setenv("TUESDAY_WORKSPACE", str(served_ws.root))
    monkeypatch.setenv("TUESDAY_PROJECT", str(ridership.path))
    for value, on in (("off", False), ("0", False), ("on", True), ("", True)):
        monkeypatch.setenv("TUESDAY_PREDICTION_LOG", value)
        assert app_from_env().state.tuesday.predictor.log_predictions is on


def test_two_logs_writing_the_same_table_lose_nothing(tmp_path) -> None:
    """Two server workers each keep their own open log table: their appends interleave
    without a failed flush and every row is written once."""
    import threading
    import uuid
    from datetime import datetime

    from tuesday.serve.prediction_log import PredictionLog
    from tuesday.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws")
    logs = [PredictionLog(ws), PredictionLog(ws)]

    def row(i: int) -> dict:
        return {"request_id": uuid.uuid4().hex, "model": "m", "version": 1, "entity": str(i),
                "target_time": None, "served_at": datetime(2024, 1, 1), "prediction": 1.0,
                "baselines": "{}", "features": "{}", "variant": "primary",
                "raw_prediction": 1.0, "propensity": None, "dropped_by": None}

    def work(log: PredictionLog, k: int) -> None:
        for j in range(20):
            log.add([row(k * 10_000 + j * 10 + i) for i in range(10)])
            log.flush()

    threads = [threading.Thread(target=work, args=(lg, k)) for k, lg in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frame = read_log(ws)
    assert len(frame) == frame["entity"].nunique() == 400
    assert [lg.failures for lg in logs] == [0, 0]
    assert [lg.written for lg in logs] == [200, 200]


def test_cached_records_follow_commits_of_other_connections(served_ws, ridership) -> None:
    """The predictor's record cache is emptied when anything else committed to the store
    (a new materialize here), checked at most every 0.1 s and at once after refresh():
    answers are then those of a fresh predictor."""
    from datetime import datetime

    from tuesday.serve.predictor import Predictor

    model = ridership.project.model("ridership_14d")
    row = {"station": "Clark_Lake", "date": "2016-07-12"}
    p = Predictor(served_ws, ridership, log_predictions=False)
    before = p.predict(model.name, [row])["predictions"][0]["prediction"]
    assert p.predict(model.name, [row])["predictions"][0]["prediction"] == before
    cached = p.records.records[(model.name, "Clark_Lake")]
    assert cached is not None and cached.origin.startswith("2016-06-30")

    materialize(served_ws, ridership.project, model, datetime(2016, 7, 2))
    p.refresh()
    after = p.predict(model.name, [row])["predictions"][0]["prediction"]
    fresh = Predictor(served_ws, ridership, log_predictions=False)
    assert after == fresh.predict(model.name, [row])["predictions"][0]["prediction"]
    assert p.records.records[(model.name, "Clark_Lake")].origin.startswith("2016-07-02")

    conn = online.connect(served_ws)  # a plain write by another connection also counts
    conn.execute("DELETE FROM online_features")
    conn.close()
    p.records.check_seconds = 0.0  # as when the check interval has passed
    assert p.records.lookup(model.name, "Clark_Lake") is None
