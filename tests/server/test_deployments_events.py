"""Deployment events on both databases: created, updated (changed fields), paused, resumed, ready,
not-ready, deleted; resource and related flow."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from services_helpers import make_deployment, migrated

from tideflow.schemas.deployments import DeploymentUpdate
from tideflow.schemas.events import EventFilter
from tideflow.schemas.states import utcnow
from tideflow.server.services.runner_monitor import RunnerMonitorService
from tideflow.server.storage import Database
from tideflow.server.storage import runners as runners_storage
from tideflow.server.storage.deployments import (
    delete_deployment,
    set_deployment_paused,
    update_deployment,
)
from tideflow.server.storage.events import read_events
from tideflow.settings import get_settings

pytestmark = pytest.mark.anyio


async def deployment_events(db: Database) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    async with db.read() as session:
        page = await read_events(
            session, EventFilter(event_prefixes=["tideflow.deployment."], order="oldest", limit=100)
        )
    return [(e.event.removeprefix("tideflow.deployment."), e.payload) for e in page.events]


async def test_each_change_writes_its_event(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db, tags=["a"])
        await make_deployment(db, tags=["a"])  # same registration: nothing changed, no event
        await make_deployment(db, tags=["b"], version="2")
        async with db.write() as session:
            await update_deployment(session, d.id, DeploymentUpdate(description="x"))
            await set_deployment_paused(session, d.id, True)
            await set_deployment_paused(session, d.id, True)  # already paused: no event
            await set_deployment_paused(session, d.id, False)
        now = utcnow()
        async with db.write() as session:
            await runners_storage.register_runner(session, uuid.uuid4(), "r", [d.id], None, now)
        monitor = RunnerMonitorService(
            db,
            get_settings(runner_heartbeat_timeout=5),
            clock=lambda: now + dt.timedelta(seconds=6),
        )
        await monitor.run_once()
        async with db.write() as session:
            await delete_deployment(session, d.id)
        assert await deployment_events(db) == [
            ("created", {}),
            ("updated", {"changed": ["tags", "version"]}),
            ("updated", {"changed": ["description"]}),
            ("updated", {"changed": ["paused"]}),
            ("paused", {}),
            ("updated", {"changed": ["paused"]}),
            ("resumed", {}),
            ("ready", {}),
            ("not-ready", {}),
            ("deleted", {}),
        ]
        async with db.read() as session:
            page = await read_events(
                session, EventFilter(event_names=["tideflow.deployment.created"])
            )
        event = page.events[0]
        assert event.resource.id == f"tideflow.deployment.{d.id}" and event.resource.name == "d"
        assert [(r.id, r.role, r.name) for r in event.related] == [
            (f"tideflow.flow.{d.flow_id}", "flow", "f")
        ]
