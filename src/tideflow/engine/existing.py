"""Running a flow run that already exists (created from a deployment and claimed by a runner).

The runner's child process calls ``execute_flow_run(flow, flow_run_id)``: it loads the run, binds
its stored parameters to the function's signature (they are stored in bound form: ``*args`` as one
list, ``**kwargs`` as one object), proposes Running (from Pending), runs the function through the
same core as a direct call (retries, timeouts, hooks, logs), reports the final state and flushes
the run's logs. The return value is the process exit status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import Any
from uuid import UUID

from tideflow.client import AsyncClient, SyncClient
from tideflow.engine.async_runner import _AsyncRunner
from tideflow.engine.clients import new_async_client, sync_client
from tideflow.engine.context import FlowRunContext, run_context_var
from tideflow.engine.core import CreateRun, RunSpec
from tideflow.engine.errors import FlowRunSuspended
from tideflow.engine.logging import configure_run_logging, install_print_capture
from tideflow.engine.parameters import BoundCall
from tideflow.engine.plan import RunPlan, render_run_name
from tideflow.engine.sync_runner import _SyncRunner
from tideflow.exceptions import ParameterValidationError
from tideflow.schemas import FlowRun, FlowRunCreate, FlowRunUpdate
from tideflow.settings import Settings, get_settings

__all__ = ["EXIT_FAILED", "EXIT_OK", "bind_stored_parameters", "execute_flow_run"]

EXIT_OK = 0  # the run reached Completed
EXIT_FAILED = 1  # the run reached another final state (reported to the server)


def bind_stored_parameters(flow: Any, parameters: dict[str, Any]) -> BoundCall:
    """A call of ``flow`` from a run's stored parameters, defaults applied and values validated.

    Unknown or missing parameters and values that do not fit their hints raise
    ParameterValidationError naming the parameter.
    """
    schema = flow.parameter_schema
    signature: inspect.Signature = schema.signature
    arguments: dict[str, Any] = {}
    problems: list[str] = []
    known = signature.parameters
    for name in parameters:
        if name not in known:
            problems.append(f"parameter {name!r} is not a parameter of flow {flow.name!r}")
    for name, param in known.items():
        if name in parameters:
            value = parameters[name]
            arguments[name] = tuple(value) if param.kind is param.VAR_POSITIONAL else value
        elif param.kind is param.VAR_POSITIONAL:
            arguments[name] = ()
        elif param.kind is param.VAR_KEYWORD:
            arguments[name] = {}
        elif param.default is not param.empty:
            arguments[name] = param.default
        else:
            problems.append(f"parameter {name!r}: missing required parameter")
    if problems:
        raise ParameterValidationError("; ".join(problems))
    call = BoundCall(signature, arguments)
    return schema.validate(call) if flow.validate_parameters else call


def _plan(flow: Any, run: FlowRun) -> RunPlan:
    invalid: ParameterValidationError | None = None
    try:
        call = bind_stored_parameters(flow, run.parameters)
    except ParameterValidationError as exc:
        invalid = exc
        call = BoundCall(flow.parameter_schema.signature, {})
    create = FlowRunCreate(flow_id=run.flow_id, name=run.name, parameters=run.parameters)
    spec = RunSpec(
        flow_name=flow.name,
        create=create,
        retries=flow.retries,
        retry_delay_seconds=flow.retry_delay_seconds,
        timeout_seconds=flow.timeout_seconds,
        invalid=invalid,
    )
    return RunPlan(spec=spec, call=call, log_prints=bool(flow.log_prints))


def _named(flow: Any, run: FlowRun, plan: RunPlan, client: SyncClient) -> tuple[FlowRun, RunPlan]:
    """Apply the flow's ``flow_run_name`` to a deployment's run, as a direct call names its run;
    a template that cannot be rendered fails the run like a bad parameter."""
    if flow.flow_run_name is None or plan.spec.invalid is not None:
        return run, plan
    try:
        name = render_run_name(flow.flow_run_name, dict(plan.call.arguments), flow.name)
    except (ValueError, TypeError) as exc:
        invalid = ParameterValidationError(str(exc))
        return run, dataclasses.replace(plan, spec=dataclasses.replace(plan.spec, invalid=invalid))
    if name is None or name == run.name:
        return run, plan
    return client.update_flow_run(run.id, FlowRunUpdate(name=name)), plan


class _ExistingSync(_SyncRunner):
    """The sync runner with "create the run" answered by the run that already exists."""

    def __init__(
        self, flow: Any, plan: RunPlan, client: SyncClient, settings: Settings, run: FlowRun
    ) -> None:
        super().__init__(flow, plan, client, settings)
        self.existing = run

    def _create(self, step: CreateRun) -> FlowRun:
        self.ctx = _context(self.flow, self.existing, self.client, self.settings, self.plan)
        self.token = run_context_var.set(self.ctx)
        return self.existing


class _ExistingAsync(_AsyncRunner):
    """The async runner with "create the run" answered by the run that already exists."""

    def __init__(
        self, flow: Any, plan: RunPlan, client: AsyncClient, settings: Settings, run: FlowRun
    ) -> None:
        super().__init__(flow, plan, client, settings)
        self.existing = run

    async def _create(self, step: CreateRun) -> FlowRun:
        self.ctx = _context(self.flow, self.existing, self.client, self.settings, self.plan)
        self.ctx.client_loop = asyncio.get_running_loop()
        self.token = run_context_var.set(self.ctx)
        return self.existing


def _context(
    flow: Any, run: FlowRun, client: Any, settings: Settings, plan: RunPlan
) -> FlowRunContext:
    return FlowRunContext(
        flow=flow,
        flow_run=run,
        api_url=client.api_url,
        settings=settings,
        log_prints=plan.log_prints,
        client=client,
        parameters=dict(plan.call.arguments),
    )


async def _run_async(flow: Any, plan: RunPlan, settings: Settings, run: FlowRun) -> Any:
    async with new_async_client(settings) as client:
        return await _ExistingAsync(flow, plan, client, settings, run).run()


def execute_flow_run(
    flow: Any, flow_run_id: UUID, settings: Settings | None = None, run: FlowRun | None = None
) -> int:
    """Run the existing flow run ``flow_run_id`` of ``flow`` to a final state; the exit status.

    ``run`` is the run as the caller last saw it (saves reading it again). The flow's own error is
    reported as the run's state (and logged), not raised.
    """
    settings = settings or get_settings()
    configure_run_logging(settings.logging_level)
    client = sync_client(settings)
    if run is None or run.id != flow_run_id:
        run = client.read_flow_run(flow_run_id)
    plan = _plan(flow, run)
    run, plan = _named(flow, run, plan, client)
    if plan.log_prints:
        install_print_capture()
    try:
        if flow.isasync:
            asyncio.run(_run_async(flow, plan, settings, run))
        else:
            _ExistingSync(flow, plan, client, settings, run).run()
    except Exception:  # already logged and reported as the run's final state by the core
        return EXIT_FAILED
    except FlowRunSuspended:  # the run is Suspended: the process ends, a resume starts it again
        return EXIT_OK
    return EXIT_OK
