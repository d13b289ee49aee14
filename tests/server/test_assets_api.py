"""The asset catalogue over the API (SQLite and PostgreSQL): kept from materialization events as
they are ingested (duplicates once, late events never replace a newer latest, keys that are not
URIs not catalogued), filters, lineage around a key, delete, clear 4xx answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas.assets import AssetFilter
from tideflow.schemas.events import Event
from tideflow.server.storage import Database
from tideflow.server.storage import assets as asset_storage
from tideflow.server.storage import events as event_storage
from tideflow.server.storage.migrate import upgrade_engine

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _materialized(
    key: str, *, at: int = 0, upstream: tuple[str, ...] = (), status: str = "succeeded",
    run: uuid.UUID | None = None, **payload: Any,
) -> dict[str, Any]:  # fmt: skip
    related = [{"tideflow.resource.id": u, "tideflow.resource.role": "asset"} for u in upstream]
    if run is not None:
        related.append({"tideflow.resource.id": f"tideflow.flow-run.{run}",
                        "tideflow.resource.role": "flow-run"})  # fmt: skip
    return {
        "id": str(uuid.uuid4()),
        "occurred": (T0 + dt.timedelta(minutes=at)).isoformat(),
        "event": f"tideflow.asset.materialization.{status}",
        "resource": {"tideflow.resource.id": key},
        "related": related,
        "payload": payload,
    }


async def _send(http: httpx.AsyncClient, *events: dict[str, Any]) -> None:
    answer = await http.post("/events", json=list(events))
    assert answer.status_code == 200 and not answer.json()["refused"], answer.text


async def test_catalogue_follows_the_events(client: AsyncClient, http: httpx.AsyncClient) -> None:
    run = uuid.uuid4()
    raw, prices, report = "s3://b/raw.csv", "s3://b/prices.csv", "postgres://db/report"
    first = _materialized(raw, at=1, run=run, metadata={"rows": 10},
                          properties={"name": "Raw", "owners": ["ana"]})  # fmt: skip
    await _send(http, first, first)  # the same event twice counts once
    await _send(http, _materialized(prices, at=2, status="failed", error="no disk"))
    await _send(http, _materialized(report, at=3, upstream=(raw, prices), metadata={"v": 2}))
    late = _materialized(raw, at=0, metadata={"rows": 1})  # older than the latest: counted only
    await _send(http, late)
    await _send(http, _materialized("not a uri", at=4))  # stored as an event, not catalogued

    got = await client.read_asset(raw)
    assert got.materializations == 2
    assert (got.last_metadata, got.last_flow_run_id, got.last_status) == (
        {"rows": 10},
        run,
        "succeeded",
    )
    assert got.properties.name == "Raw" and got.properties.owners == ["ana"]
    assert got.downstream == [report]
    failed = await client.read_asset(prices)
    assert (failed.last_status, failed.last_error) == ("failed", "no disk")
    rep = await client.read_asset(report)
    assert sorted(rep.upstream) == [prices, raw] and rep.last_metadata == {"v": 2}

    everything = await client.read_assets()
    assert [a.key for a in everything] == [report, prices, raw]
    assert [a.key for a in await client.read_assets(AssetFilter(status="failed"))] == [prices]
    by_prefix = await client.read_assets(AssetFilter(key_prefix="s3://b/p"))
    assert [a.key for a in by_prefix] == [prices]
    assert [a.key for a in await client.read_assets(AssetFilter(flow_run_id=run))] == [raw]

    history = await client.read_asset_materializations(raw)
    assert [e.id for e in history] == [uuid.UUID(first["id"]), uuid.UUID(late["id"])]


async def test_lineage_depth_and_delete(client: AsyncClient, http: httpx.AsyncClient) -> None:
    a, b, c, d = (f"file:///data/{n}" for n in "abcd")
    await _send(
        http,
        _materialized(a, at=1),
        _materialized(b, at=2, upstream=(a,)),
        _materialized(c, at=3, upstream=(b,)),
        _materialized(d, at=4, upstream=(c,)),
    )
    near = await client.read_asset_lineage(b, depth=1)
    assert sorted(n.key for n in near.nodes) == [a, b, c]
    assert {(e.upstream, e.downstream) for e in near.edges} == {(a, b), (b, c)}
    far = await client.read_asset_lineage(b, depth=5)
    assert sorted(n.key for n in far.nodes) == [a, b, c, d]
    whole = await client.read_asset_lineage()
    assert len(whole.edges) == 3 and whole.root is None

    assert (await http.delete("/assets/key", params={"key": c})).status_code == 204
    assert (await client.read_asset(b)).downstream == []
    assert (await client.read_asset(d)).upstream == []
    gone = await http.get("/assets/key", params={"key": c})
    assert gone.status_code == 404 and gone.json()["detail"] == f"no asset with key {c!r}"
    assert (await http.delete("/assets/key", params={"key": c})).status_code == 404


async def test_bad_input_is_a_clear_4xx(http: httpx.AsyncClient) -> None:
    bad = await http.get("/assets/key", params={"key": "raw.csv"})
    assert bad.status_code == 422 and "not a URI" in str(bad.json()["detail"])
    long = await http.get("/assets/key", params={"key": "s3://" + "x" * 600})
    assert long.status_code == 422
    deep = await http.get("/assets/lineage", params={"depth": 99})
    assert deep.status_code == 422
    unknown = await http.post("/assets/filter", json={"nope": 1})
    assert unknown.status_code == 422
    missing = await http.get("/assets/lineage", params={"key": "s3://b/none"})
    assert missing.status_code == 404


async def test_concurrent_batches_writing_the_same_assets_in_any_order(database_url: str) -> None:
    """Two writers whose batches name the same keys in opposite orders both commit (the keys are
    locked in one order on PostgreSQL, so neither waits for the other forever) and every
    materialization is counted."""
    keys = [f"s3://race/{i}.csv" for i in range(20)]
    db = Database(database_url)
    await upgrade_engine(db.engine)
    try:

        async def write(order: list[str]) -> None:
            for _ in range(3):
                batch = [
                    Event.model_validate(_materialized(k, upstream=(order[0],))) for k in order
                ]
                async with db.write() as session:
                    await event_storage.insert_events(session, batch)

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, keys)
            tg.start_soon(write, keys[::-1])
        async with db.read() as session:
            found = await asset_storage.read_assets(session, AssetFilter(keys=keys))
        assert sorted(a.materializations for a in found) == [6] * 20
    finally:
        await db.dispose()
