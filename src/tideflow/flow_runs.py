"""Pausing a flow run until someone answers: ``pause_flow_run``, ``suspend_flow_run`` and
``resume_flow_run`` (with ``a``-prefixed async twins).

``pause_flow_run`` keeps the process: the run goes Paused and the call waits (checking every
``poll_interval`` seconds) until a resume sets it Running, then answers the input. ``suspend_flow_run``
ends the process (the infrastructure is freed): the run goes Suspended, and a resume sets it
Scheduled, so its runner or worker starts it again from the start: tasks that persist their results
(``persist_result=True`` or a cache policy) are not run again, and the same ``suspend_flow_run`` call
then answers the input at once. With ``wait_for_input`` the pause stores the input model's JSON
schema; the server checks a resume's input against it before the run moves. Nobody resuming before
``timeout`` fails the run with a message naming the pause.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any, TypeVar
from uuid import UUID

from tideflow.engine.clients import sync_client
from tideflow.engine.context import FlowRunContext, current_run, current_task_run
from tideflow.engine.errors import FlowPauseTimeout, FlowRunCancelled, FlowRunSuspended
from tideflow.engine.sync_runner import accepted_run
from tideflow.exceptions import ObjectNotFound, ServerError, ServerUnreachable
from tideflow.input import RunInput, _is_automatic, run_input_subclass_from_type
from tideflow.schemas.run_inputs import keyset_for
from tideflow.schemas.states import Paused, StateType, utcnow
from tideflow.settings import get_settings

__all__ = [
    "apause_flow_run",
    "aresume_flow_run",
    "asuspend_flow_run",
    "pause_flow_run",
    "resume_flow_run",
    "suspend_flow_run",
]

T = TypeVar("T")
logger = logging.getLogger("tideflow.flow_runs")


def _context(what: str) -> FlowRunContext:
    ctx = current_run()
    if ctx is None:
        raise RuntimeError(f"{what} must be called inside a flow run")
    if current_task_run() is not None:
        raise RuntimeError(f"{what} cannot be called inside a task run; call it in the flow")
    return ctx


def _resumed_before(client: Any, run_id: UUID, key: str) -> bool:
    """Whether this run paused with ``key`` before (and so was resumed: it runs again now)."""
    return any(
        s.type is StateType.PAUSED and (s.details.model_extra or {}).get("pause_key") == key
        for s in client.read_flow_run_states(run_id)
    )


def _answer(client: Any, run_id: UUID, key: str, model: type[RunInput] | None) -> Any:
    if model is None:
        return None
    try:
        stored = client.read_flow_run_input(run_id, keyset_for(key)["response"])
    except ObjectNotFound:
        raise RuntimeError(
            f"flow run {run_id} was resumed without the input pause {key!r} waits for"
        ) from None
    value = model.model_validate(stored.value)
    return value.value if _is_automatic(model) else value  # type: ignore[attr-defined]


def _store_schema(client: Any, run_id: UUID, key: str, model: type[RunInput]) -> None:
    keyset = keyset_for(key)
    values: dict[str, Any] = {"schema": model.model_json_schema()}
    if model._description:
        values["description"] = model._description
    for kind, value in values.items():
        try:
            client.delete_flow_run_input(run_id, keyset[kind])  # a re-run may bring a new model
        except ObjectNotFound:
            pass
        client.create_flow_run_input(run_id, keyset[kind], value)


def _pause(
    what: str,
    wait_for_input: Any,
    timeout: float,
    poll_interval: float,
    key: str | None,
    reschedule: bool,
) -> Any:
    ctx = _context(what)
    client = sync_client(ctx.settings)
    run_id = ctx.flow_run.id
    if reschedule and ctx.flow_run.deployment_id is None:
        raise RuntimeError(
            f"{what} needs a deployment's run (a runner or worker must start it again); flow run "
            f"{ctx.flow_run.name!r} was called directly: use pause_flow_run"
        )
    ctx.pause_count += 1
    key = key or f"{'suspend' if reschedule else 'pause'}-{ctx.pause_count}"
    model = run_input_subclass_from_type(wait_for_input) if wait_for_input is not None else None
    if _resumed_before(client, run_id, key):
        return _answer(client, run_id, key, model)
    if model is not None:
        _store_schema(client, run_id, key, model)
    deadline = utcnow() + dt.timedelta(seconds=timeout)
    kind = "Suspended" if reschedule else "Paused"
    state = Paused(
        f"{kind} (pause {key!r}) until resumed, at the latest {deadline.isoformat()}",
        name=kind,
        pause_timeout=deadline,
        pause_key=key,
        pause_reschedule=reschedule,
        run_input_keyset=keyset_for(key) if model is not None else None,
    )
    paused = client.set_flow_run_state(run_id, state)
    ctx.flow_run = accepted_run(ctx.flow_run, paused)
    logger.info(
        "%s until resumed (`tideflow flow-run resume %s` or the run's page in the UI)", kind, run_id
    )
    if reschedule:
        raise FlowRunSuspended(f"flow run {ctx.flow_run.name!r} suspended (pause {key!r})")
    _wait(ctx, client, key, paused.state.id, deadline, timeout, poll_interval)
    return _answer(client, run_id, key, model)


def _wait(
    ctx: FlowRunContext,
    client: Any,
    key: str,
    paused_id: UUID,
    deadline: dt.datetime,
    timeout: float,
    poll_interval: float,
) -> None:
    """Block until the run leaves the pause: Running (resumed) returns, anything else raises."""
    name = ctx.flow_run.name
    while True:
        remaining = (deadline - utcnow()).total_seconds()
        time.sleep(max(0.0, min(poll_interval, remaining)))
        try:
            run = client.read_flow_run(ctx.flow_run.id)
        except (ServerUnreachable, ServerError):
            if remaining > 0:
                continue  # the server may be restarting: ask again at the next poll
            raise
        current = run.state
        if current is not None and current.id == paused_id:
            if (deadline - utcnow()).total_seconds() <= 0:
                raise FlowPauseTimeout(
                    f"flow run {name!r} was paused (pause {key!r}) for {timeout:g} s and nobody "
                    "resumed it"
                )
            continue
        ctx.flow_run = run
        if current is not None and current.type is StateType.RUNNING:
            return
        if current is not None and current.type in (StateType.CANCELLING, StateType.CANCELLED):
            raise FlowRunCancelled(409, f"flow run {name!r} was cancelled while paused")
        if current is not None and current.type is StateType.FAILED:
            raise FlowPauseTimeout(current.message or f"flow run {name!r} failed while paused")
        state_name = current.name if current is not None else "no state"
        raise FlowRunCancelled(409, f"flow run {name!r} left its pause for {state_name}")


def pause_flow_run(
    wait_for_input: type[T] | None = None,
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> T | None:
    """Pause the current flow run until it is resumed; the input the resume carried, when
    ``wait_for_input`` names its type (a plain type, a pydantic model or a RunInput).

    Raises FlowPauseTimeout (the run then fails) when nobody resumes it within ``timeout`` seconds.
    ``key`` names the pause (default: ``pause-N``, N counting this run's pauses).
    """
    return _pause("pause_flow_run", wait_for_input, timeout, poll_interval, key, False)  # type: ignore[no-any-return]


async def apause_flow_run(
    wait_for_input: type[T] | None = None,
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> T | None:
    """``pause_flow_run`` for async flows (waits without blocking the event loop)."""
    return await asyncio.to_thread(pause_flow_run, wait_for_input, timeout, poll_interval, key)


def suspend_flow_run(
    wait_for_input: type[T] | None = None,
    flow_run_id: UUID | None = None,
    timeout: float = 3600,
    key: str | None = None,
) -> T | None:
    """Suspend a deployment's flow run: its process ends and a resume starts the run again from
    the start, where this call then answers the resume's input (see the module's docstring).

    With ``flow_run_id`` of another run, that run is set Suspended (it must be a deployment's run;
    its process stops at its next state report) and this call returns None.
    """
    ctx = current_run()
    if flow_run_id is not None and (ctx is None or flow_run_id != ctx.flow_run.id):
        _suspend_other(flow_run_id, timeout)
        return None
    return _pause("suspend_flow_run", wait_for_input, timeout, 0, key, True)  # type: ignore[no-any-return]


async def asuspend_flow_run(
    wait_for_input: type[T] | None = None,
    flow_run_id: UUID | None = None,
    timeout: float = 3600,
    key: str | None = None,
) -> T | None:
    return await asyncio.to_thread(suspend_flow_run, wait_for_input, flow_run_id, timeout, key)


def _suspend_other(flow_run_id: UUID, timeout: float) -> None:
    ctx = current_run()
    client = sync_client(ctx.settings if ctx is not None else get_settings())
    deadline = utcnow() + dt.timedelta(seconds=timeout)
    state = Paused(
        f"Suspended until resumed, at the latest {deadline.isoformat()}",
        name="Suspended",
        pause_timeout=deadline,
        pause_reschedule=True,
    )
    client.set_flow_run_state(flow_run_id, state)


def resume_flow_run(flow_run_id: UUID, run_input: dict[str, Any] | None = None) -> None:
    """Resume a paused or suspended run with the input it waits for (checked by the server
    against the pause's schema: ServerError 422 naming the field when it does not fit)."""
    ctx = current_run()
    client = sync_client(ctx.settings if ctx is not None else get_settings())
    client.resume_flow_run(flow_run_id, run_input)


async def aresume_flow_run(flow_run_id: UUID, run_input: dict[str, Any] | None = None) -> None:
    await asyncio.to_thread(resume_flow_run, flow_run_id, run_input)
