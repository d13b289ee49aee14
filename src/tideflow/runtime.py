"""Facts about the run this code executes in: ``tideflow.runtime.flow_run`` and ``.task_run``.

``flow_run.id``, ``.name``, ``.parameters``, ``.run_count`` and ``.flow_name`` describe the current
flow run, ``task_run.id``, ``.name``, ``.task_name``, ``.parameters``, ``.run_count`` and ``.tags``
the current task run (read from the run context on each access); outside a run they are None, ``{}``,
``[]`` and 0 — never an error.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tideflow.engine.context import current_run, current_task_run

__all__ = ["flow_run", "task_run"]


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
    def parameters(self) -> dict[str, Any]:
        ctx = current_run()
        return dict(ctx.parameters) if ctx else {}

    @property
    def run_count(self) -> int:
        ctx = current_run()
        return ctx.flow_run.run_count if ctx else 0

    @property
    def parent_flow_run_id(self) -> UUID | None:
        ctx = current_run()
        return ctx.flow_run.parent_flow_run_id if ctx else None

    def __repr__(self) -> str:
        return f"<flow_run id={self.id} name={self.name!r} flow_name={self.flow_name!r}>"


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
task_run = _TaskRunInfo()
