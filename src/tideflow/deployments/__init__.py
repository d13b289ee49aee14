"""Deployments from the SDK side: ``Flow.to_deployment`` builds a ``RunnerDeployment``; ``serve()``
registers deployments and runs their flow runs, each in its own process. ``Flow.from_source`` and
``Flow.deploy`` put a deployment in a work pool (its runs go to ``tideflow worker start`` processes);
``run_deployment`` / ``arun_deployment`` start a run of any deployment and wait for it.

Nothing here loads at import: ``serve`` imports the runner, the launchers and the HTTP client when it
is called, and the other names load on first access, so ``from tideflow import serve`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tideflow._lazy import lazy_exports

if TYPE_CHECKING:
    from tideflow.deployments._deployment import RunnerDeployment as RunnerDeployment
    from tideflow.deployments._deployment import build_deployment as build_deployment
    from tideflow.deployments._run import arun_deployment as arun_deployment
    from tideflow.deployments._run import run_deployment as run_deployment
    from tideflow.deployments._source import GitRepository as GitRepository
    from tideflow.settings import Settings

__all__ = [
    "ConcurrencyLimitConfig",
    "GitRepository",
    "RunnerDeployment",
    "arun_deployment",
    "build_deployment",
    "run_deployment",
    "serve",
]

_LAZY = {
    "ConcurrencyLimitConfig": "tideflow.schemas.deployments",
    "GitRepository": "tideflow.deployments._source",
    "RunnerDeployment": "tideflow.deployments._deployment",
    "arun_deployment": "tideflow.deployments._run",
    "build_deployment": "tideflow.deployments._deployment",
    "run_deployment": "tideflow.deployments._run",
}


def serve(
    *deployments: RunnerDeployment,
    limit: int | None = None,
    settings: Settings | None = None,
    pause_on_shutdown: bool = True,
) -> None:
    """Serve ``deployments``: run their flow runs (on demand, scheduled, triggered) until stopped.

    ``limit`` caps how many runs execute at once; the rest wait in Scheduled until a slot frees.
    Each run executes in its own process. Stop with Ctrl-C or SIGTERM (running runs get
    ``runner_cancel_grace`` seconds to finish; the rest are Cancelled). Raises TideflowError when
    serving had to stop on its own (the run-starting process died). ``pause_on_shutdown`` (default
    True, as Prefect's): stopping pauses the deployments' active schedules; serving them again
    re-registers them as declared.
    """
    impl = importlib.import_module("tideflow.deployments._serve").serve
    impl(*deployments, limit=limit, settings=settings, pause_on_shutdown=pause_on_shutdown)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
