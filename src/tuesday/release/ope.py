"""Off-policy evaluation of a ranking version on what production served.

Production's rank requests are in the prediction log: every candidate with the features
it was scored with and what the slate rules found on it, and for each shown item its
position and its probability of being there under the serving policy. The clicks come
back to the model's feedback source by request id, item and position. ``evaluate``
scores the logged candidates with another version, arranges each request's slate again
with the model's rules and exploration (``tuesday.train.slates``: the same policy the
version would serve with), and estimates its click rate per impression from production's
impressions with ``tuesday.train.ope``'s estimators, beside production's realised one.

A version that reads features production did not log, or a model whose rules include a
plain ``rule(fn)`` function (which needs the request rows), cannot be replayed: the
evaluation says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from tuesday.data import tables
from tuesday.data.predictions import read_log
from tuesday.errors import TuesdayError, ValidationFailed
from tuesday.project import Model
from tuesday.train import ope, slates
from tuesday.train.training import load_model
from tuesday.workspace import Workspace

__all__ = ["Replayed", "evaluate", "feedback_rewards", "gate", "logged_requests", "replay"]

#: the slices every evaluation reports
SLICES = ("position",)


def logged_requests(ws: Workspace, model: Model, version: int) -> pd.DataFrame:
    """The rank requests ``version`` answered (not as a shadow): one row per logged
    candidate, with ``reward`` (the click posted back, 0 without one) on shown rows."""
    log = read_log(ws, model.name)
    if log.empty:
        return log.assign(reward=pd.Series(dtype=float))
    log = log[(log["version"] == version) & (log["variant"] != "shadow")]
    shown = log["position"].notna()
    ranked = set(log.loc[shown, "request_id"])
    log = log[log["request_id"].isin(ranked)].copy()
    log["reward"] = np.where(log["position"].notna(), 0.0, np.nan)
    fb = feedback_rewards(ws, model)
    if not fb.empty and not log.empty:
        key = ["request_id", "entity"]
        got = log[key].merge(fb, on=key, how="left")["reward"].to_numpy()
        log["reward"] = np.where(log["position"].notna() & ~np.isnan(got), got,
                                 log["reward"])
    return log.reset_index(drop=True)


def feedback_rewards(ws: Workspace, model: Model) -> pd.DataFrame:
    """The rewards posted back, by (request id, entity) (the largest if several)."""
    sl = model.slate
    empty = pd.DataFrame(columns=["request_id", "entity", "reward"])
    if sl is None or sl.feedback is None:
        return empty
    last = tables.latest_version(ws, sl.feedback)
    if last is None:
        return empty
    from deltalake import DeltaTable

    t = DeltaTable(str(ws.table_path(sl.feedback)), version=int(last["version"])
                   ).to_pyarrow_table().to_pandas()
    if t.empty:
        return pd.DataFrame(columns=["request_id", "entity", "reward"])
    out = pd.DataFrame({"request_id": t["request_id"].astype(str),
                        "entity": t[model.entity.key].astype(str),
                        "reward": pd.to_numeric(t[sl.reward], errors="coerce").fillna(0.0)})
    return out.groupby(["request_id", "entity"], as_index=False)["reward"].max()


@dataclass(frozen=True)
class Replayed:
    """Production's impressions and a version's probability of each under its policy."""

    reward: np.ndarray
    propensity: np.ndarray
    pi_e: np.ndarray
    position: np.ndarray
    requests: int
    #: per impression: the logged features of every candidate of its request, and the
    #: version's probability of each candidate at the impression's position (for a
    #: reward model: ``q_policy`` averages over them)
    candidates: list[tuple[np.ndarray, np.ndarray]]
    names: tuple[str, ...]
    x_shown: np.ndarray
    #: the shown item's index among its request's candidates
    shown_index: np.ndarray


def replay(ws: Workspace, model: Model, manifest: dict[str, Any], log: pd.DataFrame, *,
           seed: int = 0) -> Replayed:
    """Score the logged candidates with the version of ``manifest`` and arrange each
    logged request's slate with the model's rules and exploration."""
    names = tuple(manifest["features"])
    fns = [r.name for r in model.rules if r.kind == "function"]
    if fns:
        raise ValidationFailed(
            f"Model {model.name!r} cannot be evaluated off-policy: its rule(s) "
            f"{', '.join(map(repr, fns))} are functions of the request row, which the log "
            "does not keep.",
            fix="Express them with keep/drop/boost/max_per/pin (their outcome per row is "
                "logged), or compare the versions online (deploy canary).")
    feats = [orjson.loads(f) if f else {} for f in log["features"]]
    logged_names = set().union(*(f.keys() for f in feats)) if feats else set()
    absent = [n for n in names if n not in logged_names]
    if absent:
        raise ValidationFailed(
            f"Model {model.name!r}: the version reads feature(s) {', '.join(absent)} that "
            "the production version did not log, so its slates cannot be replayed.",
            fix="Evaluate it online (deploy shadow or canary) once it is served.")
    x = np.array([[np.nan if f.get(n) is None else f[n] for n in names] for f in feats],
                 dtype=float).reshape(len(feats), len(names))
    fitted = load_model(ws, manifest)
    raw = fitted.predict(x, num_threads=1)
    hits_of = [orjson.loads(r) if isinstance(r, str) and r else {} for r in log["rules"]]
    position = log["position"].to_numpy(dtype=float)
    reward_all = log["reward"].to_numpy(dtype=float)
    prop_all = log["propensity"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    reward, prop, pi_e, pos, cands, shown_rows, shown_in = [], [], [], [], [], [], []
    requests = 0
    for _, idx in sorted(log.groupby("request_id", sort=False).indices.items()):
        shown = np.flatnonzero(~np.isnan(position[idx]))
        if not len(shown):
            continue
        requests += 1
        size = int(np.nanmax(position[idx]))
        h = slates.Hits.from_rows(model.rules, [hits_of[i] for i in idx])
        got = slates.arrange(model.rules, raw[idx], h, size=size, rng=rng)
        probs = got.probabilities
        for j in shown:
            i = idx[j]
            k = int(position[i]) - 1
            probs_k = probs[:, k] if k < probs.shape[1] else np.zeros(len(idx))
            reward.append(reward_all[i])
            prop.append(prop_all[i])
            pi_e.append(float(probs_k[j]))
            pos.append(k)
            cands.append((x[idx], probs_k))
            shown_rows.append(i)
            shown_in.append(int(j))
    return Replayed(np.array(reward), np.array(prop), np.array(pi_e),
                    np.array(pos, dtype=np.int64), requests, cands, names,
                    x[np.array(shown_rows, dtype=np.int64)] if shown_rows
                    else np.zeros((0, len(names))), np.array(shown_in, dtype=np.int64))


def evaluate(ws: Workspace, model: Model, row: dict[str, Any],
             current: dict[str, Any], *, estimators: tuple[str, ...] = ("ips", "snips", "dr"),
             confidence: float = 0.95, n_bootstrap: int = 2000, seed: int = 12345
             ) -> dict[str, Any]:
    """Estimates of the click rate of version ``row`` on the requests production
    version ``current`` answered, beside production's realised click rate."""
    if model.task != "ranking":
        raise TuesdayError(f"Model {model.name!r} is not a ranking model; off-policy "
                           "evaluation estimates a slate policy's click rate.",
                           fix="Use `tuesday plan` for other models.")
    log = logged_requests(ws, model, int(current["version"]))
    base: dict[str, Any] = {"model": model.name, "version": int(row["version"]),
                            "production": int(current["version"]), "requests": 0,
                            "impressions": 0}
    if log.empty:
        return {**base, "estimates": {}, "realised": None,
                "message": f"production version {current['version']} has no logged slates"}
    rp = replay(ws, model, row["manifest"], log, seed=seed)
    if not len(rp.reward):
        return {**base, "estimates": {}, "realised": None,
                "message": "no logged impression"}
    logged = ope.Logged(rp.reward, rp.propensity)
    q_logged = q_policy = None
    if any(e in ope.MODEL_BASED for e in estimators):
        q_logged, q_policy = _reward_model(rp, seed)
    out = {}
    for e in estimators:
        got = ope.estimate(e, logged, rp.pi_e, q_logged=q_logged, q_policy=q_policy,
                           confidence=confidence, n_bootstrap=n_bootstrap, seed=seed,
                           slices={"position": rp.position + 1})
        out[e] = got.to_dict()
    realised = float(rp.reward.mean())
    return {**base, "requests": rp.requests, "impressions": len(rp.reward),
            "clicks": float(rp.reward.sum()), "realised": realised, "estimates": out,
            "confidence": confidence,
            "message": f"{len(rp.reward)} impressions of {rp.requests} requests served by "
                       f"version {current['version']}"}


