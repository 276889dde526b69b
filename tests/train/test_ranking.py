"""Ranking metrics against scikit-learn's ndcg_score, slow obvious versions and hand-computed
cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score

from tuesday.train import ranking


def groups_frame(seed: int, groups: int = 40, size: int = 12, graded: bool = True):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    rel = rng.integers(0, 4 if graded else 2, size=groups * size).astype(float)
    rel[g == 3] = 0.0  # a group without a relevant item: left out of the means
    score = rng.normal(size=groups * size)  # continuous: no ties
    item = rng.integers(0, 30, size=groups * size)
    # shuffle the rows: the metric must not depend on the input order of groups
    perm = rng.permutation(len(g))
    return g[perm], rel[perm], score[perm], item[perm]


def slow_topk(g, rel, score, k):
    """Each group's relevances in score order (highest first), as plain lists."""
    out = {}
    for gid in np.unique(g):
        idx = np.flatnonzero(g == gid)
        order = idx[np.argsort(-score[idx], kind="stable")]
        out[gid] = (list(rel[order][:k]), list(rel[idx]))
    return out


@pytest.mark.parametrize("k", [1, 3, 5, 12, 20])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ndcg_equals_scikit_learn(k: int, seed: int) -> None:
    g, rel, score, _ = groups_frame(seed)
    ok = [gid for gid in np.unique(g) if rel[g == gid].sum() > 0]
    y_true = np.array([rel[g == gid] for gid in ok])
    y_score = np.array([score[g == gid] for gid in ok])
    want = ndcg_score(y_true, y_score, k=k)
    assert ranking.ndcg_at(k, g, rel, score) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 5])
def test_map_recall_hit_equal_slow_versions(seed: int) -> None:
    g, rel, score, _ = groups_frame(seed, graded=False)
    for k in (1, 4, 10):
        aps, recalls, hits = [], [], []
        for top, allrel in slow_topk(g, rel, score, k).values():
            n_rel = sum(r > 0 for r in allrel)
            if not n_rel:
                continue
            found, precisions = 0, []
            for i, r in enumerate(top):
                if r > 0:
                    found += 1
                    precisions.append(found / (i + 1))
            aps.append(sum(precisions) / min(k, n_rel))
            recalls.append(found / n_rel)
            hits.append(float(found > 0))
        assert ranking.map_at(k, g, rel, score) == pytest.approx(np.mean(aps), abs=1e-12)
        assert ranking.recall_at(k, g, rel, score) == pytest.approx(np.mean(recalls),
                                                                    abs=1e-12)
        assert ranking.hit_rate_at(k, g, rel, score) == pytest.approx(np.mean(hits),
                                                                      abs=1e-12)


def test_hand_computed_case() -> None:
    # request A: ranked a1 (relevant), a2, a3 (relevant); request B: b1, b2 (relevant)
    g = np.array(["A", "A", "A", "B", "B"])
    items = np.array(["x", "y", "z", "x", "y"])
    rel = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    s = np.array([0.9, 0.5, 0.1, 0.8, 0.7])
    # NDCG@2: A: 1 / (1 + 1/log2(3)); B: (1/log2(3)) / 1
    a = 1.0 / (1.0 + 1.0 / np.log2(3))
    b = 1.0 / np.log2(3)
    assert ranking.ndcg_at(2, g, rel, s) == pytest.approx((a + b) / 2, abs=1e-12)
    # MAP@3: A: (1/1 + 2/3) / 2; B: (1/2) / 1
    assert ranking.map_at(3, g, rel, s) == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    # recall@1: A 1/2, B 0
    assert ranking.recall_at(1, g, rel, s) == pytest.approx(0.25)
    assert ranking.hit_rate_at(1, g, rel, s) == pytest.approx(0.5)
    assert ranking.hit_rate_at(2, g, rel, s) == pytest.approx(1.0)
    # top 1 shows x twice, y and z never: coverage 1/3, exposure (2, 0, 0)
    assert ranking.coverage_at(1, g, items, s) == pytest.approx(1 / 3)
    assert ranking.exposure(1, g, items, s).tolist() == [2.0, 0.0, 0.0]
    assert ranking.gini_at(1, g, items, s) == pytest.approx(2 / 3)
    # top 2 shows x twice, y twice: coverage 2/3
    assert ranking.coverage_at(2, g, items, s) == pytest.approx(2 / 3)


def test_dropped_candidates_rank_last_and_ties_keep_input_order() -> None:
    g = np.zeros(3)
    rel = np.array([0.0, 1.0, 0.0])
    assert ranking.hit_rate_at(1, g, rel, np.array([np.nan, 0.2, 0.1])) == 1.0
    assert ranking.hit_rate_at(1, g, rel, np.array([0.5, 0.5, 0.5])) == 0.0
    assert np.isnan(ranking.ndcg_at(3, g, np.zeros(3), np.ones(3)))


def test_metric_names_and_score() -> None:
    assert ranking.is_ranking_metric("ndcg_at_10")
    assert not ranking.is_ranking_metric("ndcg_at_0")
    assert not ranking.is_ranking_metric("auc")
    assert ranking.direction("gini_at_5") == "lower"
    assert ranking.direction("map_at_5") == "higher"
    g, rel, score, item = groups_frame(3)
    got = ranking.score(["ndcg_at_5", "auc", "gini_at_5"], g, item, rel, score)
    assert set(got) == {"ndcg_at_5", "gini_at_5"}


def slow_gini(x: np.ndarray) -> float:
    """Mean absolute difference over twice the mean."""
    x = np.asarray(x, dtype=float)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=40).filter(lambda v: sum(v) > 0))
def test_gini_equals_mean_absolute_difference(counts: list[int]) -> None:
    assert ranking.gini(np.array(counts)) == pytest.approx(slow_gini(np.array(counts)),
                                                           abs=1e-12)
