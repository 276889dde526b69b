"""Censored targets: which label rows only show a lower bound of what they measure.

A model's ``Censored`` declaration names a column of a source (the book stock at
closing, or a check's ``flag_NAME``); a label row is censored when that source's row at
the same entity and time says so (the source as read for training, so as ingested by
its as-of). Training leaves such rows out of its fits, imputes them or keeps them, as
declared; the backtest scores the model with and without them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from tuesday.project import Model, Project

#: the training-set column that marks censored label rows
CENSORED = "_censored"


def censored_rows(project: Project, model: Model, labels: pd.DataFrame,
                  tabs: Mapping[str, pa.Table]) -> np.ndarray:
    """One flag per label row: True where the model's ``censored`` declaration holds
    (all False without one)."""
    c = model.censored
    if c is None:
        return np.zeros(len(labels), bool)
    label = project.source(model.label_source)
    name = c.source or model.label_source
    if name == model.label_source:
        values = labels[c.column]
    else:
        src = project.source(name)
        key, t, lt = model.entity.key, src.time or "", label.time or ""
        table = tabs[name].select([key, t, c.column]).to_pandas()
        day = (label.contract.column(lt) is not None
               and label.contract.column(lt).dtype == "date")  # type: ignore[union-attr]
        table["_t"] = pd.to_datetime(table[t])
        if day:
            table["_t"] = table["_t"].dt.normalize()
        table = table.drop_duplicates([key, "_t"], keep="last")
        probe = pd.DataFrame({key: labels[key].astype(str).to_numpy(),
                              "_t": pd.to_datetime(labels[lt]).to_numpy()})
        if day:
            probe["_t"] = probe["_t"].dt.normalize()
        table[key] = table[key].astype(str)
        table["_t"] = table["_t"].astype(probe["_t"].dtype)
        values = probe.merge(table[[key, "_t", c.column]], on=[key, "_t"], how="left",
                             validate="many_to_one")[c.column]
    if pd.api.types.is_bool_dtype(values.dtype) or values.dtype == object:
        return values.fillna(False).astype(bool).to_numpy()
    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        return np.asarray(v <= c.at_most, bool)


def impute(model: Model, frame: pd.DataFrame, target: str, key: str) -> np.ndarray:
    """The training targets with each censored row raised to the mean of its entity's
    uncensored targets in ``frame`` where it is below it (sold-out days sold at least
    what they sold)."""
    y = frame[target].to_numpy(float).copy()
    if CENSORED not in frame.columns:
        return y
    cens = frame[CENSORED].to_numpy(bool)
    means = frame.loc[~cens].groupby(key)[target].mean()
    fill = frame[key].map(means).to_numpy(float)
    raise_to = cens & np.isfinite(fill) & (fill > y)
    y[raise_to] = fill[raise_to]
    return y
