"""The state machine as pure rules: given a run's facts and a proposal, what happens.

``decide`` is the one place a state change is judged. Storage calls it inside the transaction that
holds the run's row and applies the returned ``Decision``; nothing here touches a database or a clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tideflow.schemas.actions import StateProposal
from tideflow.schemas.objects import SetStateStatus
from tideflow.schemas.states import (
    FINAL_TYPES,
    AwaitingConcurrencySlot,
    Cancelled,
    State,
    StateType,
    is_retry,
    transition_refusal,
)

__all__ = ["ACTIVE_TYPES", "Decision", "RunFacts", "decide", "takes_a_slot"]

# A run in one of these holds a slot of its deployment's concurrency limit.
ACTIVE_TYPES: frozenset[StateType] = frozenset(
    {StateType.PENDING, StateType.RUNNING, StateType.CANCELLING}
)


@dataclass(frozen=True)
class RunFacts:
    """What orchestration needs to know about a run before a change."""

    state: State | None
    run_count: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    total_run_time: float = 0.0
    expected_start_time: dt.datetime | None = None
    # False when the run's deployment is at its concurrency limit (storage counts, under a lock).
    slot_available: bool = True
    # What a run that finds no slot gets: ENQUEUE (waits) or CANCEL_NEW (cancelled at once).
    collision_strategy: str = "ENQUEUE"


def takes_a_slot(current: State | None, proposal: StateProposal) -> bool:
    """Whether accepting ``proposal`` would make the run newly active (so it needs a free slot)."""
    entering = proposal.state.type in (StateType.PENDING, StateType.RUNNING)
    already = current is not None and current.type in ACTIVE_TYPES
    return entering and not already and not proposal.force


@dataclass(frozen=True)
class Decision:
    """The outcome of a proposal.

    ``state`` is the run's state afterwards (the stored new state, or the unchanged current one).
    ``store`` says whether a new state row must be written; ``changes`` are run columns to update.
    """

    status: SetStateStatus
    state: State
    reason: str | None = None
    store: bool = False
    changes: dict[str, Any] = field(default_factory=dict)


def _same(current: State, proposed: State) -> bool:
    if not current.same_proposal(proposed):
        return False
    if current.type is StateType.SCHEDULED:
        return current.details.scheduled_time == proposed.details.scheduled_time
    return True


def decide(facts: RunFacts, proposal: StateProposal, now: dt.datetime) -> Decision:
    """Judge ``proposal`` against ``facts`` at time ``now`` (the server's clock)."""
    current = facts.state
    proposed = proposal.state
    if proposal.expected_state_id is not None and (
        current is None or current.id != proposal.expected_state_id
    ):
        return _reject(
            current, proposed, "the run's state changed since it was read (compare-and-set failed)"
        )
    if (
        current is not None
        and not proposal.force
        and proposal.expected_state_id is None
        and _same(current, proposed)
    ):
        return Decision(
            SetStateStatus.ACCEPT, current, reason="identical to the current state; nothing changed"
        )
    from_type = current.type if current is not None else None
    refusal = transition_refusal(from_type, proposed, force=proposal.force)
    if refusal is not None:
        return _reject(current, proposed, refusal)
    if not facts.slot_available and takes_a_slot(current, proposal):
        if facts.collision_strategy == "CANCEL_NEW":
            return _cancel_new(facts, now)
        return _wait(facts, now)
    return _accept(facts, proposed, now, retry=is_retry(from_type, proposed))


def _wait(facts: RunFacts, now: dt.datetime) -> Decision:
    """No slot: the run waits in AwaitingConcurrencySlot (kept as is when it already waits)."""
    current = facts.state
    if current is not None and current.name == "AwaitingConcurrencySlot":
        return Decision(SetStateStatus.WAIT, current, reason=_NO_SLOT)
    when = current.details.scheduled_time if current is not None else None
    waiting = AwaitingConcurrencySlot(_NO_SLOT, scheduled_time=when or now)
    accepted = _accept(facts, waiting, now, retry=False)
    return Decision(SetStateStatus.WAIT, accepted.state, _NO_SLOT, True, accepted.changes)


def _cancel_new(facts: RunFacts, now: dt.datetime) -> Decision:
    """No slot and the deployment's strategy is CANCEL_NEW: the run is cancelled, not started."""
    accepted = _accept(facts, Cancelled(_CANCELLED_NEW), now, retry=False)
    return Decision(SetStateStatus.WAIT, accepted.state, _CANCELLED_NEW, True, accepted.changes)


_NO_SLOT = "the deployment is at its concurrency limit; the run waits for a free slot"
_CANCELLED_NEW = (
    "cancelled: the deployment is at its concurrency limit and its collision strategy is CANCEL_NEW"
)


def _reject(current: State | None, proposed: State, reason: str) -> Decision:
    return Decision(
        SetStateStatus.REJECT, current if current is not None else proposed, reason=reason
    )


def _accept(facts: RunFacts, proposed: State, now: dt.datetime, *, retry: bool) -> Decision:
    details = proposed.details.model_copy()
    if proposed.type is StateType.SCHEDULED and details.scheduled_time is None:
        details.scheduled_time = now
    if retry:
        details.retry = True
    state = proposed.model_copy(update={"timestamp": now, "details": details})
    changes: dict[str, Any] = {}
    current = facts.state
    was_running = current is not None and current.type is StateType.RUNNING
    if was_running and current is not None:
        elapsed = max(0.0, (now - current.timestamp).total_seconds())
        changes["total_run_time"] = facts.total_run_time + elapsed
    # A run resumed in the process that paused it continues the same attempt (when it had one:
    # a run paused before it ever ran starts its first).
    resumed = current is not None and current.type is StateType.PAUSED and facts.run_count > 0
    if state.type is StateType.RUNNING and not was_running and not resumed:
        changes["run_count"] = facts.run_count + 1
        if facts.start_time is None:
            changes["start_time"] = now
    elif (
        state.type is StateType.RUNNING
        and state.name == "Retrying"
        and (current is None or current.name != "Retrying")
    ):
        changes["run_count"] = facts.run_count + 1
        if facts.start_time is None:  # a run paused before it ever ran, now retried
            changes["start_time"] = now
    if state.type in FINAL_TYPES:
        changes["end_time"] = now
    elif facts.end_time is not None:
        changes["end_time"] = None
    if state.type is StateType.PAUSED:
        # when the pause expires: the paused-runs service fails the run then (None: never)
        changes["next_scheduled_start_time"] = details.pause_timeout
    if state.type is StateType.SCHEDULED:
        changes["next_scheduled_start_time"] = details.scheduled_time
        if facts.expected_start_time is None:
            changes["expected_start_time"] = details.scheduled_time
    elif facts.expected_start_time is None and state.type in (StateType.PENDING, StateType.RUNNING):
        changes["expected_start_time"] = now
    return Decision(SetStateStatus.ACCEPT, state, store=True, changes=changes)
