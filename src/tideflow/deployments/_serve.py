"""``serve(*deployments, limit=None)``: register deployments and run their flow runs until stopped.

Each run starts as a fork of this warm process (``_launchers.ForkLauncher``); where ``os.fork`` does
not exist, as a fresh interpreter (``SpawnLauncher``). SIGINT/SIGTERM stop the runner gracefully
(running runs get ``runner_cancel_grace`` seconds to finish, the rest are Cancelled); a second signal
cancels them at once. serve() then returns normally.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from typing import Any

from tideflow.client import resolve_api_url
from tideflow.deployments._deployment import RunnerDeployment
from tideflow.deployments._launchers import ForkLauncher, InlineExecutor, SpawnLauncher
from tideflow.deployments._runner import Runner
from tideflow.exceptions import TideflowError
from tideflow.settings import Settings, get_settings

__all__ = ["check_serve_arguments", "serve"]


def check_serve_arguments(deployments: Sequence[Any], limit: Any) -> None:
    """ValueError/TypeError naming the first bad argument of ``serve()``."""
    if not deployments:
        raise ValueError("serve() needs at least one deployment (flow.to_deployment(name=...))")
    seen: set[str] = set()
    for item in deployments:
        if not isinstance(item, RunnerDeployment):
            raise TypeError(
                f"serve() takes deployments made by flow.to_deployment(...), got {item!r}"
            )
        if item.create.job_variables:
            raise ValueError(
                f"deployment {item.full_name!r}: job_variables need a work pool: serve() runs "
                "flow runs in its own environment. Use flow.deploy(..., work_pool_name=...) and "
                "tideflow worker start, or set the environment of the serve() process"
            )
        if item.full_name in seen:
            raise ValueError(f"deployment {item.full_name!r} is given twice")
        seen.add(item.full_name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a whole number ≥ 1 or None, got {limit!r}")


async def _serve(runner: Runner) -> None:
    loop = asyncio.get_running_loop()
    if isinstance(runner.launcher, ForkLauncher):  # no thread may exist when a run is forked
        loop.set_default_executor(InlineExecutor())
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.stop)
    try:
        await runner.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def serve(
    *deployments: RunnerDeployment,
    limit: int | None = None,
    settings: Settings | None = None,
    pause_on_shutdown: bool = True,
) -> None:
    """Serve ``deployments``: run their flow runs (on demand, scheduled, triggered) until stopped.

    ``limit`` caps how many runs execute at once; the rest wait in Scheduled until a slot frees.
    ``pause_on_shutdown`` (default True, as Prefect's): when serving stops, the deployments'
    active schedules are paused, so no scheduled runs pile up while nothing serves them; serving
    again re-registers them as declared. Pass False for processes that are restarted.
    Each run executes in its own process. Stop with Ctrl-C or SIGTERM (running runs get
    ``runner_cancel_grace`` seconds to finish; the rest are Cancelled). Raises TideflowError when
    serving had to stop on its own (the run-starting process died).
    """
    check_serve_arguments(deployments, limit)
    settings = settings or get_settings()
    # Resolve (or start) the API once, so the runner and every run process use the same one.
    settings = settings.model_copy(update={"api_url": resolve_api_url(settings)})
    launcher: ForkLauncher | SpawnLauncher
    if hasattr(os, "fork"):
        launcher = ForkLauncher([d.flow for d in deployments], settings)
    else:
        launcher = SpawnLauncher([d.create.entrypoint for d in deployments], settings)
    runner = Runner(
        deployments, launcher, settings=settings, limit=limit, pause_on_shutdown=pause_on_shutdown
    )
    try:
        asyncio.run(_serve(runner))
    except BaseException:
        launcher.close_sync()
        raise
    if runner.error is not None:
        raise TideflowError(f"serve() stopped: {runner.error}")
