"""Fan-out between replicas on PostgreSQL: what one replica commits reaches every other's broker.

Write side: ``before_commit`` runs in every write transaction that queued broker items
(``storage.outbox``) and sends ``pg_notify`` with their ids, so the notification is delivered if and
only if the transaction commits. Read side: one dedicated asyncpg connection LISTENs, skips this
replica's own notifications, reads the rows named (only where something here consumes them) and
publishes them into the local broker under the same topics, so the dispatcher, live event streams,
the scheduler and the trigger engine treat remote changes like local ones (ADR 0014).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, FlowRunFilter, State
from tideflow.schemas.states import StateType
from tideflow.server.events.broker import Broker
from tideflow.server.storage import Database
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage.deployment_schedules import SCHEDULES_TOPIC
from tideflow.server.storage.events import EVENTS_TOPIC, read_events_by_ids
from tideflow.server.storage.flow_runs import read_flow_runs
from tideflow.server.storage.outbox import OUTBOX_KEY
from tideflow.server.storage.run_changes import RUNS_TOPIC, RunStateChanged

__all__ = ["CHANNEL", "PgFanout", "decode", "encode"]

CHANNEL = "tideflow_fanout"
MAX_PAYLOAD = 7000  # PostgreSQL refuses payloads of 8000 bytes or more
_READ_CHUNK = 500
_CHECK_EVERY = 2.0  # seconds between two checks of the listening connection
_RECONNECT = (0.2, 5.0)  # first and longest wait before reconnecting

_log = logging.getLogger("tideflow.server.replicas")

Entry = tuple[str, tuple[str, ...]]


def _entry(topic: str, item: Any) -> str | None:
    if topic == EVENTS_TOPIC:
        return f"e{item.id}"
    if topic == RUNS_TOPIC:
        state = item.run.state
        if state is None:
            return None
        previous = item.previous.type.value if item.previous is not None else ""
        return f"r{item.run.id},{state.id},{previous}"
    if topic == automation_storage.AUTOMATIONS_TOPIC:
        return f"a{item.automation_id},{int(item.reset_state)}"
    if topic == SCHEDULES_TOPIC:
        return f"s{item}"
    return None


def encode(replica: str, items: Iterable[tuple[str, Any]]) -> list[str]:
    """Payloads (each under ``MAX_PAYLOAD`` bytes) naming ``items``: ``<replica>|<entry>;<entry>``."""
    payloads: list[str] = []
    current: list[str] = []
    size = len(replica) + 1
    for topic, item in items:
        entry = _entry(topic, item)
        if entry is None:
            continue
        if current and size + len(entry) + 1 > MAX_PAYLOAD:
            payloads.append(replica + "|" + ";".join(current))
            current, size = [], len(replica) + 1
        current.append(entry)
        size += len(entry) + 1
    if current:
        payloads.append(replica + "|" + ";".join(current))
    return payloads


def decode(payload: str) -> tuple[str, list[Entry]]:
    """The sending replica and its entries (kind letter, fields); malformed entries are skipped."""
    replica, _, body = payload.partition("|")
    entries: list[Entry] = []
    for raw in body.split(";"):
        if len(raw) > 1 and raw[0] in "eras":
            entries.append((raw[0], tuple(raw[1:].split(","))))
    return replica, entries


class PgFanout:
    """Notify on commit, listen, and republish remote changes into ``broker``.

    ``wants_runs``: whether run changes are worth reading here (runners or workers connected).
    ``on_resync``: called after the listening connection was re-established (notifications sent
    while it was down are lost: the trigger engine replays from its checkpoint).
    """

    def __init__(
        self,
        database: Database,
        broker: Broker,
        dsn: str,
        *,
        wants_runs: Callable[[], bool] = lambda: True,
    ) -> None:
        self.database = database
        self.broker = broker
        self.dsn = dsn
        self.replica = uuid.uuid4().hex[:12]
        self.wants_runs = wants_runs
        self.on_resync: list[Callable[[], None]] = []
        self._pending: list[Entry] = []
        self._kick = asyncio.Event()
        self._lost = asyncio.Event()
        self.listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.received = 0  # remote entries handled, for tests and benchmarks

    # -- write side ---------------------------------------------------------------------------

    async def before_commit(self, session: AsyncSession) -> None:
        """Queue the notifications of what this transaction will publish (sent at its commit)."""
        items = session.info.get(OUTBOX_KEY)
        if not items:
            return
        for payload in encode(self.replica, items):
            await session.execute(
                sa.text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": payload},
            )

    # -- read side ----------------------------------------------------------------------------

    async def start(self, timeout: float = 10.0) -> None:
        """Start listening; returns once the first LISTEN is in place (or after ``timeout``)."""
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._deliver())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        replica, entries = decode(payload)
        if replica == self.replica or not entries:
            return  # ours: the local broker has it already
        self._pending.extend(entries)
        self._kick.set()

    def _on_lost(self, _conn: Any) -> None:
        self._lost.set()

    async def _listen(self) -> None:
        import asyncpg  # PostgreSQL only: a SQLite server never loads the driver

        wait = _RECONNECT[0]
        attempt = 0
        while True:
            attempt += 1
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                conn.add_termination_listener(self._on_lost)
                await conn.add_listener(CHANNEL, self._on_notify)
                self._lost.clear()
                self.listening.set()
                wait = _RECONNECT[0]
                if attempt > 1:
                    _log.warning("fan-out listener reconnected; resynchronising the engine")
                    for callback in self.on_resync:
                        callback()
                while not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), _CHECK_EVERY)
                    if not self._lost.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), _CHECK_EVERY)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening.is_set():
                    _log.warning("fan-out listener lost its connection: %s", exc)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(wait)
            wait = min(wait * 2, _RECONNECT[1])

    async def _deliver(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            entries, self._pending = self._pending, []
            try:
                await self.deliver(entries)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("fan-out: reading %d remote change(s) failed", len(entries))
                for callback in self.on_resync:
                    callback()

    async def deliver(self, entries: list[Entry]) -> None:
        """Read what ``entries`` name and publish it into the local broker."""
        self.received += len(entries)
        by_kind: dict[str, list[tuple[str, ...]]] = {"e": [], "r": [], "a": [], "s": []}
        for kind, fields in entries:
            by_kind[kind].append(fields)
        if by_kind["a"] and self.broker.subscribers(automation_storage.AUTOMATIONS_TOPIC):
            await self._automations(by_kind["a"])
        if by_kind["s"]:
            self.broker.publish(SCHEDULES_TOPIC, [UUID(f[0]) for f in by_kind["s"]])
        if by_kind["e"] and self.broker.subscribers(EVENTS_TOPIC):
            await self._events([UUID(f[0]) for f in by_kind["e"]])
        if by_kind["r"] and self.wants_runs():
            await self._runs(by_kind["r"])

    async def _events(self, ids: list[UUID]) -> None:
        found = {}
        async with self.database.read() as session:
            for start in range(0, len(ids), _READ_CHUNK):
                for event in await read_events_by_ids(session, ids[start : start + _READ_CHUNK]):
                    found[event.id] = event
        # In notification (commit) order; an event deleted meanwhile (retention) is skipped.
        self.broker.publish(EVENTS_TOPIC, [found[i] for i in ids if i in found])

    async def _runs(self, notices: list[tuple[str, ...]]) -> None:
        ids = list(dict.fromkeys(UUID(f[0]) for f in notices))
        runs: dict[UUID, FlowRun] = {}
        async with self.database.read() as session:
            for start in range(0, len(ids), _READ_CHUNK):
                chunk = ids[start : start + _READ_CHUNK]
                flt = FlowRunFilter(id=chunk, limit=len(chunk))
                runs.update((r.id, r) for r in await read_flow_runs(session, flt))
        changes = []
        for fields in notices:
            if len(fields) != 3:
                continue
            run = runs.get(UUID(fields[0]))
            # Moved on since: the notice of its later state follows and is the one that counts.
            if run is None or run.state is None or str(run.state.id) != fields[1]:
                continue
            previous = State(type=StateType(fields[2])) if fields[2] else None
            changes.append(RunStateChanged(run=run, previous=previous))
        self.broker.publish(RUNS_TOPIC, changes)

    async def _automations(self, notices: list[tuple[str, ...]]) -> None:
        changes = []
        async with self.database.read() as session:
            for fields in notices:
                if len(fields) != 2:
                    continue
                ident = UUID(fields[0])
                automation = await automation_storage.read_automation(session, ident)
                changes.append(
                    automation_storage.AutomationChanged(ident, automation, fields[1] == "1")
                )
        self.broker.publish(automation_storage.AUTOMATIONS_TOPIC, changes)
