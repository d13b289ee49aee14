"""decide(): every type pair, retries, force, compare-and-set, idempotent repeats, run bookkeeping,
and hypothesis property tests over random proposal sequences. Pure: no database, no clock."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as hs

from tideflow.schemas import states as st
from tideflow.schemas.actions import StateProposal
from tideflow.schemas.objects import SetStateStatus
from tideflow.schemas.states import FINAL_TYPES, State, StateType, transition_refusal
from tideflow.server.orchestration import Decision, RunFacts, decide

ACCEPT, REJECT = SetStateStatus.ACCEPT, SetStateStatus.REJECT
S, P, R = StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING
C, F, X = StateType.COMPLETED, StateType.FAILED, StateType.CRASHED
CG, CD, PA = StateType.CANCELLING, StateType.CANCELLED, StateType.PAUSED

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
# A clock far from the states' own timestamps, so "the server's now" is never confused with theirs.
PROPOSAL_TIME = dt.datetime(1999, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def prop(state: State, *, force: bool = False, expected: uuid.UUID | None = None) -> StateProposal:
    return StateProposal(state=state, force=force, expected_state_id=expected)


def stored(type_: StateType, seconds: float = 0.0, name: str = "") -> State:
    """A state as the server would have stored it (timestamp from the server clock)."""
    return State(type=type_, name=name, timestamp=at(seconds))


def _is_spec_retry(prev: StateType | None, new: State) -> bool:
    return prev in (F, X) and (
        (new.type is S and new.name in ("AwaitingRetry", "Scheduled"))
        or (new.type is R and new.name == "Retrying")
        or new.type is P
    )


@dataclass
class Run:
    """A run held in memory the way storage holds it: apply a decision's state and column changes."""

    facts: RunFacts = field(default_factory=lambda: RunFacts(state=None))
    history: list[State] = field(default_factory=list)
    next_scheduled_start_time: dt.datetime | None = None

    def propose(self, proposal: StateProposal, now: dt.datetime) -> Decision:
        decision = decide(self.facts, proposal, now)
        if decision.store:
            changes = dict(decision.changes)
            self.next_scheduled_start_time = changes.pop(
                "next_scheduled_start_time", self.next_scheduled_start_time
            )
            self.facts = dataclasses.replace(self.facts, state=decision.state, **changes)
            self.history.append(decision.state)
        return decision


# --- every pair ----------------------------------------------------------------------------------

ALLOWED: dict[StateType | None, set[StateType]] = {
    None: {S, P, R},
    S: {S, P, R, F, X, CG, CD, PA},
    P: {S, P, R, F, X, CG, CD, PA},
    R: {S, R, C, F, X, CG, CD, PA},
    PA: {S, P, R, F, X, CG, CD},
    CG: {C, F, X, CD},
    C: set(),
    F: {S, P},  # default-named Scheduled/Pending out of FAILED are retries
    X: {S, P},
    CD: set(),
}
PAIRS = list(itertools.product([None, *StateType], list(StateType)))


def _pair_id(pair: tuple[StateType | None, StateType]) -> str:
    a, b = pair
    return f"{'NONE' if a is None else a.value}->{b.value}"


@pytest.mark.parametrize("pair", PAIRS, ids=[_pair_id(p) for p in PAIRS])
def test_decide_every_type_pair(pair: tuple[StateType | None, StateType]) -> None:
    from_type, to_type = pair
    current = None if from_type is None else stored(from_type)
    proposed = State(type=to_type, message="a new message", timestamp=PROPOSAL_TIME)
    now = at(5)
    decision = decide(RunFacts(state=current), prop(proposed), now)
    if to_type in ALLOWED[from_type]:
        assert decision.status is ACCEPT and decision.store
        assert decision.reason is None
        assert decision.state.id == proposed.id
        assert (decision.state.type, decision.state.message) == (to_type, "a new message")
        assert decision.state.timestamp == now
    else:
        assert decision.status is REJECT and not decision.store
        assert decision.changes == {}
        assert decision.reason is not None and to_type.value in decision.reason
        if from_type is not None:
            assert from_type.value in decision.reason
            assert decision.state is current  # the run keeps its state
        assert decision.reason == transition_refusal(from_type, proposed)


