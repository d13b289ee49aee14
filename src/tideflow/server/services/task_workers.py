"""Background task runs and the task workers serving them (ADR 0005).

``TaskWorkerHub`` keeps the connected task workers by task name and offers them Scheduled background
runs: a run as it is created or handed back, and a worker's backlog when it connects. Offers are
hints (a worker's compare-and-set claim decides who runs what), so they may repeat.
``TaskWorkerMonitor`` is the fallback for a worker that vanished without its websocket closing: runs
whose worker has not heartbeated for ``task_workers_heartbeat_timeout`` are handed back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from uuid import UUID

from tideflow.schemas.task_runs import TaskRun
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage import task_workers as storage
from tideflow.settings import Settings

__all__ = [
    "TaskWorkerConnection",
    "TaskWorkerHub",
    "TaskWorkerMonitor",
    "cancel_message",
    "task_run_message",
]


def task_run_message(run: TaskRun) -> str:
    return '{"type":"task_run","task_run":' + run.model_dump_json() + "}"


def cancel_message(run_id: UUID) -> str:
    return '{"type":"cancel","task_run_id":"' + str(run_id) + '"}'


class TaskWorkerConnection:
    """One connected task worker: the task names it serves and its outgoing message queue."""

    def __init__(self, worker_id: UUID, name: str, task_names: Iterable[str]) -> None:
        self.worker_id = worker_id
        self.name = name
        self.task_names = frozenset(task_names)
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(self, text: str) -> None:
        self.outbox.put_nowait(text)


class TaskWorkerHub:
    """Per-app push of background task runs to task workers."""

    def __init__(self, database: Database, settings: Settings, *, clock: Clock = utc_clock) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self._workers: dict[str, set[TaskWorkerConnection]] = defaultdict(set)
        self.offers = 0

    async def connect(self, conn: TaskWorkerConnection) -> None:
        """Register a worker, then offer it the waiting runs of its tasks."""
        for name in conn.task_names:
            self._workers[name].add(conn)
        # registered first: a run created meanwhile is pushed and may also be read here (a repeat)
        async with self.database.read() as session:
            backlog = await storage.read_offerable_task_runs(session, sorted(conn.task_names))
        for run in backlog:
            conn.send(task_run_message(run))
            self.offers += 1

    def disconnect(self, conn: TaskWorkerConnection) -> None:
        for name in conn.task_names:
            conns = self._workers.get(name)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._workers[name]

    def cancel(self, worker_id: UUID, run_id: UUID) -> bool:
        """Tell the worker holding ``run_id`` to stop it; False when that worker is not connected
        here (its next heartbeat, or its release, settles the run)."""
        sent = False
        for conns in self._workers.values():
            for conn in conns:
                if conn.worker_id == worker_id and not sent:
                    conn.send(cancel_message(run_id))
                    sent = True
        return sent

    def connected(self, task_name: str) -> int:
        return len(self._workers.get(task_name, ()))

    def offer(self, run: TaskRun) -> None:
        """Offer ``run`` to every worker serving its task (none connected: it waits as backlog)."""
        conns = self._workers.get(run.task_name)
        if not conns:
            return
        text = task_run_message(run)
        for conn in conns:
            conn.send(text)
        self.offers += 1

    async def release(
        self, *, worker_id: UUID | None = None, silent_since: dt.datetime | None = None
    ) -> list[TaskRun]:
        """Hand back a dead worker's unfinished runs (see ``storage.release_task_runs``) and offer
        the ones made Scheduled again."""
        async with self.database.write() as session:
            again = await storage.release_task_runs(
                session,
                max_redeliveries=self.settings.task_workers_max_redeliveries,
                now=self.clock(),
                worker_id=worker_id,
                silent_since=silent_since,
            )
        for run in again:
            self.offer(run)
        return again


class TaskWorkerMonitor(Service):
    """Hands back the runs of task workers silent for ``task_workers_heartbeat_timeout``."""

    name = "task-worker-monitor"

    def __init__(self, hub: TaskWorkerHub, settings: Settings, *, clock: Clock = utc_clock) -> None:
        super().__init__(
            clock=clock, interval=max(1.0, settings.task_workers_heartbeat_timeout / 4)
        )
        self.hub = hub
        self.timeout = dt.timedelta(seconds=settings.task_workers_heartbeat_timeout)

    async def run_once(self) -> None:
        again = await self.hub.release(silent_since=self.clock() - self.timeout)
        if again:
            self.log.warning("handed back %d task run(s) of silent task workers", len(again))
