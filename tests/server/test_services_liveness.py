"""Late-run marking and the runner monitor on both databases, driven by run_once with fake clocks;
and concurrency limits on claims (WAIT, exactly `limit` concurrent winners)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from services_helpers import claim, make_deployment, make_run, migrated

from tideflow.schemas import SetStateStatus, StateProposal, StateType
from tideflow.schemas.states import Running, utcnow
from tideflow.server.services.late_runs import LateRunsService
from tideflow.server.services.runner_monitor import RunnerMonitorService
from tideflow.server.storage import runners as runners_storage
from tideflow.server.storage.deployments import read_deployment
from tideflow.server.storage.flow_runs import read_flow_run, set_flow_run_state
from tideflow.settings import get_settings

pytestmark = pytest.mark.anyio


async def test_overdue_scheduled_runs_become_late_and_stay_claimable(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db)
        now = utcnow()
        overdue = await make_run(db, d.id, scheduled_time=now - dt.timedelta(seconds=20))
        recent = await make_run(db, d.id, scheduled_time=now - dt.timedelta(seconds=5))
        future = await make_run(db, d.id, scheduled_time=now + dt.timedelta(hours=1))
        service = LateRunsService(db, get_settings(late_runs_after=15), clock=lambda: now)
        await service.run_once()
        await service.run_once()
        assert service.marked == 1
        async with db.read() as session:
            late = await read_flow_run(session, overdue.id)
            names = [(await read_flow_run(session, r.id)).state_name for r in (recent, future)]  # type: ignore[union-attr]
        assert late is not None and late.state_type is StateType.SCHEDULED
        assert late.state_name == "Late" and names == ["Scheduled", "Scheduled"]
        assert late.state.details.scheduled_time == overdue.state.details.scheduled_time  # type: ignore[union-attr]
        decision, run = await claim(db, late, uuid.uuid4())
        assert decision.status is SetStateStatus.ACCEPT and run.state_type is StateType.PENDING


async def test_silent_runner_runs_crash_and_deployments_become_not_ready(database_url: str) -> None:
    settings = get_settings(runner_heartbeat_timeout=60)
    async with migrated(database_url) as db:
        d = await make_deployment(db)
        other = await make_deployment(db, name="other")
        now = utcnow()
        later = now + dt.timedelta(seconds=61)
        dead, alive = uuid.uuid4(), uuid.uuid4()
        async with db.write() as session:
            await runners_storage.register_runner(session, dead, "dead", [d.id], None, now)
            await runners_storage.register_runner(session, alive, "alive", [other.id], 2, later)
        pending_run = await make_run(db, d.id)
        running_run = await make_run(db, d.id)
        kept_run = await make_run(db, other.id)
        await claim(db, pending_run, dead)
        await claim(db, running_run, dead)
        await claim(db, kept_run, alive)
        async with db.write() as session:
            await set_flow_run_state(session, running_run.id, StateProposal(state=Running()))
        async with db.read() as session:
            assert (await read_deployment(session, d.id)).status == "READY"  # type: ignore[union-attr]
        # not yet silent long enough: nothing happens
        await RunnerMonitorService(db, settings, clock=lambda: now).run_once()
        async with db.read() as session:
            assert (await read_flow_run(session, pending_run.id)).state_type is StateType.PENDING  # type: ignore[union-attr]
        monitor = RunnerMonitorService(db, settings, clock=lambda: later)
        await monitor.run_once()
        assert monitor.crashed == 2
        async with db.read() as session:
            for run_id in (pending_run.id, running_run.id):
                run = await read_flow_run(session, run_id)
                assert run is not None and run.state_type is StateType.CRASHED
                assert "stopped heartbeating" in (run.state.message or "")  # type: ignore[union-attr]
            kept = await read_flow_run(session, kept_run.id)
            assert kept is not None and kept.state_type is StateType.PENDING
            assert (await read_deployment(session, d.id)).status == "NOT_READY"  # type: ignore[union-attr]
            assert (await read_deployment(session, other.id)).status == "READY"  # type: ignore[union-attr]
            assert await runners_storage.read_silent_runners(session, later) == []
        # a forgotten runner that heartbeats again is unknown and must register again
        async with db.write() as session:
            assert await runners_storage.heartbeat(session, dead, later) is None
            assert await runners_storage.heartbeat(session, alive, later) == []


async def test_heartbeat_running_list_marks_the_runs_as_the_runners(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db)
        runner = uuid.uuid4()
        run = await make_run(db, d.id)
        async with db.write() as session:
            await runners_storage.register_runner(session, runner, "r", [d.id], None, utcnow())
            # claimed without naming the runner: not attributed yet
            await set_flow_run_state(session, run.id, StateProposal(state=Running()))
            assert await runners_storage.read_runner_runs(session, runner) == []
            await runners_storage.heartbeat(session, runner, utcnow(), [run.id, uuid.uuid4()])
            assert await runners_storage.read_runner_runs(session, runner) == [
                (run.id, StateType.RUNNING)
            ]


async def test_concurrency_limit_has_exactly_limit_winners(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db, concurrency_limit=2)
        runs = [await make_run(db, d.id) for _ in range(8)]
        results = await asyncio.gather(*(claim(db, run, uuid.uuid4()) for run in runs))
        statuses = [decision.status for decision, _ in results]
        assert statuses.count(SetStateStatus.ACCEPT) == 2
        assert statuses.count(SetStateStatus.WAIT) == 6
        waiting = [run for decision, run in results if decision.status is SetStateStatus.WAIT]
        assert {run.state_name for run in waiting} == {"AwaitingConcurrencySlot"}
        # waiting again stores nothing new
        decision, again = await claim(db, waiting[0], uuid.uuid4())
        assert decision.status is SetStateStatus.WAIT and again.state == waiting[0].state
