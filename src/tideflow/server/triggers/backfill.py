"""Backfill: record the firings a replay found that were never recorded, and queue their actions.

A replayed firing has the id the engine would have given it (deterministic: trigger id, bucket,
events), so "missed" means "no row in automation_firings for this automation and id". The new
firing rows, their pending action rows and the ``tideflow.automation.triggered`` /
``.action.triggered`` events are written in the caller's transaction; after it commits, a
:class:`BackfillQueued` on the automations topic asks the trigger engine to run the pending
actions (the same path that finishes actions a stopped server left). Running a backfill twice
finds every firing recorded the second time and queues nothing: the unique firing and action keys
make it idempotent, also against a concurrent engine replay of the same events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Automation
from tideflow.schemas.events import Event
from tideflow.server.storage.automations import AUTOMATIONS_TOPIC
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.outbox import publish_after_commit
from tideflow.server.triggers import state as store
from tideflow.server.triggers.emitted import action_event, firing_event
from tideflow.server.triggers.evaluate import Firing, Resolution

__all__ = ["MAX_BACKFILL", "BackfillQueued", "backfill_firings"]

MAX_BACKFILL = 200  # firings one request may record (a replay reports at most as many)


@dataclass(frozen=True)
class BackfillQueued:
    """Published after a backfill commits: the engine runs these pending actions."""

    pending: tuple[store.PendingAction, ...]


async def backfill_firings(
    session: AsyncSession,
    automation: Automation,
    firings: Sequence[Firing | Resolution],
    now: dt.datetime,
) -> list[Firing | Resolution]:
    """Record the firings of ``firings`` not recorded yet (at most ``MAX_BACKFILL``) with their
    actions pending (a resolution's: ``actions_on_resolve``); the ones recorded now. Metric
    triggers record their firings this way too (services.metric_triggers)."""
    wanted = list(firings)[:MAX_BACKFILL]
    new = await store.insert_firings(session, [store.firing_row(automation.id, f) for f in wanted])
    recorded = [f for f in wanted if (automation.id, f.id) in new]
    rows: list[dict[str, Any]] = []
    pending: list[store.PendingAction] = []
    emitted: list[Event] = []
    for firing in recorded:
        emitted.append(firing_event(automation, firing, now))
        actions = (
            automation.actions_on_resolve
            if isinstance(firing, Resolution)
            else automation.firing_actions()
        )
        for index, action in enumerate(actions):
            dumped = action.model_dump(mode="json")
            rows.append(store.action_row(automation.id, firing.id, index, dumped, now))
            emitted.append(action_event(automation, firing, index, action.type, "triggered", now))
            pending.append(store.PendingAction(automation.id, firing.id, index, dumped, "pending"))
    await store.insert_actions(session, rows)
    if emitted:
        await insert_events(session, emitted)
    if pending:
        publish_after_commit(session, AUTOMATIONS_TOPIC, BackfillQueued(tuple(pending)))
    return recorded
