"""ServerContext: what one running server holds (settings, database), kept on ``app.state.context``.

Later services (event pipeline, scheduler, trigger engine) hang off this object, never off module
globals, so tests can build as many independent servers as they like.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tideflow.server.events.broker import Broker
from tideflow.server.events.webhooks import WebhookLimiter
from tideflow.server.replicas.fanout import PgFanout
from tideflow.server.services.dispatcher import Dispatcher
from tideflow.server.services.runner_monitor import RunnerDisconnects
from tideflow.server.services.task_workers import TaskWorkerHub
from tideflow.server.storage import Database
from tideflow.settings import Settings

__all__ = ["ServerContext"]


@dataclass
class ServerContext:
    """The per-app state built by ``create_app``'s lifespan."""

    settings: Settings
    database: Database
    broker: Broker = field(default_factory=Broker)
    dispatcher: Dispatcher = field(init=False)
    # Pushes background task runs to task workers (ADR 0005).
    task_workers: TaskWorkerHub = field(init=False)
    # Runner websockets closed without a goodbye, for the runner monitor (crashes their runs soon).
    runner_disconnects: RunnerDisconnects = field(default_factory=RunnerDisconnects)
    # Inbound webhooks' rate limits and failure-event budgets (api.hooks).
    webhook_limiter: WebhookLimiter = field(default_factory=WebhookLimiter)
    # On PostgreSQL: the fan-out between replicas (server.replicas, ADR 0014), set by the lifespan.
    fanout: PgFanout | None = None

    def __post_init__(self) -> None:
        # Committed writes publish through the broker (see storage.outbox).
        self.database.on_commit = self._publish
        # Pushes due runs to connected runners; started and stopped by the lifespan.
        self.dispatcher = Dispatcher(self.database, self.broker)
        self.task_workers = TaskWorkerHub(self.database, self.settings)

    def _publish(self, items: list[tuple[str, object]]) -> None:
        for topic, item in items:
            self.broker.publish(topic, (item,))
