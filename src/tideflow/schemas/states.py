"""Run states: their types, named variants, and the table of allowed transitions.

The table is pure data over these schemas; ``tideflow.server.orchestration`` applies it, and the
SDK uses the constructors (``Running()``, ``Failed(message=...)``) to propose states.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINAL_TYPES",
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
    "StateDetails",
    "StateType",
    "Suspended",
    "TimedOut",
    "UnfinishedRun",
    "is_retry",
    "state_json",
    "transition_refusal",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StateType(StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"


FINAL_TYPES: frozenset[StateType] = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)

# Default display name of each type; named variants (Late, Retrying…) override it.
_DEFAULT_NAMES: dict[StateType, str] = {t: t.value.title() for t in StateType}


class UnfinishedRun(RuntimeError):
    """``State.result()`` of a run that is not final yet."""


class FailedRun(RuntimeError):
    """``State.result()`` of a run that did not complete and holds no exception of its own."""


class StateDetails(BaseModel):
    """Facts attached to a state that orchestration and runners act on."""

    model_config = ConfigDict(extra="allow")

    scheduled_time: dt.datetime | None = None
    retry: bool = False
    exit_code: int | None = None
    pause_timeout: dt.datetime | None = None


class State(BaseModel):
    """One state of a run: a type, a display name, a message and when it was entered."""

    model_config = ConfigDict(extra="ignore")

    id: UUID = Field(default_factory=uuid4)
    type: StateType
    name: str = ""
    message: str | None = None
    timestamp: dt.datetime = Field(default_factory=utcnow)
    details: StateDetails = Field(default_factory=StateDetails)
    data: Any = None

    def model_post_init(self, __context: Any) -> None:
        if not self.name:
            self.name = _DEFAULT_NAMES[self.type]

    @property
    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type in (StateType.FAILED, StateType.CRASHED)

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's value when Completed; otherwise its exception, raised (with
        ``raise_on_failure=False``: returned, or what the run returned when it raised nothing).
        Only states made in this process carry a value (``data``)."""
        if self.type is StateType.COMPLETED:
            return self.data
        if not raise_on_failure and self.data is not None:
            return self.data  # what the run left: its exception, or the value a flow returned
        if isinstance(self.data, BaseException):
            error: BaseException = self.data
        elif not self.is_final:
            error = UnfinishedRun(f"the run is {self.name}, not final: it has no result yet")
        else:
            detail = f": {self.message}" if self.message else ""
            error = FailedRun(f"the run ended {self.name}{detail}")
        if raise_on_failure:
            raise error
        return error

    def same_proposal(self, other: State) -> bool:
        """True when ``other`` proposes the same thing (type, name, message): an idempotent repeat."""
        return (self.type, self.name, self.message) == (other.type, other.name, other.message)


def state_json(state: State) -> dict[str, Any]:
    """``state`` as JSON-ready data, as ``model_dump(mode="json")`` gives it (without ``data``) at a
    fraction of the cost: task-run reports and their stored histories carry thousands at once."""
    details = state.details
    return {
        "id": str(state.id),
        "type": state.type.value,
        "name": state.name,
        "message": state.message,
        "timestamp": state.timestamp.isoformat(),
        "details": {
            "scheduled_time": details.scheduled_time.isoformat()
            if details.scheduled_time
            else None,
            "retry": details.retry,
            "exit_code": details.exit_code,
            "pause_timeout": details.pause_timeout.isoformat() if details.pause_timeout else None,
            **(details.model_extra or {}),
        },
    }


def _make(type_: StateType, default_name: str | None = None):  # type: ignore[no-untyped-def]
    def factory(
        message: str | None = None,
        *,
        name: str | None = None,
        scheduled_time: dt.datetime | None = None,
        data: Any = None,
        **details: Any,
    ) -> State:
        det = StateDetails(scheduled_time=scheduled_time, **details)
        if type_ is StateType.SCHEDULED and det.scheduled_time is None:
            det.scheduled_time = utcnow()
        return State(
            type=type_,
            name=name or default_name or _DEFAULT_NAMES[type_],
            message=message,
            details=det,
            data=data,
        )

    factory.__name__ = default_name or _DEFAULT_NAMES[type_]
    factory.__doc__ = f"A {type_.value} state named {factory.__name__!r}."
    return factory


Scheduled = _make(StateType.SCHEDULED)
Late = _make(StateType.SCHEDULED, "Late")
AwaitingRetry = _make(StateType.SCHEDULED, "AwaitingRetry")
AwaitingConcurrencySlot = _make(StateType.SCHEDULED, "AwaitingConcurrencySlot")
Pending = _make(StateType.PENDING)
Running = _make(StateType.RUNNING)
Retrying = _make(StateType.RUNNING, "Retrying")
Completed = _make(StateType.COMPLETED)
Failed = _make(StateType.FAILED)
TimedOut = _make(StateType.FAILED, "TimedOut")
Crashed = _make(StateType.CRASHED)
Cancelling = _make(StateType.CANCELLING)
Cancelled = _make(StateType.CANCELLED)
Paused = _make(StateType.PAUSED)
Suspended = _make(StateType.PAUSED, "Suspended")  # paused with its process ended (suspend_flow_run)

_S, _P, _R = StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING
_C, _F, _X = StateType.COMPLETED, StateType.FAILED, StateType.CRASHED
_CG, _CD, _PA = StateType.CANCELLING, StateType.CANCELLED, StateType.PAUSED

# from-type -> allowed to-types (without force). A run's first state may be SCHEDULED, PENDING or RUNNING.
ALLOWED_TRANSITIONS: dict[StateType | None, frozenset[StateType]] = {
    None: frozenset({_S, _P, _R}),
    _S: frozenset({_S, _P, _R, _F, _X, _CG, _CD, _PA}),
    _P: frozenset({_S, _P, _R, _F, _X, _CG, _CD, _PA}),
    _R: frozenset({_S, _R, _C, _F, _X, _CG, _CD, _PA}),
    _PA: frozenset({_S, _P, _R, _F, _X, _CG, _CD}),
    _CG: frozenset({_C, _F, _X, _CD}),
    _C: frozenset(),
    _F: frozenset(),
    _X: frozenset(),
    _CD: frozenset(),
}


def is_retry(from_type: StateType | None, to: State) -> bool:
    """A retry leaves a failed or crashed run for AwaitingRetry (SCHEDULED) or Retrying (RUNNING)."""
    return from_type in (_F, _X) and (
        (to.type is _S and to.name in ("AwaitingRetry", "Scheduled"))
        or (to.type is _R and to.name == "Retrying")
        or (to.type is _P)
    )


def transition_refusal(
    from_type: StateType | None, to: State, *, force: bool = False
) -> str | None:
    """Why ``from_type -> to`` is not allowed, or None when it is. ``force`` allows any change."""
    if force:
        return None
    if to.type in ALLOWED_TRANSITIONS[from_type]:
        return None
    if is_retry(from_type, to):
        return None
    if from_type is None:
        return f"a run cannot start in state {to.type.value}; it must start SCHEDULED, PENDING or RUNNING"
    if from_type in FINAL_TYPES:
        return (
            f"the run is already {from_type.value}, a final state; {to.type.value} is only allowed as a "
            "retry (AwaitingRetry/Retrying from FAILED or CRASHED) or with force"
        )
    return f"transition {from_type.value} -> {to.type.value} is not allowed"
