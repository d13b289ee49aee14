"""The scheduler: keeps the next runs of every active schedule of every deployment not paused.

Each step computes, per deployment, the next ``scheduler_max_runs`` times of each active schedule
within ``scheduler_max_days`` and creates the missing runs. A run's idempotency key is derived from
(deployment, scheduled time), so repeated or concurrent steps never create a run twice. The step
holds the deployment's row lock (PostgreSQL) while it reads the schedules and creates the runs, so a
concurrent pause or schedule change, which removes future runs under the same lock, cannot interleave.
Schedule changes wake it through the broker topic ``SCHEDULES_TOPIC``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import Creator
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.schedules import next_run_times, scheduled_run_idempotency_key
from tideflow.server.events.broker import Broker
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database, NotFound
from tideflow.server.storage.deployment_runs import create_deployment_flow_run
from tideflow.server.storage.deployment_schedules import (
    SCHEDULES_TOPIC,
    read_active_schedules,
    read_schedules,
)
from tideflow.server.storage.deployments import InvalidParameters, lock_deployment
from tideflow.server.storage.tables import flow_runs
from tideflow.settings import Settings

__all__ = ["SchedulerService"]


class SchedulerService(Service):
    """Creates scheduled runs ahead of time; ``run_once`` returns nothing, ``created`` counts runs."""

    name = "scheduler"
    interval = 5.0

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        broker: Broker | None = None,
        clock: Clock = utc_clock,
        interval: float | None = None,
    ) -> None:
        super().__init__(clock=clock, interval=interval)
        self.database = database
        self.settings = settings
        self.broker = broker
        self.created = 0

    async def run(self) -> None:
        """Step every ``interval`` seconds, and at once when a deployment's schedules change."""
        if self.broker is None:
            await super().run()
            return
        subscription = self.broker.subscribe(SCHEDULES_TOPIC, lossless=True)

        async def wake_on_changes() -> None:
            async for _ in subscription:
                self.wake()

        listener = asyncio.create_task(wake_on_changes())
        try:
            await super().run()
        finally:
            subscription.close()
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def run_once(self) -> None:
        now = self.clock()
        async with self.database.read() as session:
            deployment_ids = list(dict.fromkeys(d for d, _ in await read_active_schedules(session)))
        for deployment_id in deployment_ids:
            try:
                async with self.database.write() as session:
                    self.created += await self._schedule(session, deployment_id, now)
            except InvalidParameters as exc:
                self.log.warning("cannot schedule runs of deployment %s: %s", deployment_id, exc)

    async def _schedule(self, session: AsyncSession, deployment_id: UUID, now: dt.datetime) -> int:
        row = await lock_deployment(session, deployment_id)
        if row is None or row.paused:
            return 0
        end = now + dt.timedelta(days=self.settings.scheduler_max_days)
        wanted: dict[dt.datetime, UUID] = {}
        for item in await read_schedules(session, deployment_id):
            if not item.active:
                continue
            times = next_run_times(
                item.schedule, start=now, end=end, limit=self.settings.scheduler_max_runs
            )
            for when in times:
                wanted.setdefault(when, item.id)
        keys = {when: scheduled_run_idempotency_key(deployment_id, when) for when in wanted}
        existing = await session.execute(
            sa.select(flow_runs.c.idempotency_key).where(
                flow_runs.c.flow_id == row.flow_id,
                flow_runs.c.idempotency_key.in_(list(keys.values())),
            )
        )
        have = {r.idempotency_key for r in existing}
        created = 0
        for when in sorted(wanted):
            if keys[when] in have:
                continue
            schedule_id = wanted[when]
            body = DeploymentFlowRunCreate(
                scheduled_time=when,
                idempotency_key=keys[when],
                created_by=Creator(type="schedule", id=f"tideflow.schedule.{schedule_id}"),
            )
            try:
                _, new = await create_deployment_flow_run(session, deployment_id, body)
            except NotFound:
                return created
            created += int(new)
        return created
