"""Artifacts over the API (SQLite and PostgreSQL): the four types and their data rules, keyed
versions with one latest (also after deleting it), filters, progress updates, clear 4xx answers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas.artifacts import (
    MAX_ARTIFACT_DATA_BYTES,
    ArtifactCreate,
    ArtifactFilter,
    ArtifactUpdate,
    table_rows,
)

pytestmark = pytest.mark.anyio


async def test_keyed_versions_latest_filters_and_delete(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run = uuid.uuid4()
    first = await client.create_artifact(
        ArtifactCreate(key="report", type="markdown", data="# v1", flow_run_id=run)
    )
    second = await client.create_artifact(
        ArtifactCreate(key="report", type="markdown", data="# v2", flow_run_id=run)
    )
    loose = await client.create_artifact(ArtifactCreate(type="progress", data=10))
    table = await client.create_artifact(
        ArtifactCreate(key="rows", type="table", data=[{"a": 1}], description="the rows")
    )
    assert (await client.read_latest_artifact("report")).id == second.id
    assert not (await client.read_artifact(first.id)).is_latest

    everything = await client.read_artifacts()
    assert [a.id for a in everything] == [table.id, loose.id, second.id, first.id]
    latest = await client.read_artifacts(ArtifactFilter(latest_only=True))
    assert [a.id for a in latest] == [table.id, loose.id, second.id]
    of_run = await client.read_artifacts(ArtifactFilter(flow_run_id=[run]))
    assert [a.id for a in of_run] == [second.id, first.id]
    of_key = await client.read_artifacts(ArtifactFilter(key=["report"], limit=1))
    assert [a.id for a in of_key] == [second.id]
    tables = await client.read_artifacts(ArtifactFilter(type=["table"]))
    assert [a.description for a in tables] == ["the rows"]

    # deleting the latest makes the previous version latest again
    assert (await http.delete(f"/artifacts/{second.id}")).status_code == 204
    assert (await client.read_latest_artifact("report")).id == first.id
    gone = await http.get(f"/artifacts/{second.id}")
    assert gone.status_code == 404 and gone.json()["detail"] == f"no artifact with id {second.id}"
    assert (await http.delete("/artifacts/key/report")).json() == {"deleted": 1}
    missing = await http.get("/artifacts/key/report")
    assert (
        missing.status_code == 404 and missing.json()["detail"] == "no artifact with key 'report'"
    )
    assert (await http.delete("/artifacts/key/report")).status_code == 404


async def test_progress_is_updated_with_data_of_its_type(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    made = await client.create_artifact(ArtifactCreate(type="progress", data=0, key="load"))
    moved = await client.update_artifact(made.id, ArtifactUpdate(data=42.5))
    assert moved.data == 42.5 and moved.updated > made.updated
    assert (await client.read_artifact(made.id)).data == 42.5
    described = await client.update_artifact(made.id, ArtifactUpdate(description="loading"))
    assert (described.data, described.description) == (42.5, "loading")
    bad = await http.patch(f"/artifacts/{made.id}", json={"data": 101})
    assert bad.status_code == 422
    assert "a progress artifact's data is a number from 0 to 100" in bad.json()["detail"]
    nowhere = await http.patch(f"/artifacts/{uuid.uuid4()}", json={"data": 1})
    assert nowhere.status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"type": "markdown", "data": 3}, "markdown artifact's data is its text"),
        ({"type": "table", "data": "x"}, "a table is a list of rows or an object of columns"),
        ({"type": "table", "data": [{"a": 1}, [1]]}, "all objects or all lists"),
        ({"type": "table", "data": {"a": 1}}, "maps each column name to a list"),
        ({"type": "link", "data": {"link": "javascript:alert(1)"}},
         "http, https or mailto URL (got 'javascript' scheme)"),
        ({"type": "link", "data": "https://x"}, '{"link": "https://...'),
        ({"type": "progress", "data": -1}, "from 0 to 100"),
        ({"type": "progress", "data": True}, "from 0 to 100"),
        ({"type": "chart", "data": 1}, "type"),
        ({"type": "markdown", "data": "x", "key": "Has Caps"},
         "lowercase letters, digits and '-'"),
        ({"type": "markdown", "data": "x" * MAX_ARTIFACT_DATA_BYTES},
         f"above the limit of {MAX_ARTIFACT_DATA_BYTES} bytes for an artifact"),
        ({"type": "markdown", "data": "nul\u0000"}, "NUL characters"),
    ],
)  # fmt: skip
async def test_bad_artifacts_are_refused_naming_the_problem(
    http: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    answer = await http.post("/artifacts/", json=body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["detail"]


def test_table_shapes_read_as_columns_and_rows() -> None:
    assert table_rows([{"a": 1, "b": 2}, {"b": 3, "c": 4}]) == (
        ["a", "b", "c"],
        [[1, 2, None], [None, 3, 4]],
    )
    assert table_rows({"a": [1, 2], "b": [3]}) == (["a", "b"], [[1, 3], [2, None]])
    assert table_rows([[1, 2], [3]]) == (["0", "1"], [[1, 2], [3, None]])
    assert table_rows([]) == ([], [])
