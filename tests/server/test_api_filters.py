"""FlowRunFilter: every field, sorting, pagination, and count."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from tideflow.client import AsyncClient
from tideflow.schemas import FlowRun, FlowRunCreate, FlowRunFilter, FlowRunSort, StateType
from tideflow.schemas.states import Completed, Failed, Late, Running, Scheduled

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2031, 5, 1, 12, 0, tzinfo=dt.UTC)


async def _ids(client: AsyncClient, **kwargs: object) -> set[uuid.UUID]:
    flt = FlowRunFilter(**kwargs)  # type: ignore[arg-type]
    runs = await client.read_flow_runs(flt)
    assert await client.count_flow_runs(flt) == len(runs)
    return {r.id for r in runs}


async def _make(client: AsyncClient, **kwargs: object) -> FlowRun:
    return await client.create_flow_run(FlowRunCreate(**kwargs))  # type: ignore[arg-type]


@pytest.fixture
async def runs(client: AsyncClient) -> dict[str, FlowRun]:
    """A small fixed population of runs across two flows, states, tags, times and a parent."""
    out: dict[str, FlowRun] = {}
    out["a1"] = await _make(client, flow_name="alpha", name="a1", tags=["x", "y"],
                            state=Scheduled(scheduled_time=T0))  # fmt: skip
    out["a2"] = await _make(client, flow_name="alpha", name="a2", tags=["x"],
                            state=Late(scheduled_time=T0 + dt.timedelta(hours=1)))  # fmt: skip
    out["b1"] = await _make(client, flow_name="beta", name="b1", tags=["y", "z"])
    await client.set_flow_run_state(out["b1"].id, Running())
    await asyncio.sleep(0.01)
    await client.set_flow_run_state(out["b1"].id, Completed())
    out["b2"] = await _make(client, flow_name="beta", name="b2", parent_flow_run_id=out["b1"].id)
    await client.set_flow_run_state(out["b2"].id, Running())
    await client.set_flow_run_state(out["b2"].id, Failed())
    return {k: await client.read_flow_run(v.id) for k, v in out.items()}


async def _no_filter_returns_all_newest_first(
    client: AsyncClient, runs: dict[str, FlowRun]
) -> None:
    listed = await client.read_flow_runs()
    assert [r.name for r in listed] == ["b2", "b1", "a2", "a1"]
    assert all(r.flow_name in ("alpha", "beta") and r.state is not None for r in listed)
    assert await client.count_flow_runs() == 4


async def _by_id_flow_and_flow_name(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    a1, b1 = runs["a1"], runs["b1"]
    assert await _ids(client, id=[a1.id, b1.id, uuid.uuid4()]) == {a1.id, b1.id}
    assert await _ids(client, flow_id=[a1.flow_id]) == {runs["a1"].id, runs["a2"].id}
    assert await _ids(client, flow_name=["beta"]) == {runs["b1"].id, runs["b2"].id}
    assert await _ids(client, flow_name=["nope"]) == set()
    assert await _ids(client, deployment_id=[uuid.uuid4()]) == set()


async def _by_state_type_and_name(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    assert await _ids(client, state_type=[StateType.SCHEDULED]) == {runs["a1"].id, runs["a2"].id}
    assert await _ids(client, state_type=[StateType.COMPLETED, StateType.FAILED]) == {
        runs["b1"].id,
        runs["b2"].id,
    }
    assert await _ids(client, state_name=["Late"]) == {runs["a2"].id}
    assert await _ids(client, state_type=[StateType.SCHEDULED], state_name=["Scheduled"]) == {
        runs["a1"].id
    }


async def _tags_all(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    assert await _ids(client, tags_all=["x"]) == {runs["a1"].id, runs["a2"].id}
    assert await _ids(client, tags_all=["x", "y"]) == {runs["a1"].id}
    assert await _ids(client, tags_all=["y"]) == {runs["a1"].id, runs["b1"].id}
    assert await _ids(client, tags_all=["x", "z"]) == set()
    assert await _ids(client, tags_all=[]) == {r.id for r in runs.values()}


async def _parent(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    assert await _ids(client, parent_flow_run_id=runs["b1"].id) == {runs["b2"].id}


async def _time_ranges(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    b1, b2 = runs["b1"], runs["b2"]
    assert b1.start_time is not None and b2.start_time is not None
    assert await _ids(client, start_time_after=b1.start_time) == {b1.id, b2.id}
    assert await _ids(client, start_time_before=b1.start_time) == {b1.id}
    assert await _ids(client, start_time_after=b2.start_time, start_time_before=b2.start_time) == {
        b2.id
    }
    assert await _ids(client, expected_start_time_after=T0 + dt.timedelta(minutes=30),
                      expected_start_time_before=T0 + dt.timedelta(hours=2)) == {runs["a2"].id}  # fmt: skip
    assert await _ids(client, expected_start_time_before=T0) == {runs["a1"].id, b1.id, b2.id}
    assert await _ids(client, created_after=runs["a2"].created) == {runs["a2"].id, b1.id, b2.id}
    assert await _ids(client, created_before=runs["a2"].created) == {runs["a1"].id, runs["a2"].id}


async def _time_filters_honour_offsets(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    same_instant = (T0 + dt.timedelta(hours=1)).astimezone(plus2)  # a2's expected start, at +02:00
    assert await _ids(client, expected_start_time_after=same_instant) == {runs["a2"].id}


SORTS: list[tuple[FlowRunSort, list[str]]] = [
    (FlowRunSort.CREATED_DESC, ["b2", "b1", "a2", "a1"]),
    (FlowRunSort.CREATED_ASC, ["a1", "a2", "b1", "b2"]),
    (FlowRunSort.NAME_ASC, ["a1", "a2", "b1", "b2"]),
    (FlowRunSort.START_TIME_DESC, ["b2", "b1"]),  # never-started runs sort last
    (FlowRunSort.START_TIME_ASC, ["b1", "b2"]),
    (FlowRunSort.EXPECTED_START_TIME_ASC, ["b1", "b2", "a1", "a2"]),
    (FlowRunSort.EXPECTED_START_TIME_DESC, ["a2", "a1", "b2", "b1"]),
]


async def _sorts(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    for sort, expected in SORTS:
        names = [r.name for r in await client.read_flow_runs(FlowRunFilter(sort=sort))]
        assert names[: len(expected)] == expected, sort
        assert sorted(names) == ["a1", "a2", "b1", "b2"]


async def _pagination(client: AsyncClient, runs: dict[str, FlowRun]) -> None:
    flt = FlowRunFilter(sort=FlowRunSort.NAME_ASC, limit=2)
    assert [r.name for r in await client.read_flow_runs(flt)] == ["a1", "a2"]
    flt = FlowRunFilter(sort=FlowRunSort.NAME_ASC, limit=2, offset=2)
    assert [r.name for r in await client.read_flow_runs(flt)] == ["b1", "b2"]
    flt = FlowRunFilter(sort=FlowRunSort.NAME_ASC, limit=2, offset=4)
    assert await client.read_flow_runs(flt) == []
    assert await client.count_flow_runs(FlowRunFilter(limit=1)) == 4


async def test_every_filter_field_sort_and_page(
    client: AsyncClient, runs: dict[str, FlowRun]
) -> None:
    """One population, every check (each backend builds it once: a PostgreSQL database is slow to make)."""
    for check in (_no_filter_returns_all_newest_first, _by_id_flow_and_flow_name, _by_state_type_and_name,
                  _tags_all, _parent, _time_ranges, _time_filters_honour_offsets, _sorts, _pagination):  # fmt: skip
        await check(client, runs)


async def test_bad_filter_is_422(client: AsyncClient) -> None:
    response = await client._http.post("/flow_runs/filter", json={"limit": 0, "state_type": ["X"]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "body.limit:" in detail and "body.state_type.0:" in detail
