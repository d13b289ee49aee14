"""The scheduler: keeps the next runs of every active schedule of every deployment not paused.

Each step computes, per active schedule, the next ``scheduler_max_runs`` times within
``scheduler_max_days`` and creates the missing runs. A run's idempotency key is derived from
(deployment, scheduled time), so repeated or concurrent steps never create a run twice.

Computing run times is user-controlled work (an RRULE can ask for a walk through every second since
2020), so it happens off the event loop, in a worker thread, bounded by the schedule maths and by
``scheduler_compute_timeout``. A stored schedule that does not parse or cannot be computed is
quarantined (made inactive, with the event ``tideflow.deployment.schedule.quarantined`` and a log
line) and the step goes on with the other schedules: one schedule never stops the scheduler, nor the
server starting. ``check_schedules`` gives the API the same computation to refuse such a schedule
with 422 before it is stored.

Times are computed before the deployment's row lock is taken (a computation must not hold a write
transaction); under the lock (PostgreSQL) the step re-reads the schedules and uses only the times of
those stored exactly as computed, so a concurrent pause or schedule change, which removes future
runs under the same lock, cannot interleave. Schedule changes wake it through ``SCHEDULES_TOPIC``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import anyio
import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import Creator
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.schedules import Schedule, next_run_times, scheduled_run_idempotency_key
from tideflow.server.events.broker import Broker
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database, NotFound
from tideflow.server.storage.deployment_runs import create_deployment_flow_run
from tideflow.server.storage.deployment_schedules import (
    SCHEDULES_TOPIC,
    ScheduleRow,
    quarantine_schedule,
    read_active_schedule_rows,
    read_schedule_rows,
)
from tideflow.server.storage.deployments import InvalidParameters, lock_deployment
from tideflow.server.storage.tables import flow_runs
from tideflow.settings import Settings

__all__ = ["ScheduleNotComputable", "SchedulerService", "check_schedules", "compute_run_times"]

_SCHEDULE: TypeAdapter[Any] = TypeAdapter(Schedule)
_MAX_REASON = 500  # characters of a reason kept in a 422 or a quarantine event


class ScheduleNotComputable(Exception):
    """A schedule that does not parse, is too expensive, or took longer than the timeout."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        text = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'schedule'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
    else:
        text = str(exc)
    return text if len(text) <= _MAX_REASON else f"{text[:_MAX_REASON]}…"


def _compute(schedule: Any, now: dt.datetime, settings: Settings) -> list[dt.datetime]:
    """The pure part, run in a worker thread: parse ``schedule`` (a model or stored JSON), compute."""
    parsed = _SCHEDULE.validate_python(schedule)
    days = min(settings.scheduler_max_days, (dt.datetime.max - now.replace(tzinfo=None)).days - 1)
    end = now + dt.timedelta(days=max(days, 0))
    return next_run_times(parsed, start=now, end=end, limit=settings.scheduler_max_runs)


async def compute_run_times(
    schedule: Any, now: dt.datetime, settings: Settings
) -> list[dt.datetime]:
    """The next run times of ``schedule`` after ``now``, computed off the event loop.

    Raises ``ScheduleNotComputable`` with a readable reason when the schedule does not parse, the
    schedule maths refuse it as too expensive, or it takes over ``scheduler_compute_timeout``.
    """
    timeout = settings.scheduler_compute_timeout
    try:
        with anyio.fail_after(timeout):
            # abandon_on_cancel: on timeout or shutdown, stop waiting; the maths are bounded, so
            # the thread ends on its own soon after
            return await anyio.to_thread.run_sync(
                functools.partial(_compute, schedule, now, settings), abandon_on_cancel=True
            )
    except TimeoutError:
        raise ScheduleNotComputable(
            f"computing its next run times took longer than {timeout:g} s "
            "(scheduler_compute_timeout)"
        ) from None
    except (ValueError, OverflowError) as exc:  # ValidationError and ScheduleTooExpensive too
        raise ScheduleNotComputable(_reason(exc)) from None


async def check_schedules(
    schedules: Sequence[Any], now: dt.datetime, settings: Settings
) -> list[tuple[int, str]]:
    """(index, reason) for each of ``schedules`` whose run times cannot be computed."""
    problems = []
    for index, schedule in enumerate(schedules):
        try:
            await compute_run_times(schedule, now, settings)
        except ScheduleNotComputable as exc:
            problems.append((index, str(exc)))
    return problems


class SchedulerService(Service):
    """Creates scheduled runs ahead of time; ``created`` counts runs, ``quarantined`` schedules."""

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
        self.quarantined = 0

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
            rows = await read_active_schedule_rows(session)
        planned: dict[UUID, dict[UUID, tuple[Any, list[dt.datetime]]]] = {}
        for row in rows:
            if self.stopping:
                return
            try:
                times = await compute_run_times(row.schedule, now, self.settings)
            except ScheduleNotComputable as exc:
                await self._quarantine(row, str(exc), now)
                continue
            planned.setdefault(row.deployment_id, {})[row.id] = (row.schedule, times)
        for deployment_id, plans in planned.items():
            if self.stopping:
                return
            try:
                async with self.database.write() as session:
                    self.created += await self._schedule(session, deployment_id, plans)
            except InvalidParameters as exc:
                self.log.warning("cannot schedule runs of deployment %s: %s", deployment_id, exc)

    async def _quarantine(self, row: ScheduleRow, reason: str, now: dt.datetime) -> None:
        try:
            async with self.database.write() as session:
                done = await quarantine_schedule(session, row, reason, now)
        except NotFound:
            return
        if done:
            self.quarantined += 1
            self.log.warning(
                "quarantined schedule %s of deployment %s (now inactive): %s",
                row.id,
                row.deployment_id,
                reason,
            )

    async def _schedule(
        self,
        session: AsyncSession,
        deployment_id: UUID,
        plans: dict[UUID, tuple[Any, list[dt.datetime]]],
    ) -> int:
        row = await lock_deployment(session, deployment_id)
        if row is None or row.paused:
            return 0
        wanted: dict[dt.datetime, UUID] = {}
        for item in await read_schedule_rows(session, deployment_id):
            plan = plans.get(item.id)
            # changed since its times were computed: the change woke the next step, which will
            if not item.active or plan is None or plan[0] != item.schedule:
                continue
            for when in plan[1]:
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
