"""The dispatcher: pushes due runs to the runners serving their deployment (ADR 0001).

It keeps the connected runners by deployment id and listens, lossless, to the broker's ``"runs"``
topic. A deployment's run that enters SCHEDULED and is due is offered at once to every runner of the
deployment; one due later waits in a timer heap and is offered when its time comes (after checking
it is still Scheduled); one that enters CANCELLING is sent as a cancel; when a run of a deployment
leaves an active state, the oldest run waiting for a concurrency slot is offered again. A runner that
connects is offered every due run of its deployments. Offers are hints: they may repeat, and a
runner's compare-and-set claim decides who runs what.

Workers (``tideflow worker start``) connect on the same websocket for a work pool instead of a list
of deployments: a run waiting in one of the pool's work queues is offered to every connected worker
of the pool, with its queue's priority, unless the queue or the pool is paused. A worker's claim can
be answered WAIT (queue or pool at its concurrency limit, or paused); such a pool's due runs are
offered again when one of its runs leaves an active state, and when a pool or queue changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Coroutine, Iterable
from typing import Any
from uuid import UUID

from tideflow.schemas import FlowRun
from tideflow.schemas.states import StateType
from tideflow.server.events.broker import Broker, Subscription
from tideflow.server.orchestration import ACTIVE_TYPES
from tideflow.server.services.base import Clock, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage import deployment_runs as runs_storage
from tideflow.server.storage import work_pools as pools_storage
from tideflow.server.storage.flow_runs import read_flow_run
from tideflow.server.storage.run_changes import RUNS_TOPIC, RunStateChanged
from tideflow.server.storage.work_pools import QueueRoute

__all__ = ["Dispatcher", "RunnerConnection", "cancel_message", "run_message"]

logger = logging.getLogger("tideflow.server.dispatcher")

_WAITING_BATCH = 20  # due runs offered again in a pool when one of its runs ends after a WAIT


def run_message(run: FlowRun, priority: int | None = None) -> str:
    if priority is None:
        return '{"type":"run","flow_run":' + run.model_dump_json() + "}"
    return f'{{"type":"run","priority":{priority:d},"flow_run":' + run.model_dump_json() + "}"


def cancel_message(run_id: UUID) -> str:
    return json.dumps({"type": "cancel", "flow_run_id": str(run_id)})


class RunnerConnection:
    """One connected runner: the deployments it serves (or, for a worker, its work pool) and its
    outgoing message queue."""

    def __init__(
        self,
        runner_id: UUID,
        name: str,
        deployment_ids: Iterable[UUID],
        limit: int | None = None,
        *,
        work_pool_id: UUID | None = None,
    ) -> None:
        self.runner_id = runner_id
        self.name = name
        self.limit = limit
        self.deployment_ids = frozenset(deployment_ids)
        self.work_pool_id = work_pool_id
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(self, text: str) -> None:
        self.outbox.put_nowait(text)


class Dispatcher:
    """Per-app push of runs to runners; ``start()`` in the lifespan, ``stop()`` at shutdown."""

    def __init__(self, database: Database, broker: Broker, *, clock: Clock = utc_clock) -> None:
        self.database = database
        self.broker = broker
        self.clock = clock
        self._runners: dict[UUID, set[RunnerConnection]] = defaultdict(set)
        self._workers: dict[UUID, set[RunnerConnection]] = defaultdict(set)  # by work pool id
        self._routes: dict[UUID, QueueRoute] = {}  # by work queue id (forgotten on a change)
        self._pools_waiting: set[UUID] = set()  # pools where a worker's claim got WAIT
        # (due time, tie-break, run id, state id, deployment id); _timed dedupes (run, state)
        self._heap: list[tuple[dt.datetime, int, UUID, UUID, UUID]] = []
        self._timed: set[tuple[UUID, UUID]] = set()
        self._seq = itertools.count()
        self._timer_changed = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.offers = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe to run changes and start the consumer and timer tasks."""
        self._subscription = self.broker.subscribe(RUNS_TOPIC, lossless=True)
        self._spawn(self._consume())
        self._spawn(self._timers())

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("dispatcher task failed", exc_info=task.exception())

    # ------------------------------------------------------------------ runners

    async def connect(self, conn: RunnerConnection) -> None:
        """Register a runner, then offer it every due run of its deployments (or of its pool)."""
        if conn.work_pool_id is not None:
            self._workers[conn.work_pool_id].add(conn)
            await self.offer_pool_runs(conn.work_pool_id, only=conn, timers=True)
            return
        for deployment_id in conn.deployment_ids:
            self._runners[deployment_id].add(conn)
        # registered first: a run committed meanwhile is pushed and may also be read here (a repeat)
        now = self.clock()
        async with self.database.read() as session:
            due = await runs_storage.read_due_runs(session, list(conn.deployment_ids), now)
            upcoming = await runs_storage.read_upcoming_runs(
                session, list(conn.deployment_ids), now
            )
        for run in due:
            conn.send(run_message(run))
            self.offers += 1
        for when, run_id, state_id, deployment_id in upcoming:
            self._add_timer(when, run_id, state_id, deployment_id)

    def disconnect(self, conn: RunnerConnection) -> None:
        if conn.work_pool_id is not None:
            workers = self._workers.get(conn.work_pool_id)
            if workers is not None:
                workers.discard(conn)
                if not workers:
                    del self._workers[conn.work_pool_id]
        for deployment_id in conn.deployment_ids:
            conns = self._runners.get(deployment_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._runners[deployment_id]

    @property
    def serving(self) -> bool:
        """Whether any runner or worker is connected here (run changes are worth reading)."""
        return bool(self._runners or self._workers)

    def connected(self, deployment_id: UUID) -> int:
        """How many runners serving ``deployment_id`` are connected."""
        return len(self._runners.get(deployment_id, ()))

    def workers(self, pool_id: UUID) -> int:
        """How many workers of the pool are connected."""
        return len(self._workers.get(pool_id, ()))

    def _offer(self, run: FlowRun) -> None:
        if run.work_queue_id is not None:
            route = self._routes.get(run.work_queue_id)
            if route is None:
                self._spawn(self._route_and_offer(run))
            elif not route.paused:
                self._offer_to_workers(run, route)
            return
        assert run.deployment_id is not None
        conns = self._runners.get(run.deployment_id)
        if not conns:
            return
        text = run_message(run)
        for conn in conns:
            conn.send(text)
        self.offers += 1

    # ------------------------------------------------------------------ work pools

    async def _route(self, queue_id: UUID) -> QueueRoute | None:
        route = self._routes.get(queue_id)
        if route is None:
            async with self.database.read() as session:
                route = await pools_storage.read_queue_route(session, queue_id)
            if route is not None:
                self._routes[queue_id] = route
        return route

    async def _route_and_offer(self, run: FlowRun) -> None:
        assert run.work_queue_id is not None
        route = await self._route(run.work_queue_id)
        if route is not None and not route.paused:
            self._offer_to_workers(run, route)

    def _offer_to_workers(self, run: FlowRun, route: QueueRoute) -> None:
        conns = self._workers.get(route.pool_id)
        if not conns:
            return
        text = run_message(run, route.priority)
        for conn in conns:
            conn.send(text)
        self.offers += 1

    async def offer_pool_runs(
        self,
        pool_id: UUID,
        *,
        only: RunnerConnection | None = None,
        timers: bool = False,
        limit: int = 1000,
    ) -> int:
        """Offer the pool's due runs (by queue priority) to its workers, or to ``only``; with
        ``timers``, also arm timers for its runs due later. How many runs were offered."""
        conns = [only] if only is not None else list(self._workers.get(pool_id, ()))
        if not conns:
            return 0
        now = self.clock()
        async with self.database.read() as session:
            due = await runs_storage.read_due_pool_runs(session, pool_id, now, limit)
            upcoming = (
                await runs_storage.read_upcoming_pool_runs(session, pool_id, now) if timers else []
            )
        for run, priority in due:
            text = run_message(run, priority)
            for conn in conns:
                conn.send(text)
            self.offers += 1
        for when, run_id, state_id, deployment_id in upcoming:
            self._add_timer(when, run_id, state_id, deployment_id)
        return len(due)

    def claim_waited(self, pool_id: UUID) -> None:
        """A worker's claim in the pool got WAIT: offer again when one of its runs ends."""
        self._pools_waiting.add(pool_id)

    def pool_changed(self, pool_id: UUID) -> None:
        """The pool was paused, resumed or changed: forget its routes, offer its due runs."""
        for queue_id in [q for q, r in self._routes.items() if r.pool_id == pool_id]:
            del self._routes[queue_id]
        if self._workers.get(pool_id):
            self._spawn(self._offer_pool(pool_id))

    def queue_changed(self, queue_id: UUID, pool_id: UUID) -> None:
        """A queue of the pool was paused, resumed or changed."""
        self._routes.pop(queue_id, None)
        if self._workers.get(pool_id):
            self._spawn(self._offer_pool(pool_id))

    async def _offer_pool(self, pool_id: UUID) -> None:
        await self.offer_pool_runs(pool_id)

    async def _offer_pool_waiting(self, queue_id: UUID) -> None:
        route = await self._route(queue_id)
        if route is None or route.pool_id not in self._pools_waiting:
            return
        # A slot may have freed: offer the few oldest due runs (offers are hints, claims decide).
        if not await self.offer_pool_runs(route.pool_id, limit=_WAITING_BATCH):
            self._pools_waiting.discard(route.pool_id)

    # ------------------------------------------------------------------ run changes

    async def _consume(self) -> None:
        assert self._subscription is not None
        async for change in self._subscription:
            try:
                self.handle(change)
            except Exception:
                logger.exception("dispatching a run change failed")

    def handle(self, change: RunStateChanged) -> None:
        """React to one committed state change (synchronous: offers go out without waiting)."""
        run, previous = change.run, change.previous
        state = run.state
        if run.deployment_id is None or state is None:
            return
        if state.type is StateType.SCHEDULED and state.name not in runs_storage.NOT_OFFERED:
            when = state.details.scheduled_time or state.timestamp
            if when <= self.clock():
                self._offer(run)
            else:
                self._add_timer(when, run.id, state.id, run.deployment_id)
        elif state.type is StateType.CANCELLING:
            for conn in self._runners.get(run.deployment_id, ()):
                conn.send(cancel_message(run.id))
            if run.work_queue_id is not None:
                self._spawn(self._cancel_in_pool(run.id, run.work_queue_id))
        if (
            run.work_queue_id is not None
            and previous is not None
            and previous.type in ACTIVE_TYPES
            and state.type not in ACTIVE_TYPES
            and self._pools_waiting
        ):
            self._spawn(self._offer_pool_waiting(run.work_queue_id))
        if (
            previous is not None
            and previous.type in ACTIVE_TYPES
            and state.type not in ACTIVE_TYPES
            and self._runners.get(run.deployment_id)
        ):
            self._spawn(self._offer_waiting(run.deployment_id))

    async def _cancel_in_pool(self, run_id: UUID, queue_id: UUID) -> None:
        route = await self._route(queue_id)
        if route is not None:
            for conn in self._workers.get(route.pool_id, ()):
                conn.send(cancel_message(run_id))

    async def _offer_waiting(self, deployment_id: UUID) -> None:
        async with self.database.read() as session:
            waiting = await runs_storage.read_oldest_waiting_run(session, deployment_id)
        if waiting is not None:
            self._offer(waiting)

    # ------------------------------------------------------------------ timers

    def _add_timer(
        self, when: dt.datetime, run_id: UUID, state_id: UUID, deployment_id: UUID
    ) -> None:
        if (run_id, state_id) in self._timed:
            return
        self._timed.add((run_id, state_id))
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (when, next(self._seq), run_id, state_id, deployment_id))
        if earliest is None or when < earliest:
            self._timer_changed.set()

    async def _timers(self) -> None:
        while True:
            self._timer_changed.clear()
            if not self._heap:
                await self._timer_changed.wait()
                continue
            delay = (self._heap[0][0] - self.clock()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._timer_changed.wait(), timeout=min(delay, 3600))
                continue
            _, _, run_id, state_id, deployment_id = heapq.heappop(self._heap)
            self._timed.discard((run_id, state_id))
            if self._runners.get(deployment_id) or self._workers:
                try:
                    await self._offer_if_still_scheduled(run_id, state_id)
                except Exception:
                    logger.exception("offering run %s at its scheduled time failed", run_id)

    async def _offer_if_still_scheduled(self, run_id: UUID, state_id: UUID) -> None:
        async with self.database.read() as session:
            run = await read_flow_run(session, run_id)
        if run is not None and run.state is not None and run.state.id == state_id:
            self._offer(run)
