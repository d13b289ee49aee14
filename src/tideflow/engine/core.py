"""The pure core of running a flow: which states to propose, when to retry, what to raise.

``orchestrate`` is a generator of *steps* (create the run, propose a state, call the function once,
sleep, call hooks). The sync and async runners execute the steps with their own client, clock and
timeout mechanism and send the results back, so the run's rules live here once for both.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from tideflow.engine.errors import FlowRunCancelled, FlowRunSuspended, FlowRunTimeout
from tideflow.exceptions import ParameterValidationError, TransitionRefused
from tideflow.schemas import FlowRun, FlowRunCreate, OrchestrationResult, State, StateType
from tideflow.schemas import states as S

__all__ = [
    "CallHooks",
    "CreateRun",
    "Invoke",
    "Outcome",
    "Propose",
    "Refused",
    "RunSpec",
    "Sleep",
    "Step",
    "call_state",
    "failure_message",
    "orchestrate",
    "retry_delay",
]

logger = logging.getLogger("tideflow.flow_runs")
_CONSOLE_ONLY = {"tideflow_console_only": True}


# --- steps the runners execute ---------------------------------------------------------------------
@dataclass(frozen=True)
class CreateRun:
    """Create the flow run; answer: the FlowRun."""

    body: FlowRunCreate


@dataclass(frozen=True)
class Propose:
    """Propose a state; answer: an accepted OrchestrationResult, or Refused."""

    state: State


@dataclass(frozen=True)
class Refused:
    """The server refused a proposal; ``current`` is the run's state as the server holds it."""

    reason: str
    current: State | None


@dataclass(frozen=True)
class Invoke:
    """Call the flow function once, within ``timeout`` seconds; answer: an Outcome."""

    timeout: float | None


@dataclass(frozen=True)
class Outcome:
    """How one call of the function ended: a value, an exception, or the deadline."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class CallHooks:
    """Call the flow's hooks of ``kind`` (on_completion …) with the final state."""

    kind: str
    state: State


Step = CreateRun | Propose | Invoke | Sleep | CallHooks


@dataclass(frozen=True)
class RunSpec:
    """Everything the core needs to know about one call of a flow."""

    flow_name: str
    create: FlowRunCreate
    retries: int = 0
    retry_delay_seconds: float | Sequence[float] = 0
    timeout_seconds: float | None = None
    invalid: ParameterValidationError | None = None
    clock: Callable[[], dt.datetime] = S.utcnow


# --- pure helpers ----------------------------------------------------------------------------------
def retry_delay(option: float | Sequence[float], retry_index: int) -> float:
    """Seconds to wait before retry number ``retry_index`` (0-based); a list gives one per retry."""
    if isinstance(option, int | float):
        return float(option)
    if not option:
        return 0.0
    return float(option[min(retry_index, len(option) - 1)])


