"""Off-policy evaluation: the click rate a new policy would get, estimated from a log of
what another policy showed, with the probability it showed it.

The log has one row per impression: the item shown, its position in the slate, the
reward (a click: 1 or 0) and the logging policy's probability of showing that item at
that position (its *propensity*). The candidate policy is described by its probability
of the same item at the same position for the same request (``pi_e``); model-based
estimators also take a reward model's predictions. The estimators, per impression
``i`` with weight ``w_i = pi_e_i / propensity_i``:

* ``ips`` (inverse propensity scoring): the mean of ``w_i * r_i``;
* ``snips`` (self-normalised IPS): the mean of ``w_i * r_i / mean(w)``;
* ``dm`` (direct method): the mean of ``q_pi_i``, the reward model's expected reward of
  the candidate's choice at the impression's position;
* ``dr`` (doubly robust): the mean of ``q_pi_i + w_i * (r_i - q_i)``, with ``q_i`` the
  reward model's prediction for the item actually shown.

These are the position-wise estimators of the Open Bandit Pipeline (Saito et al., "Open
Bandit Dataset and Pipeline"): the estimates equal ``obp.ope``'s on the same inputs, and
the confidence interval is its non-parametric bootstrap of the per-impression values
(percentiles of ``n_bootstrap`` resampled means, seeded: the same seed gives the same
interval as obp). ``interval="normal"`` gives the normal approximation instead, without
resampling.

Example:
    >>> import numpy as np
    >>> logged = Logged(reward=np.array([1.0, 0.0, 0.0, 1.0]),
    ...                 propensity=np.array([0.5, 0.5, 0.25, 0.25]))
    >>> round(estimate("ips", logged, pi_e=np.array([1.0, 0.0, 0.5, 0.5])).value, 4)
    1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tuesday.errors import TuesdayError

ESTIMATORS = ("ips", "snips", "dm", "dr")
#: estimators that need a reward model
MODEL_BASED = ("dm", "dr")
INTERVALS = ("bootstrap", "normal")


@dataclass(frozen=True)
class Logged:
    """Logged feedback, one row per impression: reward and the logging propensity."""

    reward: np.ndarray
    propensity: np.ndarray

    def __post_init__(self) -> None:
        r = np.asarray(self.reward, dtype=float)
        p = np.asarray(self.propensity, dtype=float)
        if r.shape != p.shape or r.ndim != 1:
            raise TuesdayError(f"The logged rewards and propensities must be two 1-d arrays "
                               f"of one length; got shapes {r.shape} and {p.shape}.",
                               fix="Pass one reward and one propensity per impression.")
        bad = ~np.isfinite(p) | (p <= 0) | (p > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise TuesdayError(
                f"{int(bad.sum())} logged propensit{'y is' if bad.sum() == 1 else 'ies are'} "
                f"not within (0, 1] (the first, impression {i}: {p[i]!r}); off-policy "
                "estimates need the logging policy's probability of every impression.",
                fix="Log impressions with their propensity (the rank endpoint does), or "
                    "leave out the ones logged without it.")
        if not np.isfinite(r).all():
            raise TuesdayError("The logged rewards must be numbers; some are missing.",
                               fix="Count an impression without feedback as reward 0.")
        object.__setattr__(self, "reward", r)
        object.__setattr__(self, "propensity", p)

    def __len__(self) -> int:
        return len(self.reward)


@dataclass(frozen=True)
class Estimate:
    """One estimator's estimate of the policy value and its confidence interval."""

    estimator: str
    value: float
    lower: float
    upper: float
    rows: int
    confidence: float
    interval: str
    #: the effective sample size of the weights, (sum w)^2 / sum w^2
    effective_rows: float = float("nan")
    slices: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": self.estimator, "value": self.value, "lower": self.lower,
                "upper": self.upper, "rows": self.rows, "confidence": self.confidence,
                "interval": self.interval, "effective_rows": self.effective_rows,
                "slices": list(self.slices)}


