"""The public exception hierarchy: everything tideflow raises on purpose derives from TideflowError."""

from __future__ import annotations

__all__ = [
    "FlowRunFailed",
    "ObjectNotFound",
    "ParameterValidationError",
    "ServerError",
    "ServerUnreachable",
    "TaskRunFailed",
    "TideflowError",
    "TransitionRefused",
]


class TideflowError(Exception):
    """Base class of tideflow's errors; its message is one readable line."""


class ServerUnreachable(TideflowError):
    """No API server answered at the URL tried."""

    def __init__(self, url: str, reason: str = "") -> None:
        self.url = url
        msg = f"cannot reach the tideflow API at {url}"
        super().__init__(f"{msg} ({reason})" if reason else msg)


class ServerError(TideflowError):
    """The API answered with an error; ``status_code`` and ``detail`` say which."""

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(detail)


class ObjectNotFound(ServerError):
    """A 404: the id or name does not exist."""


class TransitionRefused(ServerError):
    """A 409: the server refused a proposed state change; ``detail`` is the reason."""


class ParameterValidationError(TideflowError, ValueError):
    """A flow's parameters did not validate against its signature; the message names the parameter."""


class FlowRunFailed(TideflowError):
    """Raised by helpers that wait for a run and find it ended in a failed state."""


class TaskRunFailed(TideflowError):
    """A background task run (``Task.delay``) ended in a state other than Completed; the message
    names the run and its state."""
