"""Running a sync flow: executes the core's steps with the process's SyncClient, blocking sleeps and
SIGALRM/thread timeouts. The async twin is ``async_runner``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from contextvars import Token
from typing import Any
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.client._events import flush_events
from tideflow.engine.clients import forget_sync_client, sync_client
from tideflow.engine.context import FlowRunContext, current_run, run_context_var
from tideflow.engine.core import (
    CallHooks,
    CreateRun,
    Invoke,
    Outcome,
    Propose,
    Refused,
    Sleep,
    Step,
    call_state,
    orchestrate,
)
from tideflow.engine.log_worker import log_worker
from tideflow.engine.logging import configure_run_logging, install_print_capture
from tideflow.engine.plan import RunPlan, make_plan, trim_traceback
from tideflow.engine.report_retry import is_transient, retry_delays
from tideflow.engine.task_reporter import task_run_reporter
from tideflow.engine.timeouts import call_with_timeout
from tideflow.exceptions import ServerError, ServerUnreachable, TransitionRefused
from tideflow.schemas import FlowRun, OrchestrationResult, SetStateStatus, State, StateType
from tideflow.settings import Settings, get_settings

__all__ = ["accepted_run", "call_hooks_sync", "flush_run_logs", "run_flow_sync", "unreachable"]

logger = logging.getLogger("tideflow.flow_runs")
_FLUSH_TIMEOUT = 5.0
_MAX_WAITS = 100


def accepted_run(run: FlowRun, result: OrchestrationResult) -> FlowRun:
    """The run after an accepted proposal: the server's copy when it sent one."""
    if result.run is not None:
        return result.run
    state = result.state
    started = state.type is StateType.RUNNING and (
        run.state is None or run.state.type is not StateType.RUNNING
    )
    count = run.run_count + (1 if started else 0)
    return run.model_copy(
        update={
            "state": state,
            "state_type": state.type,
            "state_name": state.name,
            "run_count": count,
        }
    )


def flush_run_logs(ctx: FlowRunContext) -> None:
    """Wait (bounded) until the run's queued records were sent, when it queued any."""
    flush_events(_FLUSH_TIMEOUT)  # events the run emitted (returns at once while offline)
    if ctx.task_counters:  # it ran tasks: their state reports go before the run's last logs
        s = ctx.settings
        task_run_reporter(
            ctx.api_url, interval=s.logs_batch_interval, max_buffer=s.logs_max_buffer
        ).flush(_FLUSH_TIMEOUT)
    if ctx.api_logs:
        s = ctx.settings
        log_worker(ctx.api_url, interval=s.logs_batch_interval, max_buffer=s.logs_max_buffer).flush(
            _FLUSH_TIMEOUT
        )


def call_hooks_sync(ctx: FlowRunContext, kind: str, state: State) -> None:
    """Call the flow's hooks of ``kind``; a hook that raises is logged and changes nothing."""
    for hook in getattr(ctx.flow, kind):
        try:
            result = hook(ctx.flow, ctx.flow_run, state)
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except Exception:
            logger.exception(
                "Hook %r (%s) raised an exception", getattr(hook, "__name__", hook), kind
            )


