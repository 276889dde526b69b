"""Off-policy estimators: equal to obp's on the Open Bandit Dataset sample (pinned), exact on
hand-computed cases, and unbiased where the truth is known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tuesday.errors import TuesdayError
from tuesday.train import ope, slates

DATA = Path(__file__).resolve().parents[2] / "src/tuesday/examples/recommend/data"


def obd_inputs(click, item, position, propensity, affinity, alpha, beta):
    """A copy of bench/ope_obp_pins.py's function: a fixed evaluation policy and reward
    model, in obp's layout (impressions, 80 items, 3 positions)."""
    _n, items = affinity.shape
    w = alpha / (alpha + beta)
    pos = np.arange(3)
    base = w[None, :, None] ** (pos[None, None, :] + 1.0)  # (1, items, 3)
    raw = base * (1.0 + 10.0 * affinity[:, :, None])
    action_dist = raw / raw.sum(axis=1, keepdims=True)
    shows = np.bincount(item, minlength=items).astype(float)
    clicks = np.bincount(item, weights=click, minlength=items)
    ctr = (clicks + 1.0) / (shows + items)
    q_hat = ctr[None, :, None] * (1.0 - 0.1 * pos[None, None, :]) + 0.01 * affinity[:, :, None]
    return action_dist, q_hat


# Computed with obp 0.5.7 (numpy 2.4.6, scikit-learn 1.9.1) by
# `bench/.venv-obp/bin/python bench/ope_obp_pins.py`: estimate_policy_value and
# estimate_interval(alpha=0.05, n_bootstrap_samples=1000, random_state=12345) of IPW, SNIPW,
# DM and DR on the random log with the inputs of ``obd_inputs`` (obp cannot be imported
# here: it declares Python < 3.11 and imports torch).
OBP_PINS = {
    "ips": (0.0040366940550548075, 0.0027346634268245545, 0.005770898887772612),
    "snips": (0.004078901123173358, 0.0027632566578108765, 0.005831238541741801),
    "dm": (0.006694385321506562, 0.006682296169046044, 0.006707684183315517),
    "dr": (0.004116395873154609, 0.002808039144313427, 0.005828830243505256),
}


@pytest.fixture(scope="module")
def obd() -> dict[str, np.ndarray]:
    log = pd.read_parquet(DATA / "obd_random.parquet")
    prior = json.loads((DATA / "obd_bts_prior.json").read_text())
    return {
        "click": log["click"].to_numpy(dtype=float),
        "item": log["item_id"].to_numpy(),
        "position": log["position"].to_numpy() - 1,
        "propensity": log["propensity_score"].to_numpy(dtype=float),
        "affinity": log[[f"user-item_affinity_{i}" for i in range(80)]].to_numpy(float),
        "alpha": np.array(prior["alpha"], float),
        "beta": np.array(prior["beta"], float),
    }


@pytest.mark.parametrize("estimator", list(OBP_PINS))
def test_estimates_and_intervals_equal_obp(obd: dict[str, np.ndarray],
                                           estimator: str) -> None:
    action_dist, q_hat = obd_inputs(**obd)
    pi_e, q_logged, q_policy = ope.from_action_dist(action_dist, obd["item"],
                                                    obd["position"], q_hat)
    logged = ope.Logged(obd["click"], obd["propensity"])
    got = ope.estimate(estimator, logged, pi_e, q_logged=q_logged, q_policy=q_policy,
                       n_bootstrap=1000, seed=12345)
    value, lo, hi = OBP_PINS[estimator]
    assert got.value == pytest.approx(value, abs=1e-9, rel=1e-9)
    assert got.lower == pytest.approx(lo, abs=1e-9, rel=1e-9)
    assert got.upper == pytest.approx(hi, abs=1e-9, rel=1e-9)
    assert got.rows == 10_000


