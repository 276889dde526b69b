"""Off-policy evaluation on the Open Bandit Dataset sample, side by side with obp.

The dataset's own protocol: estimate the click rate of the Bernoulli Thompson Sampling
policy (its action distribution from the prior it ran with, by simulation) from the log
of the uniform random policy, and compare it with the click rate the Thompson policy
actually got in its own log (0.0042). As obp's example does: ``--runs`` bootstrap samples
of the random log (the same resamples: ``RandomState(b).choice``), a logistic regression
reward model (C=1000) per position with 3-fold cross-fitting for DM and DR, relative
error |estimate - truth| / truth, mean and standard deviation over the runs.

Printed side by side:

1. tuesday's estimators and obp's on the same inputs (tuesday's action distribution and
   reward model of the full log): values, intervals (10,000 bootstrap resamples, seed
   12345) and seconds;
2. the protocol with tuesday's code (its own simulation of the Thompson policy and its
   own reward model) and with obp's code end to end.

obp runs in its own virtualenv (bench/ope_obp_pins.py says how to make it); without it
only tuesday's side runs.

    PYTHONPATH=src .venv/bin/python bench/ope_obd.py --runs 20 --draws 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tuesday.examples.recommend import project as recommend
from tuesday.train import ope, slates

HERE = Path(__file__).resolve().parent
OBP_PYTHON = HERE / ".venv-obp" / "bin" / "python"
SEED = 12345
ESTIMATORS = ("dm", "ips", "snips", "dr")
OBP_NAMES = {"dm": "dm", "ipw": "ips", "snipw": "snips", "dr": "dr"}
#: Open Bandit Pipeline's examples/obd/README.md (small sample, 20 runs, logistic
#: regression, evaluation policy bts, behaviour policy random, campaign all)
OBP_README = {"dm": (0.180288, 0.114694), "ips": (0.333113, 0.350425),
              "dr": (0.304401, 0.347842)}


def obd_arrays() -> dict[str, np.ndarray]:
    """The random log as obp reads it: one-hot user features (first level dropped) as the
    context, the items' label-encoded categories and price as the action context."""
    rnd, bts, items = recommend.raw_logs()
    users = [c for c in rnd.columns if c.startswith("user_feature")]
    context = pd.get_dummies(rnd[users], drop_first=True).to_numpy(dtype=float)
    cats = items[["item_feature_1", "item_feature_2", "item_feature_3"]].apply(
        lambda s: pd.Series(pd.factorize(s, sort=True)[0], index=s.index))
    action_context = np.c_[cats.to_numpy(dtype=float), items["item_feature_0"].to_numpy()]
    return {"reward": rnd["click"].to_numpy(dtype=float), "action": rnd["item_id"].to_numpy(),
            "position": rnd["position"].to_numpy() - 1,
            "pscore": rnd["propensity_score"].to_numpy(dtype=float), "context": context,
            "action_context": action_context,
            "truth": np.array(bts["click"].mean())}


