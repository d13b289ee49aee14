"""Tag-based concurrency limits (SQLite and PostgreSQL): limits by tag, slots taken all or none,
idempotent for a holder, freed on release, reset or lease expiry; clear 404/422 answers."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tideflow.client import AsyncClient

pytestmark = pytest.mark.anyio


async def test_limits_are_created_changed_listed_and_deleted(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    made = await http.post("/concurrency_limits/", json={"tag": "db", "concurrency_limit": 2})
    assert made.status_code == 201 and made.json()["concurrency_limit"] == 2
    changed = await http.post("/concurrency_limits/", json={"tag": "db", "concurrency_limit": 5})
    assert changed.status_code == 200 and changed.json()["id"] == made.json()["id"]
    await client.upsert_concurrency_limit("api", 1)
    assert [(lim.tag, lim.concurrency_limit) for lim in await client.read_concurrency_limits()] == [
        ("api", 1),
        ("db", 5),
    ]
    assert (await http.delete("/concurrency_limits/tag/db")).status_code == 204
    missing = await http.get("/concurrency_limits/tag/db")
    assert (
        missing.status_code == 404
        and missing.json()["detail"] == "no concurrency limit for tag 'db'"
    )
    bad = await http.post("/concurrency_limits/", json={"tag": "two words", "concurrency_limit": 1})
    assert bad.status_code == 422 and "tag" in bad.json()["detail"]
    negative = await http.post("/concurrency_limits/", json={"tag": "x", "concurrency_limit": -1})
    assert negative.status_code == 422 and "concurrency_limit" in negative.json()["detail"]


async def test_slots_are_taken_all_or_none_and_released(client: AsyncClient) -> None:
    await client.upsert_concurrency_limit("db", 1)
    await client.upsert_concurrency_limit("api", 2)
    first, second = uuid.uuid4(), uuid.uuid4()
    assert (await client.acquire_concurrency_slots(["db", "api", "free"], first)).acquired
    refused = await client.acquire_concurrency_slots(["api", "db"], second)
    assert (refused.acquired, refused.full_tag) == (False, "db") and refused.retry_after > 0
    # all or none: the refused holder took no slot of "api"
    api = await client.read_concurrency_limit("api")
    assert api.active_slots == [first]
    # asking again as the same holder keeps its slots (idempotent)
    assert (await client.acquire_concurrency_slots(["db"], first)).acquired
    assert (await client.read_concurrency_limit("db")).active_slots == [first]
    # tags without a limit are free
    assert (await client.acquire_concurrency_slots(["nothing"], second)).acquired
    await client.release_concurrency_slots(first)
    assert (await client.acquire_concurrency_slots(["db", "api"], second)).acquired
    reset = await client.reset_concurrency_limit("db")
    assert reset.active_slots == []


async def test_an_expired_lease_frees_its_slot(client: AsyncClient) -> None:
    await client.upsert_concurrency_limit("db", 1)
    dead, alive = uuid.uuid4(), uuid.uuid4()
    assert (await client.acquire_concurrency_slots(["db"], dead, lease_seconds=0.3)).acquired
    assert not (await client.acquire_concurrency_slots(["db"], alive)).acquired
    await asyncio.sleep(0.5)  # the holder never renewed: its lease ran out
    assert (await client.acquire_concurrency_slots(["db"], alive)).acquired
    assert (await client.read_concurrency_limit("db")).active_slots == [alive]


async def test_a_zero_limit_holds_every_run(client: AsyncClient) -> None:
    await client.upsert_concurrency_limit("frozen", 0)
    answer = await client.acquire_concurrency_slots(["frozen"], uuid.uuid4())
    assert (answer.acquired, answer.full_tag) == (False, "frozen")
