"""The recommend example end to end on the Open Bandit Dataset, through the server.

The random policy's log up to 2019-11-29 is ingested, version 1 trained and promoted
(with a reason: on 29 clicks it does not beat its baselines, which its gate says),
materialized and served: rank requests are the real users of the following impressions
(their features and their affinity to each of the 80 items). The rules run after the model
(at most two items of a category per slate, epsilon-greedy exploration), every candidate
is logged with its propensity, and the clicks posted back are read by the ``ope`` gate.

Clicks on the served slates cannot come from the dataset (it only knows the item its
users were shown), so the gate is tested with a declared click rule, ``clicks_on``: a
user clicks an item of category 5 (7 of the 80 items), at any position. The test serves
the example with epsilon 0.5 instead of 0.1, and each request names 20 of the 80 items as
its candidates, so that the off-policy estimates rest on enough explored slates to be
sure of a difference. Version 3 is trained on the served
impressions with those clicks (the loop: serve, log, feedback, retrain), so it prefers
those items; its estimated click rate beats what version 1 realised and the gate passes.
Version 2, a copy of version 1, is refused: it estimates exactly the realised rate.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tuesday.examples
from tuesday.data import tables
from tuesday.data.materialize import materialize
from tuesday.data.predictions import read_log
from tuesday.project import LoadedProject, load_project
from tuesday.release import registry
from tuesday.serve.server import create_app
from tuesday.train import training
from tuesday.workspace import Workspace, open_workspace

PROJECT = Path(tuesday.examples.__file__).parent / "recommend" / "project.py"
AS_OF = datetime(2019, 11, 29)
SERVED = 300  # rank requests served by version 1
EPSILON = 0.5
CANDIDATES = 20  # of the 80 items, drawn per request
SEED = 20


def clicks_on(category: int, position: int) -> int:
    """The declared click rule of the served slates (see the module docstring)."""
    return int(category == 5)


def project_file(folder: Path) -> Path:
    """The example with more exploration (see the module docstring)."""
    text = PROJECT.read_text()
    assert "epsilon_greedy(0.1)" in text
    path = folder / "project.py"
    path.write_text(text.replace("epsilon_greedy(0.1)", f"epsilon_greedy({EPSILON})"))
    return path


class Served:
    def __init__(self, ws: Workspace, loaded: LoadedProject, client: Any,
                 frames: dict[str, pd.DataFrame], answers: list[dict[str, Any]]) -> None:
        self.ws, self.loaded, self.client, self.frames = ws, loaded, client, frames
        self.answers = answers


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from starlette.testclient import TestClient

    project = project_file(tmp_path_factory.mktemp("recommend-project"))
    loaded = load_project(project)
    root = tmp_path_factory.mktemp("recommend") / "ws"
    ws = open_workspace(root)
    frames = loaded.module.example_frames(with_affinities=True)
    imp = frames["impressions"]
    cols = list(loaded.project.source("impressions").contract.names)
    tables.ingest_frame(ws, loaded.project.source("items"), frames["items"], as_of=AS_OF,
                        file="items.csv")
    tables.ingest_frame(ws, loaded.project.source("impressions"),
                        imp[imp["ts"] < pd.Timestamp(AS_OF)][cols], as_of=AS_OF,
                        file="impressions.csv")
    training.train(ws, loaded, "recommend", AS_OF)
    model = loaded.project.model("recommend")
    registry.promote(ws, model, 1, as_of=AS_OF,
                     override_reason="29 clicks in 7,146 impressions: serve to explore")
    materialize(ws, loaded.project, model, AS_OF)
    later = imp[imp["ts"] >= pd.Timestamp(AS_OF)].head(SERVED)
    cats = frames["items"].set_index("item_id")["category_1"]
    with TestClient(create_app(root, project, flush_seconds=0.05)) as client:
        # seeded request ids: the exploration draws (seeded by them) are the same each run
        ids_rng = np.random.default_rng(SEED)
        client.app.tuesday.predictor.request_ids = lambda: ids_rng.bytes(16).hex()
        answers, clicks = [], []
        for _, row in later.iterrows():
            items = sorted(ids_rng.choice(80, size=CANDIDATES, replace=False).tolist())
            r = client.post("/v1/models/recommend/rank",
                            json=loaded.module.rank_request(row, items))
            assert r.status_code == 200, r.text
            out = r.json()
            answers.append(out)
            clicks += [{"request_id": out["request_id"], "item_id": s["item_id"],
                        "position": s["position"],
                        "click": clicks_on(int(cats[s["item_id"]]), s["position"]),
                        "ts": row["ts"].isoformat()} for s in out["slate"]]
        r = client.post("/v1/models/recommend/feedback",
                        json={"rows": clicks, "as_of": "2019-11-30T00:00:00"})
        assert r.status_code == 200, r.text
        client.app.tuesday.predictor.log.flush()
        yield Served(ws, loaded, client, frames, answers)


def test_slates_keep_the_rules_and_carry_propensities(served: Served) -> None:
    cats = served.frames["items"].set_index("item_id")["category_1"]
    for out in served.answers:
        assert [s["position"] for s in out["slate"]] == [1, 2, 3]
        per = pd.Series([cats[s["item_id"]] for s in out["slate"]]).value_counts()
        assert per.max() <= 2  # max_per("category_1", 2)
        assert all(0 < s["propensity"] <= 1 for s in out["slate"])
        assert out["candidates"] == CANDIDATES and out["exploration"] == "epsilon_greedy"
    explored = np.mean([o["explored"] for o in served.answers])
    assert 0.4 < explored < 0.6  # epsilon 0.5 (a random slate may equal the model's)
    # the model's own slate has probability at least 1 - epsilon; a random one about
    # epsilon / 20 per item and position (more with the category rule)
    own = [s["propensity"] for o in served.answers if not o["explored"] for s in o["slate"]]
    assert min(own) >= 1 - EPSILON
    other = [s["propensity"] for o in served.answers if o["explored"] for s in o["slate"]]
    assert np.median(other) == pytest.approx(EPSILON / CANDIDATES, rel=0.5)


def test_every_candidate_is_logged_with_position_propensity_and_rule_hits(
        served: Served) -> None:
    log = read_log(served.ws, "recommend")
    assert len(log) == SERVED * CANDIDATES
    shown = log[log["position"].notna()]
    assert len(shown) == SERVED * 3
    assert shown["propensity"].between(0, 1, inclusive="right").all()
    assert log.loc[log["position"].isna(), "propensity"].isna().all()
    first = served.answers[0]
    mine = shown[shown["request_id"] == first["request_id"]].sort_values("position")
    assert mine["entity"].tolist() == [s["item_id"] for s in first["slate"]]
    np.testing.assert_allclose(mine["propensity"], [s["propensity"] for s in first["slate"]])
    hits = json.loads(mine["rules"].iloc[0])
    assert set(hits) == {"max_2_per_category_1"}
    feats = json.loads(mine["features"].iloc[0])
    assert set(feats) == set(served.loaded.project.model("recommend").feature_names)


def test_rank_without_candidates_ranks_the_catalog_and_bad_requests_are_400(
        served: Served) -> None:
    c = served.client
    r = c.post("/v1/models/recommend/rank",
               json={"ts": "2019-11-29T12:00:00", "user_1": 1, "user_2": 0, "user_3": 2,
                     "user_4": 3, "size": 2})
    assert r.status_code == 200 and len(r.json()["slate"]) == 2
    assert r.json()["candidates"] == 80
    r = c.post("/v1/models/recommend/rank",
               json={"user_1": 1, "candidates": [{"item_id": "3"}, {"item_id": "nope"}]})
    assert r.status_code == 200
    assert r.json()["unranked"][0]["item_id"] == "nope"
    for body, part in (([1, 2], "must be a JSON object"),
                       ({"candidates": "3"}, "must be a list of JSON objects"),
                       ({"candidates": []}, "is empty"),
                       ({"size": 0}, "'size' must be a whole number"),
                       ({"user_1": "x", "candidates": [{"item_id": "3"}]}, "must be a number")):
        r = c.post("/v1/models/recommend/rank", json=body)
        assert r.status_code in (400, 422), (body, r.text)
        assert part in r.json()["message"], r.json()
    r = c.post("/v1/models/nosuch/rank", json={})
    assert r.status_code == 404


def test_batch_rank_and_feedback_errors(served: Served) -> None:
    c = served.client
    lines = "\n".join([json.dumps({"user_1": 0, "candidates": [{"item_id": "1"},
                                                                {"item_id": "2"}]}),
                       "not json", ""])
    r = c.post("/v1/models/recommend/rank/batch", content=lines,
               headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200
    out = [json.loads(x) for x in r.text.splitlines()]
    assert len(out[0]["slate"]) == 2 and "not valid JSON" in out[1]["error"]
    r = c.post("/v1/models/recommend/feedback",
               json={"request_id": "r", "item_id": "1", "position": 9})
    assert r.status_code == 207 and r.json()["quarantined"] == 1


def test_ope_command_prints_the_estimates_beside_production(served: Served) -> None:
    from click.testing import CliRunner

    from tuesday.cli import main

    project = served.loaded.path
    r = CliRunner().invoke(main, ["--project", str(project), "--workspace",
                                  str(served.ws.root), "ope", "recommend", "1", "--json",
                                  "--estimator", "ips", "--estimator", "snips"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["estimates"]) == {"ips", "snips"}
    # version 1 on its own log: the estimate is what it realised
    assert out["estimates"]["snips"]["value"] == pytest.approx(out["realised"])
    assert [s["value"] for s in out["estimates"]["ips"]["slices"]] == [1, 2, 3]
    r = CliRunner().invoke(main, ["--project", str(project), "--workspace",
                                  str(served.ws.root), "ope", "recommend", "99"])
    assert r.exit_code == 3 and "99" in r.output


def _served_impressions(served: Served) -> pd.DataFrame:
    """Version 1's served impressions with the clicks posted back, as label rows."""
    log = read_log(served.ws, "recommend")
    ids = {a["request_id"] for a in served.answers}
    log = log[log["position"].notna() & log["request_id"].isin(ids)]
    fb = tables.read_table(served.ws, served.loaded.project.source("clicks")).to_pandas()
    click = fb.set_index(["request_id", "item_id"])["click"]
    feats = [json.loads(f) for f in log["features"]]
    out = pd.DataFrame({
        "impression_id": [f"S{r}-{e}" for r, e in zip(log["request_id"], log["entity"],
                                                       strict=True)],
        "ts": log["target_time"].astype("datetime64[us]"), "item_id": log["entity"],
        "position": log["position"].astype("int64"),
        "click": [int(click.get((r, e), 0)) for r, e in zip(log["request_id"], log["entity"],
                                                           strict=True)],
        "propensity": log["propensity"],
        **{u: [int(f[u]) for f in feats] for u in ("user_1", "user_2", "user_3", "user_4")},
        "affinity": [f["affinity"] for f in feats],
    })
    return out


