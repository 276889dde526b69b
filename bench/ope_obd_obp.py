"""obp's side of bench/ope_obd.py; run in obp's virtualenv (see bench/ope_obp_pins.py for
how to make it), by bench/ope_obd.py, never by the tests.

    bench/.venv-obp/bin/python bench/ope_obd_obp.py same-inputs INPUTS.npz
        obp's IPW, SNIPW, DM and DR on the arrays tuesday used (values, 95% bootstrap
        intervals, seconds), as JSON
    bench/.venv-obp/bin/python bench/ope_obd_obp.py protocol RUNS DRAWS
        the Open Bandit protocol end to end with obp's own code: estimate the Bernoulli TS
        policy from the random log (bootstrap runs of the log, logistic regression reward
        model with 3-fold cross-fitting) against the TS log's click rate; relative errors
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from ope_obp_pins import stub_heavy_imports

SEED = 12345


def same_inputs(path: str) -> dict:
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedInverseProbabilityWeighting,
    )

    z = np.load(path)
    args = dict(reward=z["reward"], action=z["action"], position=z["position"],
                pscore=z["pscore"], action_dist=z["action_dist"],
                estimated_rewards_by_reg_model=z["q_hat"])
    n_boot = int(z["n_bootstrap"])
    out = {}
    for name, est in (("ips", InverseProbabilityWeighting()),
                      ("snips", SelfNormalizedInverseProbabilityWeighting()),
                      ("dm", DirectMethod()), ("dr", DoublyRobust())):
        t0 = time.perf_counter()
        value = float(est.estimate_policy_value(**args))
        t1 = time.perf_counter()
        ci = est.estimate_interval(**args, alpha=0.05, n_bootstrap_samples=n_boot,
                                   random_state=SEED)
        t2 = time.perf_counter()
        out[name] = {"value": value, "lower": float(ci["95.0% CI (lower)"]),
                     "upper": float(ci["95.0% CI (upper)"]),
                     "seconds_value": t1 - t0, "seconds_interval": t2 - t1}
    return out


def protocol(runs: int, draws: int) -> dict:
    from obp.dataset import OpenBanditDataset
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        OffPolicyEvaluation,
        RegressionModel,
        SelfNormalizedInverseProbabilityWeighting,
    )
    from obp.policy import BernoulliTS
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    obd = OpenBanditDataset(behavior_policy="random", campaign="all")
    policy = BernoulliTS(n_actions=obd.n_actions, len_list=obd.len_list,
                         is_zozotown_prior=True, campaign="all", random_state=SEED)
    dist = policy.compute_batch_action_dist(n_sim=draws)
    truth = OpenBanditDataset.calc_on_policy_policy_value_estimate(behavior_policy="bts",
                                                                   campaign="all")
    t_dist = time.perf_counter() - t0
    estimators = [DirectMethod(), InverseProbabilityWeighting(),
                  SelfNormalizedInverseProbabilityWeighting(), DoublyRobust()]
    errors: dict[str, list[float]] = {e.estimator_name: [] for e in estimators}
    estimates: dict[str, list[float]] = {e.estimator_name: [] for e in estimators}
    t1 = time.perf_counter()
    for b in range(runs):
        fb = obd.sample_bootstrap_bandit_feedback(random_state=b)
        reg = RegressionModel(n_actions=obd.n_actions, len_list=obd.len_list,
                              action_context=obd.action_context,
                              base_model=LogisticRegression(C=1000, max_iter=10000,
                                                            random_state=SEED))
        q_hat = reg.fit_predict(context=fb["context"], action=fb["action"],
                                reward=fb["reward"], position=fb["position"],
                                pscore=fb["pscore"], n_folds=3, random_state=SEED)
        ope = OffPolicyEvaluation(bandit_feedback=fb, ope_estimators=estimators)
        action_dist = np.tile(dist, (fb["n_rounds"], 1, 1))
        values = ope.estimate_policy_values(action_dist=action_dist,
                                            estimated_rewards_by_reg_model=q_hat)
        for name, v in values.items():
            estimates[name].append(float(v))
            errors[name].append(abs(float(v) - truth) / truth)
    return {"truth": float(truth), "runs": runs, "draws": draws,
            "seconds_action_dist": t_dist, "seconds_runs": time.perf_counter() - t1,
            "estimates": {k: float(np.mean(v)) for k, v in estimates.items()},
            "relative_error_mean": {k: float(np.mean(v)) for k, v in errors.items()},
            "relative_error_std": {k: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
                                   for k, v in errors.items()}}


if __name__ == "__main__":
    stub_heavy_imports()
    if sys.argv[1] == "same-inputs":
        print(json.dumps(same_inputs(sys.argv[2])))
    else:
        print(json.dumps(protocol(int(sys.argv[2]), int(sys.argv[3]))))
