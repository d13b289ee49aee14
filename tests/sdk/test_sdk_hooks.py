"""State-change hooks: called with (flow, flow_run, state); a failing hook never changes the outcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sdk_helpers import log_messages, state_names

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.runtime import flow_run
from tideflow.schemas import StateType


def _recorder(calls: list[tuple[str, Any, Any, Any]], label: str) -> Any:
    def hook(flow_obj: Any, run: Any, state: Any) -> None:
        calls.append((label, flow_obj, run, state))

    return hook


def test_on_completion_gets_the_flow_the_run_and_the_completed_state(client: SyncClient) -> None:
    calls: list[tuple[str, Any, Any, Any]] = []

    @flow(on_completion=[_recorder(calls, "done")], on_failure=[_recorder(calls, "failed")])
    def hooked() -> int:
        return 5

    assert hooked() == 5
    ((label, flow_obj, run, state),) = calls
    assert label == "done" and flow_obj is hooked
    assert state.type is StateType.COMPLETED
    assert state_names(client, run.id)[-1] == "Completed" and run.flow_name == "hooked"


def test_on_failure_gets_the_failed_state(client: SyncClient) -> None:
    calls: list[tuple[str, Any, Any, Any]] = []

    @flow(on_completion=[_recorder(calls, "done")], on_failure=[_recorder(calls, "failed")])
    def hooked_fail() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        hooked_fail()
    ((label, _, run, state),) = calls
    assert (
        label == "failed" and state.type is StateType.FAILED and state.message == "ValueError: nope"
    )
    assert run.run_count == 1


def test_on_failure_runs_once_after_the_retries(client: SyncClient) -> None:
    calls: list[tuple[str, Any, Any, Any]] = []

    @flow(retries=2, on_failure=[_recorder(calls, "failed")])
    def fails_thrice() -> None:
        raise ValueError("x")

    with pytest.raises(ValueError):
        fails_thrice()
    assert len(calls) == 1 and calls[0][2].run_count == 3


def test_a_raising_hook_is_logged_and_changes_nothing(client: SyncClient) -> None:
    seen: list[Any] = []

    def bad_hook(flow_obj: Any, run: Any, state: Any) -> None:
        raise RuntimeError("hook is broken")

    @flow(on_completion=[bad_hook, _recorder(seen, "second")])  # type: ignore[arg-type]
    def returns_after_bad_hook() -> str:
        seen.append(flow_run.id)
        return "value"

    assert returns_after_bad_hook() == "value"
    run_id = seen[0]
    assert seen[1][0] == "second"  # later hooks still run
    assert state_names(client, run_id)[-1] == "Completed"
    (message,) = log_messages(client, run_id, level_ge=logging.ERROR)
    assert (
        "Hook 'bad_hook' (on_completion) raised an exception" in message
        and "hook is broken" in message
    )


def test_on_crashed_for_an_interrupt(client: SyncClient) -> None:
    calls: list[tuple[str, Any, Any, Any]] = []

    @flow(on_crashed=[_recorder(calls, "crashed")], on_failure=[_recorder(calls, "failed")])
    def interrupted() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        interrupted()
    ((label, _, run, state),) = calls
    assert label == "crashed" and state.type is StateType.CRASHED
    states = client.read_flow_run_states(run.id)
    assert states[-1].name == "Crashed" and "SystemExit: 3" in (states[-1].message or "")


def test_async_flow_awaits_async_hooks(client: SyncClient) -> None:
    calls: list[Any] = []

    async def ahook(flow_obj: Any, run: Any, state: Any) -> None:
        await asyncio.sleep(0)
        calls.append(state.name)

    @flow(on_completion=[ahook])
    async def ahooked() -> None:
        return None

    asyncio.run(ahooked())
    assert calls == ["Completed"]


def test_an_event_a_hook_emits_following_the_state_fires_without_waiting(
    client: SyncClient,
) -> None:
    # The Prefect recipe: a completion hook emits an event that follows the run's Completed state
    # (``follows=state.id``); an automation expecting it after the run's Completed event fires
    # right away, not after the engine's wait for a leader (FOLLOW_WAIT, 10 s).
    import time
    import uuid

    from tideflow.events import emit_event
    from tideflow.server.triggers.follows import FOLLOW_WAIT

    marker = uuid.uuid4().hex[:8]
    automation = client.create_automation(
        {"name": f"after-hook-{marker}", "trigger": {
            "type": "event", "after": ["tideflow.flow-run.Completed"],
            "expect": [f"hook.{marker}"], "for_each": ["tideflow.resource.id"], "within": 3600},
         "actions": [{"type": "do-nothing"}]}
    )  # fmt: skip

    def announce(flow_obj: Any, run: Any, state: Any) -> None:
        emit_event(f"hook.{marker}", {"tideflow.resource.id": f"tideflow.flow-run.{run.id}"},
                   follows=state.id)  # fmt: skip

    @flow(on_completion=[announce])
    def announced() -> int:
        return 1

    done = time.monotonic()
    assert announced() == 1
    deadline = done + FOLLOW_WAIT.total_seconds() * 3
    while not client.automation_history(automation.id):
        assert time.monotonic() < deadline, "the automation never fired"
        time.sleep(0.1)
    waited = time.monotonic() - done
    assert waited < FOLLOW_WAIT.total_seconds() * 0.6, f"it fired after {waited:.1f} s"
