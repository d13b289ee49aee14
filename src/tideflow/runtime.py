"""Facts about the run this code executes in: ``tideflow.runtime.flow_run``, ``.deployment`` and
``.task_run``.

Each attribute is read from the run context on every access, so it can be imported at module level.
Outside a run nothing raises: ids, names, times and versions are None, ``parameters`` is ``{}``,
``tags`` is ``[]`` and ``run_count`` is 0. ``deployment.name``, ``.version`` and ``.parameters`` need
the deployment's record: it is read from the API once per run, on first access.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from uuid import UUID

from tideflow.engine.clients import sync_client
from tideflow.engine.context import FlowRunContext, current_run, current_task_run
from tideflow.exceptions import TideflowError

__all__ = ["deployment", "flow_run", "task_run"]

logger = logging.getLogger("tideflow.runtime")


def _ui_base(api_url: str) -> str:
    """The UI's root for an API base (``http://host:port/api`` -> ``http://host:port``)."""
    base = api_url.rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


class _FlowRunInfo:
    """The current flow run, read live from the run context."""

    @property
    def id(self) -> UUID | None:
        ctx = current_run()
        return ctx.flow_run.id if ctx else None

    @property
    def name(self) -> str | None:
        ctx = current_run()
        return ctx.flow_run.name if ctx else None

    @property
    def flow_name(self) -> str | None:
        ctx = current_run()
        return ctx.flow.name if ctx else None

    @property
    def flow_version(self) -> str | None:
        ctx = current_run()
        return getattr(ctx.flow, "version", None) if ctx else None

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = current_run()
        return dict(ctx.parameters) if ctx else {}

    @property
    def tags(self) -> list[str]:
        ctx = current_run()
        return list(ctx.flow_run.tags) if ctx else []

    @property
    def run_count(self) -> int:
        ctx = current_run()
        return ctx.flow_run.run_count if ctx else 0

    @property
    def scheduled_start_time(self) -> dt.datetime | None:
        """When the run was expected to start (its schedule's time, or when it was created)."""
        ctx = current_run()
        return ctx.flow_run.expected_start_time if ctx else None

    @property
    def deployment_id(self) -> UUID | None:
        ctx = current_run()
        return ctx.flow_run.deployment_id if ctx else None

    @property
    def job_variables(self) -> dict[str, Any] | None:
        ctx = current_run()
        return dict(ctx.flow_run.job_variables) if ctx else None

    @property
    def parent_flow_run_id(self) -> UUID | None:
        ctx = current_run()
        return ctx.flow_run.parent_flow_run_id if ctx else None

    @property
    def api_url(self) -> str | None:
        ctx = current_run()
        return ctx.api_url if ctx else None

    @property
    def ui_url(self) -> str | None:
        """The run's page in the UI."""
        ctx = current_run()
        return f"{_ui_base(ctx.api_url)}/runs/{ctx.flow_run.id}" if ctx else None

    def __repr__(self) -> str:
        return f"<flow_run id={self.id} name={self.name!r} flow_name={self.flow_name!r}>"


def _deployment_of(ctx: FlowRunContext | None) -> Any:
    """The run's Deployment (read once and kept in the run's context); None without one or when
    the API cannot answer (logged: runtime attributes never raise)."""
    if ctx is None or ctx.flow_run.deployment_id is None:
        return None
    if ctx.deployment is None:
        try:
            ctx.deployment = sync_client(ctx.settings).read_deployment(ctx.flow_run.deployment_id)
        except TideflowError as exc:
            logger.warning("Could not read the run's deployment: %s", exc)
            return None
    return ctx.deployment


class _DeploymentInfo:
    """The deployment the current flow run belongs to (None outside a deployment's run)."""

    @property
    def id(self) -> UUID | None:
        ctx = current_run()
        return ctx.flow_run.deployment_id if ctx else None

    @property
    def flow_run_id(self) -> UUID | None:
        """The current run's id when it is a deployment's run."""
        ctx = current_run()
        return ctx.flow_run.id if ctx and ctx.flow_run.deployment_id else None

    @property
    def name(self) -> str | None:
        ctx = current_run()
        if ctx is None or ctx.flow_run.deployment_id is None:
            return None
        if ctx.flow_run.deployment_name:
            return ctx.flow_run.deployment_name
        found = _deployment_of(ctx)
        return found.name if found is not None else None

    @property
    def version(self) -> str | None:
        found = _deployment_of(current_run())
        return found.version if found is not None else None

    @property
    def parameters(self) -> dict[str, Any]:
        """The deployment's default parameters overlaid with this run's."""
        ctx = current_run()
        found = _deployment_of(ctx)
        if ctx is None or found is None:
            return {}
        return {**found.parameters, **ctx.parameters}

    def __repr__(self) -> str:
        return f"<deployment id={self.id} name={self.name!r}>"


class _TaskRunInfo:
    """The current task run, read live from the run context."""

    @property
    def id(self) -> UUID | None:
        ctx = current_task_run()
        return ctx.task_run.id if ctx else None

    @property
    def name(self) -> str | None:
        ctx = current_task_run()
        return ctx.task_run.name if ctx else None

    @property
    def task_name(self) -> str | None:
        ctx = current_task_run()
        return ctx.task.name if ctx else None

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = current_task_run()
        return dict(ctx.task_run.parameters) if ctx else {}

    @property
    def run_count(self) -> int:
        ctx = current_task_run()
        return int(ctx.task_run.run_count) if ctx else 0

    @property
    def tags(self) -> list[str]:
        ctx = current_task_run()
        return list(ctx.task_run.tags) if ctx else []

    def __repr__(self) -> str:
        return f"<task_run id={self.id} name={self.name!r} task_name={self.task_name!r}>"


flow_run = _FlowRunInfo()
deployment = _DeploymentInfo()
task_run = _TaskRunInfo()