class _SyncRunner:
    def __init__(self, flow: Any, plan: RunPlan, client: SyncClient, settings: Settings) -> None:
        self.flow = flow
        self.plan = plan
        self.client = client
        self.settings = settings
        self.ctx: FlowRunContext | None = None
        self.token: Token[FlowRunContext | None] | None = None

    def run(self) -> Any:
        gen = orchestrate(self.plan.spec)
        answer: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = gen.send(answer) if error is None else gen.throw(error)
                except StopIteration as stop:
                    return stop.value
                answer, error = None, None
                try:
                    answer = self._execute(step)
                except BaseException as exc:
                    error = exc
        finally:
            gen.close()
            if self.ctx is not None:
                flush_run_logs(self.ctx)
            if self.token is not None:
                run_context_var.reset(self.token)

    def _execute(self, step: Step) -> Any:
        if isinstance(step, Propose):
            return self._propose(step.state)
        if isinstance(step, Invoke):
            return self._invoke(step.timeout)
        if isinstance(step, CallHooks):
            assert self.ctx is not None
            call_hooks_sync(self.ctx, step.kind, step.state)
            return None
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, CreateRun):
            return self._create(step)
        raise TypeError(f"unknown engine step {step!r}")

    def _create(self, step: CreateRun) -> FlowRun:
        try:
            run = self.client.create_flow_run(step.body)
        except ServerUnreachable:
            if (
                self.settings.api_url
                or not self.settings.server_autostart
                or current_run() is not None
            ):
                raise
            forget_sync_client()  # the local server went away: find or start it again, once
            self.client = sync_client(self.settings)
            run = self.client.create_flow_run(step.body)
        self.ctx = FlowRunContext(
            flow=self.flow,
            flow_run=run,
            api_url=self.client.api_url,
            settings=self.settings,
            log_prints=self.plan.log_prints,
            client=self.client,
            parameters=dict(self.plan.call.arguments),
        )
        self.token = run_context_var.set(self.ctx)
        return run

    def _propose(self, state: State) -> OrchestrationResult | Refused:
        assert self.ctx is not None
        run_id = self.ctx.flow_run.id
        for _ in range(_MAX_WAITS):
            try:
                result = self._send_state(run_id, state)
            except TransitionRefused as exc:
                return Refused(exc.detail, self._current_state())
            if result.status is SetStateStatus.ACCEPT:
                self.ctx.flow_run = accepted_run(self.ctx.flow_run, result)
                return result
            if result.status is SetStateStatus.REJECT:
                return Refused(result.reason or "refused", result.state)
            time.sleep(_wait_seconds(result.state))
        return Refused("the server kept asking the run to wait", self._current_state())

    def _send_state(self, run_id: UUID, state: State) -> OrchestrationResult:
        # Across a server restart (see engine/report_retry.py): the same proposal, same state id.
        delays = retry_delays(self.settings.client_state_report_patience)
        while True:
            try:
                return self.client.set_flow_run_state(run_id, state)
            except (ServerUnreachable, ServerError) as exc:
                delay = next(delays, None)
                if delay is None or not is_transient(exc):
                    raise
                time.sleep(delay)

    def _current_state(self) -> State | None:
        assert self.ctx is not None
        try:
            return self.client.read_flow_run(self.ctx.flow_run.id).state
        except Exception:
            return None

    def _invoke(self, timeout: float | None) -> Outcome:
        args, kwargs = self.plan.call.args_kwargs()
        fn = self.flow.fn
        assert self.ctx is not None
        timed_out = False
        try:
            value, timed_out = call_with_timeout(fn, args, kwargs, timeout)
        except BaseException as exc:
            return Outcome(error=trim_traceback(exc, fn))
        finally:
            # The flow's submitted task runs end before the flow run does (a timed-out flow's
            # function may still be running in its thread: do not wait for it there).
            self.ctx.close_task_runner(wait=not timed_out)
        return Outcome(value=value, timed_out=timed_out)


def _wait_seconds(state: State) -> float:
    when = state.details.scheduled_time
    if when is None:
        return 0.5
    return min(10.0, max(0.05, (when - state.timestamp).total_seconds()))


def run_flow_sync(
    flow: Any, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool = False
) -> Any:
    """Run a sync flow for one call: create its run, run it to a final state, return or raise
    (with ``return_state``: answer the final State, holding the value or the error)."""
    parent = current_run()
    if parent is not None:
        settings = parent.settings
        client = parent.client if isinstance(parent.client, SyncClient) else sync_client(settings)
    else:
        settings = get_settings()
        configure_run_logging(settings.logging_level)
        client = sync_client(settings)
    plan = make_plan(flow, flow.parameter_schema, args, kwargs, parent)
    if plan.log_prints:
        install_print_capture()
    runner = _SyncRunner(flow, plan, client, settings)
    try:
        if not return_state:
            return runner.run()
        try:
            value = runner.run()
        except ServerUnreachable:
            raise
        except Exception as exc:
            return call_state(runner.ctx.flow_run.state if runner.ctx else None, error=exc)
        return call_state(runner.ctx.flow_run.state if runner.ctx else None, value=value)
    except ServerUnreachable as exc:
        raise unreachable(exc) from None  # one line naming the URL, not the engine's stack


_REASONS = {
    "ConnectError": "nothing accepted the connection; is a tideflow server running there?",
    "ConnectTimeout": "connecting timed out",
    "ReadTimeout": "the server did not answer in time",
    "WriteTimeout": "sending to the server timed out",
    "PoolTimeout": "no free connection in time",
    "RemoteProtocolError": "the server closed the connection",
    "ReadError": "the connection broke",
}


def unreachable(exc: ServerUnreachable) -> ServerUnreachable:
    """A fresh ServerUnreachable for the flow's caller, with a plain-words reason."""
    match = re.search(r"\((\w+)\)$", str(exc))
    reason = _REASONS.get(match.group(1), match.group(1)) if match else ""
    return ServerUnreachable(exc.url, reason)
