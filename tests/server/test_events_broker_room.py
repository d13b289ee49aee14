"""Broker backpressure: ``wait_for_room`` holds ingestion while a lossless subscriber is ``limit``
items behind and lets it go as the subscriber drains (or leaves); publishing itself never blocks
nor drops for lossless subscribers; bounded (live stream) subscribers never hold ingestion; the
throttling warning is rate-limited."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tideflow.server.events.broker import Broker

pytestmark = pytest.mark.anyio


async def _pending(task: asyncio.Task[float]) -> bool:
    await asyncio.sleep(0.05)
    return not task.done()


async def test_ingestion_waits_until_the_lossless_subscriber_drains() -> None:
    broker = Broker()
    sub = broker.subscribe("events", lossless=True)
    broker.publish("events", range(10))
    assert await broker.wait_for_room("events", 11) == 0.0  # room: no wait
    waiting = asyncio.create_task(broker.wait_for_room("events", 10))
    assert await _pending(waiting)
    # Publishing past the limit still queues everything for the lossless subscriber.
    broker.publish("events", range(10, 25))
    assert sub.qsize() == 25 and sub.dropped == 0
    for _ in range(15):
        sub.get_nowait()
    assert await _pending(waiting)  # 10 queued: not below the limit yet
    assert await sub.get() == 15
    waited = await asyncio.wait_for(waiting, 1)
    assert waited > 0
    assert broker.throttled == 1 and broker.throttled_s >= waited
    assert [sub.get_nowait() for _ in range(9)] == list(range(16, 25))


async def test_each_waiter_goes_when_the_backlog_is_below_its_own_limit() -> None:
    broker = Broker()
    sub = broker.subscribe("events", lossless=True)
    broker.publish("events", range(6))
    tight = asyncio.create_task(broker.wait_for_room("events", 2))
    loose = asyncio.create_task(broker.wait_for_room("events", 5))
    other = asyncio.create_task(broker.wait_for_room("runs", 1))  # another topic: no backlog
    assert await asyncio.wait_for(other, 1) == 0.0
    assert await _pending(tight) and await _pending(loose)
    sub.get_nowait()
    sub.get_nowait()  # 4 left
    await asyncio.wait_for(loose, 1)
    assert await _pending(tight)
    sub.close()  # a subscriber that leaves holds nobody back
    await asyncio.wait_for(tight, 1)
    assert broker.backlog("events") == 0


async def test_bounded_subscribers_never_hold_ingestion_and_count_their_drops() -> None:
    broker = Broker()
    live = broker.subscribe("events", maxsize=3)
    broker.publish("events", range(10))
    assert live.qsize() == 3 and live.dropped == 7
    assert broker.backlog("events") == 0
    assert await broker.wait_for_room("events", 1) == 0.0


async def test_the_throttling_warning_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    broker = Broker()
    sub = broker.subscribe("events", lossless=True)
    caplog.set_level(logging.WARNING, logger="tideflow.server.events")
    for _ in range(3):
        broker.publish("events", [1, 2])
        waiting = asyncio.create_task(broker.wait_for_room("events", 2))
        assert await _pending(waiting)
        sub.get_nowait()
        sub.get_nowait()
        await asyncio.wait_for(waiting, 1)
    warnings = [r.getMessage() for r in caplog.records if "throttled" in r.getMessage()]
    assert warnings == [
        "event ingestion is throttled: a subscriber of 'events' has 2 items queued (limit 2); "
        "1 batch(es) held back since the last warning, 1 in all"
    ]
    assert broker.throttled == 3
