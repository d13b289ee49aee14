"""The in-process broker: what committed transactions publish, fanned out to subscribers.

Writers never publish directly: storage code queues items on the session (``storage.outbox``) and
``Database.write`` hands them here only after the commit succeeded, so a subscriber never sees a
change that was rolled back. Topics are plain strings (``"events"``, ``"runs"``). Each subscription
has its own queue: internal services subscribe ``lossless`` (unbounded: the trigger engine must see
every event), live client streams subscribe bounded and, when they fall behind, their overflow is
counted on the subscription (the stream then tells the client it lost events) — never silent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

__all__ = ["Broker", "Subscription"]


class Subscription:
    """One subscriber's queue on one topic; iterate it with ``async for``."""

    def __init__(self, broker: Broker, topic: str, maxsize: int) -> None:
        self._broker = broker
        self.topic = topic
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def _offer(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Any:
        return await self._queue.get()

    def get_nowait(self) -> Any:
        """The next item, or raise ``asyncio.QueueEmpty``."""
        return self._queue.get_nowait()

    def qsize(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._broker._remove(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            yield await self._queue.get()


class Broker:
    """Topic fan-out within one server process (Redis Streams is the scale-out variant)."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = defaultdict(list)
        self.published = 0

    def subscribe(
        self, topic: str, *, lossless: bool = False, maxsize: int = 10_000
    ) -> Subscription:
        sub = Subscription(self, topic, 0 if lossless else maxsize)
        self._subs[topic].append(sub)
        return sub

    def publish(self, topic: str, items: Iterable[Any]) -> None:
        """Offer ``items`` to every subscriber of ``topic`` (non-blocking; called after commit)."""
        subs = self._subs.get(topic)
        for item in items:
            self.published += 1
            for sub in subs or ():
                sub._offer(item)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs and sub in subs:
            subs.remove(sub)
