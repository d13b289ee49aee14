"""Triggers: resource specifications and the trigger union (event, compound, sequence).

Pure data with validation, split from ``automations`` so that a deployment trigger can be defined
(``from tideflow.events import DeploymentEventTrigger``) without building the action and automation
models (issue 6: the seed's imports ≤ 150 ms). ``tideflow.schemas.automations`` re-exports all of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    field_serializer,
    field_validator,
    model_validator,
)

from tideflow.schemas.limits import MAX_LABEL_NAME_LENGTH, MAX_LABEL_VALUE_LENGTH
from tideflow.schemas.matching import event_name_problem, labels_match, validate_label_spec

__all__ = [
    "MAX_THRESHOLD",
    "TEMPLATE_CONTEXT_NAMES",
    "AutomationTrigger",
    "CompoundTrigger",
    "EventTrigger",
    "MetricTrigger",
    "MetricTriggerQuery",
    "Posture",
    "ResourceSpecification",
    "SequenceTrigger",
    "Trigger",
    "iter_triggers",
    "seconds",
]

MAX_THRESHOLD = 1000
MAX_NAMES = 100  # event names in expect/after, labels in for_each, values of one label spec
MAX_SPECS = 50  # resource specifications in match_related
MAX_SPEC_LABELS = 100  # labels in one resource specification
MAX_CHILDREN = 50  # triggers in one compound or sequence trigger

# Variables an action template may use; the action runner fills them (see server/triggers/templates.py).
TEMPLATE_CONTEXT_NAMES: frozenset[str] = frozenset(
    {
        "automation",
        "event",
        "events",
        "firing",
        "labels",
        "flow_run",
        "flow",
        "deployment",
        "variables",
    }
)

Posture = Literal["Reactive", "Proactive"]


def seconds(value: Any) -> Any:
    """A timedelta as seconds; anything else unchanged (pydantic validates it next)."""
    return value.total_seconds() if isinstance(value, dt.timedelta) else value


class ResourceSpecification(RootModel[dict[str, str | list[str]]]):
    """Labels a resource must carry: all labels must match (AND); a list is any-of (OR); ``*`` is a
    wildcard anywhere in a value; ``!value`` means "not this"; a missing label never matches a
    positive value and always matches a negative one."""

    root: dict[str, str | list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        if isinstance(value, ResourceSpecification):
            return value.root
        if not isinstance(value, Mapping):
            raise ValueError(
                f"a resource specification is a mapping of label -> value(s), got {type(value).__name__}"
            )
        if len(value) > MAX_SPEC_LABELS:
            raise ValueError(
                f"a resource specification has {len(value)} labels; at most {MAX_SPEC_LABELS}"
            )
        for label, wanted in value.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            if len(values) > MAX_NAMES:
                raise ValueError(
                    f"label {str(label)[:60]!r} lists {len(values)} values; at most {MAX_NAMES}"
                )
            if len(str(label)) > MAX_LABEL_NAME_LENGTH or any(
                len(str(v)) > MAX_LABEL_VALUE_LENGTH for v in values
            ):
                raise ValueError(
                    f"label {str(label)[:60]!r}: names are at most {MAX_LABEL_NAME_LENGTH} and "
                    f"values at most {MAX_LABEL_VALUE_LENGTH} characters"
                )
        return validate_label_spec(value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when ``labels`` satisfy every label of this specification."""
        return labels_match(self.root, labels)

    def matches_any(self, resources: Sequence[Mapping[str, str]]) -> bool:
        """True when at least one single resource satisfies this whole specification."""
        return any(labels_match(self.root, r) for r in resources)

    def items(self) -> Iterator[tuple[str, str | list[str]]]:
        return iter(self.root.items())

    def __len__(self) -> int:
        return len(self.root)

    def __getitem__(self, label: str) -> str | list[str]:
        return self.root[label]


def _check_names(values: set[str], field: str) -> set[str]:
    for name in values:
        problem = event_name_problem(name)
        if problem:
            raise ValueError(f"{field}: {problem}")
    return values


def _for_each_problem(label: str) -> str | None:
    if not label or any(c.isspace() for c in label):
        return f"for_each label {label!r} must be a non-empty name without whitespace"
    if label.startswith("related:"):
        parts = label.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            return f"for_each {label!r}: use 'related:<role>:<label>'"
    return None


class _TriggerBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(default_factory=uuid4, description="Stable id; trigger state is keyed by it.")


class EventTrigger(_TriggerBase):
    """Fires on expected events (Reactive) or on their absence (Proactive); see evaluate.py for the rules."""

    type: Literal["event"] = "event"
    match: ResourceSpecification = Field(default_factory=lambda: ResourceSpecification({}))
    match_related: list[ResourceSpecification] = Field(
        default_factory=list,
        max_length=MAX_SPECS,
        description="Each spec must be satisfied by at least one related resource.",
    )
    after: set[str] = Field(
        default_factory=set,
        max_length=MAX_NAMES,
        description="Event names ('*' allowed) that open a bucket.",
    )
    expect: set[str] = Field(
        default_factory=set,
        max_length=MAX_NAMES,
        description="Event names ('*' allowed) to count; empty = any.",
    )
    for_each: set[str] = Field(
        default_factory=set,
        max_length=MAX_NAMES,
        description="Labels splitting counting into buckets; 'related:<role>:<label>' too.",
    )
    posture: Posture = "Reactive"
    threshold: int = Field(1, ge=1, le=MAX_THRESHOLD)
    within: float = Field(
        0.0, ge=0, description="Window in seconds (timedelta accepted); 0 = no window."
    )

    @field_validator("match_related", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, Mapping | ResourceSpecification) else value

    @field_validator("within", mode="before")
    @classmethod
    def _within_seconds(cls, value: Any) -> Any:
        return seconds(value)

    @field_validator("after", "expect", mode="before")
    @classmethod
    def _str_is_one(cls, value: Any) -> Any:
        return {value} if isinstance(value, str) else value

    @field_validator("after")
    @classmethod
    def _check_after(cls, value: set[str]) -> set[str]:
        return _check_names(value, "after")

    @field_validator("expect")
    @classmethod
    def _check_expect(cls, value: set[str]) -> set[str]:
        return _check_names(value, "expect")

    @field_validator("for_each", mode="before")
    @classmethod
    def _check_for_each(cls, value: Any) -> Any:
        values = {value} if isinstance(value, str) else value
        for label in values or ():
            problem = (
                _for_each_problem(label)
                if isinstance(label, str)
                else "for_each labels must be strings"
            )
            if problem:
                raise ValueError(problem)
        return values

    @model_validator(mode="after")
    def _check_posture(self) -> EventTrigger:
        if self.posture == "Proactive" and self.within <= 0:
            raise ValueError(
                "a Proactive trigger needs within > 0 (how long to wait for the expected events)"
            )
        return self

    @field_serializer("after", "expect", "for_each")
    def _sorted(self, value: set[str]) -> list[str]:
        return sorted(value)


