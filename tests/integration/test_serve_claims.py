"""The runner's claim recovery, for real: when a websocket claim got no answer (the connection
dropped, or it timed out), the runner reads each run back and starts only the runs it holds — a
server process, run processes started by the spawn launcher (a fresh interpreter per run)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID, uuid4

from serve_helpers import wait_final

from tideflow.client import AsyncClient, SyncClient
from tideflow.deployments._child import load_entrypoint
from tideflow.deployments._launchers import SpawnLauncher
from tideflow.deployments._runner import Runner, _Proc
from tideflow.schemas import FlowRun, StateType
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.states import Pending
from tideflow.settings import Settings
from tideflow.testing import ServerProcess

FLOW_FILE = """
from tideflow import flow


@flow
def quick() -> int:
    return 1
"""


async def _recover(runner: Runner, runs: list[FlowRun], exits: dict[UUID, int]) -> None:
    runner._client = AsyncClient(settings=runner.settings)
    try:

        def on_exit(run_id: UUID, code: int) -> None:
            exits[run_id] = code
            runner._on_exit(run_id, code)  # the runner reports the end and releases the run

        await runner.launcher.open(on_exit)
        for run in runs:  # what offer() records before claiming
            runner.procs[run.id] = _Proc(run.id)
        await asyncio.gather(*(runner._recover_claim(run) for run in runs))
        for _ in range(600):  # the started runs' processes end and are released
            if not runner.procs:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.launcher.close()
        await runner._client.aclose()


def test_unanswered_claim_starts_only_the_runs_this_runner_holds(tmp_path: Path) -> None:
    script = tmp_path / "quick_flow.py"
    script.write_text(FLOW_FILE)
    flow = load_entrypoint(f"{script}:quick")
    with ServerProcess(home=tmp_path / "srv") as server, SyncClient(server.api_url) as client:
        settings = Settings(api_url=server.api_url)
        deployment = flow.to_deployment(name="recover")
        runner = Runner(
            [deployment], SpawnLauncher([f"{script}:quick"], settings), settings=settings
        )
        registered = client.create_deployment(deployment.create)
        runner.index_of[registered.id] = 0
        held, scheduled, theirs = (
            client.create_flow_run_from_deployment(registered.id, DeploymentFlowRunCreate())
            for _ in range(3)
        )
        # `held`: our claim committed but its answer was lost; `theirs`: another runner won it.
        for run, owner in ((held, runner.runner_id), (theirs, uuid4())):
            assert run.state is not None
            client.set_flow_run_state(
                run.id, Pending(runner_id=str(owner)), expected_state_id=run.state.id
            )
        exits: dict[UUID, int] = {}
        asyncio.run(_recover(runner, [held, scheduled, theirs], exits))
        assert exits == {held.id: 0, scheduled.id: 0}
        for run in (held, scheduled):
            final = wait_final(client, run.id)
            assert final.state is not None and final.state.type is StateType.COMPLETED
        untouched = client.read_flow_run(theirs.id)
        assert untouched.state is not None and untouched.state.type is StateType.PENDING
        assert runner.procs == {}
