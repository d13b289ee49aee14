"""The current run's context: which flow run this code executes in, held in a contextvar.

The engine sets it around a run (and copies it into the worker thread of a timed-out-able sync flow);
``get_run_logger``, ``log_prints`` and ``tideflow.runtime`` read it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tideflow.schemas import FlowRun
from tideflow.settings import Settings

__all__ = ["FlowRunContext", "current_run", "run_context_var"]


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


run_context_var: ContextVar[FlowRunContext | None] = ContextVar("tideflow_flow_run", default=None)


def current_run() -> FlowRunContext | None:
    """The flow run this code runs in, or None outside a run."""
    return run_context_var.get()
