"""Real-time card fraud scoring from events. SYNTHETIC DATA: a seeded generator, not real.

The transactions are made up by ``generate`` (numpy, fixed seed), so the example runs
anywhere and its numbers are reproducible; they illustrate the mechanics, not real fraud
rates. Each card has its own usual amount (log-normal), daily rate and active hours. A
share of the cards is compromised once in the period and shows one of two patterns:

- card testing: a burst of 4-10 small (0.5-4) card-not-present purchases a minute or two
  apart, often at night, sometimes followed within the hour by one large purchase;
- a large purchase (6-20 times the card's usual amount) at an unusual hour (0-5 h).

Sources:

- ``transactions``: one row per transaction (``txn_id``, ``card_id``, ``ts``, ``amount``,
  ``merchant_category``, ``card_not_present``), with ``recorded_at``, when the row reached
  the feature store, 1-4 seconds after the authorization. It is the source's
  ``available_at``: a transaction is not in its own features (it is scored at ``ts``,
  before it is recorded), in training and in serving alike. Events sent to
  ``POST /v1/events/transactions`` without ``recorded_at`` get the arrival time.
- ``fraud_labels``: the outcome of each scored transaction, known later (chargebacks),
  with the values the scorer sent at request time (``amount``, ``hour``).

The model ``fraud`` (binary, positive 1, horizon ``"0d"``) is scored at request time.
Its event features are kept online from the events and computed for the request's time
(``tuesday.data.events``); the same definitions compute the training rows point in time:
count and sum of amounts in the last hour and day, mean, max and last amount over 30 days,
card-not-present purchases in the last day and seconds since the card's previous
transaction (30 days when there is none). The transaction's own amount and hour are
request-time features. It is judged by a 3-fold rolling backtest (one week each) against
the fraud-rate prior.

Run it::

    python -c "from tuesday.examples.transactions.project import example_files as f; f('data')"
    tuesday --project examples/transactions/project.py ingest transactions data/transactions.csv
    tuesday --project examples/transactions/project.py ingest fraud_labels data/fraud_labels.csv
    tuesday --project examples/transactions/project.py train fraud
"""

from __future__ import annotations

from pathlib import Path

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
    Source,
    request,
    time_since_last,
    window,
)

START = pd.Timestamp("2024-01-01")
DAYS = 49
CATEGORIES = ("grocery", "restaurant", "fuel", "travel", "retail", "digital", "electronics")
MONTH = 30 * 24 * 3600  # seconds: time_since_last's default when there is no history

card = Entity("card", key="card_id")

transactions = Source(
    "transactions",
    Contract((
        Column("txn_id", "str", nullable=False),
        Column("card_id", "str", nullable=False),
        Column("ts", "timestamp", nullable=False),
        Column("recorded_at", "timestamp", nullable=False),
        Column("amount", "float", nullable=False, min=0, max=100_000),
        Column("merchant_category", "str", nullable=False, allowed=CATEGORIES),
        Column("card_not_present", "int", nullable=False, allowed=(0, 1)),
    ), unique=("txn_id",)),
    time="ts",
    available_at="recorded_at",
    entity=card,
)

fraud_labels = Source(
    "fraud_labels",
    Contract((
        Column("txn_id", "str", nullable=False),
        Column("card_id", "str", nullable=False),
        Column("ts", "timestamp", nullable=False),
        Column("amount", "float", nullable=False, min=0, max=100_000),
        Column("hour", "int", nullable=False, min=0, max=23),
        Column("is_fraud", "int", nullable=False, allowed=(0, 1)),
    ), unique=("txn_id",)),
    time="ts",
    entity=card,
)

FEATURES = (
    window("transactions", "amount", "1h", lag="0d", agg="count"),
    window("transactions", "amount", "1h", lag="0d", agg="sum", default=0.0),
    window("transactions", "amount", "24h", lag="0d", agg="count"),
    window("transactions", "amount", "24h", lag="0d", agg="sum", default=0.0),
    window("transactions", "amount", "30d", lag="0d", agg="mean"),
    window("transactions", "amount", "30d", lag="0d", agg="max"),
    window("transactions", "amount", "30d", lag="0d", agg="last"),
    window("transactions", "card_not_present", "24h", lag="0d", agg="sum", default=0.0),
    time_since_last("transactions", within="30d", default=float(MONTH)),
    request("amount"),
    request("hour"),
)

fraud = Model(
    name="fraud",
    entity=card,
    label_source="fraud_labels",
    target="is_fraud",
    task="binary",
    positive=1,
    horizon="0d",
    features=FEATURES,
    baselines=(Baseline("prior", "prior"),),
    evaluation=Backtest(folds=3, step="7d"),
    metrics=("auc", "log_loss", "brier"),
    # small trees, few rounds, one thread: a few seconds per fit
    learner=Learner(params={"num_boost_round": 150, "num_leaves": 15, "learning_rate": 0.08,
                            "min_data_in_leaf": 40, "num_threads": 1}),
    seed=5,
)

