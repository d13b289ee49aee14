"""Events for users: the event model and the trigger classes that chain deployments on events.

Names load on first access: ``from tideflow.events import DeploymentEventTrigger`` loads the trigger
schemas only, not the event sender (and never the server stack or jinja2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tideflow._lazy import lazy_exports

if TYPE_CHECKING:  # explicit re-exports, so type checkers see the lazy names
    from tideflow.events._asset_triggers import AssetTrigger as AssetTrigger
    from tideflow.events._deployment_triggers import (
        DeploymentCompoundTrigger as DeploymentCompoundTrigger,
    )
    from tideflow.events._deployment_triggers import (
        DeploymentEventTrigger as DeploymentEventTrigger,
    )
    from tideflow.events._deployment_triggers import (
        DeploymentSequenceTrigger as DeploymentSequenceTrigger,
    )
    from tideflow.events._deployment_triggers import DeploymentTrigger as DeploymentTrigger
    from tideflow.events._emit import emit_event as emit_event
    from tideflow.schemas.automations import CompoundTrigger as CompoundTrigger
    from tideflow.schemas.automations import EventTrigger as EventTrigger
    from tideflow.schemas.automations import MetricTrigger as MetricTrigger
    from tideflow.schemas.automations import MetricTriggerQuery as MetricTriggerQuery
    from tideflow.schemas.automations import ResourceSpecification as ResourceSpecification
    from tideflow.schemas.automations import SequenceTrigger as SequenceTrigger
    from tideflow.schemas.events import Event as Event
    from tideflow.schemas.events import ReceivedEvent as ReceivedEvent
    from tideflow.schemas.events import RelatedResource as RelatedResource
    from tideflow.schemas.events import Resource as Resource

# name -> module that defines it
_LAZY: dict[str, str] = {
    "AssetTrigger": "tideflow.events._asset_triggers",
    "CompoundTrigger": "tideflow.schemas.automations",
    "DeploymentCompoundTrigger": "tideflow.events._deployment_triggers",
    "DeploymentEventTrigger": "tideflow.events._deployment_triggers",
    "DeploymentSequenceTrigger": "tideflow.events._deployment_triggers",
    "DeploymentTrigger": "tideflow.events._deployment_triggers",
    "Event": "tideflow.schemas.events",
    "EventTrigger": "tideflow.schemas.automations",
    "MetricTrigger": "tideflow.schemas.automations",
    "MetricTriggerQuery": "tideflow.schemas.automations",
    "ReceivedEvent": "tideflow.schemas.events",
    "RelatedResource": "tideflow.schemas.events",
    "Resource": "tideflow.schemas.events",
    "ResourceSpecification": "tideflow.schemas.automations",
    "SequenceTrigger": "tideflow.schemas.automations",
    "emit_event": "tideflow.events._emit",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
