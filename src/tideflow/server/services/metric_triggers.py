"""Metric triggers: every ``interval`` seconds, measure the recent flow runs of each enabled
automation with a :class:`~tideflow.schemas.triggers.MetricTrigger` and fire or resolve it.

Per automation one bounded query (the runs of the trigger's range, newest first, at most
``MAX_RUNS``, through the indexes on ``end_time`` / ``start_time`` / ``expected_start_time``); the
measure and the breach state machine are pure (``triggers.metrics``). A firing or resolution is
recorded like a backfilled one (``triggers.backfill``): its row, pending actions and events in one
transaction, then the trigger engine runs the actions. Its id follows from the automation's last
recorded firing, so a breach fires once even across restarts and replicas. Only the start of a
breach is kept in memory: after a restart, ``firing_for`` counts again from the first evaluation.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Automation, MetricTrigger
from tideflow.schemas.states import StateType
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage.tables import deployments, flow_runs, flows
from tideflow.server.triggers import state as store
from tideflow.server.triggers.backfill import backfill_firings
from tideflow.server.triggers.evaluate import Firing, Resolution
from tideflow.server.triggers.metrics import (
    BreachState,
    RunSample,
    firing_id,
    matches,
    metric_value,
    resolution_id,
    run_labels,
    step,
)

__all__ = ["MAX_RUNS", "MetricStatus", "MetricTriggerService", "measure"]

MAX_RUNS = 5_000  # runs read for one measure
_TERMINAL = (StateType.COMPLETED.value, StateType.FAILED.value, StateType.CRASHED.value)

_log = logging.getLogger("tideflow.server.triggers")


async def _samples(
    session: AsyncSession, trigger: MetricTrigger, now: dt.datetime
) -> tuple[list[RunSample], bool]:
    """The runs the metric reads (matching the trigger), and whether ``MAX_RUNS`` cut them."""
    c = flow_runs.c
    since = now - dt.timedelta(seconds=trigger.metric.range)
    stmt = (
        sa.select(
            c.id,
            c.name,
            c.state_type,
            c.start_time,
            c.end_time,
            c.expected_start_time,
            c.total_run_time,
            c.flow_id,
            c.deployment_id,
            c.tags,
            flows.c.name.label("flow_name"),
            deployments.c.name.label("deployment_name"),
        )
        .select_from(
            flow_runs.join(flows, flows.c.id == c.flow_id).outerjoin(
                deployments, deployments.c.id == c.deployment_id
            )
        )
        .limit(MAX_RUNS + 1)
    )
    if trigger.metric.name == "lateness":
        # Runs due in the range: started (late or not) or still waiting.
        stmt = stmt.where(c.expected_start_time >= since, c.expected_start_time <= now).order_by(
            c.expected_start_time.desc()
        )
    else:
        stmt = stmt.where(c.end_time >= since, c.state_type.in_(_TERMINAL)).order_by(
            c.end_time.desc()
        )
    rows = list(await session.execute(stmt))
    out = []
    for row in rows[:MAX_RUNS]:
        if (
            trigger.metric.name == "lateness"
            and row.start_time is None
            and (row.state_type != StateType.SCHEDULED.value)
        ):
            continue  # cancelled before it started: it is not late, it is not running at all
        resource, related = run_labels(
            run_id=row.id, name=row.name, state_type=row.state_type or "", flow_id=row.flow_id,
            flow_name=row.flow_name, deployment_id=row.deployment_id,
            deployment_name=row.deployment_name, tags=list(row.tags or []),
        )  # fmt: skip
        sample = RunSample(
            run_id=row.id, state_type=row.state_type or "", start_time=row.start_time,
            end_time=row.end_time, expected_start_time=row.expected_start_time,
            total_run_time=float(row.total_run_time), resource=resource, related=related,
        )  # fmt: skip
        if matches(trigger, sample):
            out.append(sample)
    return out, len(rows) > MAX_RUNS


class MetricStatus(dict[str, Any]):
    """What a metric trigger measures now (the explain answer): a plain JSON mapping."""


async def measure(
    session: AsyncSession, automation: Automation, now: dt.datetime,
    breaching_since: dt.datetime | None = None,
) -> MetricStatus:  # fmt: skip
    """The trigger's measure now, whether it breaches, the open firing and readable lines."""
    trigger = automation.trigger
    assert isinstance(trigger, MetricTrigger)
    samples, cut = await _samples(session, trigger, now)
    value = metric_value(trigger.metric, samples, now)
    open_firing = await _open_firing(session, automation.id)
    q = trigger.metric
    breached = value is not None and q.breached(value)
    shown = "no runs to measure" if value is None else f"{value:g}"
    lines = [
        f"metric {q.name} over the last {q.range:g} s: {shown} ({len(samples)} run(s)"
        + (f", the newest {len(samples)} read" if cut else "")
        + ")",
        f"{'breaches' if breached else 'does not breach'}: {q.name} {q.operator} {q.threshold:g}",
    ]
    if open_firing is not None:
        lines.append(f"fired ({open_firing[0]}): resolves when the breach ends")
    elif breached:
        since = breaching_since or now
        wait = max(0.0, q.firing_for - (now - since).total_seconds())
        lines.append(f"fires once it has breached for {q.firing_for:g} s ({wait:g} s to go)")
    return MetricStatus(
        value=value, runs=len(samples), runs_truncated=cut, breached=breached,
        open_firing_id=str(open_firing[0]) if open_firing else None, lines=lines,
    )  # fmt: skip


