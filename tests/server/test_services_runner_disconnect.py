"""The runner monitor's disconnect path on both databases, driven by run_once with fake clocks: a
runner whose websocket closed without a goodbye has its runs Crashed once the grace passed, unless
it said goodbye, reconnected (here, or to another server: its last_heartbeat moved), or still has
another connection open; the heartbeat timeout stays the fallback."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from services_helpers import claim, make_deployment, make_run, migrated

from tideflow.schemas import StateProposal, StateType
from tideflow.schemas.states import Running, utcnow
from tideflow.server.services.runner_monitor import RunnerDisconnects, RunnerMonitorService
from tideflow.server.storage import Database
from tideflow.server.storage import runners as runners_storage
from tideflow.server.storage.flow_runs import read_flow_run, set_flow_run_state
from tideflow.settings import get_settings

pytestmark = pytest.mark.anyio

SETTINGS = get_settings(runner_disconnect_grace=10, runner_heartbeat_timeout=60)


async def _running_run(db: Database, runner: uuid.UUID, name: str, now: dt.datetime) -> uuid.UUID:
    d = await make_deployment(db, name=name)
    async with db.write() as session:
        await runners_storage.register_runner(session, runner, name, [d.id], None, now)
    run = await make_run(db, d.id)
    await claim(db, run, runner)
    async with db.write() as session:
        await set_flow_run_state(session, run.id, StateProposal(state=Running()))
    return run.id


async def _state(db: Database, run_id: uuid.UUID) -> tuple[StateType, str]:
    async with db.read() as session:
        run = await read_flow_run(session, run_id)
    assert run is not None and run.state is not None
    return run.state_type, run.state.message or ""


async def test_a_goodbye_less_close_crashes_the_runs_after_the_grace(database_url: str) -> None:
    async with migrated(database_url) as db:
        now = utcnow()
        runner = uuid.uuid4()
        run_id = await _running_run(db, runner, "killed", now)
        disconnects = RunnerDisconnects()
        disconnects.opened(runner)
        closed = now + dt.timedelta(seconds=1)
        disconnects.closed(runner, "host:123", closed, goodbye=False)
        early = RunnerMonitorService(db, SETTINGS, disconnects=disconnects, clock=lambda: closed)
        await early.run_once()
        assert (await _state(db, run_id))[0] is StateType.RUNNING and len(disconnects) == 1
        later = closed + dt.timedelta(seconds=10)
        monitor = RunnerMonitorService(db, SETTINGS, disconnects=disconnects, clock=lambda: later)
        await monitor.run_once()
        assert monitor.crashed == 1 and len(disconnects) == 0
        state, message = await _state(db, run_id)
    assert state is StateType.CRASHED
    assert message == (
        f"runner 'host:123' ({runner}) disconnected without saying goodbye and did not "
        "reconnect within 10 s"
    )


async def test_goodbye_reconnect_or_another_open_connection_keep_the_runs(
    database_url: str,
) -> None:
    async with migrated(database_url) as db:
        now = utcnow()
        polite, back, elsewhere, doubled = (uuid.uuid4() for _ in range(4))
        runs = {r: await _running_run(db, r, f"r{i}", now) for i, r in enumerate(
            (polite, back, elsewhere, doubled))}  # fmt: skip
        disconnects = RunnerDisconnects()
        closed = now + dt.timedelta(seconds=1)
        for runner in runs:
            disconnects.opened(runner)
        disconnects.closed(polite, "polite", closed, goodbye=True)
        disconnects.closed(back, "back", closed, goodbye=False)
        disconnects.opened(back)  # it said hello again on this server
        disconnects.closed(elsewhere, "elsewhere", closed, goodbye=False)
        async with db.write() as session:  # ...and this one reconnected to another server
            reconnect = closed + dt.timedelta(seconds=2)
            await runners_storage.register_runner(session, elsewhere, "x", [], None, reconnect)
        disconnects.opened(doubled)  # a new connection before the old one's close was noticed
        disconnects.closed(doubled, "doubled", closed, goodbye=False)
        assert len(disconnects) == 1  # only `elsewhere` waits, for the database to decide
        later = closed + dt.timedelta(seconds=30)
        monitor = RunnerMonitorService(db, SETTINGS, disconnects=disconnects, clock=lambda: later)
        await monitor.run_once()
        assert monitor.crashed == 0 and len(disconnects) == 0
        for run_id in runs.values():
            assert (await _state(db, run_id))[0] is StateType.RUNNING
        # the heartbeat timeout stays the fallback
        silent = closed + dt.timedelta(seconds=61)
        fallback = RunnerMonitorService(db, SETTINGS, disconnects=disconnects, clock=lambda: silent)
        await fallback.run_once()
        assert fallback.crashed == 3  # `elsewhere` heartbeated later (at its reconnect)
        assert "stopped heartbeating" in (await _state(db, runs[polite]))[1]
        assert (await _state(db, runs[elsewhere]))[0] is StateType.RUNNING
