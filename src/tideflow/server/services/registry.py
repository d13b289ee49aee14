"""The background services one server runs: ``build_services(context)`` lists them, one line each;
the app's lifespan (or ``tideflow server services start``) runs each as an asyncio task and stops
them at shutdown.

Singletons (``SINGLETONS``) must run once per database: on PostgreSQL each is wrapped in a
``LeasedService`` holding an advisory-lock lease, so with several replicas one runs it and the others
stand by (ADR 0014). The per-replica monitors watch this process's own connections and always run
where the API runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tideflow.server.context import ServerContext
from tideflow.server.replicas.lease import LeasedService, asyncpg_dsn
from tideflow.server.services.base import Service
from tideflow.server.services.event_retention import EventRetentionService
from tideflow.server.services.late_runs import LateRunsService
from tideflow.server.services.metric_triggers import MetricTriggerService
from tideflow.server.services.runner_monitor import RunnerMonitorService
from tideflow.server.services.scheduler import SchedulerService
from tideflow.server.services.task_workers import TaskWorkerMonitor
from tideflow.server.triggers.engine import TriggerEngine

__all__ = ["SINGLETONS", "Runnable", "build_services"]

Runnable = Service | LeasedService


def _engine(context: ServerContext) -> Service:
    return TriggerEngine(
        context.database,
        context.broker,
        crash_at=context.settings.test_crash_at,
        max_causal_depth=context.settings.automations_max_causal_depth,
        max_firings_per_minute=context.settings.automations_max_firings_per_minute,
        webhooks_allowed_networks=context.settings.webhooks_allowed_networks,
    )


# name -> factory; the names are what `tideflow server services start --only` takes.
SINGLETONS: dict[str, Callable[[ServerContext], Service]] = {
    "scheduler": lambda c: SchedulerService(c.database, c.settings, broker=c.broker),
    "triggers": _engine,
    "late-runs": lambda c: LateRunsService(c.database, c.settings),
    "event-retention": lambda c: EventRetentionService(c.database, c.settings),
    "metric-triggers": lambda c: MetricTriggerService(
        c.database, interval=c.settings.metric_triggers_interval
    ),
}


def build_services(
    context: ServerContext,
    *,
    singletons: Iterable[str] | None = None,
    per_replica: bool = True,
) -> list[Runnable]:
    """Fresh service objects for one server (no shared state between apps).

    ``singletons``: which of ``SINGLETONS`` to run (default all; empty for an API-only replica);
    ``per_replica``: the monitors of this process's runner and task-worker connections.
    """
    names = list(SINGLETONS) if singletons is None else list(singletons)
    out: list[Runnable] = []
    for name in names:
        factory = SINGLETONS[name]
        if context.database.is_sqlite:
            out.append(factory(context))
        else:
            dsn = asyncpg_dsn(context.database.url)
            out.append(LeasedService(name, _bound(factory, context), dsn))
    if per_replica:
        out.append(
            RunnerMonitorService(
                context.database, context.settings, disconnects=context.runner_disconnects
            )
        )
        out.append(TaskWorkerMonitor(context.task_workers, context.settings))
    return out


def _bound(
    factory: Callable[[ServerContext], Service], context: ServerContext
) -> Callable[[], Service]:
    return lambda: factory(context)
