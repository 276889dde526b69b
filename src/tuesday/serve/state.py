"""What the endpoints of one server app share: the workspace, the project, the predictor,
the Prometheus metrics, the cached API tokens, the prediction log's writer thread and
the count of requests in flight.

``State`` is built once by ``tuesday.serve.server.create_app`` and handed to every
endpoint; only its ``inflight`` count changes while the app runs.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tuesday.project import LoadedProject
from tuesday.serve import auth
from tuesday.serve.predictor import Predictor
from tuesday.serve.ranker import Ranker
from tuesday.workspace import Workspace

__all__ = ["MAX_INFLIGHT", "TIDY_SECONDS", "TOKENS_TTL", "Metrics", "State", "Tokens"]

#: requests handled at once beyond which the server answers 503
MAX_INFLIGHT = 256
#: seconds the active API tokens are cached before they are read again
TOKENS_TTL = 1.0
#: seconds between compactions of the prediction log by the server
TIDY_SECONDS = 600.0


class Metrics:
    """The server's Prometheus metrics (its own registry, so that several apps in one
    process do not share counters)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.registry = CollectorRegistry()
        self.requests = Counter("tuesday_requests", "HTTP requests",
                                ["endpoint", "status"], registry=self.registry)
        self.predictions = Counter("tuesday_predictions", "Rows predicted",
                                   ["model", "version", "variant"], registry=self.registry)
        self.latency = Histogram("tuesday_request_seconds", "Request latency",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1))
        self.shed = Counter("tuesday_shed", "Requests refused with 503 under overload",
                            ["reason"], registry=self.registry)
        self.log_pending = Gauge("tuesday_log_pending_rows",
                                 "Prediction log rows waiting to be written",
                                 registry=self.registry)
        self.log_pending.set_function(lambda: len(predictor.log))
        self.compiled = Gauge("tuesday_model_compiled",
                              "1 when the version answers through its compiled trees",
                              ["model", "version"], registry=self.registry)
        self.incomplete = Counter(
            "tuesday_missing_features_rows",
            "Rows whose online features were missing, by what the model did with them "
            "(refused or flagged)", ["model", "outcome"], registry=self.registry)
        self.deadline = Counter(
            "tuesday_deadline_rows",
            "Rows of models with a deadline answered by the baseline instead (fallback) or "
            "answered by the model after the deadline had passed (missed)",
            ["model", "outcome"], registry=self.registry)
        self._counted: dict[tuple[str, int, str], int] = {}
        self._counted_incomplete: dict[tuple[str, str], int] = {}
        self._counted_deadline: dict[tuple[str, str], int] = {}
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count a request and its latency (the labelled metric children are looked up
        once per endpoint and status: ``labels()`` takes a lock and builds a key)."""
        key = (endpoint, str(status))
        got = self._children.get(key)
        if got is None:
            got = self._children[key] = (self.requests.labels(endpoint, key[1]),
                                         self.latency.labels(endpoint))
        got[0].inc()
        got[1].observe(seconds)

    def count_served(self) -> None:
        """Bring the predictions counter and the compiled gauge up to the predictor's
        counts (the predict path only counts in a plain dict)."""
        for (name, version), lm in list(self.predictor.versions.items()):
            self.compiled.labels(name, str(version)).set(int(lm.compiled is not None))
        for k, n in self.predictor.served.items():
            done = self._counted.get(k, 0)
            if n > done:
                self.predictions.labels(k[0], str(k[1]), k[2]).inc(n - done)
                self._counted[k] = n
        for counter, counts, counted in (
                (self.incomplete, self.predictor.incomplete, self._counted_incomplete),
                (self.deadline, self.predictor.deadline, self._counted_deadline)):
            for key, n in list(counts.items()):
                done = counted.get(key, 0)
                if n > done:
                    counter.labels(*key).inc(n - done)
                    counted[key] = n


class Tokens:
    """The workspace's active API tokens, read again at most every ``TOKENS_TTL`` s."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._tokens: dict[str, tuple[str, str]] = {}
        self._read_at = -1e9

    def active(self) -> dict[str, tuple[str, str]]:
        """digest -> (name, role) of every active token (empty: the workspace has none,
        so no endpoint asks for one)."""
        now = time.monotonic()
        if now - self._read_at > TOKENS_TTL:
            self._tokens = auth.active(self.ws)
            self._read_at = now
        return self._tokens


@dataclass(eq=False, slots=True)
class State:
    """The per-app state every endpoint reads (``app.state.tuesday``).

    Attributes:
        ws: The workspace served.
        loaded: The loaded project.
        predictor: The predict path (its ``log`` is the prediction log).
        metrics: The Prometheus metrics.
        tokens: The cached API tokens.
        writer: The one thread that writes the prediction log, at a lower priority.
        flush_seconds: Seconds between writes of the prediction log.
        max_inflight: Requests at once beyond which the server sheds load (503).
        tidy_seconds: Seconds between compactions and vacuums of the prediction log.
        extensions: More routes from a stage above serve (``tuesday.serve.server.Extension``:
            the dashboard), whose OpenAPI paths ``/openapi.json`` adds.
        inflight: Requests being handled now (the only field that changes).
        ranker: The rank path of ranking models (made with the app).
    """

    ws: Workspace
    loaded: LoadedProject
    predictor: Predictor
    metrics: Metrics
    tokens: Tokens
    writer: concurrent.futures.ThreadPoolExecutor
    flush_seconds: float
    max_inflight: int = MAX_INFLIGHT
    tidy_seconds: float = TIDY_SECONDS
    extensions: tuple[Any, ...] = ()
    inflight: int = field(default=0)
    ranker: Ranker | None = field(default=None)
