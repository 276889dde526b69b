"""Explained predictions: for an answered row, the exact contribution of each feature
(:mod:`tuesday.train.contributions`), the expected value and a sentence in plain words
(:mod:`tuesday.train.explanations`), next to the simple baseline's forecast.

The predict path calls :meth:`Explainer.explain` only for a request that asks for it
(``"explain": true`` or ``?explain=1``); an unexplained request never reaches this module.
The same explanation can be made again later for a logged prediction, from the features
and the version the log recorded (:func:`explain_logged`).

The answer's format is :func:`tuesday.train.explanations.explanation_dict`'s.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tuesday.data.predictions import read_request
from tuesday.errors import NotFound, TuesdayError
from tuesday.project import LoadedProject, Model
from tuesday.release import registry
from tuesday.train.contributions import Contributions, RowContributions, contributions
from tuesday.train.explanations import explanation_dict
from tuesday.train.learners import Fitted
from tuesday.train.training import load_model
from tuesday.workspace import Workspace

__all__ = ["Explainer", "explain_logged"]


@dataclass(frozen=True)
class _Version:
    """What explaining one model version needs, set up once."""

    fitted: Fitted
    row: RowContributions | None
    best_baseline: str | None


class Explainer:
    """Explanations of the model versions a predictor serves (each set up on first use:
    its single-row TreeSHAP for LightGBM, its best baseline from the registry)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._versions: dict[tuple[str, int], _Version] = {}
        self._lock = threading.Lock()

    def version(self, name: str, version: int, fitted: Fitted) -> _Version:
        key = (name, int(version))
        got = self._versions.get(key)
        if got is None:
            with self._lock:
                got = self._versions.get(key)
                if got is None:
                    metrics = registry.get_version(self.ws, name, int(version))["metrics"]
                    row = RowContributions(fitted) if fitted.kind == "lightgbm" else None
                    got = self._versions[key] = _Version(fitted, row,
                                                         metrics.get("best_baseline"))
        return got

    def explain(self, model: Model, version: int, fitted: Fitted, x: np.ndarray,
                baselines: dict[str, np.ndarray], finals: Sequence[float], *,
                entities: Sequence[str], whens: Sequence[datetime | None]
                ) -> list[dict[str, Any]]:
        """The explanation of each row of ``x`` (the version's feature matrix), answered
        ``finals`` after the business rules; ``baselines`` holds the online baselines'
        forecasts of the same rows."""
        v = self.version(model.name, version, fitted)
        contrib = _contributions(v, x)
        name = _baseline_name(v.best_baseline, baselines)
        out = []
        for i in range(len(x)):
            bl = None
            if name is not None and np.isfinite(baselines[name][i]):
                bl = (name, float(baselines[name][i]))
            out.append(explanation_dict(model, contrib, i, baseline=bl, final=finals[i],
                                        entity=entities[i], when=whens[i]))
        return out


def _contributions(v: _Version, x: np.ndarray) -> Contributions:
    if v.row is not None and len(x) == 1:
        return v.row(x[0])
    return contributions(v.fitted, x)


def _baseline_name(best: str | None, baselines: dict[str, np.ndarray]) -> str | None:
    """The baseline the sentence compares with: the version's best one when it is
    computed online, else the first online baseline."""
    if best in baselines:
        return best
    return next(iter(baselines), None)


# ------------------------------------------------------------------- logged answers


def explain_logged(ws: Workspace, loaded: LoadedProject, request_id: str, *,
                   entity: str | None = None) -> dict[str, Any]:
    """Explain a logged prediction again, from the features and the version the log
    recorded for it (the answer users got; a shadow answer only when it is the one
    asked for by ``entity`` and no other matches).

    Raises:
        NotFound: no logged prediction has that request id (and entity).
    """
    rid = str(request_id).strip().lower()
    if len(rid) != 32 or any(ch not in "0123456789abcdef" for ch in rid):
        raise TuesdayError(f"A request id is 32 hexadecimal characters; got "
                           f"{request_id!r:.60}.",
                           fix="Copy the request_id of a predict answer.")
    rows = read_request(ws, rid)
    if entity is not None:
        rows = rows[rows["entity"] == str(entity)]
    users = rows[rows["variant"] != "shadow"]
    rows = users if len(users) else rows
    if rows.empty:
        raise NotFound(f"No logged prediction has request id {rid!r}"
                       + (f" and entity {entity!r}" if entity is not None else "") + ".",
                       fix="Check the id; the log keeps what the server wrote (rows still in "
                           "a running server's spool appear within a second).")
    r = rows.iloc[0]
    name = str(r["model"])
    model = loaded.project.model(name)
    version = int(r["version"])
    fitted = load_model(ws, registry.get_version(ws, name, version)["manifest"])
    feats = json.loads(r["features"]) if r["features"] else {}
    x = fitted.encode(pd.DataFrame([{f: feats.get(f) for f in fitted.features}]))
    bls = json.loads(r["baselines"]) if r["baselines"] else {}
    baselines = {k: np.array([np.nan if v is None else float(v)]) for k, v in bls.items()}
    when = r["target_time"] if pd.notna(r["target_time"]) else None
    exp = Explainer(ws).explain(model, version, fitted, x, baselines,
                                [float("nan") if pd.isna(r["prediction"])
                                 else float(r["prediction"])],
                                entities=[str(r["entity"])], whens=[when])[0]
    return {"model": name, "model_version": version, "request_id": rid,
            "entity": str(r["entity"]), "key": model.entity.key,
            "target_time": None if when is None else pd.Timestamp(when).isoformat(),
            "served_at": pd.Timestamp(r["served_at"]).isoformat(),
            "variant": str(r["variant"]),
            "prediction": None if pd.isna(r["prediction"]) else float(r["prediction"]),
            "explanation": exp}
