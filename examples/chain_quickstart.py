"""The whole chain in one command: serve two deployments, run the upstream one, watch the
downstream one follow it, then stop.

    python examples/chain_quickstart.py

It uses the local server (started in the background when none is running), serves both deployments
from one child process (``serve()``), runs ``upstream-flow/upstream_deployment``, waits for the run
that the trigger creates, and prints both runs, the hop latency (upstream Completed -> downstream
Running) and the upstream Completed event with its related resources.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
import time

from tideflow import flow, serve
from tideflow.client import SyncClient
from tideflow.events import DeploymentEventTrigger
from tideflow.schemas import Creator, FlowRun, FlowRunFilter
from tideflow.schemas.deployments import DeploymentFlowRunCreate, DeploymentStatus
from tideflow.schemas.events import EventFilter

TIMEOUT = 60.0


@flow(log_prints=True)
def upstream_flow() -> str:
    print("upstream flow")
    return "done"


@flow(log_prints=True)
def downstream_flow() -> str:
    print("downstream flow")
    return "done"


def deployments():  # type: ignore[no-untyped-def]
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
    return up, down


def wait_for(what: str, check, timeout: float = TIMEOUT):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def state_time(client: SyncClient, run: FlowRun, type_: str):  # type: ignore[no-untyped-def]
    return next(s.timestamp for s in client.read_flow_run_states(run.id) if s.type.value == type_)


def main() -> None:
    with SyncClient() as client:
        api = client.api_url
    server = subprocess.Popen(
        [sys.executable, __file__, "serve"], env={**_env(), "TIDEFLOW_API_URL": api}
    )
    try:
        with SyncClient(api) as client:
            up = wait_for(
                "the upstream deployment to be served",
                lambda: _ready(client, "upstream-flow/upstream_deployment"),
            )
            down = wait_for(
                "the downstream deployment to be served",
                lambda: _ready(client, "downstream-flow/downstream_deployment"),
            )
            login = getpass.getuser()
            started = client.create_flow_run_from_deployment(
                up.id,
                DeploymentFlowRunCreate(
                    created_by=Creator(type="user", id=f"tideflow.user.{login}", name=login)
                ),
            )
            print(f"started upstream run {started.name} ({started.id})")
            done = lambda r: r.state_type is not None and r.state_type.value == "COMPLETED"  # noqa: E731
            upstream = wait_for(
                "the upstream run to complete", lambda: _if(client.read_flow_run(started.id), done)
            )
            downstream = wait_for(
                "the triggered downstream run to complete",
                lambda: next((r for r in client.read_flow_runs(FlowRunFilter(deployment_id=[down.id]))
                              if r.created >= started.created and done(r)), None),
            )  # fmt: skip
            hop = state_time(client, downstream, "RUNNING") - state_time(
                client, upstream, "COMPLETED"
            )
            page = client.read_events(EventFilter(event_names=["tideflow.flow-run.Completed"],
                                                  resource_ids=[f"tideflow.flow-run.{upstream.id}"]))  # fmt: skip
        print()
        for label, run in (("upstream  ", upstream), ("downstream", downstream)):
            print(
                f"{label} {run.flow_name}/{run.deployment_name}: {run.name} ({run.id}) {run.state_name}"
            )
        print(
            f"downstream created by {downstream.created_by.name if downstream.created_by else '?'}"
        )
        print(
            f"hop latency (upstream Completed -> downstream Running): {hop.total_seconds() * 1000:.0f} ms"
        )
        if page.events:
            event = page.events[0]
            print(f"\n{event.event} ({event.id}) related resources:")
            print(json.dumps({"related": [r.root for r in event.related]}, indent=2))
    finally:
        server.terminate()
        server.wait(30)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _if(run: FlowRun, ok) -> FlowRun | None:  # type: ignore[no-untyped-def]
    return run if ok(run) else None


def _ready(client: SyncClient, name: str):  # type: ignore[no-untyped-def]
    from tideflow.exceptions import ObjectNotFound

    try:
        deployment = client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None
    return deployment if deployment.status == DeploymentStatus.READY else None


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve(*deployments())
    else:
        main()
