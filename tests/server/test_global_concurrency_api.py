"""Global concurrency and rate limits over the API (SQLite and PostgreSQL): limits by name, slots
taken all or none as leases, freed on release, reset or lease expiry; rate slots that drain; clear
404/409/422 answers."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas.global_concurrency import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    SlotRequest,
)

pytestmark = pytest.mark.anyio


async def test_limits_are_created_listed_changed_and_deleted(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    made = await http.post("/global_concurrency_limits/", json={"name": "db", "limit": 2})
    assert made.status_code == 201, made.text
    assert (made.json()["limit"], made.json()["active"], made.json()["active_slots"]) == (
        2,
        True,
        0,
    )
    again = await http.post("/global_concurrency_limits/", json={"name": "db", "limit": 3})
    assert again.status_code == 409
    assert again.json()["detail"] == "a global concurrency limit named 'db' exists already"
    await client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(name="api", limit=5, slot_decay_per_second=1.0)
    )
    assert [g.name for g in await client.read_global_concurrency_limits()] == ["api", "db"]
    changed = await client.update_global_concurrency_limit(
        "db", GlobalConcurrencyLimitUpdate(limit=4, active=False)
    )
    assert (changed.limit, changed.active) == (4, False)
    assert (await http.delete("/global_concurrency_limits/name/db")).status_code == 204
    missing = await http.get("/global_concurrency_limits/name/db")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no global concurrency limit named 'db'"
    bad = await http.post("/global_concurrency_limits/", json={"name": "two words", "limit": 1})
    assert bad.status_code == 422 and "name" in bad.json()["detail"]
    negative = await http.post("/global_concurrency_limits/", json={"name": "x", "limit": -1})
    assert negative.status_code == 422 and "limit" in negative.json()["detail"]


async def test_slots_are_leased_all_or_none_and_come_back(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    for name, limit in (("db", 3), ("api", 2)):
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=limit)
        )
    first = await client.acquire_global_slots(SlotRequest(names=["db", "api"], slots=2))
    assert first.acquired and first.lease_id is not None and first.missing == []
    refused = await client.acquire_global_slots(SlotRequest(names=["db", "api"], slots=1))
    assert (refused.acquired, refused.full_name) == (False, "api") and refused.retry_after > 0
    db = await client.read_global_concurrency_limit("db")
    assert (db.active_slots, db.leases) == (2, 1)  # all or none: the refusal took nothing of db
    just_db = await client.acquire_global_slots(SlotRequest(names=["db"], slots=1))
    assert just_db.acquired
    assert (await client.renew_global_lease(first.lease_id, 30)) == {"limits": 2}
    await client.release_global_lease(first.lease_id)
    assert (await client.read_global_concurrency_limit("api")).active_slots == 0
    gone = await http.post(
        "/global_concurrency_limits/renew", json={"lease_id": str(first.lease_id)}
    )
    assert gone.status_code == 404 and "expired or was released" in gone.json()["detail"]

    # a holder that stops renewing (it died) loses its slots when the lease runs out
    dead = await client.acquire_global_slots(SlotRequest(names=["api"], slots=2, lease_seconds=0.3))
    assert dead.acquired
    assert not (await client.acquire_global_slots(SlotRequest(names=["api"]))).acquired
    await asyncio.sleep(0.5)
    assert (await client.acquire_global_slots(SlotRequest(names=["api"]))).acquired

    reset = await client.reset_global_concurrency_limit("db")
    assert reset.active_slots == 0 and reset.leases == 0


async def test_missing_inactive_and_impossible_requests(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    answer = await client.acquire_global_slots(SlotRequest(names=["nothing"]))
    assert (answer.acquired, answer.lease_id, answer.missing) == (True, None, ["nothing"])
    await client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(name="off", limit=0, active=False)
    )
    assert (await client.acquire_global_slots(SlotRequest(names=["off"]))).acquired
    await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="one", limit=1))
    too_many = await http.post(
        "/global_concurrency_limits/acquire", json={"names": ["one"], "slots": 2}
    )
    assert too_many.status_code == 409 and "can never be granted" in too_many.json()["detail"]
    not_rate = await http.post(
        "/global_concurrency_limits/acquire", json={"names": ["one"], "mode": "rate_limit"}
    )
    assert not_rate.status_code == 409 and "not a rate limit" in not_rate.json()["detail"]
    unknown = await http.post(
        "/global_concurrency_limits/release", json={"lease_id": str(uuid.uuid4())}
    )
    assert unknown.json() == {"released": 0}


async def test_rate_slots_drain_at_the_decay_rate(client: AsyncClient) -> None:
    await client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(name="api", limit=2, slot_decay_per_second=5.0)
    )
    rate = SlotRequest(names=["api"], mode="rate_limit")
    assert (await client.acquire_global_slots(rate)).acquired
    assert (await client.acquire_global_slots(rate)).acquired
    full = await client.acquire_global_slots(rate)
    assert not full.acquired and 0 < full.retry_after <= 0.2  # one slot drains in 0.2 s
    await asyncio.sleep(0.25)
    answer = await client.acquire_global_slots(rate)
    assert answer.acquired and answer.lease_id is None  # nothing to release: it drains
