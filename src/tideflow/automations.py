"""Automations from Python: ``Automation(name=..., trigger=..., actions=[...]).create()``.

A thin object over the automations API (sync methods and their ``a``-prefixed async pairs). Triggers
and actions are the schemas of ``tideflow.schemas.automations`` (also importable from
``tideflow.events``); invalid ones fail on construction with a message naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.client import AsyncClient, SyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas.automations import (
    Action,
    AutomationFilter,
    FiringRecord,
    Trigger,
)
from tideflow.schemas.automations import Automation as StoredAutomation

__all__ = ["Automation"]

_WRITABLE = {
    "name",
    "description",
    "enabled",
    "trigger",
    "actions",
    "actions_on_trigger",
    "actions_on_resolve",
}


class Automation(BaseModel):
    """An automation: when ``trigger`` fires, run ``actions``. ``id`` is set once it is stored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    enabled: bool = True
    trigger: Trigger
    actions: list[Action] = Field(default_factory=list)
    actions_on_trigger: list[Action] = Field(default_factory=list)
    actions_on_resolve: list[Action] = Field(default_factory=list)
    id: UUID | None = None
    owner_resource: str | None = Field(
        None, description="Set by the server for deployment triggers."
    )
    created: dt.datetime | None = None
    updated: dt.datetime | None = None

    def _body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=_WRITABLE)

    def _take(self, stored: StoredAutomation) -> Automation:
        for name in ("id", "owner_resource", "created", "updated", "enabled"):
            object.__setattr__(self, name, getattr(stored, name))
        return self

    @classmethod
    def _from(cls, stored: StoredAutomation) -> Automation:
        return cls.model_validate(
            stored.model_dump(include=_WRITABLE | {"id", "owner_resource", "created", "updated"})
        )

    def _target(self) -> UUID:
        if self.id is None:
            raise ValueError(f"automation {self.name!r} has no id: create() it or read() it first")
        return self.id

    # -- sync --------------------------------------------------------------------------------

    def create(self) -> Automation:
        """Store it (a new automation, even when another has the same name); sets ``id``."""
        with SyncClient() as client:
            return self._take(client.create_automation(self._body()))

    def update(self) -> Automation:
        """Send every field to the stored automation with this ``id``."""
        with SyncClient() as client:
            return self._take(client.update_automation(self._target(), self._body()))

    def delete(self) -> bool:
        """Delete it; False when it was already gone."""
        with SyncClient() as client:
            try:
                client.delete_automation(self._target())
            except ObjectNotFound:
                return False
        return True

    @classmethod
    def read(cls, name: str | None = None, *, id: UUID | None = None) -> Automation:
        """The stored automation called ``name`` (or with ``id``); ObjectNotFound when absent."""
        with SyncClient() as client:
            found = (
                client.read_automation(id) if id else client.read_automation_by_name(_name(name))
            )
        return cls._from(found)

    @classmethod
    def read_many(cls, name_like: str | None = None) -> list[Automation]:
        """Stored automations, sorted by name."""
        with SyncClient() as client:
            return [
                cls._from(a) for a in client.read_automations(AutomationFilter(name_like=name_like))
            ]

    def history(self, limit: int = 20) -> list[FiringRecord]:
        """Its recent firings, newest first, with their actions' outcomes."""
        with SyncClient() as client:
            return client.automation_history(self._target(), limit)

    # -- async -------------------------------------------------------------------------------

    async def acreate(self) -> Automation:
        async with AsyncClient() as client:
            return self._take(await client.create_automation(self._body()))

    async def aupdate(self) -> Automation:
        async with AsyncClient() as client:
            return self._take(await client.update_automation(self._target(), self._body()))

    async def adelete(self) -> bool:
        async with AsyncClient() as client:
            try:
                await client.delete_automation(self._target())
            except ObjectNotFound:
                return False
        return True

    @classmethod
    async def aread(cls, name: str | None = None, *, id: UUID | None = None) -> Automation:
        async with AsyncClient() as client:
            found = (
                await client.read_automation(id)
                if id
                else await client.read_automation_by_name(_name(name))
            )
        return cls._from(found)


def _name(name: str | None) -> str:
    if not name:
        raise ValueError("give the automation's name or id")
    return name
