"""What happens alongside every accepted state change of a flow run, inside its transaction.

``record_state_change`` is called by ``storage.flow_runs`` for the initial state and for every stored
state. It queues a ``RunStateChanged`` for the broker's ``"runs"`` topic (published after commit; the
dispatcher and concurrency bookkeeping listen there) and is where the run's state event is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, State
from tideflow.server.storage.outbox import publish_after_commit

__all__ = ["RUNS_TOPIC", "RunStateChanged", "record_state_change"]

RUNS_TOPIC = "runs"


@dataclass(frozen=True)
class RunStateChanged:
    """A run entered ``run.state``; ``previous`` is the state it left (None for a new run)."""

    run: FlowRun
    previous: State | None


async def record_state_change(session: AsyncSession, run: FlowRun, previous: State | None) -> None:
    publish_after_commit(session, RUNS_TOPIC, RunStateChanged(run=run, previous=previous))
