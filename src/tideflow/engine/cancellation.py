"""``on_cancellation`` hooks of a served run whose process the runner stops.

Cancelling a served run (``tideflow flow-run cancel``, the UI) moves it to Cancelling; the runner
then sends its process SIGTERM (and SIGKILL after ``runner_cancel_grace`` seconds). The flow's code
never sees a refused state proposal, so the engine's own cancellation path does not run. Instead the
run's process answers SIGTERM here: when the server says the run is Cancelling or Cancelled, it calls
the flow's ``on_cancellation`` hooks with that state, then ends by SIGTERM as before. A SIGTERM for
any other reason (the runner went away) calls no hook. A second SIGTERM ends the process at once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import threading
from typing import Any
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.schemas import State, StateType
from tideflow.settings import Settings

__all__ = ["install_cancellation_hooks", "run_cancellation_hooks"]

logger = logging.getLogger("tideflow.flow_runs")


def _await_in_thread(awaitable: Any) -> None:
    # The signal may arrive while an event loop runs in this thread: a new loop in another thread.
    async def wait() -> None:
        await awaitable

    thread = threading.Thread(target=asyncio.run, args=(wait(),), daemon=True)
    thread.start()
    thread.join()


def run_cancellation_hooks(flow: Any, run_id: UUID, settings: Settings) -> State | None:
    """Call ``flow``'s on_cancellation hooks when run ``run_id`` is Cancelling or Cancelled; the
    state they got (None when the run is not being cancelled or could not be read)."""
    try:
        with SyncClient(settings=settings) as client:
            run = client.read_flow_run(run_id)
    except Exception as exc:  # the server is gone: nothing says the run was cancelled
        logger.warning(
            "Could not read flow run %s to run its on_cancellation hooks: %s", run_id, exc
        )
        return None
    state = run.state
    if state is None or state.type not in (StateType.CANCELLING, StateType.CANCELLED):
        return None
    for hook in flow.on_cancellation:
        try:
            result = hook(flow, run, state)
            if inspect.isawaitable(result):
                _await_in_thread(result)
        except Exception:
            logger.exception(
                "Hook %r (on_cancellation) raised an exception", getattr(hook, "__name__", hook)
            )
    return state


def install_cancellation_hooks(flow: Any, run_id: UUID, settings: Settings) -> None:
    """In a served run's process: answer SIGTERM with the on_cancellation hooks (when it has any),
    then end by SIGTERM; otherwise leave SIGTERM's default."""
    if not getattr(flow, "on_cancellation", None):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return

    def on_term(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            run_cancellation_hooks(flow, run_id, settings)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