@pytest.mark.parametrize("pair", PAIRS, ids=[_pair_id(p) for p in PAIRS])
def test_force_accepts_every_pair(pair: tuple[StateType | None, StateType]) -> None:
    from_type, to_type = pair
    current = None if from_type is None else stored(from_type)
    decision = decide(RunFacts(state=current), prop(State(type=to_type), force=True), at(1))
    assert decision.status is ACCEPT and decision.store
    assert decision.state.type is to_type


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("final", [F, X])
def test_retry_via_awaiting_retry_then_retrying(final: StateType) -> None:
    run = Run()
    run.propose(prop(st.Pending()), at(0))
    run.propose(prop(st.Running()), at(1))
    run.propose(prop(State(type=final)), at(3))
    assert run.facts.end_time == at(3) and run.facts.run_count == 1

    d = run.propose(prop(st.AwaitingRetry(scheduled_time=at(10))), at(4))
    assert d.status is ACCEPT and d.state.details.retry is True
    assert run.facts.end_time is None
    assert run.next_scheduled_start_time == at(10)

    d = run.propose(prop(st.Retrying()), at(10))
    assert d.status is ACCEPT
    assert run.facts.run_count == 2
    assert run.facts.start_time == at(1)  # the first start is kept
    run.propose(prop(st.Completed()), at(12))
    assert run.facts.total_run_time == pytest.approx(2 + 2)
    assert run.facts.end_time == at(12)


@pytest.mark.parametrize("final", [F, X])
def test_retrying_straight_out_of_failed_counts_a_run_and_marks_retry(final: StateType) -> None:
    facts = RunFacts(
        state=stored(final, 3), run_count=1, start_time=at(1), end_time=at(3), total_run_time=2.0
    )
    d = decide(facts, prop(st.Retrying()), at(4))
    assert d.status is ACCEPT and d.state.details.retry
    assert d.changes["run_count"] == 2
    assert d.changes["end_time"] is None
    assert "start_time" not in d.changes
    assert "total_run_time" not in d.changes  # a failed run does not accrue run time


@pytest.mark.parametrize("final", [C, CD])
def test_no_retry_out_of_completed_or_cancelled(final: StateType) -> None:
    d = decide(RunFacts(state=stored(final)), prop(st.AwaitingRetry()), at(1))
    assert d.status is REJECT
    assert d.reason is not None and final.value in d.reason and "final" in d.reason


def test_running_to_retrying_counts_once_and_accrues_time() -> None:
    facts = RunFacts(state=stored(R, 0), run_count=1, start_time=at(0))
    d = decide(facts, prop(st.Retrying()), at(3))
    assert d.changes["run_count"] == 2
    assert d.changes["total_run_time"] == pytest.approx(3)
    assert not d.state.details.retry  # only a retry out of a final state is flagged
    again = decide(
        dataclasses.replace(facts, state=d.state, run_count=2),
        prop(st.Retrying("attempt 3")),
        at(4),
    )
    assert "run_count" not in again.changes  # Retrying -> Retrying is not a new entry


# --- force ---------------------------------------------------------------------------------------


def test_force_out_of_completed_reopens_the_run() -> None:
    facts = RunFacts(
        state=stored(C, 5), run_count=1, start_time=at(0), end_time=at(5), total_run_time=5
    )
    refused = decide(facts, prop(st.Running()), at(6))
    assert refused.status is REJECT
    d = decide(facts, prop(st.Running(), force=True), at(6))
    assert d.status is ACCEPT
    assert d.changes["run_count"] == 2 and d.changes["end_time"] is None
    assert not d.state.details.retry


def test_force_stores_even_an_identical_proposal() -> None:
    current = stored(R)
    d = decide(RunFacts(state=current), prop(st.Running(), force=True), at(2))
    assert d.store and d.state.id != current.id and d.state.timestamp == at(2)


def test_force_between_final_states_moves_end_time() -> None:
    facts = RunFacts(state=stored(F, 5), end_time=at(5))
    d = decide(facts, prop(st.Completed(), force=True), at(9))
    assert d.status is ACCEPT and d.changes["end_time"] == at(9)


