"""The state schemas and the transition table: every (from, to) type pair, retries, force.

The expected table is written out here on purpose (not read from ALLOWED_TRANSITIONS), so a change to
the rules has to change this spec too.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tideflow.schemas import states as st
from tideflow.schemas.states import FINAL_TYPES, State, StateType, is_retry, transition_refusal

S, P, R = StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING
C, F, X = StateType.COMPLETED, StateType.FAILED, StateType.CRASHED
CG, CD, PA = StateType.CANCELLING, StateType.CANCELLED, StateType.PAUSED

# from -> to-types allowed without force, for a state that has the type's default name.
EXPECTED: dict[StateType | None, set[StateType]] = {
    None: {S, P, R},
    S: {S, P, R, F, X, CG, CD, PA},
    P: {S, P, R, F, X, CG, CD, PA},
    R: {S, R, C, F, X, CG, CD, PA},
    PA: {S, P, R, F, X, CG, CD},
    CG: {C, F, X, CD},
    C: set(),
    F: set(),
    X: set(),
    CD: set(),
}
# Out of FAILED/CRASHED, default-named SCHEDULED and PENDING count as retries (allowed).
RETRY_DEFAULTS: set[tuple[StateType, StateType]] = {(F, S), (F, P), (X, S), (X, P)}

FROM_TYPES: list[StateType | None] = [None, *StateType]
PAIRS = list(itertools.product(FROM_TYPES, list(StateType)))


def _label(value: StateType | None) -> str:
    return "NONE" if value is None else value.value


def test_table_covers_every_from_type() -> None:
    assert set(st.ALLOWED_TRANSITIONS) == set(FROM_TYPES)
    assert {k: set(v) for k, v in st.ALLOWED_TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(
    ("from_type", "to_type"), PAIRS, ids=[f"{_label(a)}->{_label(b)}" for a, b in PAIRS]
)
def test_every_type_pair(from_type: StateType | None, to_type: StateType) -> None:
    to = State(type=to_type)
    reason = transition_refusal(from_type, to)
    allowed = to_type in EXPECTED[from_type] or (from_type, to_type) in RETRY_DEFAULTS
    if allowed:
        assert reason is None
        return
    assert reason is not None
    assert "\n" not in reason
    assert to_type.value in reason
    if from_type is None:
        assert "start" in reason and "SCHEDULED, PENDING or RUNNING" in reason
    else:
        assert from_type.value in reason
    # force overrides every rule
    assert transition_refusal(from_type, to, force=True) is None


@pytest.mark.parametrize("final", sorted(FINAL_TYPES))
def test_final_state_reason_explains_the_ways_out(final: StateType) -> None:
    reason = transition_refusal(final, st.Running())
    assert reason is not None
    assert "final state" in reason and "retry" in reason and "force" in reason


@pytest.mark.parametrize("from_type", [F, X])
@pytest.mark.parametrize(
    "make", [st.AwaitingRetry, st.Retrying, st.Scheduled, st.Pending], ids=lambda f: f.__name__
)
def test_retries_out_of_failed_and_crashed(from_type: StateType, make: object) -> None:
    to = make()  # type: ignore[operator]
    assert is_retry(from_type, to)
    assert transition_refusal(from_type, to) is None


@pytest.mark.parametrize("from_type", [C, CD])
@pytest.mark.parametrize(
    "make", [st.AwaitingRetry, st.Retrying, st.Scheduled, st.Pending], ids=lambda f: f.__name__
)
def test_no_retry_out_of_completed_or_cancelled(from_type: StateType, make: object) -> None:
    to = make()  # type: ignore[operator]
    assert not is_retry(from_type, to)
    reason = transition_refusal(from_type, to)
    assert reason is not None and from_type.value in reason


@pytest.mark.parametrize("from_type", [F, X])
@pytest.mark.parametrize(
    "to",
    [
        st.Running(),
        st.Late(),
        st.AwaitingConcurrencySlot(),
        st.Completed(),
        st.Paused(),
        st.Cancelled(),
    ],
    ids=lambda s: s.name,
)
def test_not_every_state_out_of_failed_is_a_retry(from_type: StateType, to: State) -> None:
    assert not is_retry(from_type, to)
    assert transition_refusal(from_type, to) is not None


@pytest.mark.parametrize("from_type", [None, S, P, R, PA, CG])
def test_retry_only_leaves_failed_or_crashed(from_type: StateType | None) -> None:
    assert not is_retry(from_type, st.AwaitingRetry())
    assert not is_retry(from_type, st.Retrying())


@pytest.mark.parametrize(
    ("make", "type_", "name"),
    [
        (st.Scheduled, S, "Scheduled"),
        (st.Late, S, "Late"),
        (st.AwaitingRetry, S, "AwaitingRetry"),
        (st.AwaitingConcurrencySlot, S, "AwaitingConcurrencySlot"),
        (st.Pending, P, "Pending"),
        (st.Running, R, "Running"),
        (st.Retrying, R, "Retrying"),
        (st.Completed, C, "Completed"),
        (st.Failed, F, "Failed"),
        (st.TimedOut, F, "TimedOut"),
        (st.Crashed, X, "Crashed"),
        (st.Cancelling, CG, "Cancelling"),
        (st.Cancelled, CD, "Cancelled"),
        (st.Paused, PA, "Paused"),
    ],
)
def test_constructors(make: object, type_: StateType, name: str) -> None:
    state: State = make("why")  # type: ignore[operator]
    assert (state.type, state.name, state.message) == (type_, name, "why")
    assert state.is_final == (type_ in FINAL_TYPES)
    assert make.__name__ == name  # type: ignore[attr-defined]
    if type_ is S:
        assert state.details.scheduled_time is not None
    else:
        assert state.details.scheduled_time is None


def test_constructor_keeps_scheduled_time_details_and_data() -> None:
    when = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    state = st.Scheduled(scheduled_time=when, data={"x": 1}, exit_code=3, custom="kept")
    assert state.details.scheduled_time == when
    assert state.details.exit_code == 3
    assert state.details.model_extra == {"custom": "kept"}
    assert state.data == {"x": 1}
    assert st.Running(name="Custom").name == "Custom"


def test_default_name_and_predicates() -> None:
    assert State(type=CG).name == "Cancelling"
    assert FINAL_TYPES == {C, F, X, CD}
    assert st.Completed().is_completed() and not st.Failed().is_completed()
    assert st.Failed().is_failed() and st.Crashed().is_failed() and not st.Cancelled().is_failed()
    assert st.Late().is_scheduled() and st.Retrying().is_running()


def test_same_proposal_compares_type_name_and_message() -> None:
    a = st.Running("go")
    assert a.same_proposal(
        st.Running("go")
    )  # a different id and timestamp is still the same proposal
    assert not a.same_proposal(st.Running("other"))
    assert not a.same_proposal(st.Retrying("go"))
    assert not st.Failed("x").same_proposal(st.TimedOut("x"))


def test_state_round_trips_through_json() -> None:
    state = st.Failed("boom", exit_code=1)
    again = State.model_validate_json(state.model_dump_json())
    assert again == state