def test_hand_computed_estimates() -> None:
    logged = ope.Logged(np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.5, 0.5, 0.25, 0.25]))
    pi_e = np.array([1.0, 0.0, 0.5, 0.5])  # weights 2, 0, 2, 2
    assert ope.estimate("ips", logged, pi_e).value == pytest.approx((2 + 0 + 2 + 0) / 4)
    assert ope.estimate("snips", logged, pi_e).value == pytest.approx(4 / 6)
    q_logged = np.array([0.5, 0.5, 0.5, 0.5])
    q_policy = np.array([0.4, 0.2, 0.6, 0.8])
    dm = ope.estimate("dm", logged, pi_e, q_logged=q_logged, q_policy=q_policy)
    assert dm.value == pytest.approx(0.5)
    dr = ope.estimate("dr", logged, pi_e, q_logged=q_logged, q_policy=q_policy)
    # 0.4 + 2*0.5, 0.2 + 0, 0.6 + 2*0.5, 0.8 + 2*(-0.5)
    assert dr.value == pytest.approx((1.4 + 0.2 + 1.6 - 0.2) / 4)
    assert ope.estimate("ips", logged, pi_e).effective_rows == pytest.approx(36 / 12)


def test_on_policy_estimate_is_the_mean_reward_and_slices_split_it() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 1.0, 500)
    r = (rng.random(500) < 0.3).astype(float)
    logged = ope.Logged(r, p)
    slice_labels = np.where(np.arange(500) % 2 == 0, "even", "odd")
    got = ope.estimate("snips", logged, p, slices={"parity": slice_labels},
                       interval="normal")
    assert got.value == pytest.approx(r.mean())
    assert got.lower < r.mean() < got.upper
    by = {s["value"]: s for s in got.slices}
    assert by["even"]["estimate"] == pytest.approx(r[::2].mean())
    assert by["odd"]["rows"] == 250


def test_ips_recovers_a_known_policy_value_from_uniform_logs() -> None:
    """Items with known click rates, logged uniformly at random: the estimate of 'always
    show the best item' is close to its click rate, inside its 95% interval."""
    rng = np.random.default_rng(7)
    ctr = np.array([0.05, 0.1, 0.3, 0.02])
    n = 40_000
    shown = rng.integers(0, 4, n)
    r = (rng.random(n) < ctr[shown]).astype(float)
    logged = ope.Logged(r, np.full(n, 0.25))
    pi_e = (shown == 2).astype(float)
    for name in ("ips", "snips"):
        got = ope.estimate(name, logged, pi_e, n_bootstrap=300)
        assert got.lower < 0.3 < got.upper
        assert abs(got.value - 0.3) < 0.02


def test_thompson_distribution_matches_obp_definition() -> None:
    """Each position's probabilities sum to one, and the item with the highest prior mean
    leads the first position."""
    prior = json.loads((DATA / "obd_bts_prior.json").read_text())
    a, b = np.array(prior["alpha"]), np.array(prior["beta"])
    dist = slates.thompson_distribution(a, b, 3, draws=20_000, seed=1)
    assert dist.shape == (80, 3)
    np.testing.assert_allclose(dist.sum(axis=0), 1.0)
    assert dist[:, 0].argmax() == int(np.argmax(a / (a + b)))


def test_bad_inputs_are_named() -> None:
    with pytest.raises(TuesdayError, match=r"propensit.*not within \(0, 1\]"):
        ope.Logged(np.zeros(2), np.array([0.5, 0.0]))
    logged = ope.Logged(np.zeros(2), np.array([0.5, 0.5]))
    with pytest.raises(TuesdayError, match="needs a reward model"):
        ope.estimate("dr", logged, np.ones(2))
    with pytest.raises(TuesdayError, match="unknown"):
        ope.estimate("magic", logged, np.ones(2))
    with pytest.raises(TuesdayError, match="one probability per logged impression"):
        ope.estimate("ips", logged, np.ones(3))
    with pytest.raises(TuesdayError, match="no logged impressions"):
        ope.estimate("ips", ope.Logged(np.zeros(0), np.zeros(0)), np.zeros(0))