# --- compare-and-set -----------------------------------------------------------------------------


def test_compare_and_set_claims_once() -> None:
    scheduled = stored(S)
    run = Run(facts=RunFacts(state=scheduled))
    first = run.propose(prop(st.Pending("runner a"), expected=scheduled.id), at(1))
    second = run.propose(prop(st.Pending("runner b"), expected=scheduled.id), at(1))
    assert first.status is ACCEPT and first.store
    assert second.status is REJECT and not second.store
    assert second.reason is not None and "compare-and-set" in second.reason
    assert second.state is run.facts.state  # the winner's state
    assert [s.message for s in run.history] == ["runner a"]


def test_compare_and_set_on_identical_proposal_still_checks_and_stores() -> None:
    # A claim is never mistaken for an idempotent repeat: with the right id it is a real change.
    current = stored(P)
    d = decide(RunFacts(state=current), prop(st.Pending(), expected=current.id), at(1))
    assert d.status is ACCEPT and d.store and d.state.id != current.id


def test_compare_and_set_without_any_state_is_refused() -> None:
    d = decide(RunFacts(state=None), prop(st.Pending(), expected=uuid.uuid4()), at(1))
    assert d.status is REJECT and not d.store


def test_compare_and_set_does_not_bypass_the_rules() -> None:
    current = stored(C)
    d = decide(RunFacts(state=current), prop(st.Running(), expected=current.id), at(1))
    assert d.status is REJECT and d.reason is not None and "COMPLETED" in d.reason


# --- idempotent repeats --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        st.Pending,
        st.Running,
        st.Retrying,
        st.Completed,
        st.Failed,
        st.Crashed,
        st.Cancelled,
        st.Paused,
        st.Cancelling,
    ],
    ids=lambda f: f.__name__,
)
def test_identical_proposal_is_idempotent(make: object) -> None:
    current: State = make("same")  # type: ignore[operator]
    current = current.model_copy(update={"timestamp": at(0)})
    facts = RunFacts(state=current, run_count=1, start_time=at(0), total_run_time=1.0)
    d = decide(facts, prop(make("same")), at(7))  # type: ignore[operator]
    assert d.status is ACCEPT
    assert not d.store and d.changes == {}
    assert d.state is current
    assert d.reason is not None and "identical" in d.reason


def test_identical_scheduled_needs_the_same_scheduled_time() -> None:
    current = st.Scheduled(scheduled_time=at(60)).model_copy(update={"timestamp": at(0)})
    same = decide(RunFacts(state=current), prop(st.Scheduled(scheduled_time=at(60))), at(1))
    moved = decide(RunFacts(state=current), prop(st.Scheduled(scheduled_time=at(90))), at(1))
    assert not same.store and same.state is current
    assert moved.store and moved.changes["next_scheduled_start_time"] == at(90)


def test_a_different_message_is_a_new_state() -> None:
    current = st.Running("step 1").model_copy(update={"timestamp": at(0)})
    d = decide(RunFacts(state=current, run_count=1), prop(st.Running("step 2")), at(2))
    assert d.store and d.state.message == "step 2"
    assert "run_count" not in d.changes  # still the same run attempt
    assert d.changes["total_run_time"] == pytest.approx(2)


# --- bookkeeping ---------------------------------------------------------------------------------


def test_a_whole_run_bookkeeping() -> None:
    run = Run()
    run.propose(prop(st.Scheduled(scheduled_time=at(30))), at(0))
    assert run.facts.expected_start_time == at(30) and run.next_scheduled_start_time == at(30)
    assert run.facts.run_count == 0 and run.facts.start_time is None
    run.propose(prop(st.Pending()), at(31))
    assert run.facts.expected_start_time == at(30)  # set once
    run.propose(prop(st.Running()), at(32))
    assert (run.facts.run_count, run.facts.start_time) == (1, at(32))
    run.propose(prop(st.Paused()), at(35))
    assert run.facts.total_run_time == pytest.approx(3)
    run.propose(prop(st.Running("resumed")), at(50))
    # Paused -> Running is a resume in the process that paused: the same attempt goes on (issue 21)
    assert run.facts.run_count == 1
    assert run.facts.start_time == at(32)
    run.propose(prop(st.Completed()), at(54))
    assert run.facts.total_run_time == pytest.approx(7)
    assert run.facts.end_time == at(54)
    assert [s.timestamp for s in run.history] == [at(0), at(31), at(32), at(35), at(50), at(54)]


