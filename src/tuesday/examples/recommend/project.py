"""Fashion item recommendation: a ranking model served as slates of 3 items, with
business rules, exploration and off-policy evaluation on real logged data.

Real data: the small sample of the Open Bandit Dataset (ZOZO, Inc.; Saito et al., "Open
Bandit Dataset and Pipeline", NeurIPS 2021; Apache License 2.0, see ``data/NOTICE.md``),
shipped in this folder as Parquet: 10,000 impressions of a fashion e-commerce site's
recommendation widget logged by a uniform random policy, 10,000 logged by a Bernoulli
Thompson Sampling policy (one week of November 2019), 80 items, 3 positions, whether the
user clicked, the logging policy's probability of showing that item at that position,
four hashed user features and a user-item affinity.

Sources:

- ``items``: the catalog, one row per item: a price-like number and three hashed
  categories (as codes 0..N).
- ``impressions``: the random policy's log, one row per impression (item shown at a
  position to a user, clicked or not, with its propensity 1/80 and the user's features
  and affinity to that item). It is the label source, and its clicks are events: each
  item's clicks and impressions over the last 3 days (as known an hour before) are
  features, kept online from ``POST /v1/events/impressions``.
- ``clicks``: the feedback of served slates (``POST /v1/models/recommend/feedback``: the
  request id, item, position and click), which off-policy evaluation joins with the
  prediction log.

The model ``recommend`` (``task="ranking"``) is a pointwise LightGBM click model over the
user's features, the user-item affinity, the item's features and its recent clicks; a
rank request sends the user's features and the candidates (or none: the whole catalog)
with their affinities, and gets back a slate of 3 items. After the model: at most 2
items of one top-level category per slate, and epsilon-greedy exploration (10% of the
requests get a random slate), each shown item logged with its probability of being at
its position. It is judged by a 3-fold rolling backtest (2 days each) on AUC against the
most popular items of the last 3 days, a random order and a rule (the user's affinity
first, then the cheaper item), and promoted only if it beats the best of them; the
``ope`` gate promotes a later version only if its click rate, estimated off-policy
from production's logged slates and the clicks posted back, beats production's realised
one with 95% confidence.

``bts_log()`` gives the Thompson policy's log and ``bts_prior()`` the prior it ran with,
for the dataset's own protocol: estimate the Thompson policy's click rate from the random
log and compare it with the click rate it actually got (``bench/ope_obd.py``).

Run it::

    tuesday example recommend recommend && cd recommend
    tuesday ingest items data/items.csv
    tuesday ingest impressions data/impressions.csv
    tuesday train recommend
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import tuesday.examples
from tuesday.project import (
    Backtest,
    Baseline,
    Column,
    Contract,
    Entity,
    Gate,
    Learner,
    Model,
    Project,
    Slate,
    Source,
    epsilon_greedy,
    lookup,
    max_per,
    request,
    window,
)

#: the shipped Parquet files (in the package, wherever this module was copied to)
DATA = Path(tuesday.examples.__file__).resolve().parent / "recommend" / "data"
#: rank requests ``example_files`` writes (the users of the impressions after ``until``)
REQUESTS = 200
ITEMS = 80
POSITIONS = 3
USER_FEATURES = ("user_1", "user_2", "user_3", "user_4")

item = Entity("item", key="item_id")

items = Source(
    "items",
    Contract((
        Column("item_id", "str", nullable=False),
        Column("price", "float", nullable=False),
        Column("category_1", "int", nullable=False, min=0, max=100),
        Column("category_2", "int", nullable=False, min=0, max=100),
        Column("category_3", "int", nullable=False, min=0, max=100),
    ), unique=("item_id",)),
    time=None,
    entity=item,
)

impressions = Source(
    "impressions",
    Contract((
        Column("impression_id", "str", nullable=False),
        Column("ts", "timestamp", nullable=False),
        Column("item_id", "str", nullable=False),
        Column("position", "int", nullable=False, min=1, max=POSITIONS),
        Column("click", "int", nullable=False, allowed=(0, 1)),
        Column("propensity", "float", nullable=False, min=0, max=1),
        *(Column(u, "int", nullable=False, min=0, max=100) for u in USER_FEATURES),
        Column("affinity", "float", nullable=False, min=0),
    ), unique=("impression_id",)),
    time="ts",
    entity=item,
)

clicks = Source(
    "clicks",
    Contract((
        Column("request_id", "str", nullable=False),
        Column("item_id", "str", nullable=False),
        Column("position", "int", nullable=False, min=1, max=POSITIONS),
        Column("click", "int", nullable=False, allowed=(0, 1)),
        Column("ts", "timestamp", nullable=False),
    ), unique=("request_id", "item_id")),
    time="ts",
    entity=item,
)

FEATURES = (
    *(request(u) for u in USER_FEATURES),
    request("affinity"),
    lookup("items", "price"),
    lookup("items", "category_1"),
    lookup("items", "category_2"),
    lookup("items", "category_3"),
    window("impressions", "click", "3d", lag="1h", agg="sum", default=0.0),
    window("impressions", "click", "3d", lag="1h", agg="count"),
)


def affinity_then_cheaper(frame: pd.DataFrame) -> Any:
    """The user's rule: items the user has an affinity to first, then the cheaper ones."""
    return frame["affinity"] - 1e-3 * frame["price"]


