"""200 chains (an upstream deployment's run Completed -> its owned automation -> a downstream run)
while the server is SIGKILLed three times and restarted on the same database and port; the serve()
process stays up and reconnects. Then, read from the database itself: exactly one downstream run per
upstream Completed event, none missing, none doubled, each downstream run naming its own triggering
event, and every run finished. The test prints its figures (kills, time, states).

A run whose process ended while the server was down cannot report its last state (neither the run
process nor serve() retries it): before, such runs stayed Pending or Running forever, since their
runner kept heartbeating. Now the server crashes a runner's claimed run once the runner has not
listed it among its runs for 15 s, naming why; the test checks that every run not Completed is such
a Crashed run, and prints how many there were."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.server.storage import Database
from tideflow.server.storage.tables import events, flow_runs
from tideflow.testing import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHAINS = int(os.environ.get("TIDEFLOW_REL_CHAINS", "200"))
KILL_AT = (0.2, 0.45, 0.7)  # fractions of the downstream runs finished when the server is killed
UP, DOWN = "rel-up/up", "rel-down/down"

SERVE = textwrap.dedent(
    """
    from tideflow import flow, serve
    from tideflow.events import DeploymentEventTrigger

    @flow
    def rel_up():
        return 1

    @flow
    def rel_down():
        return 2

    if __name__ == "__main__":
        up = rel_up.to_deployment(name="up")
        down = rel_down.to_deployment(
            name="down",
            triggers=[DeploymentEventTrigger(
                expect={"tideflow.flow-run.Completed"},
                match_related={"tideflow.resource.name": "up"},
            )],
        )
        serve(up, down, limit=8)
    """
)


def _wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:  # the server is being restarted
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _states(api_url: str, deployment_id: UUID) -> Counter[str]:
    with SyncClient(api_url) as client:
        runs = client.read_flow_runs(FlowRunFilter(deployment_id=[deployment_id], limit=1000))
    return Counter(r.state_type.value if r.state_type else "NONE" for r in runs)


async def _rows(url: str, up_id: UUID, down_id: UUID) -> tuple[list[Any], list[Any], list[Any]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            ups = (await conn.execute(
                sa.select(flow_runs.c.id, flow_runs.c.state_type, flow_runs.c.state)
                .where(flow_runs.c.deployment_id == up_id))).all()  # fmt: skip
            downs = (await conn.execute(
                sa.select(flow_runs.c.id, flow_runs.c.state_type, flow_runs.c.state,
                          flow_runs.c.triggering_event_id)
                .where(flow_runs.c.deployment_id == down_id))).all()  # fmt: skip
            completed = (await conn.execute(
                sa.select(events.c.id, events.c.resource_id)
                .where(events.c.event == "tideflow.flow-run.Completed")
                .where(events.c.resource_id.in_([f"tideflow.flow-run.{r.id}" for r in ups])))).all()  # fmt: skip
        return list(ups), list(downs), list(completed)
    finally:
        await db.dispose()


def test_each_upstream_completed_makes_exactly_one_downstream_run_across_sigkills(
    database_url: str, database_kind: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, home=tmp_path / "server", startup_timeout=120)
    server.start()
    script = tmp_path / "serve_chain.py"
    script.write_text(SERVE)
    log = tmp_path / "serve.log"
    env = {**os.environ, "TIDEFLOW_API_URL": server.api_url, "TIDEFLOW_HOME": str(tmp_path / "c")}
    figures: list[str] = []
    started = time.monotonic()
    with log.open("wb") as out:
        serving = subprocess.Popen([sys.executable, str(script)], stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=tmp_path)  # fmt: skip
    try:
        with SyncClient(server.api_url) as client:
            up = _wait("the upstream deployment", lambda: _ready(client, UP), 60)
            down = _wait("the downstream deployment", lambda: _ready(client, DOWN), 60)
            for i in range(CHAINS):  # idempotent: a retried create cannot make a second run
                client.create_flow_run_from_deployment(
                    up.id, DeploymentFlowRunCreate(idempotency_key=f"chain-{i}")
                )
        kills = list(KILL_AT)
        while kills:
            done = _wait("downstream progress", lambda: _states(server.api_url, down.id), 300)
            if done["COMPLETED"] + done["CRASHED"] >= kills[0] * CHAINS:
                kills.pop(0)
                server.kill()
                down_at = time.monotonic()
                server.start()
                figures.append(f"kill at {done['COMPLETED']} downstream Completed, "
                               f"back in {time.monotonic() - down_at:.1f} s")  # fmt: skip
            else:
                time.sleep(0.2)

        last: list[Any] = []

        def finished() -> tuple[Counter[str], Counter[str]] | None:
            ups, downs = _states(server.api_url, up.id), _states(server.api_url, down.id)
            last[:] = [ups, downs]
            terminal = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
            if (
                sum(ups[s] for s in terminal) < CHAINS
                or sum(downs[s] for s in terminal) < ups["COMPLETED"]
            ):
                return None
            return ups, downs

        try:
            ups_states, downs_states = _wait("every chain to finish", finished, 240)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {figures}; up/down states {last}; serve() log: "
                                 f"{log.read_text(errors='replace')[-3000:]}") from None  # fmt: skip
        took = time.monotonic() - started
        time.sleep(3)  # anything still firing late would show as a doubled run below
        assert serving.poll() is None, log.read_text()[-3000:]
    finally:
        if serving.poll() is None:
            serving.send_signal(signal.SIGTERM)
            try:
                serving.wait(30)
            except subprocess.TimeoutExpired:
                serving.kill()
                serving.wait()
        server.stop()

    ups, downs, completed = asyncio.run(_rows(database_url, up.id, down.id))
    triggers = Counter(r.triggering_event_id for r in downs)
    completed_ids = {r.id for r in completed}
    print(
        f"\n[{database_kind}] {CHAINS} chains, 3 server SIGKILLs in {took:.0f} s: "
        + "; ".join(figures)
        + f"; upstream {dict(ups_states)}, downstream {dict(downs_states)}, "
        f"{len(completed_ids)} upstream Completed events, {len(downs)} downstream runs, "
        f"{sum(n - 1 for n in triggers.values() if n > 1)} doubled, "
        f"{len(completed_ids - set(triggers))} missing, "
        f"{sum(r.state_type == 'CRASHED' for r in [*ups, *downs])} runs Crashed as lost"
    )
    assert len(ups) == CHAINS
    assert len(completed) == len(completed_ids)  # one Completed event per completed upstream run
    assert len(completed_ids) == sum(r.state_type == "COMPLETED" for r in ups)
    assert all(n == 1 for n in triggers.values()), triggers.most_common(3)  # none doubled
    assert set(triggers) == completed_ids  # none missing, none from elsewhere
    for run in [*ups, *downs]:  # every run finished; the lost ones say why
        if run.state_type != "COMPLETED":
            assert run.state_type == "CRASHED", run
            assert LOST in run.state["message"], run.state["message"]


LOST = "its process ended while the server could not be reached, so its last state never arrived"


def _ready(client: SyncClient, name: str) -> Any:
    from tideflow.exceptions import ObjectNotFound
    from tideflow.schemas.deployments import DeploymentStatus

    try:
        found = client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None
    return found if found.status == DeploymentStatus.READY else None
