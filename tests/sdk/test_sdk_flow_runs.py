"""Calling a flow runs it on a real server: states, values, errors, parameters, names, subflows."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import getpass
import os
import subprocess
import sys
from typing import Any
from uuid import UUID

import pytest
from sdk_helpers import runs_of, state_names

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.exceptions import ParameterValidationError
from tideflow.runtime import flow_run
from tideflow.schemas import StateType
from tideflow.schemas.events import EventFilter


@dataclasses.dataclass
class Cfg:
    depth: int


def test_sync_flow_returns_value_and_completes(client: SyncClient) -> None:
    seen: list[UUID | None] = []

    @flow
    def add_numbers(a: int, b: int = 2) -> int:
        seen.append(flow_run.id)
        return a + b

    assert add_numbers(1) == 3
    (run_id,) = seen
    assert run_id is not None
    assert state_names(client, run_id) == ["Pending", "Running", "Completed"]
    run = client.read_flow_run(run_id)
    assert (
        run.flow_name == "add-numbers" and run.parameters == {"a": 1, "b": 2} and run.run_count == 1
    )
    assert run.state_type is StateType.COMPLETED


def test_failing_flow_reraises_and_fails_with_type_and_message(client: SyncClient) -> None:
    seen: list[UUID | None] = []

    class BoomError(RuntimeError):
        pass

    @flow
    def explode() -> None:
        seen.append(flow_run.id)
        raise BoomError("it went boom")

    with pytest.raises(BoomError, match="it went boom"):
        explode()
    run_id = seen[0]
    assert run_id is not None
    states = client.read_flow_run_states(run_id)
    assert [s.name for s in states] == ["Pending", "Running", "Failed"]
    assert states[-1].message == "BoomError: it went boom"


def test_async_flow_returns_a_coroutine_and_runs(client: SyncClient) -> None:
    seen: list[UUID | None] = []

    @flow
    async def async_double(x: int) -> int:
        await asyncio.sleep(0.01)
        seen.append(flow_run.id)
        return 2 * x

    coro = async_double(21)
    assert asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == 42
    assert state_names(client, seen[0]) == ["Pending", "Running", "Completed"]  # type: ignore[arg-type]


def test_async_flow_failure(client: SyncClient) -> None:
    seen: list[UUID | None] = []

    @flow
    async def async_fail() -> None:
        seen.append(flow_run.id)
        raise KeyError("missing")

    with pytest.raises(KeyError):
        asyncio.run(async_fail())
    states = client.read_flow_run_states(seen[0])  # type: ignore[arg-type]
    assert states[-1].name == "Failed" and states[-1].message == "KeyError: 'missing'"


def test_parameters_are_coerced_from_type_hints(client: SyncClient) -> None:
    got: dict[str, Any] = {}

    @flow
    def typed_params(limit: int, ratio: float, when: dt.date, tags: list[str]) -> None:
        got.update(limit=limit, ratio=ratio, when=when, tags=tags, id=flow_run.id)

    typed_params("5", "0.5", "2024-01-02", ("a", "b"))  # type: ignore[arg-type]
    assert got["limit"] == 5 and got["ratio"] == 0.5 and got["when"] == dt.date(2024, 1, 2)
    assert got["tags"] == ["a", "b"]
    run = client.read_flow_run(got["id"])
    assert run.parameters == {"limit": 5, "ratio": 0.5, "when": "2024-01-02", "tags": ["a", "b"]}


def test_bad_parameter_raises_and_the_failed_run_says_why(client: SyncClient) -> None:
    called = []

    @flow
    def needs_int(limit: int) -> None:
        called.append(limit)

    with pytest.raises(ParameterValidationError) as info:
        needs_int("abc")  # type: ignore[arg-type]
    assert str(info.value) == "parameter 'limit': Input should be a valid integer, got 'abc'"
    assert not called
    (run,) = runs_of(client, "needs-int")
    states = client.read_flow_run_states(run.id)
    assert [s.name for s in states] == ["Pending", "Failed"]
    assert "parameter 'limit': Input should be a valid integer" in (states[-1].message or "")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (
            (),
            {"n": "x", "flag": "maybe"},
            r"parameter 'n': .*; parameter 'flag': Input should be a valid boolean",
        ),
        (
            (),
            {"n": 1, "cfg": {"depth": "deep"}},
            r"parameter 'cfg.depth': Input should be a valid integer, got 'deep'",
        ),
        ((), {}, r"bad arguments: missing a required argument: 'n'"),
        ((1,), {"nope": 2}, r"bad arguments: got an unexpected keyword argument 'nope'"),
    ],
)
def test_each_validation_error_names_the_parameter(args: tuple, kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    def checked(n: int, flag: bool = False, cfg: Cfg | None = None) -> None:
        return None

    with pytest.raises(ParameterValidationError, match=match):
        flow(checked)(*args, **kwargs)


def test_a_call_that_does_not_fit_the_signature_still_leaves_a_failed_run(
    client: SyncClient,
) -> None:
    @flow
    def needs_two(a: int, b: int) -> None:
        return None

    with pytest.raises(ParameterValidationError, match="missing a required argument: 'b'"):
        needs_two(1)  # type: ignore[call-arg]
    (run,) = runs_of(client, "needs-two")
    assert run.parameters == {"a": 1} and run.state_name == "Failed"
    assert "missing a required argument: 'b'" in (run.state.message or "")  # type: ignore[union-attr]


def test_validate_parameters_false_passes_values_through(client: SyncClient) -> None:
    got: list[Any] = []

    @flow(validate_parameters=False)
    def untyped_pass(limit: int) -> None:
        got.append(limit)

    untyped_pass("abc")  # type: ignore[arg-type]
    assert got == ["abc"]


def test_non_json_parameters_are_sent_as_repr(client: SyncClient) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing 7>"

    ids: list[UUID | None] = []

    @flow
    def takes_thing(thing: Any, when: dt.datetime, nested: dict) -> None:  # type: ignore[type-arg]
        ids.append(flow_run.id)

    takes_thing(Thing(), dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC), {"k": Thing()})
    run = client.read_flow_run(ids[0])  # type: ignore[arg-type]
    assert run.parameters == {
        "thing": "<Thing 7>",
        "when": "2024-05-06T07:08:00Z",
        "nested": {"k": "<Thing 7>"},
    }


def test_flow_run_name_template_and_callables(client: SyncClient) -> None:
    names: list[str | None] = []

    @flow(flow_run_name="etl-{source}-{limit}")
    def etl_named(source: str, limit: int = 3) -> None:
        names.append(flow_run.name)

    etl_named("s3")
    assert names[-1] == "etl-s3-3"

    @flow(flow_run_name=lambda: "from-callable")
    def callable_named() -> None:
        names.append(flow_run.name)

    callable_named()
    assert names[-1] == "from-callable"

    @flow(flow_run_name=lambda params: f"p-{params['x']}")
    def params_named(x: int) -> None:
        names.append(flow_run.name)

    params_named("9")  # type: ignore[arg-type]
    assert names[-1] == "p-9"
    assert runs_of(client, "params-named")[0].name == "p-9"


def test_flow_run_name_with_unknown_field_is_a_clear_error(client: SyncClient) -> None:
    @flow(flow_run_name="etl-{nope}")
    def badly_named(source: str) -> None:
        return None

    with pytest.raises(
        ValueError, match=r"uses \{nope\}, which is not one of its parameters \(source\)"
    ):
        badly_named("x")
    assert runs_of(client, "badly-named") == []


def test_runtime_flow_run_inside_and_outside(client: SyncClient) -> None:
    assert (flow_run.id, flow_run.name, flow_run.flow_name, flow_run.parameters, flow_run.run_count) == (
        None, None, None, {}, 0,
    )  # fmt: skip
    seen: dict[str, Any] = {}

    @flow(name="runtime-probe", tags=["t1"])
    def probe(x: int) -> None:
        seen.update(
            id=flow_run.id, name=flow_run.name, flow_name=flow_run.flow_name,
            parameters=flow_run.parameters, run_count=flow_run.run_count,
        )  # fmt: skip

    probe("4")  # type: ignore[arg-type]
    run = client.read_flow_run(seen["id"])
    assert seen == {"id": run.id, "name": run.name, "flow_name": "runtime-probe", "parameters": {"x": 4},
                    "run_count": 1}  # fmt: skip
    assert run.tags == ["t1"]
    assert flow_run.id is None


def test_subflow_run_links_to_its_parent(client: SyncClient) -> None:
    ids: dict[str, Any] = {}

    @flow
    def child_flow(x: int) -> int:
        ids["child"] = flow_run.id
        return x + 1

    @flow
    def parent_flow() -> int:
        ids["parent"] = flow_run.id
        value = child_flow(1)
        assert flow_run.id == ids["parent"]  # the parent's context is back after the subflow
        return value * 10

    assert parent_flow() == 20
    child = client.read_flow_run(ids["child"])
    assert child.parent_flow_run_id == ids["parent"] and child.state_name == "Completed"
    assert client.read_flow_run(ids["parent"]).parent_flow_run_id is None


def test_async_subflow_in_async_parent(client: SyncClient) -> None:
    ids: dict[str, Any] = {}

    @flow
    async def achild() -> str:
        ids["child"] = flow_run.id
        return "c"

    @flow
    async def aparent() -> str:
        ids["parent"] = flow_run.id
        return await achild() + "p"

    assert asyncio.run(aparent()) == "cp"
    assert client.read_flow_run(ids["child"]).parent_flow_run_id == ids["parent"]


def test_refused_state_says_the_run_was_cancelled(client: SyncClient) -> None:
    from tideflow.engine.errors import FlowRunCancelled

    seen: list[Any] = []

    def on_cancel(flow_obj: Any, run: Any, state: Any) -> None:
        seen.append(("hook", state.type, run.id))

    @flow(on_cancellation=[on_cancel])
    def cancelled_midway() -> str:
        env = {**os.environ, "TIDEFLOW_API_URL": client.api_url}
        proc = subprocess.run(
            [sys.executable, "-m", "tideflow", "flow-run", "cancel", str(flow_run.id)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        seen.append(flow_run.id)
        return "done"

    with pytest.raises(
        FlowRunCancelled, match=r"was cancelled while it ran; the server refused state Completed"
    ):
        cancelled_midway()
    run_id = seen[0]
    assert seen[1] == ("hook", StateType.CANCELLED, run_id)
    assert state_names(client, run_id) == ["Pending", "Running", "Cancelled"]


def test_two_requests_per_trivial_run(client: SyncClient) -> None:
    from tideflow.engine.clients import sync_client
    from tideflow.settings import get_settings

    @flow
    def trivial() -> int:
        return 1

    trivial()  # the first call may resolve the server
    requests: list[str] = []
    http = sync_client(get_settings())._http

    def count(request: Any) -> None:
        requests.append(f"{request.method} {request.url.path}")

    http.event_hooks["request"].append(count)
    try:
        trivial()
    finally:
        http.event_hooks["request"].remove(count)
    # create the run (the server records Pending, then Running), then Completed: no separate
    # Running round trip, no log flush request
    assert len(requests) == 2, requests
    assert requests[0] == "POST /api/flow_runs/" and "set_state" in requests[1]


def test_a_flow_call_names_the_os_user_as_creator_of_the_run_and_its_events(
    client: SyncClient,
) -> None:
    seen: list[UUID | None] = []

    @flow
    def who_made_me() -> None:
        seen.append(flow_run.id)

    who_made_me()
    (run_id,) = seen
    assert run_id is not None
    login = getpass.getuser()
    run = client.read_flow_run(run_id)
    assert run.created_by is not None
    assert (run.created_by.type, run.created_by.id) == ("user", f"tideflow.user.{login}")
    page = client.read_events(
        EventFilter(
            resource_ids=[f"tideflow.flow-run.{run_id}"],
            event_names=["tideflow.flow-run.Completed"],
        )
    )
    (event,) = page.events
    creators = [r for r in event.related if r.role == "creator"]
    assert [(c.id, c.name) for c in creators] == [(f"tideflow.user.{login}", login)]


def test_a_flow_call_emits_pending_running_completed_events_chained_by_follows(
    client: SyncClient,
) -> None:
    """The run is created to start at once (one round trip fewer), yet passes through Pending: each
    state emits its event, each following the one before."""
    seen: list[UUID | None] = []

    @flow
    def chained() -> None:
        seen.append(flow_run.id)

    chained()
    (run_id,) = seen
    page = client.read_events(EventFilter(resource_ids=[f"tideflow.flow-run.{run_id}"]))
    events = sorted(page.events, key=lambda e: e.occurred)
    assert [e.event for e in events] == [
        "tideflow.flow-run.Pending",
        "tideflow.flow-run.Running",
        "tideflow.flow-run.Completed",
    ]
    assert events[0].follows is None
    assert events[1].follows == events[0].id and events[2].follows == events[1].id
    pending, running = (e.resource["tideflow.run-count"] for e in events[:2])
    assert (pending, running) == ("0", "1")
    states = client.read_flow_run_states(run_id)
    assert [s.type.value for s in states] == ["PENDING", "RUNNING", "COMPLETED"]
    assert states[0].timestamp < states[1].timestamp < states[2].timestamp
