"""The scheduler service on both databases, driven by run_once with a fake clock: the next N runs
per active schedule, no duplicates (repeated and concurrent steps), removal on pause and change."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from services_helpers import make_deployment, make_run, migrated

from tideflow.schemas import FlowRunFilter, StateType
from tideflow.schemas.schedules import DeploymentScheduleCreate, DeploymentScheduleUpdate
from tideflow.server.context import ServerContext
from tideflow.server.services.scheduler import SchedulerService
from tideflow.server.storage import Database
from tideflow.server.storage import deployment_schedules as schedules
from tideflow.server.storage.deployments import set_deployment_paused
from tideflow.server.storage.flow_runs import read_flow_runs
from tideflow.settings import get_settings

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2030, 1, 1, 0, 30, tzinfo=dt.UTC)
HOURLY = {"schedule": {"interval": 3600}}


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


async def scheduled_times(db: Database) -> list[dt.datetime]:
    async with db.read() as session:
        runs = await read_flow_runs(session, FlowRunFilter(limit=1000))
    return sorted(
        r.state.details.scheduled_time for r in runs if r.state_type is StateType.SCHEDULED
    )  # type: ignore[union-attr,misc]


def hours(*offsets: float) -> list[dt.datetime]:
    base = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    return [base + dt.timedelta(hours=h) for h in offsets]


async def test_keeps_the_next_runs_without_duplicates(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db, schedules=[HOURLY], parameters={"x": 1})
        clock = Clock(NOW)
        service = SchedulerService(db, get_settings(), clock=clock)
        await service.run_once()
        assert await scheduled_times(db) == hours(1, 2, 3)
        await service.run_once()
        other = SchedulerService(db, get_settings(), clock=clock)
        await asyncio.gather(service.run_once(), other.run_once(), service.run_once())
        assert await scheduled_times(db) == hours(1, 2, 3)
        assert service.created + other.created == 3
        clock.now = NOW + dt.timedelta(hours=1)
        await service.run_once()
        assert await scheduled_times(db) == hours(1, 2, 3, 4)
        async with db.read() as session:
            runs = await read_flow_runs(session, FlowRunFilter(limit=10))
        sid = d.schedules[0].id
        assert {(r.created_by.type, r.created_by.id) for r in runs} == {  # type: ignore[union-attr]
            ("schedule", f"tideflow.schedule.{sid}")
        }
        assert {r.deployment_id for r in runs} == {d.id} and runs[0].parameters == {"x": 1}


async def test_settings_bound_the_runs(database_url: str) -> None:
    async with migrated(database_url) as db:
        await make_deployment(db, schedules=[HOURLY, {"schedule": {"interval": 1800}}])
        settings = get_settings(scheduler_max_runs=2, scheduler_max_days=1)
        await SchedulerService(db, settings, clock=Clock(NOW)).run_once()
        # two schedules, two runs each; 01:00 is shared and created once
        assert await scheduled_times(db) == hours(1, 1.5, 2)
        far = {"interval": 86400 * 3, "anchor_date": "2030-01-01T00:00:00"}
        await make_deployment(db, name="far", schedules=[{"schedule": far}])
        await SchedulerService(db, settings, clock=Clock(NOW)).run_once()
        assert len(await scheduled_times(db)) == 3  # the next 3-day tick is beyond one day


async def test_pause_removes_future_runs_and_resume_restores_them(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db, schedules=[HOURLY])
        service = SchedulerService(db, get_settings(), clock=Clock(NOW))
        await service.run_once()
        manual = await make_run(db, d.id, scheduled_time=NOW + dt.timedelta(hours=5))
        async with db.write() as session:
            paused, changed = await set_deployment_paused(session, d.id, True)
        assert changed and len(paused.schedules) == 1
        assert await scheduled_times(db) == [manual.expected_start_time]
        await service.run_once()
        assert await scheduled_times(db) == [manual.expected_start_time]
        async with db.write() as session:
            await set_deployment_paused(session, d.id, False)
        await service.run_once()
        assert await scheduled_times(db) == sorted([*hours(1, 2, 3), manual.expected_start_time])  # type: ignore[list-item]


async def test_changing_or_deactivating_a_schedule_replaces_its_runs(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db, schedules=[HOURLY])
        sid = d.schedules[0].id
        service = SchedulerService(db, get_settings(), clock=Clock(NOW))
        await service.run_once()
        change = DeploymentScheduleUpdate.model_validate({"schedule": {"interval": 7200}})
        async with db.write() as session:
            await schedules.update_schedule(session, d.id, sid, change)
        assert await scheduled_times(db) == []
        await service.run_once()
        assert await scheduled_times(db) == hours(2, 4, 6)
        async with db.write() as session:
            await schedules.update_schedule(
                session, d.id, sid, DeploymentScheduleUpdate(active=False)
            )
        await service.run_once()
        assert await scheduled_times(db) == []
        async with db.write() as session:
            added = await schedules.add_schedules(
                session, d.id, [DeploymentScheduleCreate.model_validate(HOURLY)]
            )
        await service.run_once()
        assert await scheduled_times(db) == hours(1, 2, 3)
        async with db.write() as session:
            await schedules.delete_schedule(session, d.id, added[0].id)
        assert await scheduled_times(db) == []


async def test_runs_that_fail_validation_are_not_scheduled(database_url: str) -> None:
    schema = {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}
    async with migrated(database_url) as db:
        await make_deployment(db, schedules=[HOURLY], parameter_openapi_schema=schema)
        service = SchedulerService(db, get_settings(), clock=Clock(NOW))
        await service.run_once()  # logged, not raised: other deployments still get their runs
        assert await scheduled_times(db) == []


async def test_schedule_changes_wake_the_running_scheduler(database_url: str) -> None:
    async with migrated(database_url) as db:
        context = ServerContext(
            settings=get_settings(), database=db
        )  # commits publish to its broker
        service = SchedulerService(db, get_settings(), broker=context.broker, interval=3600)
        task = asyncio.create_task(service.run())
        try:
            await asyncio.sleep(0.2)  # its first step ran (nothing to schedule yet)
            await make_deployment(db, schedules=[{"schedule": {"interval": 60}}])
            for _ in range(100):  # woken by the commit, not by its hour-long interval
                if len(await scheduled_times(db)) == 3:
                    break
                await asyncio.sleep(0.05)
            assert len(await scheduled_times(db)) == 3
        finally:
            service.stop()
            await task
