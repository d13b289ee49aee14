"""The pieces under the replicas, on the real PostgreSQL: an advisory-lock lease is held by one
holder at a time and freed when its connection dies; a LeasedService runs its service only while
it leads and hands over at once; fan-out payloads stay under PostgreSQL's limit and round-trip."""

from __future__ import annotations

import asyncio
import uuid

from tideflow.schemas.events import Event
from tideflow.server.replicas.fanout import MAX_PAYLOAD, decode, encode
from tideflow.server.replicas.lease import Lease, LeasedService, asyncpg_dsn
from tideflow.server.services.base import Service
from tideflow.server.storage.events import EVENTS_TOPIC


def test_notice_payloads_are_chunked_under_the_limit_and_decode_back() -> None:
    ids = [uuid.uuid4() for _ in range(1000)]
    items = [(EVENTS_TOPIC, Event(id=i, event="x", resource={"tideflow.resource.id": "r"}))
             for i in ids]  # fmt: skip
    payloads = encode("replica1", [*items, ("deployment-schedules", ids[0]), ("other", 1)])
    assert len(payloads) > 1 and all(len(p.encode()) < MAX_PAYLOAD for p in payloads)
    decoded = [decode(p) for p in payloads]
    assert {r for r, _ in decoded} == {"replica1"}
    entries = [e for _, es in decoded for e in es]
    assert [UUID_(f[0]) for k, f in entries if k == "e"] == ids
    assert [("s", (str(ids[0]),))] == [e for e in entries if e[0] == "s"]
    assert decode("r|x;;e") == ("r", [])  # malformed entries are skipped


def UUID_(text: str) -> uuid.UUID:
    return uuid.UUID(text)


class _Counter(Service):
    name = "counter"
    interval = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    async def run_once(self) -> None:
        self.steps += 1


def test_lease_is_exclusive_and_dies_with_its_connection(postgres_url: str) -> None:
    dsn = asyncpg_dsn(postgres_url)
    name = f"test-{uuid.uuid4().hex}"

    async def scenario() -> None:
        first, second = Lease(dsn, name), Lease(dsn, name)
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await first.check()
        first._conn.terminate()  # as a SIGKILLed process's socket closes
        assert not await first.check()
        for _ in range(50):
            if await second.try_acquire():
                break
            await asyncio.sleep(0.05)
        assert second.held
        await second.release()

    asyncio.run(scenario())


def test_leased_service_runs_only_on_the_leader_and_hands_over(postgres_url: str) -> None:
    dsn = asyncpg_dsn(postgres_url)
    name = f"test-{uuid.uuid4().hex}"

    async def scenario() -> None:
        built: list[_Counter] = []

        def factory() -> Service:
            built.append(_Counter())
            return built[-1]

        a = LeasedService(name, factory, dsn, retry=0.05, check=0.1)
        b = LeasedService(name, factory, dsn, retry=0.05, check=0.1)
        task_a = asyncio.create_task(a.run())
        for _ in range(100):
            if a.leading:
                break
            await asyncio.sleep(0.02)
        task_b = asyncio.create_task(b.run())
        await asyncio.sleep(0.5)
        assert a.leading and not b.leading and len(built) == 1 and built[0].steps > 0
        a.lease._conn.terminate()  # A's lock connection dies: A stops, B takes over
        for _ in range(100):
            if b.leading:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert b.leading and not a.leading and len(built) == 2
        assert built[0].stopping  # the old leader's service was stopped
        for leased in (a, b):
            leased.stop()
        await asyncio.wait_for(asyncio.gather(task_a, task_b), 10)

    asyncio.run(scenario())
