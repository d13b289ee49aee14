"""Flow run inputs: create, read, list (oldest first, by key prefix), acknowledge, delete; and the
two halves of resuming a paused run (what the pause waits for, then the resume itself).

The resume is a compare-and-set on the Paused state that was read, so two resumes of one pause
never both apply; the input a resume carries is stored in the same transaction as the new state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, StateProposal
from tideflow.schemas.run_inputs import FlowRunInput, FlowRunInputCreate, FlowRunInputFilter
from tideflow.schemas.states import Failed, Running, Scheduled, State, StateType, utcnow
from tideflow.server.orchestration import Decision
from tideflow.server.storage.dialect import insert_ignoring_conflict
from tideflow.server.storage.errors import Conflict, NotFound
from tideflow.server.storage.flow_runs import read_flow_run, set_flow_run_state
from tideflow.server.storage.tables import flow_run_input

__all__ = [
    "PendingPause",
    "ack_input",
    "create_input",
    "delete_input",
    "expired_message",
    "filter_inputs",
    "read_input",
    "read_pause",
    "resume_flow_run",
]

_C = flow_run_input.c


def _input(row: Any) -> FlowRunInput:
    return FlowRunInput.model_validate(dict(row._mapping))


async def _run_exists(session: AsyncSession, run_id: UUID) -> None:
    if await read_flow_run(session, run_id) is None:
        raise NotFound(f"flow run {run_id} not found")


async def create_input(
    session: AsyncSession, run_id: UUID, body: FlowRunInputCreate, *, replace: bool = False
) -> FlowRunInput:
    """Store one input of a run; a key the run has already is a Conflict (unless ``replace``)."""
    await _run_exists(session, run_id)
    if replace:
        await delete_input(session, run_id, body.key, missing_ok=True)
    values = {
        "id": uuid.uuid4(),
        "flow_run_id": run_id,
        "key": body.key,
        "value": body.value,
        "sender": body.sender,
        "acked": None,
        "created": utcnow(),
    }
    if not await insert_ignoring_conflict(session, flow_run_input, values, ["flow_run_id", "key"]):
        raise Conflict(f"flow run {run_id} has an input with key {body.key!r} already")
    return FlowRunInput.model_validate(values)


async def read_input(session: AsyncSession, run_id: UUID, key: str) -> FlowRunInput | None:
    row = (
        await session.execute(
            sa.select(flow_run_input).where(_C.flow_run_id == run_id, _C.key == key)
        )
    ).first()
    return _input(row) if row is not None else None


async def filter_inputs(
    session: AsyncSession, run_id: UUID, flt: FlowRunInputFilter
) -> list[FlowRunInput]:
    """The run's inputs matching ``flt``, oldest first (ties in key order)."""
    stmt = sa.select(flow_run_input).where(_C.flow_run_id == run_id)
    if flt.prefix:
        escaped = flt.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(_C.key.like(f"{escaped}%", escape="\\"))
    if flt.exclude_keys:
        stmt = stmt.where(_C.key.not_in(flt.exclude_keys))
    if flt.created_after is not None:
        stmt = stmt.where(_C.created >= flt.created_after)
    if flt.unacked_only:
        stmt = stmt.where(_C.acked.is_(None))
    stmt = stmt.order_by(_C.created, _C.key).limit(flt.limit)
    return [_input(row) for row in await session.execute(stmt)]


async def ack_input(session: AsyncSession, run_id: UUID, key: str) -> FlowRunInput:
    """Mark the input received (once: the first acknowledgement's time is kept)."""
    await session.execute(
        sa.update(flow_run_input)
        .where(_C.flow_run_id == run_id, _C.key == key, _C.acked.is_(None))
        .values(acked=utcnow())
    )
    found = await read_input(session, run_id, key)
    if found is None:
        raise NotFound(f"flow run {run_id} has no input with key {key!r}")
    return found


async def delete_input(
    session: AsyncSession, run_id: UUID, key: str, *, missing_ok: bool = False
) -> None:
    result = await session.execute(
        sa.delete(flow_run_input).where(_C.flow_run_id == run_id, _C.key == key)
    )
    if not result.rowcount and not missing_ok:  # type: ignore[attr-defined]
        raise NotFound(f"flow run {run_id} has no input with key {key!r}")


@dataclasses.dataclass(frozen=True)
class PendingPause:
    """A paused run and what its pause waits for: the JSON schema of its input (None: no input)."""

    run: FlowRun
    state: State
    schema: dict[str, Any] | None
    response_key: str | None
    expired: bool


def expired_message(state: State) -> str:
    kind = "suspended" if state.name == "Suspended" else "paused"
    key = (state.details.model_extra or {}).get("pause_key")
    named = f" (pause {key!r})" if key else ""
    when = state.details.pause_timeout.isoformat() if state.details.pause_timeout else "?"
    return f"The flow run was {kind}{named} and nobody resumed it before its timeout ({when})"


async def read_pause(session: AsyncSession, run_id: UUID, now: dt.datetime) -> PendingPause:
    """The paused run ``run_id`` and its pause; NotFound, or Conflict when it is not paused."""
    run = await read_flow_run(session, run_id)
    if run is None:
        raise NotFound(f"flow run {run_id} not found")
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        now_in = state.name if state is not None else "without a state"
        raise Conflict(f"flow run {run.name!r} is not paused (it is {now_in})")
    extra = state.details.model_extra or {}
    raw = extra.get("run_input_keyset")
    keyset: dict[str, Any] = raw if isinstance(raw, dict) else {}
    schema: dict[str, Any] | None = None
    schema_key = keyset.get("schema")
    if isinstance(schema_key, str):
        found = await read_input(session, run_id, schema_key)
        if found is not None and isinstance(found.value, dict):
            schema = found.value
    response = keyset.get("response")
    deadline = state.details.pause_timeout
    return PendingPause(
        run=run,
        state=state,
        schema=schema,
        response_key=response if isinstance(response, str) else None,
        expired=deadline is not None and deadline <= now,
    )


async def resume_flow_run(
    session: AsyncSession, pause: PendingPause, run_input: dict[str, Any] | None
) -> tuple[Decision, FlowRun]:
    """Resume ``pause`` (read and judged by the caller in this transaction): store ``run_input``
    as its response, then Running (paused in its process) or Scheduled (suspended: the run's
    runner or worker starts it again). An expired pause fails the run instead."""
    state = pause.state
    if pause.expired:
        proposal = StateProposal(
            state=Failed(message=expired_message(state)), expected_state_id=state.id
        )
        return await set_flow_run_state(session, pause.run.id, proposal)
    if run_input is not None and pause.response_key is not None:
        body = FlowRunInputCreate(key=pause.response_key, value=run_input)
        await create_input(session, pause.run.id, body, replace=True)
    rescheduled = bool((state.details.model_extra or {}).get("pause_reschedule"))
    new = Scheduled(name="Resuming") if rescheduled else Running(name="Resuming")
    # force: a resumed process takes its deployment's slot back without queueing behind new runs
    # (it holds its process all along); the compare-and-set keeps two resumes from both applying.
    proposal = StateProposal(state=new, expected_state_id=state.id, force=not rescheduled)
    decision, run = await set_flow_run_state(session, pause.run.id, proposal)
    if decision.status.value == "REJECT":
        raise Conflict(f"flow run {pause.run.name!r} was resumed or changed meanwhile")
    return decision, run
