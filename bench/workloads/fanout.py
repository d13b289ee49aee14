"""Fan-out workload: one upstream deployment chained to BENCH_FANOUT_N downstream deployments
(each with its own trigger on the upstream's Completed), all served by one serve() process."""

import os

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger

UPSTREAM = "fanout-upstream/upstream"


@flow
def fanout_upstream():
    return "up"


@flow
def fanout_downstream():
    return "down"


if __name__ == "__main__":
    count = int(os.environ["BENCH_FANOUT_N"])
    trigger = DeploymentEventTrigger(
        expect={"tideflow.flow-run.Completed"},
        match_related={"tideflow.resource.name": "upstream"},
    )
    downs = [
        fanout_downstream.to_deployment(name=f"down-{i:03d}", triggers=[trigger])
        for i in range(count)
    ]
    serve(fanout_upstream.to_deployment(name="upstream"), *downs)
