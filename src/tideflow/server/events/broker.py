"""The in-process broker: what committed transactions publish, fanned out to subscribers.

Writers never publish directly: storage code queues items on the session (``storage.outbox``) and
``Database.write`` hands them here only after the commit succeeded, so a subscriber never sees a
change that was rolled back. Topics are plain strings (``"events"``, ``"runs"``). Each subscription
has its own queue: internal services subscribe ``lossless`` (unbounded: the trigger engine must see
every event), live client streams subscribe bounded and, when they fall behind, their overflow is
counted on the subscription (the stream then tells the client it lost events) — never silent.

Backpressure: publishing never blocks nor drops for a lossless subscriber (what is published is
already committed). Instead ingestion calls ``wait_for_room`` BEFORE storing a batch: while a
lossless subscriber of the topic has ``limit`` or more items queued, the batch waits, so a slow
consumer slows the senders down (a rate-limited warning says so) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

__all__ = ["HOLD_ENV", "Broker", "Subscription"]

# Test hook: "<topic>:<path>" — while <path> exists, lossless subscribers of <topic> receive
# nothing (a stalled consumer, as a real server process can be told from outside).
HOLD_ENV = "TIDEFLOW_TEST_HOLD_LOSSLESS"
_HOLD_POLL = 0.05
_WARN_EVERY = 10.0  # seconds between two throttling warnings

_log = logging.getLogger("tideflow.server.events")


class Subscription:
    """One subscriber's queue on one topic; iterate it with ``async for``."""

    def __init__(self, broker: Broker, topic: str, maxsize: int, *, lossless: bool) -> None:
        self._broker = broker
        self.topic = topic
        self.lossless = lossless
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def _offer(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Any:
        while self._held():
            await asyncio.sleep(_HOLD_POLL)
        item = await self._queue.get()
        if self._broker._waiting:
            self._broker._wake(self.topic)
        return item

    def get_nowait(self) -> Any:
        """The next item, or raise ``asyncio.QueueEmpty``."""
        if self._held():
            raise asyncio.QueueEmpty
        item = self._queue.get_nowait()
        if self._broker._waiting:
            self._broker._wake(self.topic)
        return item

    def qsize(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._broker._remove(self)

    def _held(self) -> bool:
        hold = self._broker._hold
        return hold is not None and self.lossless and hold[0] == self.topic and hold[1].exists()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            yield await self.get()


class Broker:
    """Topic fan-out within one server process (Redis Streams is the scale-out variant)."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = defaultdict(list)
        self.published = 0
        # Ingestion waiting for room: topic -> [(limit, future)]; ``_waiting`` counts them all.
        self._waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = defaultdict(list)
        self._waiting = 0
        self.throttled = 0  # batches that had to wait for room
        self.throttled_s = 0.0  # seconds they waited in total
        self._warned_at = float("-inf")
        self._throttled_since_warning = 0
        hold = os.environ.get(HOLD_ENV)
        topic, _, path = hold.partition(":") if hold else ("", "", "")
        self._hold = (topic, Path(path)) if topic and path else None

    def subscribe(
        self, topic: str, *, lossless: bool = False, maxsize: int = 10_000
    ) -> Subscription:
        sub = Subscription(self, topic, 0 if lossless else maxsize, lossless=lossless)
        self._subs[topic].append(sub)
        return sub

    def publish(self, topic: str, items: Iterable[Any]) -> None:
        """Offer ``items`` to every subscriber of ``topic`` (non-blocking; called after commit)."""
        subs = self._subs.get(topic)
        for item in items:
            self.published += 1
            for sub in subs or ():
                sub._offer(item)

    def subscribers(self, topic: str) -> int:
        """How many subscriptions ``topic`` has (fan-out reads remote changes only for them)."""
        return len(self._subs.get(topic, ()))

    def backlog(self, topic: str) -> int:
        """Items queued for the furthest-behind lossless subscriber of ``topic``."""
        return max((s.qsize() for s in self._subs.get(topic, ()) if s.lossless), default=0)

    async def wait_for_room(self, topic: str, limit: int) -> float:
        """Wait until every lossless subscriber of ``topic`` has fewer than ``limit`` items queued;
        the seconds waited (0.0 at once when there is room). Call before storing what will be
        published to ``topic``."""
        if self.backlog(topic) < limit:
            return 0.0
        started = time.monotonic()
        self._warn(topic, limit)
        loop = asyncio.get_running_loop()
        waiters = self._waiters[topic]
        while self.backlog(topic) >= limit:
            entry = (limit, loop.create_future())
            waiters.append(entry)
            self._waiting += 1
            try:
                await entry[1]
            finally:
                if entry in waiters:
                    waiters.remove(entry)
                    self._waiting -= 1
        waited = time.monotonic() - started
        self.throttled += 1
        self.throttled_s += waited
        return waited

    def _warn(self, topic: str, limit: int) -> None:
        self._throttled_since_warning += 1
        now = time.monotonic()
        if now - self._warned_at < _WARN_EVERY:
            return
        _log.warning(
            "event ingestion is throttled: a subscriber of %r has %d items queued (limit %d); "
            "%d batch(es) held back since the last warning, %d in all",
            topic, self.backlog(topic), limit, self._throttled_since_warning, self.throttled + 1,
        )  # fmt: skip
        self._warned_at = now
        self._throttled_since_warning = 0

    def _wake(self, topic: str) -> None:
        waiters = self._waiters.get(topic)
        if not waiters:
            return
        backlog = self.backlog(topic)
        for entry in [w for w in waiters if w[0] > backlog]:
            waiters.remove(entry)
            self._waiting -= 1
            if not entry[1].done():
                entry[1].set_result(None)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs and sub in subs:
            subs.remove(sub)
        self._wake(sub.topic)
