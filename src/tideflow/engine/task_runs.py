"""Running one task run: wait for its upstreams, call the function with retries and a timeout, move
its state, call its hooks. Sync (``run_task_sync``) and async (``run_task_async``) twins share the
decisions below; task runners call them in their worker threads or processes.

A task run's states live in this process (``TaskRun.state`` and ``.history``); nothing here makes a
request, so a task costs microseconds of bookkeeping on top of its function.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import datetime as dt
import inspect
import itertools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from tideflow.engine.context import TaskRunContext, current_run, task_run_context_var
from tideflow.engine.core import failure_message, retry_delay
from tideflow.engine.errors import TaskRunCancelled, TaskRunTimeout, UpstreamTaskError
from tideflow.engine.logging import RUN_LOGGER_NAME, install_print_capture
from tideflow.engine.plan import trim_traceback
from tideflow.engine.task_cache import CachePlan, plan_cache
from tideflow.engine.task_concurrency import SlotKeeper, slot_keeper
from tideflow.engine.task_reporter import task_run_reporter
from tideflow.engine.timeouts import call_with_timeout
from tideflow.results import ResultRecord, ResultSerializationError
from tideflow.schemas import State, StateType
from tideflow.schemas import states as S
from tideflow.utilities.annotations import BaseAnnotation, allow_failure, opaque, quote

__all__ = [
    "TaskRun",
    "collect_upstreams",
    "new_task_run",
    "resolve_inputs",
    "run_name",
    "run_task_async",
    "run_task_sync",
    "wait_for_inputs",
]

logger = logging.getLogger(RUN_LOGGER_NAME)  # task runs log into their flow run's logs
_MAX_NESTING = 8  # how deep argument containers are searched for futures


@dataclass
class TaskRun:
    """One run of a task: its name, parameters, dependencies and states (newest last in history)."""

    id: UUID
    name: str
    task_name: str
    flow_run_id: UUID | None
    parameters: dict[str, Any]
    tags: list[str]
    state: State
    run_count: int = 0
    task_inputs: dict[str, list[UUID]] = field(default_factory=dict)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    history: list[State] = field(default_factory=list)
    result_location: str | None = None  # where its result is stored, when the task persists it
    asset_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # add_asset_metadata

    reporter: Any = field(default=None, repr=False, compare=False)  # where its states are reported

    def __getstate__(self) -> dict[str, Any]:
        # A run crossing to a worker process is reported by the process that made it (adopt()).
        return {k: v for k, v in self.__dict__.items() if k != "reporter"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, reporter=None)

    def adopt(self, finished: TaskRun) -> None:
        """Take the states a worker process moved this run through, reporting the new ones."""
        known = len(self.history)
        reporter = self.reporter
        self.__dict__.update(finished.__dict__, reporter=reporter)
        if reporter is not None:
            for state in self.history[known:]:
                reporter.enqueue((self, state))

    def set_state(self, state: State) -> None:
        if self.reporter is not None:
            self.reporter.enqueue((self, state))
        if state.type is StateType.RUNNING:
            self.run_count += 1
            if self.start_time is None:
                self.start_time = state.timestamp
        if state.is_final:
            self.end_time = state.timestamp
        self.state = state
        self.history.append(state)


_outside_counters: dict[str, itertools.count[int]] = {}  # task runs made outside any flow run


def new_task_run(task: Any, parameters: dict[str, Any]) -> TaskRun:
    """A Pending task run of ``task`` named ``<task>-<n>`` (n counts per flow run) or by its option."""
    ctx = current_run()
    flow_run_id = ctx.flow_run.id if ctx is not None else None
    if task.log_prints:
        install_print_capture()
    counters = ctx.task_counters if ctx is not None else _outside_counters
    # setdefault and next() on a count are atomic in CPython: tasks may submit from many threads
    n = next(counters.setdefault(task.name, itertools.count()))
    name = run_name(task, parameters) or f"{task.name}-{n}"
    state = S.Pending()
    run = TaskRun(
        id=uuid4(),
        name=name,
        task_name=task.name,
        flow_run_id=flow_run_id,
        parameters=parameters,
        tags=list(task.tags),
        state=state,
        history=[state],
    )
    if ctx is not None:
        s = ctx.settings
        run.reporter = task_run_reporter(
            ctx.api_url, interval=s.logs_batch_interval, max_buffer=s.logs_max_buffer
        )
        run.reporter.enqueue((run, state))
    return run


def run_name(task: Any, parameters: dict[str, Any]) -> str | None:
    """The name ``task.task_run_name`` gives a run with ``parameters``; None without the option."""
    option = task.task_run_name
    if option is None:
        return None
    if callable(option):
        name = option()
    else:
        try:
            name = option.format(**parameters)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"task_run_name {option!r} of task {task.name!r} cannot be filled from its "
                f"parameters ({', '.join(parameters) or 'none'}): {exc}"
            ) from None
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"task_run_name of task {task.name!r} must give a non-empty string")
    return name


# --- inputs ------------------------------------------------------------------------------------------
def _is_future(value: Any) -> bool:
    return hasattr(value, "_inner") and hasattr(value, "task_run")


def collect_upstreams(
    value: Any, found: list[Any], depth: int = 0, allowed: list[Any] | None = None
) -> None:
    """Append the futures found in ``value`` (searched through lists, tuples, sets and dicts);
    those wrapped in ``allow_failure`` go to ``allowed`` too. ``quote`` hides its value."""
    if _is_future(value):
        found.append(value)
    elif isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return
        if isinstance(value, opaque):
            if _is_future(value.value):
                found.append(value.value)
            return
        if isinstance(value, allow_failure):
            inner: list[Any] = []
            collect_upstreams(value.value, inner, depth + 1)
            found.extend(inner)
            if allowed is not None:
                allowed.extend(inner)
            return
        collect_upstreams(value.value, found, depth + 1, allowed)
    elif depth < _MAX_NESTING:
        if isinstance(value, list | tuple | set | frozenset):
            for item in value:
                collect_upstreams(item, found, depth + 1, allowed)
        elif isinstance(value, dict):
            for item in value.values():
                collect_upstreams(item, found, depth + 1, allowed)


def _replace(value: Any, depth: int = 0, failures_allowed: bool = False) -> Any:
    if _is_future(value):
        return value.result(raise_on_failure=not failures_allowed)
    if isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return value.value
        if isinstance(value, opaque):
            inner = value.value
            return inner.result() if _is_future(inner) else inner
        return _replace(
            value.value, depth + 1, failures_allowed or isinstance(value, allow_failure)
        )
    if depth >= _MAX_NESTING:
        return value
    if isinstance(value, list):
        return [_replace(v, depth + 1, failures_allowed) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_replace(v, depth + 1, failures_allowed) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(_replace(v, depth + 1, failures_allowed) for v in value)
    if isinstance(value, dict) and type(value) is dict:
        return {k: _replace(v, depth + 1, failures_allowed) for k, v in value.items()}
    return value


def resolve_inputs(task_run: TaskRun, parameters: dict[str, Any], wait_for: Sequence[Any]) -> None:
    """Record dependencies, check every upstream completed, and put values in place of futures.

    Futures must be final already (the caller waited). Raises UpstreamTaskError naming the first
    upstream that did not complete (unless it was wrapped in ``allow_failure``).
    """
    upstreams: list[Any] = []
    allowed: list[Any] = []
    for key, value in parameters.items():
        found: list[Any] = []
        collect_upstreams(value, found, allowed=allowed)
        if found:
            task_run.task_inputs[key] = [f.task_run_id for f in found]
            upstreams.extend(found)
    waited: list[Any] = []
    collect_upstreams(list(wait_for), waited, allowed=allowed)
    if waited:
        task_run.task_inputs["wait_for"] = [f.task_run_id for f in waited]
    tolerated = {id(f) for f in allowed}
    for upstream in (*waited, *upstreams):
        if id(upstream) in tolerated:
            continue
        if upstream.task_run.state.type is not StateType.COMPLETED:
            state = upstream.task_run.state
            detail = f"{state.name}: {state.message}" if state.message else state.name
            raise UpstreamTaskError(
                f"upstream task run {upstream.task_run.name!r} of task run {task_run.name!r} "
                f"did not complete ({detail})"
            )
    for key, value in parameters.items():
        parameters[key] = _replace(value)


def _upstream_inners(parameters: dict[str, Any], wait_for: Sequence[Any]) -> list[cf.Future[Any]]:
    found: list[Any] = []
    collect_upstreams(list(wait_for), found)
    for value in parameters.values():
        collect_upstreams(value, found)
    return [f._inner for f in found]


def wait_for_inputs(
    run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Sequence[Any] = (),
) -> tuple[tuple[Any, ...], dict[str, Any]]:  # fmt: skip
    """Block until the run's upstreams are final; answer the call's arguments with their values.

    An upstream that did not complete leaves the run Pending ``NotReady`` and raises
    UpstreamTaskError. Without upstreams the original arguments are passed as they are.
    """
    inners = _upstream_inners(bound.arguments, wait_for)
    if not inners:
        if not any(isinstance(v, BaseAnnotation) for v in bound.arguments.values()):
            return args, kwargs
    else:
        cf.wait(inners)
    try:
        resolve_inputs(run, bound.arguments, wait_for)
    except UpstreamTaskError as exc:
        run.set_state(S.Pending(name="NotReady", message=str(exc), data=exc))
        logger.error("Task run %r did not start: %s", run.name, exc)
        raise
    run.parameters = dict(bound.arguments)  # the values it runs with, not the futures
    return tuple(bound.args), dict(bound.kwargs)


# --- decisions shared by both twins ------------------------------------------------------------------
@dataclass
class _Attempt:
    """What to do after one failed call: retry after ``delay`` seconds, or end in ``final``."""

    final: State
    error: BaseException
    delay: float | None
    retries: int = 0


def _after_failure(
    task: Any, run: TaskRun, error: BaseException | None, timed_out: bool
) -> _Attempt:
    if timed_out:
        message = f"Task run exceeded timeout of {task.timeout_seconds:g} seconds"
        error = TaskRunTimeout(f"task run {run.name!r} timed out after {task.timeout_seconds:g} s")
        final = S.TimedOut(message=message, data=error)
    else:
        assert error is not None
        final = S.Failed(message=failure_message(error), data=error)
    ctx = current_run()
    retries, delays = task.retry_policy(ctx.settings if ctx is not None else None)
    retries_done = run.run_count - 1
    if retries_done >= retries or not _may_retry(task, run, final):
        return _Attempt(final, error, None, retries)
    delay = retry_delay(delays, retries_done)
    if task.retry_jitter_factor and delay > 0:
        delay *= 1 + random.uniform(0, task.retry_jitter_factor)
    return _Attempt(final, error, delay, retries)


def _may_retry(task: Any, run: TaskRun, state: State) -> bool:
    condition = task.retry_condition_fn
    if condition is None:
        return True
    try:
        return bool(condition(task, run, state))
    except Exception:
        logger.exception("retry_condition_fn of task %r raised; not retrying", task.name)
        return False


def _slots(run: TaskRun) -> SlotKeeper | None:
    """Where a tagged run in a flow run takes its concurrency slots (None: nothing to take)."""
    if not run.tags:
        return None
    ctx = current_run()
    return slot_keeper(ctx.api_url) if ctx is not None else None


def _cached(run: TaskRun, record: ResultRecord) -> None:
    run.result_location = record.location
    run.set_state(
        S.Completed(name="Cached", message=f"Result from {record.location}", data=record.value)
    )
    logger.info("Finished in state Cached(): result stored %s", record.created.isoformat())


def _complete(run: TaskRun, plan: CachePlan | None, value: Any) -> BaseException | None:
    """Store the value when the task persists it, then end Completed (or Failed when it cannot).

    A task that returns a final State (``Failed(message=...)``) ends in that state instead; the
    call answers the state as it is.
    """
    if isinstance(value, State) and value.is_final:
        run.set_state(value)
        _finish_log(run)
        return None
    if plan is not None:
        try:
            run.result_location = plan.persist(value).location
        except ResultSerializationError as exc:
            run.set_state(S.Failed(message=str(exc), data=exc))
            _finish_log(run)
            return exc
    run.set_state(S.Completed(data=value))
    _finish_log(run)
    return None


def _finish_log(run: TaskRun) -> None:
    state = run.state
    if state.type is StateType.COMPLETED:
        logger.info("Finished in state %s()", state.name)
    else:
        logger.error("Finished in state %s(%r)", state.name, state.message)


def _hooks(task: Any, run: TaskRun) -> Iterable[Callable[..., Any]]:
    hooks: Iterable[Callable[..., Any]]
    if run.state.type is StateType.RUNNING:
        hooks = task.on_running_hooks
    elif run.state.type is StateType.COMPLETED:
        hooks = task.on_completion_hooks
    else:
        hooks = task.on_failure_hooks
    return hooks


def _call_hooks_sync(task: Any, run: TaskRun) -> None:
    for hook in _hooks(task, run):
        try:
            result = hook(task, run, run.state)
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except Exception:
            logger.exception(
                "Hook %r of task %r raised", getattr(hook, "__name__", hook), task.name
            )


async def _call_hooks_async(task: Any, run: TaskRun) -> None:
    for hook in _hooks(task, run):
        try:
            result = hook(task, run, run.state)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception(
                "Hook %r of task %r raised", getattr(hook, "__name__", hook), task.name
            )


# --- the twins ---------------------------------------------------------------------------------------
def run_task_sync(
    task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Sequence[Any] = (),
) -> Any:  # fmt: skip
    """Run a sync task to a final state in this thread; return its value or raise its error.

    ``bound`` is the call's ``inspect.BoundArguments`` (futures in it are replaced by values).
    """
    call_args, call_kwargs = wait_for_inputs(run, args, kwargs, bound, wait_for)
    token = task_run_context_var.set(TaskRunContext(task=task, task_run=run))
    holding: SlotKeeper | None = None
    try:
        plan = plan_cache(task, run.parameters, run.id) if task.persist_result else None
        record = plan.lookup() if plan is not None else None
        if record is not None:
            _cached(run, record)
            _call_hooks_sync(task, run)
            return record.value
        slots = _slots(run)
        if slots is not None and slots.acquire(run, run.tags):
            holding = slots
        run.set_state(S.Running())
        while True:
            if task.on_running_hooks:
                _call_hooks_sync(task, run)
            try:
                value, timed_out = call_with_timeout(
                    task.fn, call_args, call_kwargs, task.timeout_seconds
                )
                error: BaseException | None = None
            except Exception as exc:
                value, timed_out, error = None, False, trim_traceback(exc, task.fn)
            if error is None and not timed_out:
                failure = _complete(run, plan, value)
                _call_hooks_sync(task, run)
                if failure is not None:
                    raise failure
                return value
            attempt = _after_failure(task, run, error, timed_out)
            if attempt.delay is None:
                run.set_state(attempt.final)
                _finish_log(run)
                _call_hooks_sync(task, run)
                raise attempt.error
            _retrying(task, run, attempt)
            if attempt.delay > 0:
                time.sleep(attempt.delay)
            run.set_state(S.Retrying())
    except BaseException as exc:
        if not run.state.is_final and not isinstance(exc, Exception):
            run.set_state(_interrupted(exc))
        raise
    finally:
        if holding is not None:
            holding.release(run.id)
        task_run_context_var.reset(token)


async def run_task_async(
    task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Sequence[Any] = (),
) -> Any:  # fmt: skip
    """Run an async task to a final state on the running loop; return its value or raise."""
    inners = _upstream_inners(bound.arguments, wait_for)
    if inners:  # wait on the loop, then resolve without blocking
        await asyncio.wait([asyncio.wrap_future(f) for f in inners])
    call_args, call_kwargs = wait_for_inputs(run, args, kwargs, bound, wait_for)
    token = task_run_context_var.set(TaskRunContext(task=task, task_run=run))
    holding: SlotKeeper | None = None
    try:
        plan = plan_cache(task, run.parameters, run.id) if task.persist_result else None
        record = plan.lookup() if plan is not None else None
        if record is not None:
            _cached(run, record)
            await _call_hooks_async(task, run)
            return record.value
        slots = _slots(run)
        if slots is not None and await asyncio.to_thread(slots.acquire, run, run.tags):
            holding = slots
        run.set_state(S.Running())
        while True:
            if task.on_running_hooks:
                await _call_hooks_async(task, run)
            error: BaseException | None = None
            value, timed_out = None, False
            try:
                if task.timeout_seconds is None:
                    value = await task.fn(*call_args, **call_kwargs)
                else:
                    cm = asyncio.timeout(task.timeout_seconds)
                    try:
                        async with cm:
                            value = await task.fn(*call_args, **call_kwargs)
                    except TimeoutError:
                        if not cm.expired():
                            raise
                        timed_out = True
            except Exception as exc:
                error = trim_traceback(exc, task.fn)
            if error is None and not timed_out:
                failure = _complete(run, plan, value)
                await _call_hooks_async(task, run)
                if failure is not None:
                    raise failure
                return value
            attempt = _after_failure(task, run, error, timed_out)
            if attempt.delay is None:
                run.set_state(attempt.final)
                _finish_log(run)
                await _call_hooks_async(task, run)
                raise attempt.error
            _retrying(task, run, attempt)
            if attempt.delay > 0:
                await asyncio.sleep(attempt.delay)
            run.set_state(S.Retrying())
    except BaseException as exc:
        if not run.state.is_final and not isinstance(exc, Exception):
            run.set_state(_interrupted(exc))
        raise
    finally:
        if holding is not None:
            await asyncio.to_thread(holding.release, run.id)
        task_run_context_var.reset(token)


def _interrupted(exc: BaseException) -> State:
    """The state of a run stopped by ``exc``: Cancelled when asked to, else Crashed."""
    state: State
    if isinstance(exc, TaskRunCancelled):
        state = S.Cancelled(message="Cancelled while it ran", data=exc)
    else:
        state = S.Crashed(message=f"Execution was interrupted: {failure_message(exc)}", data=exc)
    return state


def _retrying(task: Any, run: TaskRun, attempt: _Attempt) -> None:
    delay = attempt.delay or 0.0
    logger.warning(
        "Failed (%s); retry %d/%d in %g s",
        attempt.final.message, run.run_count, attempt.retries, delay,
    )  # fmt: skip
    when = S.utcnow() + dt.timedelta(seconds=delay)
    run.set_state(S.AwaitingRetry(scheduled_time=when, message=attempt.final.message))