recommend = Model(
    name="recommend",
    entity=item,
    label_source="impressions",
    target="click",
    task="ranking",
    horizon="0d",
    features=FEATURES,
    baselines=(
        Baseline("popular", "popular", window=3),
        Baseline("random", "random"),
        Baseline("affinity_then_cheaper", "rule", fn=affinity_then_cheaper),
    ),
    learner=Learner(params={"objective": "binary", "num_boost_round": 80,
                            "learning_rate": 0.03, "num_leaves": 7,
                            "min_data_in_leaf": 100}),
    evaluation=Backtest(folds=3, step="2d"),
    metrics=("auc", "log_loss"),
    slices=("position",),
    slate=Slate(size=POSITIONS, candidates="items", feedback="clicks"),
    rules=(max_per("category_1", 2), epsilon_greedy(0.1)),
    gates=(Gate("beats_baseline"), Gate("ope", min_rows=300)),
    seed=7,
)

project = Project("recommend", sources=(items, impressions, clicks), models=(recommend,))


# --------------------------------------------------------------------------- data


def _codes(*columns: pd.Series) -> dict[str, int]:
    """A stable integer code per hashed value (sorted), shared by the two logs."""
    values = sorted(set().union(*(set(c.astype(str)) for c in columns)))
    return {v: i for i, v in enumerate(values)}


def raw_logs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The random log, the Thompson log and the item table as shipped."""
    return (pd.read_parquet(DATA / "obd_random.parquet"),
            pd.read_parquet(DATA / "obd_bts.parquet"),
            pd.read_parquet(DATA / "obd_items.parquet"))


def _impressions(log: pd.DataFrame, prefix: str, codes: list[dict[str, int]]
                 ) -> pd.DataFrame:
    n = len(log)
    aff = log[[f"user-item_affinity_{i}" for i in range(ITEMS)]].to_numpy(dtype=float)
    out = pd.DataFrame({
        "impression_id": [f"{prefix}{i:05d}" for i in range(n)],
        "ts": log["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
                             .astype("datetime64[us]"),
        "item_id": log["item_id"].astype(str),
        "position": log["position"].astype("int64"),
        "click": log["click"].astype("int64"),
        "propensity": log["propensity_score"].astype(float),
    })
    for j, u in enumerate(USER_FEATURES):
        out[u] = log[f"user_feature_{j}"].astype(str).map(codes[j]).astype("int64")
    out["affinity"] = aff[np.arange(n), log["item_id"].to_numpy()]
    return out


def example_frames(*, with_affinities: bool = False) -> dict[str, pd.DataFrame]:
    """The ``items`` and ``impressions`` (random log) sources as frames. With
    ``with_affinities``, ``impressions`` also carries the user's affinity to every item
    (``affinity_0`` ... ``affinity_79``: the candidates of a rank request)."""
    rnd, bts, raw_items = raw_logs()
    codes = [_codes(rnd[f"user_feature_{j}"], bts[f"user_feature_{j}"]) for j in range(4)]
    imp = _impressions(rnd, "R", codes)
    if with_affinities:
        aff = rnd[[f"user-item_affinity_{i}" for i in range(ITEMS)]]
        imp = pd.concat([imp, aff.set_axis([f"affinity_{i}" for i in range(ITEMS)],
                                           axis=1)], axis=1)
    cats = {c: _codes(raw_items[c]) for c in ("item_feature_1", "item_feature_2",
                                               "item_feature_3")}
    it = pd.DataFrame({
        "item_id": raw_items["item_id"].astype(str),
        "price": raw_items["item_feature_0"].astype(float),
        "category_1": raw_items["item_feature_3"].map(cats["item_feature_3"]),
        "category_2": raw_items["item_feature_2"].map(cats["item_feature_2"]),
        "category_3": raw_items["item_feature_1"].map(cats["item_feature_1"]),
    })
    return {"items": it, "impressions": imp}


def bts_log() -> pd.DataFrame:
    """The Thompson Sampling policy's log, in the layout of ``impressions``."""
    rnd, bts, _ = raw_logs()
    codes = [_codes(rnd[f"user_feature_{j}"], bts[f"user_feature_{j}"]) for j in range(4)]
    return _impressions(bts, "B", codes)


def bts_prior() -> tuple[np.ndarray, np.ndarray]:
    """The Beta prior (alpha, beta per item 0..79) the Thompson policy ran with."""
    prior = json.loads((DATA / "obd_bts_prior.json").read_text())
    return np.array(prior["alpha"], dtype=float), np.array(prior["beta"], dtype=float)


def rank_request(impression: pd.Series, items: Any = None) -> dict[str, Any]:
    """A rank request for the user of one logged impression (from ``example_frames(
    with_affinities=True)``): the user's features, the time, and the items (default:
    every item of the catalog) as candidates with the user's affinity to each."""
    chosen = range(ITEMS) if items is None else items
    return {"ts": pd.Timestamp(impression["ts"]).isoformat(),
            **{u: int(impression[u]) for u in USER_FEATURES},
            "candidates": [{"item_id": str(i), "affinity": float(impression[f"affinity_{i}"])}
                           for i in chosen]}


def example_files(folder: str | Path, until: str | None = None) -> dict[str, Path]:
    """Write ``items.csv``, ``impressions.csv`` (the impressions up to ``until``, an ISO
    date, when given) and ``requests.ndjson`` (rank requests of the users of the first
    impressions after ``until``, or of the last ones: input for ``tuesday rank``);
    returns their paths by source (``requests`` for the requests)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    frames = example_frames(with_affinities=True)
    imp = frames["impressions"]
    if until is not None:
        cut = pd.Timestamp(until)
        later = imp[imp["ts"] > cut].head(REQUESTS)
        imp = imp[imp["ts"] <= cut]
    else:
        later = imp.tail(REQUESTS)
    frames["impressions"] = imp[list(impressions.contract.names)]
    paths = {}
    for name, frame in frames.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    req = out / "requests.ndjson"
    req.write_text("".join(json.dumps(rank_request(r)) + "\n" for _, r in later.iterrows()))
    paths["requests"] = req
    return paths
