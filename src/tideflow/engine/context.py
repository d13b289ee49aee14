"""The current run's context: which flow run (and task run) this code executes in, in contextvars.

The engine sets them around a run (and copies them into worker threads: timed-out-able sync flows,
task runners); ``get_run_logger``, ``log_prints`` and ``tideflow.runtime`` read them.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tideflow.schemas import FlowRun
from tideflow.settings import Settings

__all__ = [
    "FlowRunContext",
    "TaskRunContext",
    "current_run",
    "current_task_run",
    "run_context_var",
    "task_run_context_var",
]


@dataclass
class FlowRunContext:
    """One flow run in progress: the flow object, the server's run, and how to reach the API."""

    flow: Any
    flow_run: FlowRun
    api_url: str
    settings: Settings
    log_prints: bool = False
    client: Any = None  # SyncClient for sync runs, AsyncClient for async runs
    client_loop: Any = None  # the event loop an AsyncClient is bound to
    parameters: dict[str, Any] = field(default_factory=dict)
    api_logs: int = (
        0  # records this run queued for the API; a non-zero count means flush at the end
    )
    task_runner: Any = None  # the flow's task runner for this call, started on the first submit
    task_counters: dict[str, Any] = field(default_factory=dict)  # task name -> count of its runs
    assets: Any = None  # what this run materialized so far (tideflow.assets), to infer lineage
    deployment: Any = None  # the run's Deployment, read once when tideflow.runtime asks for it
    pause_count: int = 0  # pauses so far: names them pause-N / suspend-N, the same on a re-run

    def close_task_runner(self, wait: bool = True) -> None:
        """Shut the call's task runner down; with ``wait``, once its task runs are all final."""
        runner, self.task_runner = self.task_runner, None
        if runner is not None:
            runner.shutdown(wait=wait)


@dataclass
class TaskRunContext:
    """One task run in progress: the Task object and its TaskRun record."""

    task: Any
    task_run: Any


run_context_var: ContextVar[FlowRunContext | None] = ContextVar("tideflow_flow_run", default=None)
task_run_context_var: ContextVar[TaskRunContext | None] = ContextVar(
    "tideflow_task_run", default=None
)


def current_run() -> FlowRunContext | None:
    """The flow run this code runs in, or None outside a run."""
    return run_context_var.get()


def current_task_run() -> TaskRunContext | None:
    """The task run this code runs in, or None outside a task run."""
    return task_run_context_var.get()
