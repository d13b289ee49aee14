"""Fan-out workload on Prefect (same as bench/workloads/fanout.py): one upstream deployment chained
to BENCH_FANOUT_N downstream deployments, each with its own DeploymentEventTrigger on the
upstream's Completed, all served by one serve() process."""

import os

from prefect import flow, serve
from prefect.events import DeploymentEventTrigger


@flow
def fanout_upstream():
    return "up"


@flow
def fanout_downstream():
    return "down"


if __name__ == "__main__":
    count = int(os.environ["BENCH_FANOUT_N"])
    # One trigger object per deployment: Prefect binds a trigger to the deployment it is given to.
    downs = [
        fanout_downstream.to_deployment(
            name=f"down-{i:03d}",
            triggers=[
                DeploymentEventTrigger(
                    expect={"prefect.flow-run.Completed"},
                    match_related={"prefect.resource.name": "upstream"},
                )
            ],
        )
        for i in range(count)
    ]
    serve(fanout_upstream.to_deployment(name="upstream"), *downs)
