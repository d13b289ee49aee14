"""The task-run state event, as a pure function of the run, its flow run and the state change.

``tideflow.task-run.<StateName>`` names the task run as its resource (task name, state name/type and
run count as labels) and relates the flow run, the flow, the deployment and each tag, so a trigger
can match a task of one flow or deployment. Its id is derived from the task run and state ids (a
report sent twice stores each event once); ``follows`` chains a run's events in order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from tideflow.schemas import State
from tideflow.schemas.events import (
    MAX_RELATED,
    RESOURCE_ID,
    RESOURCE_NAME,
    Event,
    RelatedResource,
    Resource,
    event_name_problem,
)
from tideflow.schemas.task_runs import TaskRunReport
from tideflow.server.events.run_events import related_resource, state_summary

__all__ = ["FlowRunFacts", "task_run_event_id", "task_run_state_event"]

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FlowRunFacts:
    """What a task run's events say about the flow run it ran in."""

    id: UUID
    name: str
    flow_id: UUID
    flow_name: str | None
    deployment_id: UUID | None
    deployment_name: str | None


def task_run_event_id(task_run_id: UUID, state_id: UUID) -> UUID:
    """The id of the event for ``task_run_id`` entering state ``state_id``."""
    return uuid5(NAMESPACE_URL, f"tideflow.task-run.{task_run_id}.state.{state_id}")


def task_run_state_event(
    report: TaskRunReport,
    state: State,
    previous: State | None,
    run_count: int,
    flow_run: FlowRunFacts | None,
) -> Event:
    """The event for the reported task run entering ``state`` from ``previous``."""
    related: list[dict[str, str]] = []
    if flow_run is not None:
        related.append(
            related_resource(f"tideflow.flow-run.{flow_run.id}", "flow-run", flow_run.name)
        )
        related.append(
            related_resource(f"tideflow.flow.{flow_run.flow_id}", "flow", flow_run.flow_name)
        )
        if flow_run.deployment_id is not None:
            related.append(
                related_resource(
                    f"tideflow.deployment.{flow_run.deployment_id}",
                    "deployment",
                    flow_run.deployment_name,
                )
            )
    room = MAX_RELATED - len(related)
    related += [related_resource(f"tideflow.tag.{tag}", "tag", tag) for tag in report.tags[:room]]
    name = f"tideflow.task-run.{_SPACE.sub('-', state.name.strip())}"
    if event_name_problem(name):  # a state name the client made up that no event name can hold
        name = f"tideflow.task-run.{state.type.value.title()}"
    # Built without validation (a batch writes thousands; validating each costs ~0.4 ms): every
    # part is a validated field of the report, and the name was checked just above.
    resource = {
        RESOURCE_ID: f"tideflow.task-run.{report.id}",
        RESOURCE_NAME: report.name,
        "tideflow.task-name": report.task_name,
        "tideflow.state-name": state.name,
        "tideflow.state-type": state.type.value,
        "tideflow.run-count": str(run_count),
    }
    return Event.model_construct(
        id=task_run_event_id(report.id, state.id),
        occurred=state.timestamp.astimezone(dt.UTC),
        event=name,
        resource=Resource.model_construct(root=resource),
        related=[RelatedResource.model_construct(root=r) for r in related],
        payload={
            "previous": state_summary(previous) if previous else None,
            "state": state_summary(state),
        },
        follows=task_run_event_id(report.id, previous.id) if previous is not None else None,
    )
