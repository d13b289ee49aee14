"""tideflow: Python workflows that run on schedules, on demand, or when events say so.

The public API loads lazily so that ``import tideflow`` stays cheap and never pulls in the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tideflow._lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it
_LAZY: dict[str, str] = {
    "Flow": "tideflow.flows",
    "flow": "tideflow.flows",
    "get_run_logger": "tideflow.engine.logging",
    "State": "tideflow.schemas.states",
    "StateType": "tideflow.schemas.states",
    "get_client": "tideflow.client",
    "get_async_client": "tideflow.client",
    "serve": "tideflow.deployments",
    "Task": "tideflow.tasks",
    "task": "tideflow.tasks",
    "unmapped": "tideflow.futures",
    "allow_failure": "tideflow.utilities.annotations",
    "pause_flow_run": "tideflow.flow_runs",
    "resume_flow_run": "tideflow.flow_runs",
    "suspend_flow_run": "tideflow.flow_runs",
}

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:  # explicit re-exports, so type checkers see the lazy names
    from tideflow.client import get_async_client as get_async_client
    from tideflow.client import get_client as get_client
    from tideflow.deployments import serve as serve
    from tideflow.engine.logging import get_run_logger as get_run_logger
    from tideflow.flow_runs import pause_flow_run as pause_flow_run
    from tideflow.flow_runs import resume_flow_run as resume_flow_run
    from tideflow.flow_runs import suspend_flow_run as suspend_flow_run
    from tideflow.flows import Flow as Flow
    from tideflow.flows import flow as flow
    from tideflow.futures import unmapped as unmapped
    from tideflow.schemas.states import State as State
    from tideflow.schemas.states import StateType as StateType
    from tideflow.tasks import Task as Task
    from tideflow.tasks import task as task
    from tideflow.utilities.annotations import allow_failure as allow_failure


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