def round_values(estimator: str, logged: Logged, pi_e: np.ndarray,
                 q_logged: np.ndarray | None = None,
                 q_policy: np.ndarray | None = None) -> np.ndarray:
    """The per-impression values whose mean is the estimate (what the bootstrap
    resamples). ``pi_e``: the candidate's probability of each logged item at its
    position; ``q_logged``: the reward model's prediction for it; ``q_policy``: the
    reward model's expected reward of the candidate's choice at that position."""
    if estimator not in ESTIMATORS:
        raise TuesdayError(f"Off-policy estimator {estimator!r} is unknown.",
                           fix=f"Use one of {', '.join(ESTIMATORS)}.")
    w = _weights(logged, pi_e)
    r = logged.reward
    if estimator == "ips":
        return r * w
    if estimator == "snips":
        mean_w = w.mean()
        return r * w / mean_w if mean_w > 0 else np.zeros_like(r)
    q_pol = _need(q_policy, "q_policy", estimator, len(r))
    if estimator == "dm":
        return q_pol
    q_log = _need(q_logged, "q_logged", estimator, len(r))
    return q_pol + w * (r - q_log)


def estimate(estimator: str, logged: Logged, pi_e: np.ndarray, *,
             q_logged: np.ndarray | None = None, q_policy: np.ndarray | None = None,
             confidence: float = 0.95, interval: str = "bootstrap",
             n_bootstrap: int = 2000, seed: int = 12345,
             slices: Mapping[str, np.ndarray] | None = None) -> Estimate:
    """An estimator's value of the candidate policy, its interval, and per slice.

    ``slices`` maps a name to one value per impression; each value's impressions are
    estimated on their own (self-normalised within the slice).
    """
    if len(logged) == 0:
        raise TuesdayError("There are no logged impressions to estimate from.",
                           fix="Serve the production policy with logging on, post the "
                               "clicks back, and estimate again.")
    if interval not in INTERVALS:
        raise TuesdayError(f"interval must be one of {', '.join(INTERVALS)}; got "
                           f"{interval!r}.", fix="Use 'bootstrap' or 'normal'.")
    if not 0 < confidence < 1:
        raise TuesdayError(f"confidence must be within (0, 1); got {confidence!r}.",
                           fix="Use e.g. 0.95.")
    values = round_values(estimator, logged, pi_e, q_logged, q_policy)
    lo, hi = _interval(values, confidence, interval, n_bootstrap, seed)
    w = _weights(logged, pi_e)
    ess = float(w.sum() ** 2 / (w ** 2).sum()) if (w ** 2).sum() > 0 else 0.0
    per: list[dict[str, Any]] = []
    for name, labels in (slices or {}).items():
        labels = np.asarray(labels)
        for value in _distinct(labels):
            mask = labels == value
            sub = Logged(logged.reward[mask], logged.propensity[mask])
            got = estimate(estimator, sub, np.asarray(pi_e)[mask],
                           q_logged=None if q_logged is None else np.asarray(q_logged)[mask],
                           q_policy=None if q_policy is None else np.asarray(q_policy)[mask],
                           confidence=confidence, interval=interval,
                           n_bootstrap=n_bootstrap, seed=seed)
            per.append({"slice": name, "value": _plain(value), "rows": got.rows,
                        "estimate": got.value, "lower": got.lower, "upper": got.upper})
    return Estimate(estimator, float(values.mean()), lo, hi, len(values), confidence,
                    interval, ess, tuple(per))


def estimate_all(logged: Logged, pi_e: np.ndarray, *,
                 estimators: Sequence[str] = ("ips", "snips"),
                 q_logged: np.ndarray | None = None, q_policy: np.ndarray | None = None,
                 **kwargs: Any) -> dict[str, Estimate]:
    """``estimate`` for each estimator of ``estimators``."""
    return {e: estimate(e, logged, pi_e, q_logged=q_logged, q_policy=q_policy, **kwargs)
            for e in estimators}


