"""Interactive flow runs against the session's real server: pause_flow_run waits for a resume whose
input the server checked, times out into Failed, emits Paused/Resuming events; send_input and
receive_input between runs (ordered, with_ack, respond); suspend refuses a run without deployment."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel, Field
from sdk_helpers import runs_of, state_names

from tideflow import flow, pause_flow_run, resume_flow_run, suspend_flow_run
from tideflow.client import SyncClient
from tideflow.engine.errors import FlowPauseTimeout
from tideflow.exceptions import ServerError
from tideflow.flow_runs import apause_flow_run
from tideflow.input import RunInput, receive_input, send_input
from tideflow.runtime import flow_run
from tideflow.schemas import FlowRun, FlowRunCreate, StateType
from tideflow.schemas.events import EventFilter


class Approval(BaseModel):
    approved: bool
    reviewer: str = Field(description="Who looked at it")
    level: str = "low"


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def _wait_paused(client: SyncClient, flow_name: str, timeout: float = 20) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(client, flow_name)
        if runs and runs[-1].state_type is StateType.PAUSED:
            return runs[-1]
        time.sleep(0.05)
    raise AssertionError(f"no paused run of {flow_name}")


@flow
def needs_approval(item: str) -> dict[str, Any]:
    answer = pause_flow_run(wait_for_input=Approval, timeout=60, poll_interval=0.1)
    assert isinstance(answer, Approval)
    return {"item": item, **answer.model_dump(), "run_count": flow_run.run_count}


def test_pause_waits_for_a_validated_input(client: SyncClient) -> None:
    thread, box = _in_thread(lambda: needs_approval("invoice-7"))
    run = _wait_paused(client, "needs-approval")
    assert run.state_name == "Paused" and run.state is not None
    assert run.state.details.pause_timeout is not None
    with pytest.raises(ServerError) as bad:
        resume_flow_run(run.id, {"approved": "maybe", "reviewer": "ada"})
    assert bad.value.status_code == 422 and "run_input.approved" in bad.value.detail
    assert client.read_flow_run(run.id).state_type is StateType.PAUSED
    resume_flow_run(run.id, {"approved": True, "reviewer": "ada"})
    thread.join(20)
    assert box == {"value": {"item": "invoice-7", "approved": True, "reviewer": "ada",
                             "level": "low", "run_count": 1}}  # fmt: skip
    assert state_names(client, run.id)[-4:] == ["Running", "Paused", "Resuming", "Completed"]
    events = client.read_events(
        EventFilter(resource_ids=[f"tideflow.flow-run.{run.id}"], event_prefixes=["tideflow."])
    ).events
    names = {e.event for e in events}
    assert {"tideflow.flow-run.Paused", "tideflow.flow-run.Resuming"} <= names


@flow
def plain_pause() -> int:
    return pause_flow_run(wait_for_input=int, timeout=60, poll_interval=0.1) * 2


def test_a_plain_type_is_wrapped_and_answered(client: SyncClient) -> None:
    thread, box = _in_thread(plain_pause)
    run = _wait_paused(client, "plain-pause")
    schema = client.read_flow_run_input(run.id, "pause-1-schema").value
    assert schema["properties"]["value"]["type"] == "integer"
    resume_flow_run(run.id, {"value": 21})
    thread.join(20)
    assert box == {"value": 42}


@flow
def impatient() -> None:
    pause_flow_run(timeout=0.5, poll_interval=0.1)


def test_a_pause_nobody_resumes_fails_the_run(client: SyncClient) -> None:
    with pytest.raises(FlowPauseTimeout, match="nobody resumed it"):
        impatient()
    run = runs_of(client, "impatient")[-1]
    assert run.state_type is StateType.FAILED
    assert "FlowPauseTimeout" in (run.state.message or "") and "pause 'pause-1'" in (
        run.state.message or ""
    )


@flow
async def async_pause() -> str:
    answer = await apause_flow_run(wait_for_input=str, timeout=60, poll_interval=0.1)
    return f"hello {answer}"


def test_async_pause(client: SyncClient) -> None:
    thread, box = _in_thread(lambda: asyncio.run(async_pause()))
    run = _wait_paused(client, "async-pause")
    resume_flow_run(run.id, {"value": "ada"})
    thread.join(20)
    assert box == {"value": "hello ada"}


@flow
def direct_suspend() -> None:
    suspend_flow_run(timeout=60)


def test_suspend_needs_a_deployment(client: SyncClient) -> None:
    with pytest.raises(RuntimeError, match="needs a deployment's run"):
        direct_suspend()


def test_outside_a_run_pause_raises_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="inside a flow run"):
        pause_flow_run()


class Number(RunInput):
    n: int


@flow
def squarer(count: int) -> list[int]:
    seen = []
    for number in receive_input(Number, timeout=20, poll_interval=0.05, with_ack=True):
        seen.append(number.n)
        number.respond(Number(n=number.n * number.n))
        if len(seen) == count:
            break
    return seen


@flow
def asker(target: UUID, numbers: list[int]) -> list[int]:
    for n in numbers:
        send_input(Number(n=n), target)
    answers = receive_input(Number, timeout=20, poll_interval=0.05)
    return [next(answers).n for _ in numbers]


def test_send_and_receive_between_runs(client: SyncClient) -> None:
    thread, box = _in_thread(lambda: squarer(3))
    deadline = time.monotonic() + 20
    while not runs_of(client, "squarer") and time.monotonic() < deadline:
        time.sleep(0.05)
    target = runs_of(client, "squarer")[-1].id
    assert asker(target, [2, 3, 4]) == [4, 9, 16]
    thread.join(20)
    assert box == {"value": [2, 3, 4]}
    # acknowledged: a later receiver with with_ack sees none of them again; without it, all
    again = receive_input(
        Number, timeout=0.2, poll_interval=0.05, flow_run_id=target, with_ack=True
    )
    assert list(again) == []
    everything = receive_input(Number, timeout=0.2, poll_interval=0.05, flow_run_id=target)
    assert [x.n for x in everything] == [2, 3, 4]


def test_plain_values_are_received_in_order_with_a_timeout_error(client: SyncClient) -> None:
    run = client.create_flow_run(FlowRunCreate(flow_name="mailbox"))
    for word in ("one", "two", "three"):
        send_input(word, run.id)
    words = receive_input(str, timeout=0.3, poll_interval=0.05, flow_run_id=run.id)
    assert list(words) == ["one", "two", "three"]
    meta = receive_input(
        str, timeout=0.3, poll_interval=0.05, flow_run_id=run.id, with_metadata=True,
        exclude_keys=set(),
    )  # fmt: skip
    first = next(meta)
    assert first.value == "one" and first.metadata.key.startswith("str-auto-")
    with pytest.raises(RuntimeError, match="received from a flow run"):
        first.respond("nobody to answer")
    waiting = receive_input(
        int, timeout=0.2, poll_interval=0.05, flow_run_id=run.id, raise_timeout_error=True
    )
    with pytest.raises(TimeoutError, match="int-auto"):
        next(waiting)