def test_ope_gate_promotes_a_better_version_and_refuses_a_copy(served: Served) -> None:
    ws, loaded = served.ws, served.loaded
    model = loaded.project.model("recommend")
    copy = training.train(ws, loaded, "recommend", AS_OF).version  # version 2: v1 again
    labels = _served_impressions(served)
    later = datetime(2019, 11, 30)
    tables.ingest_frame(ws, loaded.project.source("impressions"), labels, as_of=later,
                        file="served.csv")
    better = training.train(ws, loaded, "recommend", later).version  # version 3
    c = served.client
    plan = registry.plan(ws, model, copy)
    ope_gate = next(g for g in plan["gates"] if g["gate"] == "ope")
    assert not ope_gate["passed"]
    assert ope_gate["estimate"] == pytest.approx(ope_gate["realised"])  # the same policy
    assert ope_gate["rows"] >= SERVED * 3  # and the other tests' requests
    plan = registry.plan(ws, model, better)
    ope_gate = next(g for g in plan["gates"] if g["gate"] == "ope")
    assert ope_gate["passed"], ope_gate["message"]
    assert ope_gate["lower"] > ope_gate["realised"]
    # through the server: the admin promote runs the same gates
    r = c.post("/v1/models/recommend/promote", json={"version": copy})
    assert r.status_code == 409 and "ope:" in r.json()["message"], r.json()
    r = c.post("/v1/models/recommend/promote",
               json={"version": better, "reason": "beats production off-policy",
                     "override_reason": "its backtest on the old log is a coin toss"})
    assert r.status_code == 200, r.json()


