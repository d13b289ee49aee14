"""Exactly once with three replicas on one PostgreSQL (ADR 0014), real processes throughout.

- 50 chains (an upstream run Completed -> the downstream deployment's automation -> a downstream
  run), upstream runs created round-robin through all three replicas, served on a replica that does
  not hold the engine lease: exactly 50 downstream runs, each from its own upstream Completed event.
- An interval schedule (1 s) with three replicas: one run per scheduled time, never two.
- SIGKILL of the replica holding the engine (and scheduler) lease during a 50-chain load: the lease
  moves (the time is printed), no firing is lost or doubled, the schedule has no duplicate.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from conftest import lease_holder, serve_script, served, start_replicas, stop_all, wait_for
from tideflow.client import SyncClient
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.server.storage import Database
from tideflow.server.storage.tables import events, flow_runs
from tideflow.testing import ServerProcess

pytestmark = pytest.mark.timeout(400)

CHAINS = 50
UP, DOWN = "so-up/up", "so-down/down"
SERVE = textwrap.dedent(
    """
    from tideflow import flow, serve
    from tideflow.events import DeploymentEventTrigger

    @flow
    def so_up():
        return 1

    @flow
    def so_down():
        return 2

    if __name__ == "__main__":
        down = so_down.to_deployment(
            name="down",
            triggers=[DeploymentEventTrigger(
                expect={"tideflow.flow-run.Completed"},
                match_related={"tideflow.resource.name": "up"},
            )],
        )
        serve(so_up.to_deployment(name="up"), down, limit=10)
    """
)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[str, list[ServerProcess]]]:
    url: str = request.getfixturevalue("pg_module_db")
    home = tmp_path_factory.mktemp("replicas")
    servers: list[ServerProcess] = []
    errors: list[BaseException] = []

    def start(i: int) -> None:
        try:
            servers.extend(start_replicas(url, home / str(i), 1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    try:
        assert not errors and len(servers) == 3, errors
        yield url, servers
    finally:
        stop_all(*servers)


def _by_pid(servers: list[ServerProcess], pid: int | None) -> ServerProcess:
    return next(s for s in servers if s.proc is not None and s.proc.pid == pid)


async def _chain_rows(url: str, up: UUID, down: UUID) -> tuple[list[Any], list[Any], list[Any]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            ups = (await conn.execute(sa.select(flow_runs.c.id, flow_runs.c.state_type)
                                      .where(flow_runs.c.deployment_id == up))).all()  # fmt: skip
            downs = (await conn.execute(
                sa.select(flow_runs.c.id, flow_runs.c.state_type, flow_runs.c.triggering_event_id)
                .where(flow_runs.c.deployment_id == down))).all()  # fmt: skip
            completed = (await conn.execute(
                sa.select(events.c.id).where(events.c.event == "tideflow.flow-run.Completed")
                .where(events.c.resource_id.in_([f"tideflow.flow-run.{r.id}" for r in ups])))).all()  # fmt: skip
        return list(ups), list(downs), list(completed)
    finally:
        await db.dispose()


def _check_chains(url: str, up: UUID, down: UUID, expected: int) -> str:
    ups, downs, completed = asyncio.run(_chain_rows(url, up, down))
    triggers = Counter(r.triggering_event_id for r in downs)
    completed_ids = {r.id for r in completed}
    doubled = sum(n - 1 for n in triggers.values() if n > 1)
    missing = completed_ids - set(triggers)
    summary = (f"{len(ups)} upstream runs, {len(completed_ids)} Completed events, "
               f"{len(downs)} downstream runs, {doubled} doubled, {len(missing)} missing")  # fmt: skip
    assert len(ups) == expected, summary
    assert len(completed_ids) == expected, summary
    assert doubled == 0 and not missing and set(triggers) == completed_ids, summary
    return summary


def _run_chains(servers: list[ServerProcess], up: UUID, prefix: str, count: int) -> None:
    clients = [SyncClient(s.api_url) for s in servers]
    try:
        for i in range(count):
            clients[i % len(clients)].create_flow_run_from_deployment(
                up, DeploymentFlowRunCreate(idempotency_key=f"{prefix}-{i}")
            )
    finally:
        for client in clients:
            client.close()


def _finished(api_url: str, deployment: UUID, count: int) -> bool:
    with SyncClient(api_url) as client:
        runs = client.read_flow_runs(_flt(deployment))
    return (
        sum(r.state_type is not None and r.state_type.value == "COMPLETED" for r in runs) >= count
    )


def _flt(deployment: UUID) -> Any:
    from tideflow.schemas import FlowRunFilter

    return FlowRunFilter(deployment_id=[deployment], limit=1000)


def test_chains_through_three_replicas_fire_exactly_once(
    cluster: tuple[str, list[ServerProcess]], tmp_path: Path
) -> None:
    url, servers = cluster
    leader = _by_pid(servers, wait_for("an engine leader", lambda: lease_holder(url, "triggers")))
    other = next(s for s in servers if s is not leader)
    runner = serve_script(tmp_path / "serve.py", SERVE, other.api_url, tmp_path / "client")
    try:
        up, down = served(other.api_url, UP, DOWN)
        started = time.monotonic()
        _run_chains(servers, up.id, "chain", CHAINS)
        wait_for("every downstream run", lambda: _finished(leader.api_url, down.id, CHAINS), 180)
        took = time.monotonic() - started
        time.sleep(2)  # a late doubled firing would show below
        summary = _check_chains(url, up.id, down.id, CHAINS)
        print(f"\n{CHAINS} chains through 3 replicas (served on a standby, engine on another) "
              f"in {took:.1f} s: {summary}")  # fmt: skip
    finally:
        stop_all(runner)


def test_interval_schedule_with_three_replicas_has_no_duplicates(
    cluster: tuple[str, list[ServerProcess]],
) -> None:
    url, servers = cluster
    body = {"flow_name": "so-ticker", "name": "every-second",
            "schedules": [{"schedule": {"type": "interval", "interval": 1}}]}  # fmt: skip
    made = httpx.post(f"{servers[1].api_url}/deployments/", json=body, timeout=10)
    assert made.status_code in (200, 201), made.text
    deployment = UUID(made.json()["id"])
    holders = {lease_holder(url, "scheduler") for _ in range(3)}
    assert len(holders) == 1 and None not in holders  # one scheduler, the others standing by
    runs = wait_for("scheduled runs", lambda: _scheduled(servers[2].api_url, deployment, 3), 30)
    times = Counter(r.expected_start_time for r in runs)
    assert all(n == 1 for n in times.values()), times.most_common(3)


def _scheduled(api_url: str, deployment: UUID, at_least: int) -> list[Any] | None:
    with SyncClient(api_url) as client:
        runs = client.read_flow_runs(_flt(deployment))
    return runs if len(runs) >= at_least else None


def test_sigkill_of_the_engine_leader_loses_and_doubles_no_firing(
    cluster: tuple[str, list[ServerProcess]], tmp_path: Path
) -> None:
    url, servers = cluster
    leader_pid = wait_for("an engine leader", lambda: lease_holder(url, "triggers"))
    leader = _by_pid(servers, leader_pid)
    survivors = [s for s in servers if s is not leader]
    runner = serve_script(tmp_path / "serve.py", SERVE, survivors[0].api_url, tmp_path / "client")
    try:
        up, down = served(survivors[0].api_url, UP, DOWN)
        with SyncClient(survivors[0].api_url) as client:
            before = len(client.read_flow_runs(_flt(down.id)))
            ups_before = len(client.read_flow_runs(_flt(up.id)))
        loader = threading.Thread(target=_run_chains, args=(survivors, up.id, "kill", CHAINS))
        loader.start()
        # Kill once about a fifth of the downstream runs exist: firings are in flight.
        wait_for("downstream progress",
                 lambda: len(_runs(survivors[0].api_url, down.id)) >= before + CHAINS // 5, 120)  # fmt: skip
        killed_at = time.monotonic()
        leader.kill()
        new = wait_for("the engine lease to move",
                       lambda: (p := lease_holder(url, "triggers")) not in (None, leader_pid) and p,
                       30)  # fmt: skip
        failover = time.monotonic() - killed_at
        assert new in {s.proc.pid for s in survivors if s.proc is not None}
        loader.join(120)
        total = ups_before + CHAINS
        wait_for("every downstream run",
                 lambda: _finished(survivors[0].api_url, down.id, total), 180)  # fmt: skip
        time.sleep(2)
        summary = _check_chains(url, up.id, down.id, total)
        print(f"\nSIGKILL of the engine leader mid-load: lease moved in {failover:.2f} s; "
              f"{summary}")  # fmt: skip
        assert failover < 5.0
    finally:
        stop_all(runner)
    # The scheduler moved too, and the schedule still has one run per time.
    assert lease_holder(url, "scheduler") not in (None, leader_pid)
    with SyncClient(survivors[1].api_url) as client:
        ticker = client.read_deployment_by_name("so-ticker/every-second")
        times = Counter(r.expected_start_time for r in client.read_flow_runs(_flt(ticker.id)))
    assert times and all(n == 1 for n in times.values()), times.most_common(3)


def _runs(api_url: str, deployment: UUID) -> list[Any]:
    with SyncClient(api_url) as client:
        return client.read_flow_runs(_flt(deployment))
