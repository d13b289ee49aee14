"""Events for users: the event model and the trigger classes that chain deployments on events.

Importing this package loads pydantic and the schemas only (no server stack, no jinja2).
"""

from __future__ import annotations

from tideflow.events._deployment_triggers import (
    DeploymentCompoundTrigger,
    DeploymentEventTrigger,
    DeploymentSequenceTrigger,
    DeploymentTrigger,
)
from tideflow.events._emit import emit_event
from tideflow.schemas.automations import (
    CompoundTrigger,
    EventTrigger,
    ResourceSpecification,
    SequenceTrigger,
)
from tideflow.schemas.events import Event, ReceivedEvent, RelatedResource, Resource

__all__ = [
    "CompoundTrigger",
    "DeploymentCompoundTrigger",
    "DeploymentEventTrigger",
    "DeploymentSequenceTrigger",
    "DeploymentTrigger",
    "Event",
    "EventTrigger",
    "ReceivedEvent",
    "RelatedResource",
    "Resource",
    "ResourceSpecification",
    "SequenceTrigger",
    "emit_event",
]
