"""Raw predictions of one model version for assembled request rows: through its compiled
trees once they are ready (``tuesday.serve.compiled``), else LightGBM's single-row C API
for one row (``SingleRow``), else ``Booster.predict``; the same numbers every way.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from lightgbm.basic import _LIB, _safe_call

from tuesday.serve.compiled import Compiled
from tuesday.train.learners import encode

__all__ = ["Loaded", "Row", "SingleRow", "matrix"]

log = logging.getLogger(__name__)


@dataclass
class Row:
    """One request row with its features assembled."""

    index: int
    entity: str
    target: pd.Timestamp | None
    values: dict[str, Any]
    request: dict[str, Any]
    #: the model's online features that are null in the store (answered with a flag)
    missing: tuple[str, ...] = ()
    #: the age of the online features when they are older than the model allows (flagged)
    stale: str | None = None


@dataclass
class Loaded:
    """A model version ready to predict."""

    version: int
    booster: Any
    names: tuple[str, ...]
    single: SingleRow | None = None
    #: the compiled trees (``tuesday.serve.compiled``), set once built and checked identical
    compiled: Compiled | None = None
    #: category features: the values seen in training, in code order (the manifest's)
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions of the rows of ``x``: through the compiled trees once they are
        ready, else one row through LightGBM's single-row C API when it could be set up;
        the same numbers as ``Booster.predict`` either way, in a half or a third of the
        time."""
        if self.compiled is not None:
            return self.compiled.predict(x)
        if self.single is not None and x.shape[0] == 1:
            return self.single.predict(x)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=float)

    def predict_rows(self, ready: Sequence[Row]) -> np.ndarray:
        """Raw predictions of assembled rows (one row skips the numpy matrix when the
        compiled trees are ready)."""
        c = self.compiled
        if c is not None and len(ready) == 1 and not self.categories:
            values = ready[0].values
            try:
                return np.array([c.predict_one(
                    [np.nan if v is None else v for v in map(values.get, self.names)])])
            except TypeError:  # a value ctypes does not take as a double: the matrix path
                pass
        return self.predict(matrix(self, ready))


class SingleRow:
    """LightGBM's ``LGBM_BoosterPredictForMatSingleRowFast`` for one booster.

    ``Booster.predict`` re-parses its parameters and sets up a predictor on every call
    (about 40 us for one row); the fast C API does that once, here, and then costs the
    tree walk plus a ctypes call (about 13 us). It runs the same C++ predictor with the
    same settings (normal prediction, all iterations, one thread), so answers are
    identical to ``Booster.predict(x, num_threads=1)``; the tests compare them. Calls
    are serialised by a lock (they share one input and one output buffer).
    """

    def __init__(self, booster: Any) -> None:
        self._lib, self._check = _LIB, _safe_call
        self.ncol = int(booster.num_feature())
        self._booster = booster  # keeps the handle alive as long as the config
        self._config = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(0),  # C_API_PREDICT_NORMAL
            ctypes.c_int(0), ctypes.c_int(-1),  # start iteration, all iterations
            ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
            ctypes.c_int32(self.ncol), ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(self._config)))
        # called through PyDLL, which keeps the GIL: releasing and re-taking it around a
        # 10 us call costs more than it gives, and waits behind any other busy thread
        # (the prediction log's writer)
        lib = ctypes.PyDLL(_LIB._name, handle=_LIB._handle)
        self._fn = lib.LGBM_BoosterPredictForMatSingleRowFast
        # buffers and their addresses made once (``ndarray.ctypes`` costs microseconds)
        self._in = np.empty(self.ncol, dtype=np.float64)
        self._out = np.empty(1, dtype=np.float64)
        self._len = ctypes.c_int64(0)
        self._args = (ctypes.c_void_p(self._in.ctypes.data), ctypes.byref(self._len),
                      ctypes.c_void_p(self._out.ctypes.data))
        self._lock = threading.Lock()

    @classmethod
    def of(cls, fitted: Any) -> SingleRow | None:
        """The fast path of a fitted LightGBM model; None for other learners, multi-class
        models or when this LightGBM build does not have the API."""
        model = getattr(fitted, "model", None)
        if getattr(fitted, "kind", None) != "lightgbm" or model is None:
            return None
        try:
            if int(model.num_model_per_iteration()) != 1:
                return None
            return cls(model)
        except Exception:  # an older or unusual build: Booster.predict still works
            log.debug("LightGBM single-row API unavailable", exc_info=True)
            return None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The prediction of the one row of ``x`` (shape (1, ncol)), as an array."""
        if x.shape != (1, self.ncol):
            raise ValueError(f"expected one row of {self.ncol} features, got {x.shape}")
        with self._lock:
            self._in[:] = x[0]
            self._check(self._fn(self._config, *self._args))
            return self._out.copy()

    def __del__(self) -> None:
        with_config = getattr(self, "_config", None)
        if with_config is not None and with_config.value:
            with contextlib.suppress(Exception):
                self._lib.LGBM_FastConfigFree(with_config)
            with_config.value = None


def matrix(lm: Loaded, ready: Sequence[Row]) -> np.ndarray:
    """The rows' values of the version's features as a float matrix (missing: NaN)."""
    names = lm.names
    if lm.categories:  # text values as the codes training gave them
        frame = pd.DataFrame([[r.values.get(n) for n in names] for r in ready],
                             columns=list(names), dtype=object)
        return encode(frame, names, lm.categories).reshape(len(ready), len(names))
    nan = np.nan
    return np.asarray([[nan if v is None else v for v in map(r.values.get, names)]
                       for r in ready], dtype=float).reshape(len(ready), len(names))
