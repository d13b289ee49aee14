"""Running an async flow: executes the core's steps with an AsyncClient, ``asyncio.sleep`` and
``asyncio.timeout``. The sync twin is ``sync_runner``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from contextvars import Token
from typing import Any
from uuid import UUID

from tideflow.client import AsyncClient
from tideflow.engine.clients import new_async_client
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
from tideflow.engine.logging import configure_run_logging, install_print_capture
from tideflow.engine.plan import RunPlan, make_plan, trim_traceback
from tideflow.engine.report_retry import is_transient, retry_delays
from tideflow.engine.sync_runner import accepted_run, flush_run_logs, unreachable
from tideflow.exceptions import ServerError, ServerUnreachable, TransitionRefused
from tideflow.schemas import FlowRun, OrchestrationResult, SetStateStatus, State
from tideflow.settings import Settings, get_settings

__all__ = ["run_flow_async"]

logger = logging.getLogger("tideflow.flow_runs")
_MAX_WAITS = 100


class _AsyncRunner:
    def __init__(self, flow: Any, plan: RunPlan, client: AsyncClient, settings: Settings) -> None:
        self.flow = flow
        self.plan = plan
        self.client = client
        self.settings = settings
        self.ctx: FlowRunContext | None = None
        self.token: Token[FlowRunContext | None] | None = None

    async def run(self) -> Any:
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
                    answer = await self._execute(step)
                except BaseException as exc:
                    error = exc
        finally:
            gen.close()
            if self.ctx is not None and (self.ctx.api_logs or self.ctx.task_counters):
                # the flush waits on a thread condition: do it off the event loop
                await asyncio.to_thread(flush_run_logs, self.ctx)
            if self.token is not None:
                run_context_var.reset(self.token)

    async def _execute(self, step: Step) -> Any:
        if isinstance(step, Propose):
            return await self._propose(step.state)
        if isinstance(step, Invoke):
            return await self._invoke(step.timeout)
        if isinstance(step, CallHooks):
            await self._hooks(step.kind, step.state)
            return None
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, CreateRun):
            return await self._create(step)
        raise TypeError(f"unknown engine step {step!r}")

    async def _create(self, step: CreateRun) -> FlowRun:
        run = await self.client.create_flow_run(step.body)
        self.ctx = FlowRunContext(
            flow=self.flow,
            flow_run=run,
            api_url=self.client.api_url,
            settings=self.settings,
            log_prints=self.plan.log_prints,
            client=self.client,
            client_loop=asyncio.get_running_loop(),
            parameters=dict(self.plan.call.arguments),
        )
        self.token = run_context_var.set(self.ctx)
        return run

    async def _propose(self, state: State) -> OrchestrationResult | Refused:
        assert self.ctx is not None
        run_id = self.ctx.flow_run.id
        for _ in range(_MAX_WAITS):
            try:
                result = await self._send_state(run_id, state)
            except TransitionRefused as exc:
                return Refused(exc.detail, await self._current_state())
            if result.status is SetStateStatus.ACCEPT:
                self.ctx.flow_run = accepted_run(self.ctx.flow_run, result)
                return result
            if result.status is SetStateStatus.REJECT:
                return Refused(result.reason or "refused", result.state)
            await asyncio.sleep(0.5)
        return Refused("the server kept asking the run to wait", await self._current_state())

    async def _send_state(self, run_id: UUID, state: State) -> OrchestrationResult:
        # Across a server restart (see engine/report_retry.py): the same proposal, same state id.
        delays = retry_delays(self.settings.client_state_report_patience)
        while True:
            try:
                return await self.client.set_flow_run_state(run_id, state)
            except (ServerUnreachable, ServerError) as exc:
                delay = next(delays, None)
                if delay is None or not is_transient(exc):
                    raise
                await asyncio.sleep(delay)

    async def _current_state(self) -> State | None:
        assert self.ctx is not None
        try:
            return (await self.client.read_flow_run(self.ctx.flow_run.id)).state
        except Exception:
            return None

    async def _invoke(self, timeout: float | None) -> Outcome:
        try:
            return await self._call(timeout)
        finally:
            # The flow's submitted task runs end before the flow run does; wait off the loop.
            assert self.ctx is not None
            if self.ctx.task_runner is not None:
                await asyncio.to_thread(self.ctx.close_task_runner)

    async def _call(self, timeout: float | None) -> Outcome:
        args, kwargs = self.plan.call.args_kwargs()
        fn = self.flow.fn
        try:
            if timeout is None:
                return Outcome(value=await fn(*args, **kwargs))
            cm = asyncio.timeout(timeout)
            try:
                async with cm:
                    return Outcome(value=await fn(*args, **kwargs))
            except TimeoutError:
                if cm.expired():
                    return Outcome(timed_out=True)
                raise
        except BaseException as exc:
            return Outcome(error=trim_traceback(exc, fn))

    async def _hooks(self, kind: str, state: State) -> None:
        assert self.ctx is not None
        for hook in getattr(self.flow, kind):
            try:
                result = hook(self.flow, self.ctx.flow_run, state)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception(
                    "Hook %r (%s) raised an exception", getattr(hook, "__name__", hook), kind
                )


async def run_flow_async(
    flow: Any, args: tuple[Any, ...], kwargs: dict[str, Any], return_state: bool = False
) -> Any:
    """Run an async flow for one call: create its run, run it to a final state, return or raise
    (with ``return_state``: answer the final State, holding the value or the error)."""
    if not return_state:
        return await _run_flow_async(flow, args, kwargs, None)
    holder: list[Any] = []
    try:
        value = await _run_flow_async(flow, args, kwargs, holder)
    except ServerUnreachable:
        raise
    except Exception as exc:
        return call_state(
            holder[0].ctx.flow_run.state if holder and holder[0].ctx else None, error=exc
        )
    return call_state(
        holder[0].ctx.flow_run.state if holder and holder[0].ctx else None, value=value
    )


async def _run_flow_async(
    flow: Any, args: tuple[Any, ...], kwargs: dict[str, Any], holder: list[Any] | None
) -> Any:
    parent = current_run()
    loop = asyncio.get_running_loop()
    settings = parent.settings if parent is not None else get_settings()
    if parent is None:
        configure_run_logging(settings.logging_level)
    plan = make_plan(flow, flow.parameter_schema, args, kwargs, parent)
    if plan.log_prints:
        install_print_capture()
    try:
        if (
            parent is not None
            and isinstance(parent.client, AsyncClient)
            and parent.client_loop is loop
        ):
            runner = _AsyncRunner(flow, plan, parent.client, settings)
            if holder is not None:
                holder.append(runner)
            return await runner.run()
        async with new_async_client(settings) as client:
            runner = _AsyncRunner(flow, plan, client, settings)
            if holder is not None:
                holder.append(runner)
            return await runner.run()
    except ServerUnreachable as exc:
        raise unreachable(exc) from None  # one line naming the URL, not the engine's stack