async def _last_record(session: AsyncSession, automation_id: UUID) -> tuple[UUID, str] | None:
    for record in await store.read_history(session, automation_id, limit=5):
        if record.kind in ("fired", "resolved"):
            return record.id, record.kind
    return None


async def _open_firing(session: AsyncSession, automation_id: UUID) -> tuple[UUID, str] | None:
    last = await _last_record(session, automation_id)
    return last if last is not None and last[1] == "fired" else None


class MetricTriggerService(Service):
    """Evaluates the metric triggers; ``fired`` and ``resolved`` count what it recorded."""

    name = "metric-triggers"
    interval = 10.0

    def __init__(
        self, database: Database, *, clock: Clock = utc_clock, interval: float | None = None
    ) -> None:
        super().__init__(clock=clock, interval=interval)
        self.database = database
        self._since: dict[UUID, dt.datetime] = {}  # breach start per automation
        self.fired = 0
        self.resolved = 0

    async def run_once(self) -> None:
        async with self.database.read() as session:
            automations = [
                a
                for a in await automation_storage.read_all_automations(session)
                if a.enabled and isinstance(a.trigger, MetricTrigger)
            ]
        self._since = {a.id: t for a, t in ((a, self._since.get(a.id)) for a in automations) if t}
        for automation in automations:
            try:
                await self._evaluate(automation)
            except Exception:  # one broken automation must not stop the others
                _log.exception("metric trigger of automation %s failed", automation.id)

    async def _evaluate(self, automation: Automation) -> None:
        trigger = automation.trigger
        assert isinstance(trigger, MetricTrigger)
        now = self.clock()
        async with self.database.read() as session:
            samples, _ = await _samples(session, trigger, now)
            last = await _last_record(session, automation.id)
        value = metric_value(trigger.metric, samples, now)
        open_firing = last[0] if last is not None and last[1] == "fired" else None
        state = BreachState(self._since.get(automation.id), open_firing)
        new, action = step(trigger.metric, state, value, now)
        if new.breaching_since is None:
            self._since.pop(automation.id, None)
        else:
            self._since[automation.id] = new.breaching_since
        if action is None:
            return
        labels = {"metric": trigger.metric.name, "operator": trigger.metric.operator,
                  "threshold": f"{trigger.metric.threshold:g}",
                  "value": "" if value is None else f"{value:g}"}  # fmt: skip
        record: Firing | Resolution
        if action == "fire":
            record = Firing(
                id=firing_id(trigger.id, last[0] if last else None), trigger_id=trigger.id,
                bucket_key="", labels=labels, posture="Metric", occurred=now, fired_at=now,
            )  # fmt: skip
        else:
            assert open_firing is not None
            record = Resolution(
                id=resolution_id(open_firing), trigger_id=trigger.id, bucket_key="",
                labels=labels, firing_id=open_firing, occurred=now, fired_at=now,
            )  # fmt: skip
        async with self.database.write() as session:
            recorded = await backfill_firings(session, automation, [record], now)
        if recorded:
            if action == "fire":
                self.fired += 1
            else:
                self.resolved += 1
            _log.info("metric trigger of %r %s (value %s)", automation.name,
                      "fired" if action == "fire" else "resolved", labels["value"])  # fmt: skip
