"""Flows: create-or-get by name, read by id and name, filter."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas import FlowFilter

pytestmark = pytest.mark.anyio


async def test_create_is_201_then_200_with_the_same_flow(http: httpx.AsyncClient) -> None:
    first = await http.post("/flows/", json={"name": "etl", "tags": ["a"]})
    assert first.status_code == 201
    again = await http.post("/flows/", json={"name": "etl", "tags": ["other"]})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["tags"] == ["a"]
    assert first.json()["created"].endswith("Z")


async def test_read_by_id_and_name(client: AsyncClient) -> None:
    flow = await client.create_flow("my-flow", tags=["x"])
    assert await client.read_flow(flow.id) == flow
    assert await client.read_flow_by_name("my-flow") == flow
    assert flow.created.tzinfo is not None


async def test_names_with_slashes_and_spaces_are_readable(client: AsyncClient) -> None:
    flow = await client.create_flow("team a/etl job")
    assert (await client.read_flow_by_name("team a/etl job")).id == flow.id


async def test_missing_flow_is_404_naming_it(client: AsyncClient, http: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    with pytest.raises(ObjectNotFound, match=f"flow {missing} not found"):
        await client.read_flow(missing)
    response = await http.get("/flows/name/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "flow 'nope' not found"}


async def test_bad_bodies_are_422_with_detail(http: httpx.AsyncClient) -> None:
    response = await http.post("/flows/", json={"name": ""})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "body.name: String should have at least 1 character"
    )
    response = await http.post("/flows/", json={"name": "x", "colour": "red"})
    assert response.status_code == 422
    assert response.json()["detail"] == "body.colour: Extra inputs are not permitted"
    response = await http.post(
        "/flows/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]
    response = await http.get("/flows/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("path.flow_id: Input should be a valid UUID")


async def test_filter_by_names_substring_and_pagination(client: AsyncClient) -> None:
    for name in ("alpha", "beta", "gamma", "Alphabet", "50%_off"):
        await client.create_flow(name)
    names = [f.name for f in await client.read_flows()]
    assert names == sorted(names) and len(names) == 5
    assert [
        f.name for f in await client.read_flows(FlowFilter(name=["beta", "gamma", "zeta"]))
    ] == [
        "beta",
        "gamma",
    ]
    assert sorted(f.name for f in await client.read_flows(FlowFilter(name_like="ALPHA"))) == [
        "Alphabet",
        "alpha",
    ]
    # LIKE wildcards in the substring are literal characters.
    assert [f.name for f in await client.read_flows(FlowFilter(name_like="%_"))] == ["50%_off"]
    page = await client.read_flows(FlowFilter(limit=2, offset=1))
    assert [f.name for f in page] == names[1:3]
