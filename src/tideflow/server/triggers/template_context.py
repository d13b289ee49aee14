"""What action templates see of events and resources, and the wrapped parameter forms.

Prefect users write ``{{ event.resource.id }}``, ``{{ event.resource.name }}``,
``event.resource.get(label)`` and ``event.resource_of_role('flow').name``. An event reaches a
template as a plain JSON dict; :func:`event_view` gives it those names without giving anything
more: an :class:`EventView` and its :class:`ResourceView` items are ``dict`` subclasses holding
only the event's JSON and the resources' labels, so the immutable sandbox still refuses every
mutating method, they serialise as the same JSON, and the added names are read-only properties and
methods over those labels.

A value ``{"__tideflow_kind": "jinja", "template": "..."}`` renders its template;
``{"__tideflow_kind": "json", "value": ...}`` gives ``value`` (a string is parsed as JSON) without
rendering anything inside it; ``{"__tideflow_kind": "none", "value": ...}`` gives ``value`` as is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tideflow.schemas.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE

__all__ = [
    "KINDS",
    "KIND_KEY",
    "EventView",
    "ResourceView",
    "event_view",
    "is_wrapped",
    "unwrap",
    "wrapped_problem",
]

KIND_KEY = "__tideflow_kind"
KINDS = {"jinja": "template", "json": "value", "none": "value"}  # kind -> the field it needs
_FOREIGN_KIND_KEYS = ("__prefect_kind",)


class ResourceView(dict[str, Any]):
    """A resource's labels, plus ``id``, ``name`` and ``role`` read from the reserved labels."""

    __slots__ = ()

    @property
    def id(self) -> Any:
        """The ``tideflow.resource.id`` label."""
        return self.get(RESOURCE_ID)

    @property
    def name(self) -> Any:
        """The ``tideflow.resource.name`` label, or None."""
        return self.get(RESOURCE_NAME)

    @property
    def role(self) -> Any:
        """The ``tideflow.resource.role`` label (related resources), or None."""
        return self.get(RESOURCE_ROLE)

    @property
    def labels(self) -> dict[str, Any]:
        """Every label, as a plain dict."""
        return dict(self)


class EventView(dict[str, Any]):
    """An event's JSON, its resource and related resources as :class:`ResourceView` items."""

    __slots__ = ()

    def resource_of_role(self, role: str) -> ResourceView:
        """The first related resource with this role; an error naming the role when none has it."""
        for resource in self.get("related") or ():
            if resource.get(RESOURCE_ROLE) == role:
                return resource  # type: ignore[no-any-return]
        raise ValueError(f"the event has no related resource with role {role!r}")

    @property
    def resources_in_role(self) -> dict[str, list[ResourceView]]:
        """Related resources grouped by role."""
        out: dict[str, list[ResourceView]] = {}
        for resource in self.get("related") or ():
            out.setdefault(str(resource.get(RESOURCE_ROLE, "")), []).append(resource)
        return out

    @property
    def involved_resources(self) -> list[ResourceView]:
        """The event's resource followed by its related resources."""
        return [self["resource"], *(self.get("related") or ())]


def event_view(event: Mapping[str, Any] | None) -> EventView | None:
    """The template view of one event's JSON (None stays None)."""
    if event is None:
        return None
    view = EventView(event)
    if isinstance(view.get("resource"), Mapping):
        view["resource"] = ResourceView(view["resource"])
    related = view.get("related")
    if isinstance(related, list):
        view["related"] = [ResourceView(r) if isinstance(r, Mapping) else r for r in related]
    return view


def is_wrapped(value: Any) -> bool:
    """Whether ``value`` is one of the wrapped forms (a mapping carrying ``__tideflow_kind``)."""
    return isinstance(value, Mapping) and KIND_KEY in value


def wrapped_problem(value: Any, where: str) -> str | None:
    """What is wrong with a wrapped form at ``where``, or None (also flags Prefect's key)."""
    if not isinstance(value, Mapping):
        return None
    for key in _FOREIGN_KIND_KEYS:
        if key in value:
            return f"{where}: {key!r} is Prefect's name; tideflow reads {KIND_KEY!r}"
    if KIND_KEY not in value:
        return None
    kind = value[KIND_KEY]
    if kind not in KINDS:
        known = ", ".join(repr(k) for k in KINDS)
        return f"{where}: unknown {KIND_KEY} {kind!r} (one of {known})"
    field = KINDS[kind]
    if field not in value:
        return f"{where}: a {KIND_KEY} {kind!r} value needs a {field!r} field"
    if kind == "jinja" and not isinstance(value[field], str):
        return f"{where}.template: must be a string"
    if kind == "json" and isinstance(value[field], str):
        try:
            json.loads(value[field])
        except (ValueError, RecursionError) as exc:
            return f"{where}.value: not valid JSON ({str(exc) or 'nests too deeply'})"
    return None


def unwrap(value: Mapping[str, Any], render: Callable[[str, str], Any], where: str) -> Any:
    """The value a wrapped form stands for; ``render(template, where)`` renders a jinja form.

    Raises ValueError naming ``where`` when the form is malformed."""
    problem = wrapped_problem(value, where)
    if problem:
        raise ValueError(problem)
    kind = value[KIND_KEY]
    if kind == "jinja":
        return render(value["template"], f"{where}.template")
    if kind == "json" and isinstance(value["value"], str):
        return json.loads(value["value"])
    return value["value"]
