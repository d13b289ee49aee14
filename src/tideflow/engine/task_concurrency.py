"""Tag-based concurrency for task runs: before a task run whose tags have limits starts, it takes one
slot of each on the server (waiting in ``AwaitingConcurrencySlot`` while one is full); the slots are
leases, renewed while the run goes on and released when it ends, so a process that dies frees them
when its leases expire.

Only tasks with tags pay anything: the set of limited tags is read at most every few seconds per
process, and a task none of whose tags is limited starts at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.schemas import states as S

__all__ = ["LEASE_SECONDS", "SlotKeeper", "slot_keeper"]

LEASE_SECONDS = 60.0
_RENEW_EVERY = LEASE_SECONDS / 3
_TAGS_TTL = 5.0  # seconds the set of limited tags is trusted before it is read again

logger = logging.getLogger("tideflow.flow_runs")


class SlotKeeper:
    """One API's slots for this process: which tags are limited, and the leases held now."""

    def __init__(self, api_url: str) -> None:
        self._client = SyncClient(api_url)
        self._lock = threading.Lock()
        self._limited: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._held: set[UUID] = set()
        self._renewer: threading.Thread | None = None

    def limited(self, tags: list[str]) -> list[str]:
        """The ones of ``tags`` that have a limit now (read again every few seconds)."""
        if time.monotonic() - self._read_at > _TAGS_TTL:
            limits = self._client.read_concurrency_limits()
            with self._lock:
                self._limited = frozenset(limit.tag for limit in limits)
                self._read_at = time.monotonic()
        return [tag for tag in tags if tag in self._limited]

    def acquire(self, run: Any, tags: list[str]) -> bool:
        """Block until ``run`` holds a slot of each limited tag; False when none is limited."""
        wanted = self.limited(tags)
        if not wanted:
            return False
        waiting = False
        while True:
            answer = self._client.acquire_concurrency_slots(wanted, run.id, LEASE_SECONDS)
            if answer.acquired:
                self._hold(run.id)
                return True
            if not waiting:
                waiting = True
                message = f"Waiting for a slot of concurrency limit {answer.full_tag!r}"
                logger.info(message)
                run.set_state(S.AwaitingConcurrencySlot(message=message))
            time.sleep(answer.retry_after)

    def release(self, holder: UUID) -> None:
        with self._lock:
            self._held.discard(holder)
        try:
            self._client.release_concurrency_slots(holder)
        except Exception as exc:  # the lease expires on its own
            logger.warning("Could not release concurrency slots of task run %s: %s", holder, exc)

    def _hold(self, holder: UUID) -> None:
        with self._lock:
            self._held.add(holder)
            if self._renewer is None:
                self._renewer = threading.Thread(
                    target=self._renew_loop, name="tideflow-slot-renewer", daemon=True
                )
                self._renewer.start()

    def _renew_loop(self) -> None:
        while True:
            time.sleep(_RENEW_EVERY)
            with self._lock:
                holders = list(self._held)
            for holder in holders:
                try:
                    self._client.renew_concurrency_slots(holder, LEASE_SECONDS)
                except Exception as exc:
                    logger.warning("Could not renew the concurrency slots of %s: %s", holder, exc)


_keepers: dict[str, SlotKeeper] = {}
_keepers_lock = threading.Lock()


def slot_keeper(api_url: str) -> SlotKeeper:
    """The process's SlotKeeper for ``api_url``."""
    with _keepers_lock:
        keeper = _keepers.get(api_url)
        if keeper is None:
            keeper = _keepers[api_url] = SlotKeeper(api_url)
        return keeper