def _reward_model(rp: Replayed, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A click model of production's impressions (features and position), cross-fitted,
    for the model-based estimators: its prediction for the item shown, and its expected
    click under the version's choice at the impression's position."""
    n = len(rp.reward)
    width = max(len(c[0]) for c in rp.candidates) if n else 0
    dim = len(rp.names)
    xc = np.zeros((n, width, dim))
    pi = np.zeros((n, width))
    for i, (xs, probs) in enumerate(rp.candidates):
        xc[i, :len(xs)] = np.nan_to_num(xs)
        pi[i, :len(xs)] = probs
    x_shown = np.nan_to_num(rp.x_shown)
    if len(np.unique(rp.reward)) < 2:
        q = np.full((n, width, int(rp.position.max()) + 1), float(rp.reward.mean()))
    else:
        q = ope.cross_fit_rewards(x_shown, rp.reward, rp.position, xc, seed=seed)
    rows = np.arange(n)
    q_k = q[rows, :, rp.position]
    # the item shown is a candidate of its request: its own prediction
    q_logged = q_k[rows, rp.shown_index]
    totals = pi.sum(axis=1)
    q_policy = np.where(totals > 0, (q_k * pi).sum(axis=1) / np.where(totals > 0, totals, 1),
                        0.0)
    return q_logged, q_policy


def gate(ws: Workspace, model: Model, row: dict[str, Any],
         current: dict[str, Any] | None, *, estimator: str, confidence: float,
         min_lift: float, min_rows: int) -> dict[str, Any]:
    """The ``ope`` gate: the lower end of the version's estimated click rate beats
    production's realised one by ``min_lift`` on at least ``min_rows`` impressions."""
    base = {"gate": "ope", "estimator": estimator, "confidence": confidence,
            "min_lift": min_lift, "min_rows": min_rows}
    if current is None:
        return {**base, "passed": True, "rows": 0,
                "message": "no production version to compare with"}
    try:
        res = evaluate(ws, model, row, current, estimators=(estimator,),
                       confidence=confidence)
    except ValidationFailed as exc:
        return {**base, "passed": False, "rows": 0, "message": exc.message}
    n = res["impressions"]
    if n < min_rows:
        return {**base, "passed": False, "rows": n,
                "message": f"only {n} logged impression(s) of production version "
                           f"{current['version']} (at least {min_rows} needed): "
                           f"{res['message']}"}
    est = res["estimates"][estimator]
    realised = res["realised"]
    need = realised * (1 + min_lift)
    passed = bool(est["lower"] > need)
    return {**base, "passed": passed, "rows": n, "estimate": est["value"],
            "lower": est["lower"], "upper": est["upper"], "realised": realised,
            "message": f"{estimator} click rate {est['value']:.4f} "
                       f"({confidence:.0%} interval {est['lower']:.4f} to {est['upper']:.4f}) "
                       f"vs production version {current['version']}'s realised "
                       f"{realised:.4f} on {n} impressions"
                       + (f" (needs more than {need:.4f})" if min_lift else "")}
