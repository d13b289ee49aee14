"""FollowGate: followers after their leaders, parked until the leader comes or FOLLOW_WAIT passes."""

from __future__ import annotations

import datetime as dt
from uuid import UUID, uuid4

from tideflow.schemas.events import ReceivedEvent
from tideflow.server.triggers.follows import FOLLOW_WAIT, SEEN_IDS, FollowGate

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _event(seconds: float, follows: UUID | None = None) -> ReceivedEvent:
    return ReceivedEvent(
        event="x.y",
        occurred=T0 + dt.timedelta(seconds=seconds),
        resource={"tideflow.resource.id": "r"},  # type: ignore[arg-type]
        follows=follows,
        received=T0 + dt.timedelta(seconds=seconds),
    )


def test_events_without_follows_go_in_occurred_order() -> None:
    gate = FollowGate()
    a, b, c = _event(2), _event(0), _event(1)
    assert gate.admit([a, b, c], set(), T0) == [b, c, a]
    assert len(gate) == 0


def test_follower_waits_for_its_leader_and_its_own_follower_after_it() -> None:
    gate = FollowGate()
    lead = _event(5)
    first = _event(0, follows=lead.id)
    second = _event(1, follows=first.id)
    assert gate.admit([second], set(), T0) == []
    assert gate.unknown_leaders([first]) == [lead.id]
    assert gate.admit([first], set(), T0) == []
    assert len(gate) == 2
    assert gate.oldest_parked() == (first.received, first.id)
    assert gate.admit([lead], set(), T0) == [lead, first, second]
    assert len(gate) == 0 and gate.next_expiry() is None


def test_known_leader_releases_at_once_and_a_lost_one_after_the_wait() -> None:
    gate = FollowGate()
    old_lead, lost = uuid4(), uuid4()
    kept = _event(0, follows=old_lead)
    waiting = _event(1, follows=lost)
    behind = _event(2, follows=waiting.id)
    assert gate.admit([kept, waiting, behind], {old_lead}, T0) == [kept]
    assert gate.next_expiry() == T0 + FOLLOW_WAIT
    assert gate.expire(T0 + FOLLOW_WAIT - dt.timedelta(microseconds=1)) == []
    assert gate.expire(T0 + FOLLOW_WAIT) == [waiting, behind]
    assert len(gate) == 0


def test_remembered_ids_are_bounded() -> None:
    gate = FollowGate()
    first = _event(0)
    gate.admit([first], set(), T0)
    gate.admit([_event(1) for _ in range(SEEN_IDS)], set(), T0)
    follower = _event(2, follows=first.id)
    assert gate.unknown_leaders([follower]) == [first.id]  # forgotten: storage is asked
