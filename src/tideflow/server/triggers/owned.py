"""Deployment triggers kept as automations owned by their deployment.

``sync_owned_automations`` runs in the deployment's own transaction whenever it is created, updated,
paused or resumed: each trigger becomes one automation (``as_automation``), found again by (owner
resource, owner key) so re-serving updates it in place — same id, and the same bucket state when the
trigger is unchanged. Triggers no longer listed are deleted; a paused deployment's automations are
disabled. ``delete_owned_automations`` runs when the deployment is deleted.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.events import (
    DeploymentCompoundTrigger,
    DeploymentEventTrigger,
    DeploymentSequenceTrigger,
)
from tideflow.schemas.automations import AutomationCreate, describe_validation_error
from tideflow.schemas.deployments import Deployment
from tideflow.server.storage import automations as storage
from tideflow.server.storage.deployments import InvalidParameters

__all__ = [
    "delete_owned_automations",
    "owned_automations",
    "owner_resource",
    "sync_owned_automations",
]

_TRIGGER: TypeAdapter[Any] = TypeAdapter(
    Annotated[
        DeploymentEventTrigger | DeploymentCompoundTrigger | DeploymentSequenceTrigger,
        Field(discriminator="type"),
    ]
)


def owner_resource(deployment_id: UUID) -> str:
    return f"tideflow.deployment.{deployment_id}"


def _without_ids(value: Any) -> Any:
    # Trigger ids in a serialised trigger are random unless derived here from the owner; dropping
    # them lets as_automation derive stable ones, which is what keeps state across re-serving.
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def owned_automations(deployment: Deployment) -> list[AutomationCreate]:
    """The automations a deployment's triggers stand for (disabled while it is paused); a trigger
    that is not valid raises InvalidParameters naming it (``triggers[0].threshold: ...``)."""
    out = []
    for position, raw in enumerate(deployment.triggers):
        data = _without_ids({"type": "event", **raw})
        try:
            body = _TRIGGER.validate_python(data).as_automation(
                deployment.id, deployment.name, position
            )
        except ValidationError as exc:
            problems = describe_validation_error(exc)
            raise InvalidParameters([f"triggers[{position}].{p}" for p in problems]) from None
        if deployment.paused:
            body = body.model_copy(update={"enabled": False})
        out.append(body)
    return out


async def sync_owned_automations(session: AsyncSession, deployment: Deployment) -> None:
    """Make the deployment's owned automations match its triggers (call inside its transaction)."""
    existing = {
        a.owner_key: a
        for a in await storage.read_owned_automations(session, owner_resource(deployment.id))
    }
    wanted = owned_automations(deployment)
    for body in wanted:
        await storage.upsert_owned_automation(session, body, existing.get(body.owner_key))
    keys = {body.owner_key for body in wanted}
    await storage.delete_automations(
        session, [a.id for key, a in existing.items() if key not in keys]
    )


async def delete_owned_automations(session: AsyncSession, deployment_id: UUID) -> None:
    """Delete every automation the deployment owns (call inside its delete transaction)."""
    owned = await storage.read_owned_automations(session, owner_resource(deployment_id))
    await storage.delete_automations(session, [a.id for a in owned])
