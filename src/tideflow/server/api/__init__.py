"""The HTTP API under ``/api``: one thin router per resource, the JSON error answers and their
documentation in the OpenAPI document."""

from fastapi import APIRouter

from tideflow.server.api import (
    admin,
    api_keys,
    artifacts,
    assets,
    automations,
    concurrency_limits,
    deployments,
    events,
    flow_run_inputs,
    flow_runs,
    flows,
    global_concurrency,
    hooks,
    logs,
    notifications,
    runners,
    secrets,
    task_runs,
    task_workers,
    users,
    variables,
    webhooks,
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
        flow_run_inputs,
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
        assets,
        global_concurrency,
        webhooks,
        hooks,
        notifications,
    )
)
