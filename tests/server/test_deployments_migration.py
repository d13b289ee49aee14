"""Migration 0002 rebuilds flow_runs on SQLite: runs, their states and logs survive both ways."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tideflow.schemas import FlowRunCreate, LogCreate, StateProposal
from tideflow.schemas.states import Running
from tideflow.server.storage import Database, migrate
from tideflow.server.storage import flow_runs as runs_storage
from tideflow.server.storage import logs as logs_storage

pytestmark = pytest.mark.anyio


async def _counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.read() as session:
            return {
                table: (
                    await session.execute(sa.text(f"SELECT count(*) FROM {table}"))
                ).scalar_one()
                for table in ("flow_runs", "flow_run_states", "logs")
            }
    finally:
        await db.dispose()


async def test_downgrade_and_upgrade_keep_runs_states_and_logs(database_url: str) -> None:
    await migrate.upgrade(database_url)
    db = Database(database_url)
    try:
        async with db.write() as session:
            run, _ = await runs_storage.create_flow_run(session, FlowRunCreate(flow_name="f"))
            await runs_storage.set_flow_run_state(session, run.id, StateProposal(state=Running()))
            record = LogCreate(
                flow_run_id=run.id, name="x", level=20, message="hi", timestamp=run.created
            )
            await logs_storage.create_logs(session, [record])
    finally:
        await db.dispose()
    expected = {"flow_runs": 1, "flow_run_states": 2, "logs": 1}
    assert await _counts(database_url) == expected
    await migrate.downgrade(database_url, "0001")
    assert await _counts(database_url) == expected
    await migrate.upgrade(database_url, "0002")
    assert await _counts(database_url) == expected
