"""obp's off-policy estimates on fixed inputs built from the Open Bandit Dataset sample
(pinned in tests/train/test_ope.py).

Run in obp's own virtualenv (obp 0.5.7 declares Python < 3.11 and its package imports
torch for its neural policies; only its numpy estimators are used, so torch and the
plotting libraries are stubbed), never by the tests:

    python -m venv bench/.venv-obp
    bench/.venv-obp/bin/pip install numpy scipy scikit-learn pandas pyyaml tqdm
    bench/.venv-obp/bin/pip install --no-deps --ignore-requires-python obp==0.5.7
    bench/.venv-obp/bin/python bench/ope_obp_pins.py

``obd_inputs`` is a copy of the function of the same name in tests/train/test_ope.py
(plain arithmetic on the logged columns and the Thompson prior, so both environments
build the same arrays). Prints ``{estimator: (value, lower, upper)}`` as JSON.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np

N_BOOTSTRAP = 1000
SEED = 12345


def stub_heavy_imports() -> None:
    """obp's package imports torch (its neural policies) and plotting libraries; the
    estimators use neither."""

    class _Meta(type):
        def __getattr__(cls, name: str) -> type:
            if name.startswith("__"):
                raise AttributeError(name)
            return _Meta(name, (), {})

    class _Any(types.ModuleType):
        def __getattr__(self, name: str) -> type:
            if name.startswith("__"):
                raise AttributeError(name)
            return _Meta(name, (), {})

    for m in ("torch", "torch.nn", "torch.optim", "torch.nn.functional", "torch.utils",
              "torch.utils.data", "matplotlib", "matplotlib.pyplot", "seaborn"):
        sys.modules.setdefault(m, _Any(m))


def obd_inputs(click, item, position, propensity, affinity, alpha, beta):
    """Logged arrays and a fixed evaluation policy and reward model, in obp's layout:
    action_dist and q_hat of shape (impressions, 80 items, 3 positions)."""
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


def main() -> None:
    stub_heavy_imports()
    import obp
    import pandas as pd
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedInverseProbabilityWeighting,
    )

    data = Path(obp.__file__).parent / "dataset/obd/random/all/all.csv"
    log = pd.read_csv(data, index_col=0)
    aff = log[[f"user-item_affinity_{i}" for i in range(80)]].to_numpy(dtype=float)
    prior = json.loads((Path(__file__).resolve().parents[1] /
                        "src/tuesday/examples/recommend/data/obd_bts_prior.json").read_text())
    alpha, beta = np.array(prior["alpha"], float), np.array(prior["beta"], float)
    click = log["click"].to_numpy(dtype=float)
    item = log["item_id"].to_numpy()
    position = log["position"].to_numpy() - 1
    pscore = log["propensity_score"].to_numpy(dtype=float)
    action_dist, q_hat = obd_inputs(click, item, position, pscore, aff, alpha, beta)
    args = dict(reward=click, action=item, position=position, pscore=pscore,
                action_dist=action_dist, estimated_rewards_by_reg_model=q_hat)
    out = {}
    for name, est in (("ips", InverseProbabilityWeighting()),
                      ("snips", SelfNormalizedInverseProbabilityWeighting()),
                      ("dm", DirectMethod()), ("dr", DoublyRobust())):
        value = float(est.estimate_policy_value(**args))
        ci = est.estimate_interval(**args, alpha=0.05, n_bootstrap_samples=N_BOOTSTRAP,
                                   random_state=SEED)
        lo = float(ci["95.0% CI (lower)"])
        hi = float(ci["95.0% CI (upper)"])
        out[name] = (value, lo, hi)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
