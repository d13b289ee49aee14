"""The HTTP API under ``/api``: one thin router per resource, the JSON error answers and their
documentation in the OpenAPI document."""

from fastapi import APIRouter

from tideflow.server.api import (
    admin,
    api_keys,
    artifacts,
    automations,
    concurrency_limits,
    deployments,
    events,
    flow_runs,
    flows,
    global_concurrency,
    logs,
    notifications,
    runners,
    secrets,
    task_runs,
    task_workers,
    users,
    variables,
    work_pools,
)
from tideflow.server.api.errors import install_error_handlers
from tideflow.server.api.openapi import install_openapi

__all__ = ["API_PREFIX", "api_routers", "install_error_handlers", "install_openapi"]

API_PREFIX = "/api"

# Included one by one under API_PREFIX (see server.app): FastAPI then prepares each router's routes
# on its first request instead of all of them at start (~30 ms of the server's start).
api_routers: tuple[APIRouter, ...] = tuple(
    module.router
    for module in (
        admin,
        flows,
        flow_runs,
        task_runs,
        concurrency_limits,
        logs,
        deployments,
        runners,
        task_workers,
        automations,
        events,
        api_keys,
        users,
        work_pools,
        variables,
        secrets,
        artifacts,
        global_concurrency,
        notifications,
    )
)
