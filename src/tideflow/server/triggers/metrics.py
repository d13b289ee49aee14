"""Metric triggers, the pure part: which runs a trigger measures (their resource labels as their
events carry them), the measure over them, and the breach state machine that fires once per
breach and resolves when it ends. ``services.metric_triggers`` is the I/O shell.

Firing ids are deterministic from the previous firing or resolution of the automation, so two
server replicas (or a restarted one) evaluating the same breach record one firing, never two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID, uuid5

from tideflow.schemas.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from tideflow.schemas.triggers import MetricTrigger, MetricTriggerQuery

__all__ = [
    "BreachState",
    "RunSample",
    "Step",
    "firing_id",
    "matches",
    "metric_value",
    "resolution_id",
    "run_labels",
    "step",
]

_NAMESPACE = UUID("0b8a4f8e-2f5d-4b7c-8d1e-6a3c9e2f7b10")

Step = Literal["fire", "resolve"] | None


@dataclass(frozen=True)
class RunSample:
    """One flow run as a metric sees it."""

    run_id: UUID
    state_type: str
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    expected_start_time: dt.datetime | None
    total_run_time: float
    resource: Mapping[str, str]
    related: Sequence[Mapping[str, str]]


def run_labels(
    *,
    run_id: UUID,
    name: str,
    state_type: str,
    flow_id: UUID,
    flow_name: str | None,
    deployment_id: UUID | None,
    deployment_name: str | None,
    tags: Sequence[str],
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A run's resource and related resources, labelled as its state events label them."""
    resource = {
        RESOURCE_ID: f"tideflow.flow-run.{run_id}",
        RESOURCE_NAME: name,
        "tideflow.state-type": state_type,
    }
    related = [_related(f"tideflow.flow.{flow_id}", "flow", flow_name)]
    if deployment_id is not None:
        related.append(_related(f"tideflow.deployment.{deployment_id}", "deployment",
                                deployment_name))  # fmt: skip
    related += [_related(f"tideflow.tag.{tag}", "tag", tag) for tag in tags]
    return resource, related


def _related(resource_id: str, role: str, name: str | None) -> dict[str, str]:
    out = {RESOURCE_ID: resource_id, RESOURCE_ROLE: role}
    if name is not None:
        out[RESOURCE_NAME] = name
    return out


def matches(trigger: MetricTrigger, sample: RunSample) -> bool:
    """Whether the trigger measures this run (``match`` on it, each ``match_related`` on one of
    its related resources)."""
    if not trigger.match.matches(sample.resource):
        return False
    return all(spec.matches_any(sample.related) for spec in trigger.match_related)


def metric_value(query: MetricTriggerQuery, samples: Sequence[RunSample], now: dt.datetime
                 ) -> float | None:  # fmt: skip
    """The measure over ``samples`` (already the runs of the range), or None with no run to
    measure (never a breach: no runs is not a failure rate of 100 %)."""
    if query.name == "successes":
        ended = [s for s in samples if s.state_type in ("COMPLETED", "FAILED", "CRASHED")]
        if not ended:
            return None
        return sum(s.state_type == "COMPLETED" for s in ended) / len(ended)
    if query.name == "duration":
        times = [s.total_run_time for s in samples if s.end_time is not None]
        return sum(times) / len(times) if times else None
    lateness = []
    for s in samples:
        if s.expected_start_time is None:
            continue
        started = s.start_time if s.start_time is not None else now  # still waiting: late so far
        lateness.append(max(0.0, (started - s.expected_start_time).total_seconds()))
    return sum(lateness) / len(lateness) if lateness else None


@dataclass(frozen=True)
class BreachState:
    """Since when the measure breaches (None: it does not), and the firing not yet resolved."""

    breaching_since: dt.datetime | None = None
    open_firing: UUID | None = None


def step(
    query: MetricTriggerQuery, state: BreachState, value: float | None, now: dt.datetime
) -> tuple[BreachState, Step]:
    """The next state and what to do: fire once the breach has lasted ``firing_for``, resolve the
    open firing when the breach ends (no runs to measure ends it too)."""
    breached = value is not None and query.breached(value)
    if not breached:
        if state.open_firing is not None:
            return BreachState(None, state.open_firing), "resolve"
        return BreachState(), None
    since = state.breaching_since or now
    if state.open_firing is None and (now - since).total_seconds() >= query.firing_for:
        return BreachState(since, None), "fire"
    return BreachState(since, state.open_firing), None


def firing_id(trigger_id: UUID, previous: UUID | None) -> UUID:
    """The id of the next firing after ``previous`` (the last firing or resolution recorded)."""
    return uuid5(_NAMESPACE, f"fire:{trigger_id}:{previous or 'first'}")


def resolution_id(fired: UUID) -> UUID:
    return uuid5(_NAMESPACE, f"resolve:{fired}")