def bootstrap_interval(values: np.ndarray, confidence: float = 0.95,
                       n_bootstrap: int = 2000, seed: int = 12345) -> tuple[float, float]:
    """Percentile bootstrap of the mean: ``n_bootstrap`` resamples with replacement by
    ``numpy.random.RandomState(seed)``, in the order obp draws them, so the same seed
    gives obp's interval."""
    rs = np.random.RandomState(seed)
    v = np.asarray(values, dtype=float)
    n = len(v)
    means = np.empty(n_bootstrap)
    # ``choice(values, size=n)`` draws ``randint(0, n, size=n)``; consecutive draws are one
    # longer draw, so a block of resamples at once gives the same indices
    block = max(1, min(n_bootstrap, 2_000_000 // max(n, 1)))
    for b0 in range(0, n_bootstrap, block):
        m = min(block, n_bootstrap - b0)
        idx = rs.randint(0, n, size=(m, n))
        means[b0:b0 + m] = v[idx].mean(axis=1)
    alpha = 1.0 - confidence
    return (float(np.percentile(means, 100 * (alpha / 2))),
            float(np.percentile(means, 100 * (1.0 - alpha / 2))))


def normal_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean plus or minus the normal quantile times the standard error."""
    from scipy.stats import norm

    n = len(values)
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = float(norm.ppf(0.5 + confidence / 2))
    return mean - z * se, mean + z * se


def from_action_dist(action_dist: np.ndarray, action: np.ndarray, position: np.ndarray,
                     q_hat: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per-impression inputs from dense arrays in obp's layout: ``action_dist`` and
    ``q_hat`` of shape (impressions, items, positions), ``action`` and ``position`` the
    0-based item and position of each impression. Returns ``pi_e``, ``q_logged`` and
    ``q_policy`` (the last two None without ``q_hat``)."""
    n = len(action)
    rows = np.arange(n)
    pi_e = action_dist[rows, action, position]
    if q_hat is None:
        return pi_e, None, None
    q_logged = q_hat[rows, action, position]
    pi_k = action_dist[rows, :, position]
    q_k = q_hat[rows, :, position]
    q_policy = np.average(q_k, weights=pi_k, axis=1)
    return pi_e, q_logged, q_policy


def cross_fit_rewards(x_logged: np.ndarray, reward: np.ndarray, position: np.ndarray,
                      x_candidates: np.ndarray, *, folds: int = 3, seed: int = 12345,
                      estimator: Any = None) -> np.ndarray:
    """A reward model's predictions for every candidate of every impression, fitted on
    the other folds' impressions (cross-fitting: no impression's own click informs its
    prediction). One classifier per position, as obp's ``RegressionModel``.

    ``x_logged``: (impressions, features) of the item shown; ``x_candidates``:
    (impressions, items, features) of every item the impression could have shown.
    Returns (impressions, items, positions) click probabilities. ``estimator``: any
    scikit-learn classifier (default: logistic regression, C=1000, as obp's example).
    """
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    base = estimator if estimator is not None else LogisticRegression(
        C=1000, max_iter=10000, random_state=seed)
    n, items, dim = x_candidates.shape
    positions = int(position.max()) + 1
    out = np.zeros((n, items, positions))
    kf = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in kf.split(x_logged):
        for k in range(positions):
            rows = train[position[train] == k]
            y = reward[rows]
            if len(np.unique(y)) < 2:  # no click at this position in these folds
                out[test, :, k] = float(y.mean()) if len(y) else 0.0
                continue
            model = clone(base).fit(x_logged[rows], y)
            flat = x_candidates[test].reshape(-1, dim)
            out[test, :, k] = model.predict_proba(flat)[:, 1].reshape(len(test), items)
    return out


# --------------------------------------------------------------------------- helpers


def _weights(logged: Logged, pi_e: np.ndarray) -> np.ndarray:
    p = np.asarray(pi_e, dtype=float)
    if p.shape != logged.reward.shape:
        raise TuesdayError(f"pi_e must hold one probability per logged impression "
                           f"({len(logged)}); got shape {p.shape}.",
                           fix="Give the candidate's probability of each logged item at "
                               "its logged position.")
    return p / logged.propensity


def _need(v: np.ndarray | None, name: str, estimator: str, n: int) -> np.ndarray:
    if v is None:
        raise TuesdayError(f"The {estimator} estimator needs a reward model's predictions "
                           f"({name}).", fix="Pass q_logged and q_policy, or use ips or "
                                             "snips.")
    a = np.asarray(v, dtype=float)
    if a.shape != (n,):
        raise TuesdayError(f"{name} must hold one value per logged impression ({n}); got "
                           f"shape {a.shape}.", fix="Give one value per impression.")
    return a


def _interval(values: np.ndarray, confidence: float, kind: str, n_bootstrap: int,
              seed: int) -> tuple[float, float]:
    if kind == "normal":
        return normal_interval(values, confidence)
    return bootstrap_interval(values, confidence, n_bootstrap, seed)


def _distinct(labels: np.ndarray) -> list[Any]:
    seen: dict[Any, None] = {}
    for v in labels.tolist():
        seen.setdefault(v, None)
    return sorted(seen, key=lambda v: (v is None, str(v)))


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