def test_a_run_paused_before_it_ran_starts_its_first_attempt_when_it_runs() -> None:
    # Resumed or retried, a run that never ran gets its run count and start time (found by the
    # random-sequence test below: Paused -> Retrying left start_time empty with run_count 1).
    for running in (st.Running("resumed"), st.Retrying()):
        run = Run()
        run.propose(prop(st.Pending()), at(1))
        run.propose(prop(st.Paused()), at(2))
        run.propose(prop(running), at(5))
        assert (run.facts.run_count, run.facts.start_time) == (1, at(5)), running.name


def test_first_state_running_sets_start_and_expected_start() -> None:
    d = decide(RunFacts(state=None), prop(st.Running()), at(3))
    assert d.changes == {"run_count": 1, "start_time": at(3), "expected_start_time": at(3)}


def test_scheduled_without_time_is_scheduled_now() -> None:
    d = decide(RunFacts(state=None), prop(State(type=S)), at(3))
    assert d.state.details.scheduled_time == at(3)
    assert d.changes["expected_start_time"] == at(3)


def test_proposal_timestamp_is_replaced_by_the_server_clock() -> None:
    d = decide(
        RunFacts(state=None),
        prop(st.Pending().model_copy(update={"timestamp": PROPOSAL_TIME})),
        at(3),
    )
    assert d.state.timestamp == at(3)


def test_run_time_never_goes_negative_when_the_clock_steps_back() -> None:
    d = decide(RunFacts(state=stored(R, 10), total_run_time=4.0), prop(st.Completed()), at(5))
    assert d.changes["total_run_time"] == 4.0


def test_decide_does_not_mutate_the_proposal() -> None:
    proposal = prop(st.AwaitingRetry().model_copy(update={"timestamp": PROPOSAL_TIME}))
    before = proposal.model_dump()
    decide(RunFacts(state=stored(F)), proposal, at(1))
    assert proposal.model_dump() == before


# --- properties over random proposal sequences ---------------------------------------------------

_MAKERS = [
    st.Scheduled, st.Late, st.AwaitingRetry, st.Pending, st.Running, st.Retrying, st.Completed,
    st.Failed, st.TimedOut, st.Crashed, st.Cancelling, st.Cancelled, st.Paused,
]  # fmt: skip


@hs.composite
def proposals(draw: hs.DrawFn) -> tuple[StateProposal, float, bool]:
    """A proposal, seconds until it arrives, and whether it carries the current state's id (CAS)."""
    make = draw(hs.sampled_from(_MAKERS))
    message = draw(hs.sampled_from([None, "a", "b"]))
    kwargs = {}
    if make in (st.Scheduled, st.Late, st.AwaitingRetry):
        kwargs["scheduled_time"] = at(draw(hs.sampled_from([0, 100])))
    state = make(message, **kwargs).model_copy(update={"timestamp": PROPOSAL_TIME})
    force = draw(hs.integers(0, 9)) == 0  # rare, or force would drown the rules
    cas = draw(hs.sampled_from(["none", "current", "stale"]))
    delay = draw(hs.sampled_from([0.0, 0.5, 1.0, 7.25]))
    expected = uuid.uuid4() if cas == "stale" else None
    return (
        StateProposal(state=state, force=force, expected_state_id=expected),
        delay,
        cas == "current",
    )


