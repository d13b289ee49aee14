"""Errors a flow call raises about the run itself (as opposed to the flow function's own errors).

They derive from ``tideflow.exceptions`` so ``except TideflowError`` catches them.
"""

from __future__ import annotations

from tideflow.exceptions import TideflowError, TransitionRefused

__all__ = [
    "FlowPauseTimeout",
    "FlowRunCancelled",
    "FlowRunSuspended",
    "FlowRunTimeout",
    "MissingRunContext",
    "TaskRunCancelled",
    "TaskRunTimeout",
    "UpstreamTaskError",
]


class FlowRunTimeout(TideflowError, TimeoutError):
    """The flow ran longer than its ``timeout_seconds``; the run ended TimedOut."""


class FlowRunCancelled(TransitionRefused):
    """The run was cancelled while it ran: the server refused the engine's next state."""


class FlowPauseTimeout(TideflowError, TimeoutError):
    """A paused run was not resumed before its pause's timeout; the run ends Failed."""


class FlowRunSuspended(BaseException):
    """Raised by ``suspend_flow_run`` to end the run's process; the run stays Suspended until a resume
    starts it again. A BaseException, so the flow's own ``except Exception`` does not swallow it."""


class MissingRunContext(TideflowError, RuntimeError):
    """A run-only helper (``get_run_logger``) was called outside a flow run."""


class TaskRunTimeout(TideflowError, TimeoutError):
    """The task ran longer than its ``timeout_seconds``; the task run ended TimedOut."""


class UpstreamTaskError(TideflowError):
    """A task run did not start because a task run it depends on did not complete."""


class TaskRunCancelled(BaseException):
    """Raised inside a background task run's thread when it is cancelled; the run ends Cancelled.

    A BaseException, as KeyboardInterrupt is: the task's own ``except Exception`` must not swallow it.
    """