project = Project("transactions", sources=(transactions, fraud_labels), models=(fraud,))


# ------------------------------------------------------------------------ generator


def generate(cards: int = 300, days: int = DAYS, seed: int = 7,
             compromised: float = 0.2) -> dict[str, pd.DataFrame]:
    """Synthetic transactions and their fraud labels (seeded; see the module docstring).

    Example:
        >>> frames = generate(cards=20, days=7)
        >>> sorted(frames)
        ['fraud_labels', 'transactions']
    """
    rng = np.random.default_rng(seed)
    rows: list[pd.DataFrame] = []
    for c in range(cards):
        card_id = f"C{c:05d}"
        mu = rng.normal(3.3, 0.5)  # log of the usual amount (about 27)
        rate = rng.uniform(0.6, 3.0)  # transactions a day
        peak = rng.uniform(10, 19)  # the card's usual hour
        n = int(rng.poisson(rate * days))
        day = rng.integers(0, days, n)
        hour = np.clip(rng.normal(peak, 3.0, n), 6.0, 23.9)
        ts = START + pd.to_timedelta(day, unit="D") + pd.to_timedelta(hour * 3600, unit="s")
        rows.append(pd.DataFrame({
            "card_id": card_id, "ts": ts,
            "amount": np.round(np.exp(rng.normal(mu, 0.45, n)), 2),
            "merchant_category": rng.choice(CATEGORIES[:5], n),
            "card_not_present": (rng.random(n) < 0.25).astype(int),
            "is_fraud": 0}))
        if rng.random() < compromised:
            rows.append(_fraud(rng, card_id, mu, days))
    tx = pd.concat(rows, ignore_index=True)
    tx["ts"] = tx["ts"].dt.floor("s")
    tx = tx.sort_values(["ts", "card_id"], kind="stable").reset_index(drop=True)
    tx.insert(0, "txn_id", [f"T{i:07d}" for i in range(len(tx))])
    tx["recorded_at"] = tx["ts"] + pd.to_timedelta(rng.integers(1, 5, len(tx)), unit="s")
    transactions_frame = tx[list(transactions.contract.names)]
    labels = tx.assign(hour=tx["ts"].dt.hour.astype(int))[list(fraud_labels.contract.names)]
    return {"transactions": transactions_frame, "fraud_labels": labels}


def _fraud(rng: np.random.Generator, card_id: str, mu: float, days: int) -> pd.DataFrame:
    start = START + pd.Timedelta(days=float(rng.uniform(1, days - 0.1)))
    if rng.random() < 0.6:  # card testing: a burst of small online purchases
        start = start.normalize() + pd.Timedelta(hours=float(rng.choice([1, 2, 3, 14, 22])))
        k = int(rng.integers(4, 11))
        gaps = np.cumsum(rng.exponential(90.0, k))
        ts = [start + pd.Timedelta(seconds=float(g)) for g in gaps]
        amount = list(np.round(rng.uniform(0.5, 4.0, k), 2))
        if rng.random() < 0.5:
            ts.append(ts[-1] + pd.Timedelta(minutes=float(rng.uniform(5, 50))))
            amount.append(round(float(np.exp(mu) * rng.uniform(6, 20)), 2))
        category = ["digital"] * k + ["electronics"] * (len(ts) - k)
    else:  # a large purchase at an unusual hour
        k = int(rng.integers(1, 3))
        base = start.normalize() + pd.Timedelta(hours=float(rng.uniform(0, 5)))
        ts = [base + pd.Timedelta(minutes=float(m)) for m in np.sort(rng.uniform(0, 40, k))]
        amount = list(np.round(np.exp(mu) * rng.uniform(6, 20, k), 2))
        category = ["electronics"] * k
    return pd.DataFrame({"card_id": card_id, "ts": ts, "amount": amount,
                         "merchant_category": category, "card_not_present": 1, "is_fraud": 1})


def example_frames(*, since: str | None = None, until: str | None = None
                   ) -> dict[str, pd.DataFrame]:
    """The generated sources, restricted to transactions at ``(since, until]``."""
    frames = generate()
    out = {}
    for name, frame in frames.items():
        keep = np.ones(len(frame), bool)
        if since is not None:
            keep &= (frame["ts"] > pd.Timestamp(since)).to_numpy()
        if until is not None:
            keep &= (frame["ts"] <= pd.Timestamp(until)).to_numpy()
        out[name] = frame[keep].reset_index(drop=True)
    return out


def example_files(folder: str | Path, *, since: str | None = None,
                  until: str | None = None) -> dict[str, Path]:
    """Write the generated sources as CSV files, one per source; returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in example_frames(since=since, until=until).items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
        paths[name] = path
    return paths
