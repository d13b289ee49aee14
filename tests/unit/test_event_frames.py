"""The SDK's event frames stay under a byte budget: a batch whose JSON is larger is sent as several
frames, and the in-flight bookkeeping is split the same way so each ack matches its frame."""

from __future__ import annotations

import json

from tideflow.client import _events
from tideflow.client._events import EventWorker
from tideflow.events import Event


def _event(i: int, size: int) -> Event:
    return Event(
        event="big.one", resource={"tideflow.resource.id": "r"}, payload={"i": i, "pad": "x" * size}
    )


def test_a_batch_larger_than_the_budget_is_split_in_order(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_events, "_FRAME_BYTES", 10_000)
    worker = EventWorker(max_buffer=100)
    earlier, batch, later = [_event(-1, 10)], [_event(i, 3_000) for i in range(7)], [_event(99, 10)]
    worker._in_flight.extend([earlier, batch, later])
    frames = worker._split_frame(batch, [e.model_dump_json() for e in batch])
    assert len(frames) == 3
    assert all(len(frame) <= 10_000 for frame in frames)
    assert [[e["payload"]["i"] for e in json.loads(f)] for f in frames] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]
    assert [[e.payload["i"] for e in b] for b in worker._in_flight] == [
        [-1], [0, 1, 2], [3, 4, 5], [6], [99],
    ]  # fmt: skip


def test_a_small_batch_is_one_frame_and_untouched() -> None:
    worker = EventWorker(max_buffer=100)
    batch = [_event(i, 10) for i in range(5)]
    worker._in_flight.append(batch)
    frames = worker._split_frame(batch, [e.model_dump_json() for e in batch])
    assert len(frames) == 1 and list(worker._in_flight) == [batch]