@settings(max_examples=300, deadline=None)
@given(hs.lists(proposals(), min_size=1, max_size=25))
def test_invariants_over_random_sequences(steps: list[tuple[StateProposal, float, bool]]) -> None:
    run = Run()
    clock = 0.0
    run_count = 0
    run_time = 0.0
    for proposal, delay, use_current_id in steps:
        clock += delay
        now = at(clock)
        if use_current_id and run.facts.state is not None:
            proposal = proposal.model_copy(update={"expected_state_id": run.facts.state.id})
        prev = run.facts.state
        decision = run.propose(proposal, now)
        new = run.facts.state

        event(f"{decision.status.value} store={decision.store}")
        if decision.status is REJECT:
            assert not decision.store and decision.reason
            assert new is prev
            continue
        assert decision.status is ACCEPT
        if not decision.store:  # an idempotent repeat: nothing changed
            assert new is prev and prev is not None and prev.same_proposal(proposal.state)
            continue

        assert new is not None
        # the stored state's timestamp is the server's clock, never the client's
        assert new.timestamp == now
        assert new.id == proposal.state.id
        # a final state is only ever left by force or a retry
        if prev is not None and prev.type in FINAL_TYPES:
            event("left a final state")
            assert proposal.force or _is_spec_retry(prev.type, new)
        # the reference bookkeeping, computed independently of decide()
        if prev is not None and prev.type is R:
            run_time += max(0.0, (now - prev.timestamp).total_seconds())
        if new.type is R and (
            prev is None
            or (
                prev.type is not R and not (prev.type is PA and run_count)
            )  # a resume continues the same attempt
            or (new.name == "Retrying" and prev.name != "Retrying")
        ):
            run_count += 1

        assert run.facts.run_count == run_count
        assert run.facts.total_run_time == pytest.approx(run_time)
        # end_time is set iff the current state is final
        assert (run.facts.end_time is not None) == (new.type in FINAL_TYPES)
        if new.type in FINAL_TYPES:
            assert run.facts.end_time == now
        if run_count:
            assert run.facts.start_time is not None and run.facts.start_time <= now


@settings(max_examples=200, deadline=None)
@given(hs.lists(proposals(), min_size=1, max_size=25))
def test_repeating_any_accepted_proposal_changes_nothing(
    steps: list[tuple[StateProposal, float, bool]],
) -> None:
    run = Run()
    for proposal, delay, _ in steps:
        plain = proposal.model_copy(update={"force": False, "expected_state_id": None})
        decision = run.propose(plain, at(delay))
        if decision.store:
            facts = run.facts
            again = run.propose(
                plain.model_copy(update={"state": plain.state.model_copy()}), at(delay + 1)
            )
            assert again.status is ACCEPT and not again.store
            assert run.facts is facts


# ------------------------------------------------------------------ concurrency slots (issue 3)


def test_claim_without_a_free_slot_waits_in_awaiting_concurrency_slot() -> None:
    when = at(-30)
    current = State(type=S, timestamp=at(-60), details=st.StateDetails(scheduled_time=when))
    facts = RunFacts(state=current, slot_available=False)
    decision = decide(facts, prop(st.Pending(), expected=current.id), at(0))
    assert decision.status is SetStateStatus.WAIT and decision.store
    assert decision.state.type is S and decision.state.name == "AwaitingConcurrencySlot"
    # the original scheduled time is kept, so the oldest waiting run is offered first
    assert decision.state.details.scheduled_time == when
    assert decision.changes["next_scheduled_start_time"] == when
    # waiting again changes nothing (no new state, no new offer)
    again = decide(RunFacts(state=decision.state, slot_available=False), prop(st.Pending()), at(1))
    assert again.status is SetStateStatus.WAIT and not again.store
    assert again.state == decision.state


def test_slot_matters_only_when_the_run_becomes_active() -> None:
    running = stored(R)
    # an active run moving on needs no slot; a forced change ignores the limit
    assert (
        decide(RunFacts(state=stored(P), slot_available=False), prop(st.Running()), at(1)).status
        is ACCEPT
    )
    assert (
        decide(RunFacts(state=running, slot_available=False), prop(st.Completed()), at(1)).status
        is ACCEPT
    )
    forced = decide(
        RunFacts(state=stored(S), slot_available=False), prop(st.Pending(), force=True), at(1)
    )
    assert forced.status is ACCEPT
    # a failed compare-and-set is a rejection, not a wait
    stale = decide(
        RunFacts(state=stored(S), slot_available=False),
        prop(st.Pending(), expected=uuid.uuid4()),
        at(1),
    )
    assert stale.status is REJECT
    # with a slot, the claim is accepted as before
    assert decide(RunFacts(state=stored(S)), prop(st.Pending()), at(1)).status is ACCEPT
