"""The server's memory returner: a daemon thread calling malloc_trim on a period, stoppable."""

from __future__ import annotations

import time

from tideflow.server.memory import MemoryReturner, start_memory_returner


def test_it_trims_on_its_period_and_stops() -> None:
    returner = start_memory_returner(interval=0.05)
    assert returner is not None, "glibc's malloc_trim was not found (this machine runs glibc)"
    assert returner.thread.daemon and returner.thread.name == "tideflow-memory-trim"
    deadline = time.monotonic() + 10
    while returner.trims < 3:
        assert time.monotonic() < deadline, "no trims"
        time.sleep(0.02)
    returner.stop()
    assert not returner.thread.is_alive()
    done = returner.trims
    time.sleep(0.2)
    assert returner.trims == done


def test_a_failing_trim_ends_the_thread_quietly() -> None:
    calls: list[int] = []

    def broken(pad: int) -> int:
        calls.append(pad)
        raise OSError("no")

    returner = MemoryReturner(broken, 0.01)
    returner.thread.start()
    returner.thread.join(timeout=5)
    assert not returner.thread.is_alive() and calls == [0] and returner.trims == 0
