"""Every kind of UI page, made real on the shared server: a run with parameters, a deployment, an
event, an automation (with an apostrophe in its texts), a work pool with a queue. Used by the tests
that check something of every page (text facts, wrapping, accessibility)."""

from __future__ import annotations

import uuid

from ui_helpers import Served, unique

from tideflow import flow, task
from tideflow.client import SyncClient
from tideflow.client import _work_pools as pool_calls
from tideflow.schemas import FlowRunCreate
from tideflow.schemas.artifacts import ArtifactCreate
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.events import Event, EventFilter, Resource
from tideflow.schemas.secrets import SecretCreate
from tideflow.schemas.states import Failed
from tideflow.schemas.task_runs import TaskRunFilter
from tideflow.schemas.variables import VariableCreate
from tideflow.schemas.work_pools import WorkPoolCreate


def tour(client: SyncClient, served: Served) -> list[str]:
    """The paths of one page of each kind (the 404 page last)."""
    deployment = client.read_deployment_by_name(served.report)
    run = client.create_flow_run_from_deployment(
        deployment.id, DeploymentFlowRunCreate(parameters={"rows": 3, "source": "it's here"})
    )
    failed = client.create_flow_run(
        FlowRunCreate(flow_name=unique("ui-tour"), parameters={"note": "it's broken"})
    )
    client.set_flow_run_state(failed.id, Failed(message="the file isn't there"), force=True)
    marker = unique("tour")
    client.emit_events(
        [Event(event=f"ui.tour.{marker}.failed", resource=Resource({"tideflow.resource.id": marker}),
               payload={"why": "it's a test"})]
    )  # fmt: skip
    event = client.read_events(EventFilter(resource_ids=[marker], limit=1)).events[0]
    automation = client.create_automation(
        {
            "name": unique("it's the tour"),
            "description": "runs the report when it's time",
            "trigger": {"type": "event", "expect": [f"ui.tour.{marker}.failed"],
                        "posture": "Reactive"},
            "actions": [{"type": "run-deployment", "deployment_id": str(deployment.id),
                         "parameters": {"rows": 1, "source": "it's there"}}],
        }
    )  # fmt: skip
    pool = unique("tour-pool")
    client.send(pool_calls.create_work_pool(WorkPoolCreate(name=pool)))
    suffix = marker.removeprefix("tour-").replace("-", "_")
    client.create_variable(VariableCreate(name=f"tour_{suffix}", value={"it's": "a value"}))
    client.set_secret(SecretCreate(name=f"tour_{suffix}", value="it's secret"))
    artifact = client.create_artifact(
        ArtifactCreate(key=f"tour-{suffix}".replace("_", "-"), type="markdown",
                       data="# It's a report\n\n| region | total |\n| --- | --- |\n| north | 6 |",
                       description="the tour's report", flow_run_id=failed.id)
    )  # fmt: skip
    tasks_run = run_with_tasks()
    task_runs = client.read_task_runs(TaskRunFilter(flow_run_id=[tasks_run]))
    assert task_runs, "the tour's flow reported no task runs"
    return [
        "/",
        "/runs",
        f"/runs/{run.id}",
        f"/runs/{failed.id}",
        "/deployments",
        f"/deployments/{deployment.id}",
        "/events",
        f"/events/{event.id}",
        "/automations",
        "/automations/new",
        f"/automations/{automation.id}",
        f"/automations/{automation.id}/edit",
        f"/automations/{automation.id}?explain={event.id}",  # the trigger explained on an event
        "/chains",
        "/artifacts",
        f"/artifacts/{artifact.id}",
        "/assets",
        f"/task-runs/{task_runs[0].id}",
        "/work-pools",
        f"/work-pools/{pool}",
        "/variables",
        "/secrets",
        "/notifications",
        "/webhooks",
        "/access",
        f"/runs/{uuid.uuid4()}",
    ]


def run_with_tasks() -> uuid.UUID:
    """The id of a flow run with two task runs, run here (the test points the SDK at the server)."""

    @task
    def load(rows: int) -> list[int]:
        return list(range(rows))

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    ids: list[uuid.UUID] = []

    @flow(name=unique("ui-tour-tasks"))
    def tasks_flow() -> int:
        from tideflow.runtime import flow_run

        ids.append(flow_run.id)
        return total(load(3))

    assert tasks_flow() == 3
    return ids[0]
