"""The prediction log table: every served answer with its features, version and request id.

The server appends to it (:class:`tuesday.serve.predictor.PredictionLog`); the monitor, the
registry's champion/challenger check and the loop read it back.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from tuesday.workspace import Workspace

PREDICTIONS = "_predictions"
LOG_SCHEMA = pa.schema([
    ("request_id", pa.string()), ("model", pa.string()), ("version", pa.int64()),
    ("entity", pa.string()), ("target_time", pa.timestamp("us")),
    ("served_at", pa.timestamp("us")), ("prediction", pa.float64()),
    ("baselines", pa.string()), ("features", pa.string()),
    ("variant", pa.string()), ("raw_prediction", pa.float64()),
    ("propensity", pa.float64()), ("dropped_by", pa.string()),
    # a ranked candidate: its position in the slate shown (1 = top; null: not shown),
    # whether the slate was explored (not the model's own), what the slate's rules
    # found on it (JSON by rule name: see tuesday.train.slates.Hits)
    ("position", pa.int64()), ("explored", pa.bool_()), ("rules", pa.string()),
])
#: columns of a log row before ranking existed (rows that short are padded with nulls)
BASE_WIDTH = 13


def read_log(ws: Workspace, model: str | None = None) -> pd.DataFrame:
    """The prediction log as a frame (empty if nothing was served)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(ws.table_uri(PREDICTIONS), storage_options=ws.storage_options)
    except TableNotFoundError:
        return LOG_SCHEMA.empty_table().to_pandas()
    frame = dt.to_pyarrow_table().to_pandas()
    for f in LOG_SCHEMA:  # logs written before a column existed
        if f.name not in frame.columns:
            frame[f.name] = "primary" if f.name == "variant" else None
    frame["variant"] = frame["variant"].fillna("primary")
    return frame[frame["model"] == model].reset_index(drop=True) if model else frame


def read_recent(ws: Workspace, model: str, limit: int) -> pd.DataFrame:
    """The ``limit`` newest answers users got from a model (no shadow answers), newest
    first, without the features and baselines (a scan of a few columns, not the whole
    log)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    cols = ["request_id", "entity", "target_time", "served_at", "prediction", "variant"]
    try:
        dt = DeltaTable(str(ws.table_path(PREDICTIONS)))
    except TableNotFoundError:
        return LOG_SCHEMA.empty_table().select(cols).to_pandas()
    dataset = dt.to_pyarrow_dataset()
    if not set(cols) <= set(dataset.schema.names):  # a log from before a column existed
        frame = read_log(ws, model)[cols]
    else:
        frame = dataset.to_table(columns=cols,
                                 filter=pc.field("model") == model).to_pandas()
    frame = frame[frame["variant"].fillna("primary") != "shadow"]
    return frame.sort_values("served_at", ascending=False, kind="stable").head(limit)


def read_request(ws: Workspace, request_id: str) -> pd.DataFrame:
    """The logged rows of one request (empty when none), read with a filter on the
    request id instead of the whole log."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(str(ws.table_path(PREDICTIONS)))
    except TableNotFoundError:
        return LOG_SCHEMA.empty_table().to_pandas()
    table = dt.to_pyarrow_dataset().to_table(filter=pc.field("request_id") == request_id)
    frame = table.to_pandas()
    for f in LOG_SCHEMA:
        if f.name not in frame.columns:
            frame[f.name] = "primary" if f.name == "variant" else None
    frame["variant"] = frame["variant"].fillna("primary")
    return frame.reset_index(drop=True)
