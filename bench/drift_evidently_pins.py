"""Evidently's statistics on the small fixed frames of tests/test_drift.py (pinned there).

Run in the Evidently virtualenv (see drift_evidently.py), never by the tests:

    bench/.venv-evidently/bin/python bench/drift_evidently_pins.py

``pinned_frames`` is a copy of the function of the same name in tests/test_drift.py
(plain arithmetic, no random generator, so both environments build the same values).
Prints ``{column: (method, statistic)}`` for the large pair (Wasserstein /
Jensen-Shannon) and the small pair (KS / chi-squared / Z) under ``DataDriftPreset()``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd


def pinned_frames(n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    def frame(n: int, shift: float) -> pd.DataFrame:
        i = np.arange(n, dtype=np.float64)
        k = np.arange(n)
        ties = ((k * (31 + int(shift * 10))) % 97).astype(np.float64)
        ties[k % 50 == 0] = np.nan
        if shift:
            ties[k % 333 == 1] = np.inf
        letters = np.array(list("abcdef"), dtype=object)
        cat = letters[(k * k + int(shift * 3)) % (5 + (shift > 0))]
        cat[k % 41 == 3] = None
        return pd.DataFrame({
            "smooth": np.sin(i * 0.37 + shift) * (10 + shift) + (k % 17) + shift,
            "ties": ties,
            "few": np.where(
                k % 5 == 0, 3.0, (k % 3).astype(np.float64) + (shift > 0) * (k % 7 == 0)
            ),
            "cat": cat,
            "flag": np.where((k * 7 + int(shift * 5)) % 10 < 3 + int(shift * 4), "yes", "no"),
        })

    return frame(n_ref, 0.0), frame(n_cur, 0.5)


def main() -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    warnings.simplefilter("ignore")
    out = {}
    for label, (n_ref, n_cur) in {"large": (2000, 1500), "small": (600, 400)}.items():
        ref, cur = pinned_frames(n_ref, n_cur)
        definition = DataDefinition(
            numerical_columns=["smooth", "ties", "few"], categorical_columns=["cat", "flag"]
        )
        snap = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
        out[label] = {
            m["config"]["column"]: (m["config"]["method"], m["value"])
            for m in snap.dict()["metrics"]
            if m["config"]["type"].endswith("ValueDrift")
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
