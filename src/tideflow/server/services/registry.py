"""The background services one server runs: ``build_services(context)`` lists them, one line each;
the app's lifespan runs each as an asyncio task and stops them at shutdown."""

from __future__ import annotations

from tideflow.server.context import ServerContext
from tideflow.server.services.base import Service
from tideflow.server.services.event_retention import EventRetentionService
from tideflow.server.services.late_runs import LateRunsService
from tideflow.server.services.metric_triggers import MetricTriggerService
from tideflow.server.services.runner_monitor import RunnerMonitorService
from tideflow.server.services.scheduler import SchedulerService
from tideflow.server.services.task_workers import TaskWorkerMonitor
from tideflow.server.triggers.engine import TriggerEngine

__all__ = ["build_services"]


def build_services(context: ServerContext) -> list[Service]:
    """Fresh service objects for one server (no shared state between apps)."""
    return [
        SchedulerService(context.database, context.settings, broker=context.broker),
        LateRunsService(context.database, context.settings),
        EventRetentionService(context.database, context.settings),
        RunnerMonitorService(
            context.database, context.settings, disconnects=context.runner_disconnects
        ),
        TaskWorkerMonitor(context.task_workers, context.settings),
        MetricTriggerService(context.database, interval=context.settings.metric_triggers_interval),
        TriggerEngine(
            context.database,
            context.broker,
            crash_at=context.settings.test_crash_at,
            max_causal_depth=context.settings.automations_max_causal_depth,
            max_firings_per_minute=context.settings.automations_max_firings_per_minute,
            webhooks_allowed_networks=context.settings.webhooks_allowed_networks,
        ),
    ]
