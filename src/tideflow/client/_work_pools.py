"""The work-pool API calls, described as data like ``_calls`` (``client.send(call)`` runs one with
either client): pools, their queues and their workers, addressed by name."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tideflow.client._calls import Call, _json, _model, _none
from tideflow.schemas.work_pools import (
    Worker,
    WorkPool,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
)

__all__ = [
    "create_work_pool",
    "create_work_queue",
    "default_base_job_template",
    "delete_work_pool",
    "delete_work_queue",
    "read_work_pool",
    "read_work_pools",
    "read_work_queue",
    "read_work_queues",
    "read_workers",
    "update_work_pool",
    "update_work_queue",
]


def _pool(name: str) -> str:
    return f"/work_pools/{quote(name, safe='')}"


def _queue(pool: str, name: str) -> str:
    return f"{_pool(pool)}/queues/{quote(name, safe='')}"


def create_work_pool(body: WorkPoolCreate) -> Call[WorkPool]:
    data = body.model_dump(mode="json", exclude_none=True)
    return Call("POST", "/work_pools/", _model(WorkPool), data)


def read_work_pools(limit: int = 200, offset: int = 0) -> Call[list[WorkPool]]:
    return Call(
        "POST", "/work_pools/filter", _model(list[WorkPool]), {"limit": limit, "offset": offset}
    )


def read_work_pool(name: str) -> Call[WorkPool]:
    return Call("GET", _pool(name), _model(WorkPool))


def update_work_pool(name: str, body: WorkPoolUpdate) -> Call[WorkPool]:
    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", _pool(name), _model(WorkPool), data)


def delete_work_pool(name: str) -> Call[None]:
    return Call("DELETE", _pool(name), _none)


def read_workers(pool: str) -> Call[list[Worker]]:
    return Call("GET", f"{_pool(pool)}/workers", _model(list[Worker]))


def default_base_job_template(pool_type: str) -> Call[Any]:
    return Call("GET", f"/work_pools/default_base_job_template/{quote(pool_type)}", _json)


def create_work_queue(pool: str, body: WorkQueueCreate) -> Call[WorkQueue]:
    data = body.model_dump(mode="json", exclude_none=True)
    return Call("POST", f"{_pool(pool)}/queues/", _model(WorkQueue), data)


def read_work_queues(pool: str) -> Call[list[WorkQueue]]:
    return Call("GET", f"{_pool(pool)}/queues/", _model(list[WorkQueue]))


def read_work_queue(pool: str, name: str) -> Call[WorkQueue]:
    return Call("GET", _queue(pool, name), _model(WorkQueue))


def update_work_queue(pool: str, name: str, body: WorkQueueUpdate) -> Call[WorkQueue]:
    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", _queue(pool, name), _model(WorkQueue), data)


def delete_work_queue(pool: str, name: str) -> Call[None]:
    return Call("DELETE", _queue(pool, name), _none)
