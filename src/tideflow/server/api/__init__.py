"""The HTTP API under ``/api``: one thin router per resource, and the JSON error answers."""

from fastapi import APIRouter

from tideflow.server.api import (
    admin,
    automations,
    deployments,
    events,
    flow_runs,
    flows,
    logs,
    runners,
)
from tideflow.server.api.errors import install_error_handlers

__all__ = ["api_router", "install_error_handlers"]

api_router = APIRouter(prefix="/api")
for _module in (admin, flows, flow_runs, logs, deployments, runners, automations, events):
    api_router.include_router(_module.router)
