"""Input the database could not store is a 422 naming the field, on every backend alike."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

UNSTORABLE: list[tuple[dict[str, object], str]] = [
    ({"flow_name": "f\x00"}, "body.flow_name: NUL characters (\\u0000) are not allowed"),
    ({"flow_name": "f", "name": "x" * 201}, "body.name: String should have at most 200 characters"),
    ({"flow_name": "f", "parameters": {"a": ["ok", "b\x00"]}},
     "body.parameters.a.1: NUL characters (\\u0000) are not allowed"),
    ({"flow_name": "f", "tags": ["t\x00"]}, "body.tags.0: NUL characters (\\u0000) are not allowed"),
    ({"flow_name": "f", "state": {"type": "PENDING", "name": "n" * 101}},
     "body.state.name: String should have at most 100 characters"),
    ({"flow_name": "f", "state": {"type": "PENDING", "message": "m\x00"}},
     "body.state.message: NUL characters (\\u0000) are not allowed"),
    ({"flow_name": "f", "state": {"type": "PENDING", "data": {"k": "\x00"}}},
     "body.state.data.k: NUL characters (\\u0000) are not allowed"),
]  # fmt: skip


async def test_unstorable_run_bodies_are_422(http: httpx.AsyncClient) -> None:
    for body, detail in UNSTORABLE:
        response = await http.post("/flow_runs/", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == detail
        assert response.json()["errors"][0]["loc"][0] == "body"
    assert (await http.post("/flow_runs/count", json={})).json() == 0


async def test_non_finite_numbers_are_422(http: httpx.AsyncClient) -> None:
    raw = b'{"flow_name": "f", "parameters": {"a": NaN, "b": Infinity}}'
    response = await http.post(
        "/flow_runs/", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "body.parameters.a: nan is not a valid JSON number; body.parameters.b: inf is not a valid JSON number"
    )


async def test_unstorable_proposals_and_flows_are_422(http: httpx.AsyncClient) -> None:
    run = (await http.post("/flow_runs/", json={"flow_name": "f"})).json()
    response = await http.post(
        f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING", "message": "\x00"}}
    )
    assert response.status_code == 422
    assert (
        response.json()["detail"] == "body.state.message: NUL characters (\\u0000) are not allowed"
    )
    assert len((await http.get(f"/flow_runs/{run['id']}/states")).json()) == 1
    response = await http.post("/flows/", json={"name": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["detail"] == "body.name: NUL characters (\\u0000) are not allowed"


async def test_log_text_with_nul_is_kept_with_a_replacement(http: httpx.AsyncClient) -> None:
    run = (await http.post("/flow_runs/", json={"flow_name": "f"})).json()
    record = {"flow_run_id": run["id"], "name": "n\x00", "level": 20, "message": "a\x00b",
              "timestamp": "2030-01-01T00:00:00Z"}  # fmt: skip
    response = await http.post("/logs/", json=[record])
    assert response.json() == {"accepted": 1, "dropped": 0}
    [log] = (await http.post("/logs/filter", json={})).json()
    assert (log["name"], log["message"]) == ("n\ufffd", "a\ufffdb")


async def test_filter_values_the_database_refuses_are_not_500(
    http: httpx.AsyncClient, database_kind: str
) -> None:
    response = await http.post("/flow_runs/filter", json={"flow_name": ["a\x00"]})
    if database_kind == "sqlite":
        assert (response.status_code, response.json()) == (200, [])
    else:
        assert response.status_code == 422
        assert response.json()["detail"].startswith("the database refused a value:")
