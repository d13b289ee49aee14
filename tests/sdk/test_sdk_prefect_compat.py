"""Flow features a Prefect user writes (issue 16): hook decorators, on_running, flows on methods."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sdk_helpers import state_names

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.flows import HookList
from tideflow.schemas import StateType


def test_hook_decorators_add_hooks_and_return_the_function(client: SyncClient) -> None:
    calls: list[tuple[str, str]] = []

    @flow
    def decorated(fail: bool = False) -> str:
        if fail:
            raise ValueError("no")
        return "ok"

    @decorated.on_completion
    def done(flow_obj: Any, run: Any, state: Any) -> None:
        calls.append(("completion", state.name))

    @decorated.on_failure
    def failed(flow_obj: Any, run: Any, state: Any) -> None:
        calls.append(("failure", state.name))

    @decorated.on_running
    def running(flow_obj: Any, run: Any, state: Any) -> None:
        assert state.type is StateType.RUNNING
        assert state_names(client, run.id)[-1] == "Running"  # called once the server has it
        calls.append(("running", state.name))

    assert done.__name__ == "done"  # the decorator gives the function back
    assert isinstance(decorated.on_failure, HookList) and decorated.on_failure == [failed]
    assert decorated() == "ok"
    with pytest.raises(ValueError):
        decorated(fail=True)
    assert calls == [
        ("running", "Running"), ("completion", "Completed"),
        ("running", "Running"), ("failure", "Failed"),
    ]  # fmt: skip


def test_on_running_option_and_the_other_decorators(client: SyncClient) -> None:
    calls: list[str] = []

    async def async_hook(flow_obj: Any, run: Any, state: Any) -> None:
        await asyncio.sleep(0)
        calls.append(f"async {state.name}")

    @flow(on_running=[lambda f, r, s: calls.append(f"option {s.name}"), async_hook])
    async def async_flow() -> int:
        return 1

    assert asyncio.run(async_flow()) == 1
    assert calls == ["option Running", "async Running"]
    assert callable(async_flow.on_cancellation) and callable(async_flow.on_crashed)
    # with_options keeps hooks added by decorators (a copy, not the same list)
    copy = async_flow.with_options(name="copy")
    assert copy.on_running == async_flow.on_running and copy.on_running is not async_flow.on_running


def test_bad_hooks_are_refused_naming_the_option() -> None:
    def hook(flow_obj: Any, run: Any, state: Any) -> None:
        pass

    with pytest.raises(TypeError, match="on_failure takes a list of hooks, got the single"):
        flow(on_failure=hook)(hook)  # type: ignore[arg-type]

    @flow
    def target() -> None:
        pass

    with pytest.raises(TypeError, match=r"@flow.on_completion needs a callable"):
        target.on_completion(3)  # type: ignore[arg-type]


class Pipeline:
    """Flows on an instance method, a class method and a static method, as Prefect allows."""

    factor = 10

    def __init__(self, offset: int) -> None:
        self.offset = offset

    @flow
    def instance_flow(self, x: int) -> int:
        return self.offset + x

    @flow
    @classmethod
    def class_flow(cls, x: int) -> int:
        return cls.factor * x

    @classmethod
    @flow
    def class_flow_outer(cls, x: int) -> int:
        return cls.factor + x

    @flow
    @staticmethod
    def static_flow(x: int) -> int:
        return -x

    @staticmethod
    @flow
    def static_flow_outer(x: int) -> int:
        return x * x

    @flow
    async def async_instance_flow(self, x: int) -> int:
        await asyncio.sleep(0)
        return self.offset * x


def test_flows_on_methods_bind_like_methods(client: SyncClient) -> None:
    pipeline = Pipeline(offset=5)
    assert pipeline.instance_flow(2) == 7
    assert pipeline.instance_flow(x=3) == 8
    assert Pipeline.class_flow(3) == 30 and pipeline.class_flow(4) == 40
    assert Pipeline.class_flow_outer(1) == 11
    assert Pipeline.static_flow(3) == -3 and pipeline.static_flow(2) == -2
    assert Pipeline.static_flow_outer(3) == 9
    assert asyncio.run(pipeline.async_instance_flow(3)) == 15
    params: dict[str, list[dict[str, Any]]] = {}
    for run in client.read_flow_runs():
        params.setdefault(run.flow_name or "", []).append(run.parameters)
    # self/cls are bound, not parameters of the run
    assert sorted(p["x"] for p in params["instance-flow"]) == [2, 3]
    assert sorted(p["x"] for p in params["class-flow"]) == [3, 4]
    assert params["static-flow"] == [{"x": 2}, {"x": 3}] or params["static-flow"] == [
        {"x": 3},
        {"x": 2},
    ]
    assert Pipeline.instance_flow.name == "instance-flow"
    assert pipeline.instance_flow.with_options(name="renamed")(1) == 6
