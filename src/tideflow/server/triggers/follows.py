"""Ordering by ``follows``: an event that names a leader (``follows``) is evaluated after it.

A follower whose leader the engine has not evaluated yet is parked until the leader arrives (then
the leader goes first and the follower right after it) or until ``FOLLOW_WAIT`` has passed (then it
is evaluated anyway). No I/O here: the engine says which leaders storage shows as evaluated before
(``admit``'s ``known``), and keeps its replay checkpoint at or before the oldest parked event
(``oldest_parked``) so a restart re-reads what was parked.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from uuid import UUID

from tideflow.schemas.events import ReceivedEvent

__all__ = ["FOLLOW_WAIT", "SEEN_IDS", "FollowGate"]

# How long a follower waits for its leader. Leaders are normally milliseconds behind (another
# connection, the next batch); one that has not come after this is likely lost, and holding the
# follower longer would only delay every automation it triggers.
FOLLOW_WAIT = dt.timedelta(seconds=10)
# Evaluated event ids remembered to answer "was the leader evaluated?" without a query (~1.5 MB).
# Older leaders are looked up in storage; one evaluated so long ago that it is no longer remembered
# yet still inside the replay window only costs its follower the FOLLOW_WAIT, never the order.
SEEN_IDS = 10_000

_log = logging.getLogger("tideflow.server.triggers")


class FollowGate:
    """Parks followers of leaders not evaluated yet and releases them in order."""

    def __init__(self) -> None:
        self._seen: dict[UUID, None] = {}  # insertion-ordered: the oldest are dropped first
        self._parked: dict[UUID, tuple[ReceivedEvent, dt.datetime]] = {}
        self._waiting: dict[UUID, list[UUID]] = defaultdict(list)  # leader id -> follower ids

    def __len__(self) -> int:
        return len(self._parked)

    def unknown_leaders(self, events: list[ReceivedEvent]) -> list[UUID]:
        """Leaders named by ``events`` that are neither evaluated, parked nor among ``events``."""
        ids = {e.id for e in events}
        out: dict[UUID, None] = {}
        for e in events:
            lead = e.follows
            if lead is not None and lead not in ids and lead not in self._seen:
                if lead not in self._parked:
                    out[lead] = None
        return list(out)

    def admit(
        self, events: list[ReceivedEvent], known: set[UUID], now: dt.datetime
    ) -> list[ReceivedEvent]:
        """The events to evaluate now, in order: by ``occurred``, every leader before its followers
        (including parked followers it releases). A follower whose leader is neither evaluated nor
        in ``known`` (evaluated before, per storage) is parked."""
        out: list[ReceivedEvent] = []
        unique = {e.id: e for e in events if e.id not in self._parked}
        for event in sorted(unique.values(), key=lambda e: e.occurred):
            lead = event.follows
            if lead is None or lead in self._seen or lead in known:
                self._emit(event, out)
            else:  # the leader is later in this batch, parked itself, or not here yet
                self._parked[event.id] = (event, now)
                self._waiting[lead].append(event.id)
        return out

    def expire(self, now: dt.datetime) -> list[ReceivedEvent]:
        """Parked followers whose wait is over, to evaluate now (with what they release)."""
        due = [e for e, parked in self._parked.values() if now - parked >= FOLLOW_WAIT]
        out: list[ReceivedEvent] = []
        for event in sorted(due, key=lambda e: e.occurred):
            if self._parked.pop(event.id, None) is None:
                continue  # released meanwhile, as the follower of an earlier expired one
            waiters = self._waiting.get(event.follows) if event.follows else None
            if waiters and event.id in waiters:
                waiters.remove(event.id)
                if not waiters:
                    del self._waiting[event.follows]  # type: ignore[arg-type]
            _log.info(
                "event %s (%s) waited %s for the event it follows (%s); evaluating it anyway",
                event.id, event.event, FOLLOW_WAIT, event.follows,
            )  # fmt: skip
            self._emit(event, out)
        return out

    def next_expiry(self) -> dt.datetime | None:
        """When the first parked follower stops waiting (None: nothing is parked)."""
        if not self._parked:
            return None
        return min(parked for _, parked in self._parked.values()) + FOLLOW_WAIT

    def oldest_parked(self) -> tuple[dt.datetime, UUID] | None:
        """(received, id) of the earliest-received parked event: the checkpoint must not pass it."""
        if not self._parked:
            return None
        event = min((e for e, _ in self._parked.values()), key=lambda e: (e.received, e.id.int))
        return event.received, event.id

    def _emit(self, event: ReceivedEvent, out: list[ReceivedEvent]) -> None:
        stack = [event]
        while stack:
            current = stack.pop()
            out.append(current)
            self._seen[current.id] = None
            if len(self._seen) > SEEN_IDS:
                del self._seen[next(iter(self._seen))]
            released = [
                self._parked.pop(fid)[0]
                for fid in self._waiting.pop(current.id, [])
                if fid in self._parked
            ]
            # Depth first, each leader's followers right after it, earliest first.
            stack.extend(sorted(released, key=lambda e: e.occurred, reverse=True))
