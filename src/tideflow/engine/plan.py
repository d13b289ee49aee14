"""Turning one call of a flow into a plan: the bound and validated arguments, the run to create, and
the core's ``RunSpec``. Shared by the sync and async runners; no I/O.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tideflow.engine.context import FlowRunContext, current_task_run
from tideflow.engine.core import RunSpec
from tideflow.engine.parameters import BoundCall, ParameterSchema, jsonable_parameters
from tideflow.exceptions import ParameterValidationError
from tideflow.identity import user_creator
from tideflow.schemas import FlowRunCreate
from tideflow.schemas.states import Running

__all__ = ["RunPlan", "make_plan", "render_run_name", "trim_traceback"]


@dataclass(frozen=True)
class RunPlan:
    """One call of a flow, ready to run: ``call`` holds the arguments to pass to the function."""

    spec: RunSpec
    call: BoundCall
    log_prints: bool


def render_run_name(
    option: str | Callable[..., str] | None, arguments: dict[str, Any], flow_name: str
) -> str | None:
    """The run's name from ``flow_run_name``: a template over the parameters, or a callable."""
    if option is None:
        return None
    if callable(option):
        try:
            takes_arg = any(
                p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                for p in inspect.signature(option).parameters.values()
            )
        except (TypeError, ValueError):
            takes_arg = False
        name = option(dict(arguments)) if takes_arg else option()
    else:
        try:
            name = option.format(**arguments)
        except KeyError as exc:
            raise ValueError(
                f"flow_run_name {option!r} of flow {flow_name!r} uses {{{exc.args[0]}}}, which is not one of "
                f"its parameters ({', '.join(arguments) or 'none'})"
            ) from None
        except (IndexError, ValueError) as exc:
            raise ValueError(
                f"flow_run_name {option!r} of flow {flow_name!r} is not a valid template: {exc}"
            ) from None
    if not isinstance(name, str) or not name.strip():
        raise TypeError(
            f"flow_run_name of flow {flow_name!r} must give a non-empty string, got {name!r}"
        )
    return name


def make_plan(
    flow: Any,
    schema: ParameterSchema,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    parent: FlowRunContext | None,
) -> RunPlan:
    """Bind and validate the call, and describe the run to create (a bad call becomes a failed run)."""
    invalid: ParameterValidationError | None = None
    try:
        call = schema.bind(flow.name, args, kwargs)
    except ParameterValidationError as exc:
        invalid = exc
        call = schema.bind_partial(args, kwargs)
    if invalid is None and flow.validate_parameters:
        try:
            call = schema.validate(call)
        except ParameterValidationError as exc:
            invalid = exc
    name = (
        render_run_name(flow.flow_run_name, call.arguments, flow.name) if invalid is None else None
    )
    # A valid call runs at once in this process, so its run is created directly in Running: one
    # round trip fewer than create-Pending-then-propose-Running (issue 6: trivial call ≤ 10 ms). A
    # bad call is created Pending and then Failed, as before.
    # A subflow called inside a task is drawn under that task on the parent's run graph.
    in_task = current_task_run() if parent is not None else None
    create = FlowRunCreate(
        flow_name=flow.name,
        name=name,
        parameters=jsonable_parameters(call.arguments),
        tags=list(flow.tags),
        state=Running() if invalid is None else None,
        parent_flow_run_id=parent.flow_run.id if parent is not None else None,
        parent_task_run_id=in_task.task_run.id if in_task is not None else None,
        created_by=user_creator(),
    )
    spec = RunSpec(
        flow_name=flow.name,
        create=create,
        retries=flow.retries,
        retry_delay_seconds=flow.retry_delay_seconds,
        timeout_seconds=flow.timeout_seconds,
        invalid=invalid,
    )
    log_prints = (
        flow.log_prints if flow.log_prints is not None else bool(parent and parent.log_prints)
    )
    return RunPlan(spec=spec, call=call, log_prints=log_prints)


def trim_traceback(error: BaseException, fn: Callable[..., Any]) -> BaseException:
    """Start the error's traceback at the flow function, hiding the engine's frames above it."""
    tb = error.__traceback__
    code = getattr(fn, "__code__", None)
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    return error.with_traceback(tb) if tb is not None else error
