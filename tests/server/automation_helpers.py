"""Helpers for trigger-engine tests: a real database + broker + engine with a hand-driven clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from tideflow.schemas.automations import Automation, parse_automation
from tideflow.schemas.deployments import Deployment, DeploymentCreate
from tideflow.schemas.events import Event
from tideflow.server.context import ServerContext
from tideflow.server.storage import Database
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage.deployments import upsert_deployment
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.server.storage.tables import automation_actions, automation_firings, events, flow_runs
from tideflow.server.triggers.engine import TriggerEngine
from tideflow.settings import get_settings

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


class FakeClock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Harness:
    database: Database
    context: ServerContext
    clock: FakeClock
    engine: TriggerEngine

    def new_engine(self) -> TriggerEngine:
        """A second engine on the same database and broker, as after a restart."""
        self.engine = TriggerEngine(self.database, self.context.broker, clock=self.clock)
        return self.engine

    async def create(self, data: dict[str, Any]) -> Automation:
        async with self.database.write() as session:
            return await automation_storage.create_automation(session, parse_automation(data))

    async def emit(self, *evts: Event) -> None:
        async with self.database.write() as session:
            await insert_events(session, list(evts))

    async def deployment(
        self, flow: str = "down-flow", name: str = "down", **kw: Any
    ) -> Deployment:
        async with self.database.write() as session:
            dep, _, _ = await upsert_deployment(
                session, DeploymentCreate(flow_name=flow, name=name, **kw)
            )
        return dep

    async def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        async with self.database.read() as session:
            result = await session.execute(sa.select(table).where(*where))
            return [dict(r._mapping) for r in result]

    async def firings(self, automation_id: UUID) -> list[dict[str, Any]]:
        return await self.rows(
            automation_firings, automation_firings.c.automation_id == automation_id
        )

    async def actions(self, automation_id: UUID) -> list[dict[str, Any]]:
        return await self.rows(
            automation_actions, automation_actions.c.automation_id == automation_id
        )

    async def runs(self, deployment_id: UUID) -> list[dict[str, Any]]:
        return await self.rows(flow_runs, flow_runs.c.deployment_id == deployment_id)

    async def events_named(self, name: str) -> list[dict[str, Any]]:
        return await self.rows(events, events.c.event == name)


@asynccontextmanager
async def harness(database_url: str) -> AsyncIterator[Harness]:
    database = Database(database_url)
    try:
        await upgrade_engine(database.engine)
        context = ServerContext(settings=get_settings(), database=database)
        clock = FakeClock()
        engine = TriggerEngine(database, context.broker, clock=clock)
        yield Harness(database, context, clock, engine)
        await engine.close()
    finally:
        await database.dispose()


def event(
    name: str,
    resource: str = "tideflow.flow-run.00000000-0000-0000-0000-000000000001",
    *,
    occurred: dt.datetime = T0,
    related: list[dict[str, str]] | None = None,
    payload: dict[str, Any] | None = None,
    **labels: str,
) -> Event:
    return Event(
        event=name,
        occurred=occurred,
        resource={"tideflow.resource.id": resource, **labels},  # type: ignore[arg-type]
        related=related or [],  # type: ignore[arg-type]
        payload=payload or {},
    )
