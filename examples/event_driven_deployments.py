"""Chain two deployments with an event: when a run of the upstream deployment completes, a run of
the downstream deployment starts.

    python examples/event_driven_deployments.py
    tideflow deployment run upstream-flow/upstream_deployment      # in another terminal
"""

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger


@flow(log_prints=True)
def upstream_flow():
    print("upstream flow")


@flow(log_prints=True)
def downstream_flow():
    print("downstream flow")


if __name__ == "__main__":
    up = upstream_flow.to_deployment(name="upstream_deployment")
    down = downstream_flow.to_deployment(
        name="downstream_deployment",
        triggers=[
            DeploymentEventTrigger(
                expect={"tideflow.flow-run.Completed"},
                match_related={"tideflow.resource.name": "upstream_deployment"},
            )
        ],
    )
    serve(up, down)
