"""PATCH /flow_runs/{id}: rename a run (the engine applies flow_run_name to deployment runs)."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_rename_and_refusals(http: httpx.AsyncClient) -> None:
    run = (await http.post("/flow_runs/", json={"flow_name": "renamed"})).json()
    answer = await http.patch(f"/flow_runs/{run['id']}", json={"name": "etl-2025-01-01"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "etl-2025-01-01"
    assert (await http.get(f"/flow_runs/{run['id']}")).json()["name"] == "etl-2025-01-01"
    for body, named in (({"name": ""}, "name"), ({"name": "x" * 201}, "name"),
                        ({"name": "a\x00b"}, "NUL"), ({"nam": "x"}, "nam")):  # fmt: skip
        refused = await http.patch(f"/flow_runs/{run['id']}", json=body)
        assert refused.status_code == 422 and named in str(refused.json()["detail"]), refused.text
    missing = await http.patch(f"/flow_runs/{uuid.uuid4()}", json={"name": "x"})
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