def test_slate_report_measures_exploration_clicks_and_exposure(served: Served) -> None:
    from tuesday.train.ranking import gini
    from tuesday.watch import slates as watch_slates

    rep = watch_slates.report(served.ws, served.loaded, "recommend",
                              datetime(2100, 1, 1), period="D")
    total = rep["overall"]
    assert total["requests"] >= SERVED and total["impressions"] >= SERVED * 3
    explored = np.mean([a["explored"] for a in served.answers])
    assert total["explored_share"] == pytest.approx(explored, abs=0.02)
    log = watch_slates.logged(served.ws, served.loaded, "recommend", datetime(2100, 1, 1))
    shown = log[log["position"].notna()]
    assert total["click_rate"] == pytest.approx(shown["reward"].mean())
    mine = shown.loc[~shown["explored"].astype(bool), "reward"].mean()
    assert total["click_rate_exploited"] == pytest.approx(mine)
    counts = shown.groupby("entity").size().reindex(log["entity"].unique(), fill_value=0)
    assert total["exposure_gini"] == pytest.approx(gini(counts.to_numpy(float)))
    assert 0 < total["coverage"] <= 1


def test_openapi_describes_the_rank_endpoints(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    for path in ("/v1/models/recommend/rank", "/v1/models/recommend/rank/batch",
                 "/v1/models/recommend/feedback"):
        assert "post" in spec["paths"][path]
    assert "/v1/models/recommend/predict" not in spec["paths"]