class CompoundTrigger(_TriggerBase):
    """Fires when ``require`` of its child triggers ("all", "any" or a number) have fired within ``within``."""

    type: Literal["compound"] = "compound"
    triggers: list[Trigger] = Field(min_length=1, max_length=MAX_CHILDREN)
    require: Literal["all", "any"] | int = "all"
    within: float | None = Field(None, ge=0, description="Seconds; None = no time limit.")

    @field_validator("within", mode="before")
    @classmethod
    def _within_seconds(cls, value: Any) -> Any:
        return seconds(value)

    @model_validator(mode="after")
    def _check_require(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(
                f"require must be 'all', 'any' or between 1 and {len(self.triggers)}, got {self.require}"
            )
        _check_unique_ids(self)
        return self

    @property
    def required(self) -> int:
        """How many distinct children must have fired."""
        if self.require == "all":
            return len(self.triggers)
        if self.require == "any":
            return 1
        return self.require


class SequenceTrigger(_TriggerBase):
    """Fires when its children fire in the given order, all within ``within`` seconds of the first."""

    type: Literal["sequence"] = "sequence"
    triggers: list[Trigger] = Field(min_length=1, max_length=MAX_CHILDREN)
    within: float | None = Field(None, ge=0, description="Seconds; None = no time limit.")

    @field_validator("within", mode="before")
    @classmethod
    def _within_seconds(cls, value: Any) -> Any:
        return seconds(value)

    @model_validator(mode="after")
    def _check_ids(self) -> SequenceTrigger:
        _check_unique_ids(self)
        return self


Trigger = Annotated[EventTrigger | CompoundTrigger | SequenceTrigger, Field(discriminator="type")]

MAX_METRIC_RANGE = 7 * 24 * 3600.0  # seconds of runs one metric query looks back over


class MetricTriggerQuery(BaseModel):
    """A measure of recent flow runs compared to a threshold: ``successes`` (the share of runs that
    ended in the last ``range`` seconds and Completed, 0 to 1), ``duration`` (their mean run time in
    seconds) or ``lateness`` (the mean seconds runs that started in ``range`` started after they
    were due). It breaches while ``value <operator> threshold`` holds; the trigger fires once it has
    breached for ``firing_for`` seconds, and resolves when it stops."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["successes", "duration", "lateness"]
    threshold: float
    operator: Literal["<", "<=", ">", ">="]
    range: float = Field(300.0, gt=0, le=MAX_METRIC_RANGE, description="Seconds looked back over.")
    firing_for: float = Field(
        300.0, ge=0, le=MAX_METRIC_RANGE, description="Seconds it must breach before firing."
    )

    @field_validator("range", "firing_for", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return seconds(value)

    def breached(self, value: float) -> bool:
        """Whether ``value`` is on the alerting side of the threshold."""
        if self.operator == "<":
            return value < self.threshold
        if self.operator == "<=":
            return value <= self.threshold
        if self.operator == ">":
            return value > self.threshold
        return value >= self.threshold


class MetricTrigger(_TriggerBase):
    """Fires when a measure of the flow runs whose resource matches ``match`` (and whose related
    resources match ``match_related``: flow, deployment, tags...) breaches its threshold for
    ``metric.firing_for`` seconds; once per breach, resolving when it ends. Evaluated periodically
    by the server's metric service, not on events; only at the top of an automation."""

    type: Literal["metric"] = "metric"
    match: ResourceSpecification = Field(default_factory=lambda: ResourceSpecification({}))
    match_related: list[ResourceSpecification] = Field(default_factory=list, max_length=MAX_SPECS)
    metric: MetricTriggerQuery

    @field_validator("match_related", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, Mapping) else value


AutomationTrigger = Annotated[
    EventTrigger | CompoundTrigger | SequenceTrigger | MetricTrigger, Field(discriminator="type")
]


def iter_triggers(trigger: EventTrigger | CompoundTrigger | SequenceTrigger) -> Iterator[Any]:
    """The trigger and all its descendants, depth first."""
    yield trigger
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        for child in trigger.triggers:
            yield from iter_triggers(child)


def _check_unique_ids(trigger: CompoundTrigger | SequenceTrigger) -> None:
    seen: set[UUID] = set()
    for t in iter_triggers(trigger):
        if t.id in seen:
            raise ValueError(
                f"trigger id {t.id} is used twice; each trigger in a tree needs its own id"
            )
        seen.add(t.id)


CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()
