"""One root error for everything a user can get wrong.

Every error names the thing, the expectation, what was received and how to fix it.
The CLI prints ``str(error)`` and exits with ``exit_code``; the server answers
``to_dict()`` as JSON with ``status``.
"""

from __future__ import annotations

from typing import Any


class TuesdayError(Exception):
    """Root of all user-facing errors.

    Args:
        message: What went wrong, what was expected, what was received.
        fix: How to fix it, one sentence.
        status: HTTP status the server answers with.
        exit_code: Process exit code the CLI ends with.

    Example:
        >>> e = TuesdayError("Model 'x' is unknown.", fix="Run `tuesday models`.")
        >>> str(e)
        "Model 'x' is unknown. Run `tuesday models`."
    """

    status: int = 400
    exit_code: int = 2
    kind: str = "invalid"

    def __init__(self, message: str, *, fix: str = "", details: Any = None) -> None:
        self.message = message
        self.fix = fix
        self.details = details
        super().__init__(f"{message} {fix}".strip())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.kind, "message": self.message}
        if self.fix:
            out["fix"] = self.fix
        if self.details is not None:
            out["details"] = self.details
        return out


class NotFound(TuesdayError):
    """A named thing (model, version, source, table, entity) does not exist."""

    status = 404
    exit_code = 3
    kind = "not_found"


class GateFailed(TuesdayError):
    """A promotion gate refused a model version."""

    status = 409
    exit_code = 4
    kind = "gate_failed"


class Conflict(TuesdayError):
    """The request conflicts with the current state (stage, concurrent change)."""

    status = 409
    exit_code = 5
    kind = "conflict"


class Unauthorized(TuesdayError):
    """A missing or wrong token."""

    status = 401
    exit_code = 6
    kind = "unauthorized"


class ValidationFailed(TuesdayError):
    """Every row of a batch failed its contract, or the batch as a whole did."""

    status = 422
    exit_code = 7
    kind = "validation_failed"


class ArtifactCorrupt(TuesdayError):
    """A stored file (model, reference) whose hash matches but whose content is not valid:
    written by a broken tool or changed after training. Not the caller's mistake."""

    status = 500
    exit_code = 8
    kind = "artifact_integrity"


class Overloaded(TuesdayError):
    """The server is behind, or cannot log what it would answer; the client should retry
    after a pause."""

    status = 503
    exit_code = 6
    kind = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1, reason: str = "overloaded",
                 fix: str = "") -> None:
        super().__init__(message,
                         fix=fix or f"Retry after {retry_after} s or lower the request rate.")
        self.retry_after = retry_after
        self.reason = reason
