"""The shape every background loop has: ``run_once()`` does one step, ``run()`` repeats it until
``stop()``, and time comes from an injected clock so tests drive a service step by step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

__all__ = ["Clock", "Service", "utc_clock"]

Clock = Callable[[], dt.datetime]


def utc_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Service(ABC):
    """A periodic loop. Subclasses implement ``run_once``; ``interval`` is seconds between steps.

    ``wake()`` makes the loop step now instead of at the next interval (used when a push arrives).
    """

    name = "service"
    interval: float = 5.0

    def __init__(self, *, clock: Clock = utc_clock, interval: float | None = None) -> None:
        self.clock = clock
        if interval is not None:
            self.interval = interval
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.log = logging.getLogger(f"tideflow.server.{self.name}")

    @abstractmethod
    async def run_once(self) -> None:
        """One step of the loop."""

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Step until stopped; a failing step is logged and the loop goes on."""
        while not self._stop.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s step failed; retrying in %.1f s", self.name, self.interval)
            self._wake.clear()
            if self._stop.is_set():  # stop() during the step: its wake-up was just cleared
                break
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
