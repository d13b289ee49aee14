"""What happens alongside every accepted state change of a flow run, inside its transaction.

``record_state_change`` is called by ``storage.flow_runs`` for the initial state and for every stored
state. It writes the run's ``tideflow.flow-run.<StateName>`` event (built by
``server.events.run_events``) with ``insert_events``, so the event commits or rolls back with the
state, and queues a ``RunStateChanged`` for the broker's ``"runs"`` topic (published after commit;
the dispatcher and concurrency bookkeeping listen there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, State
from tideflow.server.events.run_events import flow_run_state_event
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.outbox import publish_after_commit
from tideflow.server.storage.tables import flow_runs

__all__ = ["RUNS_TOPIC", "RunStateChanged", "record_state_change", "record_state_changes"]

RUNS_TOPIC = "runs"


@dataclass(frozen=True)
class RunStateChanged:
    """A run entered ``run.state``; ``previous`` is the state it left (None for a new run)."""

    run: FlowRun
    previous: State | None


async def _triggering_event_id(session: AsyncSession, run: FlowRun) -> UUID | None:
    # Only automations create runs from an event; skip the lookup for everyone else.
    if run.created_by is None or run.created_by.type != "automation":
        return None
    stmt = sa.select(flow_runs.c.triggering_event_id).where(flow_runs.c.id == run.id)
    value: UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def record_state_change(
    session: AsyncSession, run: FlowRun, previous: State | None, *, triggering_event_id: UUID | None
) -> None:
    """Write the event of ``run`` entering its state from ``previous``; queue the broker notice.

    ``triggering_event_id``: the run's, as the caller read it with the run's row (not read again:
    one statement fewer under SQLite's write lock for every state of an automation's run).
    """
    await record_state_changes(
        session, [(run, previous)], created_from=triggering_event_id, known=True
    )


async def record_state_changes(
    session: AsyncSession,
    changes: Sequence[tuple[FlowRun, State | None]],
    *,
    created_from: UUID | None = None,
    known: bool = False,
) -> None:
    """Several state changes of one transaction, oldest first: their events in one insert.

    ``created_from``: the triggering event of runs created just now (known, so not read back);
    ``known``: ``created_from`` is the runs' triggering event even when None.
    """
    events = []
    triggering: dict[UUID, UUID | None] = {run.id: created_from for run, _ in changes}
    if created_from is None and not known:
        triggering.clear()
    for run, previous in changes:
        if run.state is None:
            continue
        if run.id not in triggering:
            triggering[run.id] = await _triggering_event_id(session, run)
        events.append(
            flow_run_state_event(
                run,
                run.state,
                previous,
                flow_name=run.flow_name,
                deployment_name=run.deployment_name,
                triggering_event_id=triggering[run.id],
            )
        )
    if events:
        # State event ids derive from new state ids: nothing stored can have them.
        await insert_events(session, events, fresh=True)
    for run, previous in changes:
        publish_after_commit(session, RUNS_TOPIC, RunStateChanged(run=run, previous=previous))