def failure_message(exc: BaseException) -> str:
    """The Failed state's message: the exception's type and message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def returned_state(value: Any) -> State:
    """The final state a flow's return value gives its run: a returned final State itself (without
    its data, which stays in this process); Failed when a returned list, tuple or set holds states
    that did not all complete; Completed otherwise."""
    if isinstance(value, State) and value.is_final:
        # a fresh id and time: the same State object may also be a task run's state
        return value.model_copy(update={"data": None, "id": uuid4(), "timestamp": S.utcnow()})
    if isinstance(value, list | tuple | set | frozenset):
        states = [v for v in value if isinstance(v, State)]
        bad = sum(1 for v in states if not v.is_completed())
        if bad:
            failed: State = S.Failed(message=f"{bad}/{len(states)} states failed.")
            return failed
    completed: State = S.Completed()
    return completed


def call_state(state: State | None, value: Any = None, error: BaseException | None = None) -> State:
    """What ``flow(..., return_state=True)`` answers: the run's final state holding the value (or
    the error); a final State the flow returned, as it is."""
    if error is None and isinstance(value, State) and value.is_final:
        return value
    if state is None:
        state = S.Failed(message=failure_message(error)) if error is not None else S.Completed()
    return state.model_copy(update={"data": error if error is not None else value})


def _seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


# --- the run ---------------------------------------------------------------------------------------
def orchestrate(spec: RunSpec) -> Generator[Step, Any, Any]:
    """Run one flow call as steps; returns the function's value or raises its (or the run's) error."""
    run: FlowRun = yield CreateRun(spec.create)
    logger.info("Beginning flow run %r for flow %r", run.name, spec.flow_name, extra=_CONSOLE_ONLY)
    if spec.invalid is not None:
        state = S.Failed(message=f"Validation of flow parameters failed: {spec.invalid}")
        logger.error("Validation of flow parameters failed: %s", spec.invalid)
        yield from _final(run, state)
        raise spec.invalid
    if spec.create.state is None or spec.create.state.type is not StateType.RUNNING:
        running = (yield from _propose(run, S.Running())).state
    else:  # the run was created Running (plan.make_plan)
        running = run.state or S.Running()
    yield CallHooks("on_running", running)
    retries_done = 0
    while True:
        outcome: Outcome = yield Invoke(spec.timeout_seconds)
        if outcome.error is None and not outcome.timed_out:
            final = returned_state(outcome.value)
            yield from _final(run, final)
            if isinstance(outcome.value, State) and not final.is_completed():
                outcome.value.result()  # a returned Failed state: raise as its result does
            return outcome.value
        error = outcome.error
        if isinstance(error, FlowRunSuspended):  # the run stays Suspended; a resume starts it again
            logger.info("Suspended: this process ends", extra=_CONSOLE_ONLY)
            raise error
        if error is not None and not isinstance(
            error, Exception
        ):  # KeyboardInterrupt, SystemExit, cancel
            yield from _crash(run, error)
            raise error
        if outcome.timed_out:
            message = f"Flow run exceeded timeout of {_seconds(spec.timeout_seconds or 0)}"
            logger.error(message)
            error = FlowRunTimeout(
                f"flow run {run.name!r} timed out after {_seconds(spec.timeout_seconds or 0)}"
            )
            final = S.TimedOut(message=message)
        else:
            assert error is not None
            logger.error(
                "Encountered exception during execution:",
                exc_info=(type(error), error, error.__traceback__),
            )
            final = S.Failed(message=failure_message(error))
        if retries_done < spec.retries:
            delay = retry_delay(spec.retry_delay_seconds, retries_done)
            retries_done += 1
            logger.info(
                "Retry %d/%d in %s (%s)", retries_done, spec.retries, _seconds(delay), final.message
            )
            yield from _propose(
                run, S.AwaitingRetry(scheduled_time=spec.clock() + dt.timedelta(seconds=delay))
            )
            if delay > 0:
                yield Sleep(delay)
            yield from _propose(run, S.Retrying())
            continue
        yield from _final(run, final)
        if outcome.timed_out:
            raise error from None
        raise error


def _propose(run: FlowRun, state: State) -> Generator[Step, Any, OrchestrationResult]:
    answer = yield Propose(state)
    if isinstance(answer, Refused):
        yield from _refused(run, state, answer)
    return answer  # type: ignore[no-any-return]


def _refused(run: FlowRun, state: State, answer: Refused) -> Generator[Step, Any, None]:
    current = answer.current
    if current is not None and current.type in (StateType.CANCELLED, StateType.CANCELLING):
        logger.warning("Flow run was cancelled (%s); stopping", current.name)
        yield CallHooks("on_cancellation", current)
        raise FlowRunCancelled(
            409,
            f"flow run {run.name!r} was cancelled while it ran; the server refused state "
            f"{state.name}: {answer.reason}",
        )
    raise TransitionRefused(
        409, f"the server refused state {state.name} for flow run {run.name!r}: {answer.reason}"
    )


def _final(run: FlowRun, state: State) -> Generator[Step, Any, None]:
    yield from _propose(run, state)
    detail = repr(state.message) if state.message else ""
    logger.info("Finished in state %s(%s)", state.name, detail, extra=_CONSOLE_ONLY)
    yield CallHooks("on_completion" if state.type is StateType.COMPLETED else "on_failure", state)


def _crash(run: FlowRun, error: BaseException) -> Generator[Step, Any, None]:
    state = S.Crashed(message=f"Execution was interrupted: {failure_message(error)}")
    logger.error("Crashed: %s", state.message)
    try:
        yield from _propose(run, state)
    except (
        Exception
    ):  # the run's record may stay Running; the runner's monitor marks it Crashed later
        logger.warning("Could not report the crash to the server", extra=_CONSOLE_ONLY)
        return
    yield CallHooks("on_crashed", state)