def reward_model(a: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Cross-fitted click probabilities of every item at every position for the rows
    ``idx`` of the log (features: context and the item's action context)."""
    ctx, act = a["context"][idx], a["action"][idx]
    ac = a["action_context"]
    x_logged = np.c_[ctx, ac[act]]
    n, items = len(idx), len(ac)
    x_all = np.concatenate([np.repeat(ctx[:, None, :], items, axis=1),
                            np.repeat(ac[None, :, :], n, axis=0)], axis=2)
    return ope.cross_fit_rewards(x_logged, a["reward"][idx], a["position"][idx], x_all,
                                 folds=3, seed=SEED)


def tuesday_protocol(a: dict[str, np.ndarray], dist: np.ndarray, runs: int) -> dict:
    truth = float(a["truth"])
    est: dict[str, list[float]] = {e: [] for e in ESTIMATORS}
    n = len(a["reward"])
    t0 = time.perf_counter()
    for b in range(runs):
        idx = np.random.RandomState(b).choice(np.arange(n), size=n, replace=True)
        q = reward_model(a, idx)
        action_dist = np.broadcast_to(dist, (n, *dist.shape))
        pi_e, q_log, q_pol = ope.from_action_dist(action_dist, a["action"][idx],
                                                  a["position"][idx], q)
        logged = ope.Logged(a["reward"][idx], a["pscore"][idx])
        for e in ESTIMATORS:
            est[e].append(float(ope.round_values(e, logged, pi_e, q_log, q_pol).mean()))
    err = {e: [abs(v - truth) / truth for v in vs] for e, vs in est.items()}
    return {"truth": truth, "runs": runs, "seconds_runs": time.perf_counter() - t0,
            "estimates": {e: float(np.mean(v)) for e, v in est.items()},
            "relative_error_mean": {e: float(np.mean(v)) for e, v in err.items()},
            "relative_error_std": {e: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
                                   for e, v in err.items()}}


def same_inputs(a: dict[str, np.ndarray], dist: np.ndarray, n_boot: int) -> dict:
    n = len(a["reward"])
    q = reward_model(a, np.arange(n))
    action_dist = np.ascontiguousarray(np.broadcast_to(dist, (n, *dist.shape)))
    logged = ope.Logged(a["reward"], a["pscore"])
    out = {}
    for e in ESTIMATORS:
        t0 = time.perf_counter()
        pi_e, q_log, q_pol = ope.from_action_dist(action_dist, a["action"], a["position"], q)
        value = float(ope.round_values(e, logged, pi_e, q_log, q_pol).mean())
        t1 = time.perf_counter()
        got = ope.estimate(e, logged, pi_e, q_logged=q_log, q_policy=q_pol,
                           n_bootstrap=n_boot, seed=SEED)
        t2 = time.perf_counter()
        out[e] = {"value": value, "lower": got.lower, "upper": got.upper,
                  "seconds_value": t1 - t0, "seconds_interval": t2 - t1}
    peer = None
    if OBP_PYTHON.exists():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "inputs.npz"
            np.savez(path, reward=a["reward"], action=a["action"], position=a["position"],
                     pscore=a["pscore"], action_dist=action_dist, q_hat=q,
                     n_bootstrap=np.array(n_boot))
            res = subprocess.run([str(OBP_PYTHON), str(HERE / "ope_obd_obp.py"),
                                  "same-inputs", str(path)], capture_output=True, text=True,
                                 check=True, cwd=HERE)
            peer = {OBP_NAMES.get(k, k): v for k, v in json.loads(res.stdout).items()}
    return {"tuesday": out, "obp": peer}


def obp_protocol(runs: int, draws: int) -> dict | None:
    if not OBP_PYTHON.exists():
        return None
    res = subprocess.run([str(OBP_PYTHON), str(HERE / "ope_obd_obp.py"), "protocol",
                          str(runs), str(draws)], capture_output=True, text=True, check=True,
                         cwd=HERE)
    out = json.loads(res.stdout)
    for k in ("estimates", "relative_error_mean", "relative_error_std"):
        out[k] = {OBP_NAMES.get(n, n): v for n, v in out[k].items()}
    return out


def cell(v: tuple[float, float] | None) -> str:
    return f"{v[0]:.3f} ± {v[1]:.3f}" if v else "-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--draws", type=int, default=1_000_000)
    ap.add_argument("--bootstrap", type=int, default=10_000)
    args = ap.parse_args()
    a = obd_arrays()
    alpha, beta = recommend.bts_prior()
    t0 = time.perf_counter()
    dist = slates.thompson_distribution(alpha, beta, 3, draws=args.draws, seed=SEED)
    t_dist = time.perf_counter() - t0
    print(f"Thompson policy's action distribution: {args.draws} simulated slates in "
          f"{t_dist:.1f} s; truth (its own log's click rate) {float(a['truth']):.5f}\n")
    same = same_inputs(a, dist, args.bootstrap)
    print(f"1. Same inputs (the full random log, {args.bootstrap} bootstrap resamples):")
    print(f"{'':6} {'tuesday':>12} {'obp':>12} {'|diff|':>9}  {'interval (tuesday)':>22}"
          f"  {'tuesday s':>9} {'obp s':>7}")
    for e in ESTIMATORS:
        t = same["tuesday"][e]
        o = (same["obp"] or {}).get(e)
        diff = max(abs(t[k] - o[k]) for k in ("value", "lower", "upper")) if o else None
        ts = t["seconds_value"] + t["seconds_interval"]
        os_ = (o["seconds_value"] + o["seconds_interval"]) if o else None
        print(f"{e:6} {t['value']:12.7f} {o['value'] if o else float('nan'):12.7f} "
              f"{diff if diff is not None else float('nan'):9.1e}  "
              f"[{t['lower']:.5f}, {t['upper']:.5f}]  {ts:9.3f} "
              f"{os_ if os_ is not None else float('nan'):7.3f}")
    mine = tuesday_protocol(a, dist, args.runs)
    peer = obp_protocol(args.runs, args.draws)
    print(f"\n2. The protocol, {args.runs} bootstrap runs: relative error of the estimated "
          "click rate of the Thompson policy (mean, std)")
    print(f"{'':6} {'tuesday':>20} {'obp 0.5.7 here':>20} {'obp README':>20} "
          f"{'estimate (tuesday)':>19}")
    for e in ESTIMATORS:
        m = (mine["relative_error_mean"][e], mine["relative_error_std"][e])
        p = (peer["relative_error_mean"][e], peer["relative_error_std"][e]) if peer else None
        r = OBP_README.get(e)
        print(f"{e:6} {cell(m):>20} {cell(p):>20} {cell(r):>20} "
              f"{mine['estimates'][e]:19.5f}")
    print(f"\ntuesday: {mine['seconds_runs']:.1f} s for the runs; obp: "
          + (f"{peer['seconds_runs']:.1f} s for the runs, {peer['seconds_action_dist']:.1f} s "
             f"for its action distribution" if peer else "not run (no bench/.venv-obp)"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
