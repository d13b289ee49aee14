"""Prefect-style templates end to end: a run-deployment action's parameters read the triggering
event's resources by attribute and use the wrapped forms; the created run holds the rendered values."""

from __future__ import annotations

import pytest
from automation_helpers import event, harness

pytestmark = pytest.mark.anyio

COMPLETED = "tideflow.flow-run.Completed"
UPSTREAM = "tideflow.flow-run.00000000-0000-0000-0000-0000000000aa"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_run_deployment_parameters_from_resources_and_wrapped_forms(
    database_url: str,
) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        parameters = {
            "run_id": "{{ event.resource.id }}",
            "run_name": "{{ event.resource.name }}",
            "state": "{{ event.resource.get('tideflow.state-name') }}",
            "flow": "{{ event.resource_of_role('flow').name }}",
            "deployment": "{{ event.related[1]['tideflow.resource.name'] }}",
            "config": {"__tideflow_kind": "json", "value": '{"retries": 2, "tables": ["a"]}'},
            "label": {"__tideflow_kind": "jinja", "template": "from {{ event.resource.name }}"},
        }
        auto = await h.create({
            "name": "prefect-style",
            "trigger": {"type": "event", "expect": [COMPLETED]},
            "actions": [{"type": "run-deployment", "deployment_id": str(dep.id),
                         "parameters": parameters}],
        })  # fmt: skip
        up = event(
            COMPLETED,
            UPSTREAM,
            related=[
                {"tideflow.resource.id": "tideflow.flow.f", "tideflow.resource.role": "flow",
                 "tideflow.resource.name": "extract"},
                {"tideflow.resource.id": "tideflow.deployment.d",
                 "tideflow.resource.role": "deployment", "tideflow.resource.name": "nightly"},
            ],
            **{"tideflow.resource.name": "brave-otter", "tideflow.state-name": "Completed"},
        )  # fmt: skip
        await h.emit(up)
        await h.engine.run_once()

        [action] = await h.actions(auto.id)
        assert action["status"] == "executed", action
        [run] = await h.runs(dep.id)
        assert run["parameters"] == {
            "run_id": UPSTREAM,
            "run_name": "brave-otter",
            "state": "Completed",
            "flow": "extract",
            "deployment": "nightly",
            "config": {"retries": 2, "tables": ["a"]},
            "label": "from brave-otter",
        }
