"""Chains-under-load workload: the seed's chain, with the downstream run told which upstream run
triggered it (a templated parameter), so that many chains in flight can be paired exactly."""

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger

UPSTREAM = "chains-upstream/upstream"
DOWNSTREAM = "chains-downstream/downstream"


@flow
def chains_upstream():
    return "up"


@flow
def chains_downstream(upstream: str = ""):
    return upstream


if __name__ == "__main__":
    trigger = DeploymentEventTrigger(
        expect={"tideflow.flow-run.Completed"},
        match_related={"tideflow.resource.name": "upstream"},
        parameters={"upstream": "{{ event.resource['tideflow.resource.id'] }}"},
    )
    serve(
        chains_upstream.to_deployment(name="upstream"),
        chains_downstream.to_deployment(name="downstream", triggers=[trigger]),
    )
