"""``python -m tideflow.deployments._execute [RUN_ID]``: run a deployment's flow run where only the run
id is known, pulling the code first: what a docker container or a Kubernetes pod runs.

The run id comes from the argument or ``TIDEFLOW_FLOW_RUN_ID`` (set by the docker and kubernetes
workers); the API from ``TIDEFLOW_API_URL`` / ``TIDEFLOW_API_KEY``. It reads the run and its
deployment, runs the deployment's pull steps here (inside the container: a ``git_clone`` clones,
``set_working_directory`` names a folder of the image), loads the entrypoint relative to the folder
they name (or the current directory) and runs the flow run through the engine. A failure before
the flow starts (the code cannot be pulled or loaded) is reported as Crashed naming the cause, so
the worker's exit report does not have to guess it. The exit status is the engine's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.deployments._child import load_entrypoint
from tideflow.deployments._pull import PullError, run_pull_steps
from tideflow.engine.cancellation import install_cancellation_hooks
from tideflow.engine.existing import execute_flow_run
from tideflow.exceptions import TideflowError
from tideflow.schemas import states as S
from tideflow.settings import get_settings

__all__ = ["RUN_ID_ENV", "main"]

RUN_ID_ENV = "TIDEFLOW_FLOW_RUN_ID"
EXIT_SETUP = 1  # the code could not be pulled or loaded (reported as Crashed)
EXIT_USAGE = 2


def _crash(client: SyncClient, run_id: UUID, message: str) -> int:
    print(f"Error: {message}", file=sys.stderr, flush=True)
    try:
        client.set_flow_run_state(run_id, S.Crashed(message))
    except TideflowError as exc:
        print(f"Error: could not report it: {exc}", file=sys.stderr, flush=True)
    return EXIT_SETUP


def main(argv: list[str]) -> int:
    raw = argv[0] if argv else os.environ.get(RUN_ID_ENV, "")
    try:
        run_id = UUID(raw)
    except ValueError:
        print(
            f"usage: python -m tideflow.deployments._execute RUN_ID (or set {RUN_ID_ENV}); "
            f"got {raw!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    settings = get_settings()
    with SyncClient(settings=settings) as client:
        try:
            run = client.read_flow_run(run_id)
            if run.deployment_id is None:
                return _crash(client, run_id, f"flow run {run_id} has no deployment to pull")
            deployment = client.read_deployment(run.deployment_id)
        except TideflowError as exc:
            print(f"Error: cannot read flow run {run_id}: {exc}", file=sys.stderr, flush=True)
            return EXIT_SETUP
        if not deployment.entrypoint:
            return _crash(client, run_id, f"deployment {deployment.full_name!r} has no entrypoint")
        try:
            folder = run_pull_steps(deployment.pull_steps, settings.home)
        except (PullError, OSError) as exc:
            return _crash(client, run_id, f"pull steps failed: {exc}")
        where = folder or Path.cwd()
        path, _, name = deployment.entrypoint.rpartition(":")
        try:
            os.chdir(where)
            flow = load_entrypoint(f"{where / path}:{name}")
        except Exception as exc:  # the user's module raised on import: say so, as the run's end
            return _crash(client, run_id, f"cannot load {deployment.entrypoint}: {exc}")
        if not hasattr(flow, "parameter_schema") or not hasattr(flow, "fn"):
            return _crash(client, run_id, f"{deployment.entrypoint} is not a flow")
    install_cancellation_hooks(flow, run_id, settings)
    return execute_flow_run(flow, run_id, settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
