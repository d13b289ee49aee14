"""Run-log batches stay under a byte budget (the server refuses a body over its request limit, which
would lose the whole batch): large records are sent in more, smaller requests, all of them."""

from __future__ import annotations

import datetime as dt
import uuid

from tideflow.engine import log_worker
from tideflow.engine.log_worker import LogWorker
from tideflow.schemas import LogCreate


def test_large_records_are_sent_in_batches_under_the_budget() -> None:
    sent: list[list[LogCreate]] = []

    class Capturing(LogWorker[LogCreate]):
        def _send(self, batch: list[LogCreate]) -> None:
            sent.append(batch)

    worker = Capturing("http://127.0.0.1:1/api", interval=60, max_buffer=1000)
    run = uuid.uuid4()
    for i in range(30):
        worker._buffer.append(
            LogCreate(flow_run_id=run, name="x", level=20, message=f"{i}" + "y" * 300_000,
                      timestamp=dt.datetime.now(dt.UTC))
        )  # fmt: skip
    worker._send_all()
    assert sum(len(b) for b in sent) == 30
    assert len(sent) >= 3
    for batch in sent:
        assert sum(len(r.message) for r in batch) <= log_worker._BATCH_BYTES + 310_000
    assert [r.message[:2].rstrip("y") for b in sent for r in b] == [str(i) for i in range(30)]
