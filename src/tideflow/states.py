"""States for user code: the constructors a task or flow may return (``Completed``, ``Failed`` …),
the ``State`` class that ``return_state=True`` answers, and the errors ``State.result()`` raises.

A task that returns ``Failed(message=...)`` ends Failed without raising; one that returns
``Completed(...)`` ends Completed. The call answers the returned state as it is.
"""

from __future__ import annotations

from tideflow.schemas.states import (
    AwaitingConcurrencySlot,
    AwaitingRetry,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    FailedRun,
    Late,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateType,
    Suspended,
    TimedOut,
    UnfinishedRun,
)

__all__ = [
    "AwaitingConcurrencySlot",
    "AwaitingRetry",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "FailedRun",
    "Late",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "Suspended",
    "TimedOut",
    "UnfinishedRun",
]
