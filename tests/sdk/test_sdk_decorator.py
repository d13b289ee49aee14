"""The @flow decorator and the Flow object, without running anything."""

from __future__ import annotations

import inspect

import pytest

from tideflow import Flow, flow


def my_etl_flow(source: str, limit: int = 10) -> list[str]:
    """Extract and load.

    More text."""
    return [source] * limit


def test_bare_decorator_defaults() -> None:
    f = flow(my_etl_flow)
    assert isinstance(f, Flow)
    assert f.name == "my-etl-flow"
    assert f.description == "Extract and load.\n\nMore text."
    assert f.fn is my_etl_flow
    assert f.retries == 0 and f.timeout_seconds is None and f.validate_parameters is True
    assert f.tags == [] and f.version is None and f.log_prints is None


def test_options_are_kept() -> None:
    def hook(flow, flow_run, state):  # type: ignore[no-untyped-def]
        return None

    f = flow(
        name="etl",
        description="d",
        version="1.2",
        log_prints=True,
        retries=2,
        retry_delay_seconds=[1, 2.5],
        timeout_seconds=3,
        validate_parameters=False,
        flow_run_name="etl-{source}",
        tags=["a", "b"],
        on_completion=[hook],
    )(my_etl_flow)
    assert (f.name, f.description, f.version, f.log_prints) == ("etl", "d", "1.2", True)
    assert f.retries == 2 and f.retry_delay_seconds == [1.0, 2.5] and f.timeout_seconds == 3
    assert f.validate_parameters is False and f.flow_run_name == "etl-{source}"
    assert f.tags == ["a", "b"] and f.on_completion == [hook] and f.on_failure == []


def test_signature_and_metadata_are_the_function_s() -> None:
    f = flow(my_etl_flow)
    assert inspect.signature(f) == inspect.signature(my_etl_flow)
    assert f.__name__ == "my_etl_flow" and f.__doc__ == my_etl_flow.__doc__


def test_with_options_returns_a_changed_copy() -> None:
    f = flow(retries=1)(my_etl_flow)
    g = f.with_options(name="other", retries=3, tags=["x"])
    assert (g.name, g.retries, g.tags) == ("other", 3, ["x"])
    assert (f.name, f.retries, f.tags) == ("my-etl-flow", 1, [])
    assert g.fn is f.fn and g is not f
    with pytest.raises(TypeError, match=r"unknown option.*retires"):
        f.with_options(retires=2)


def test_async_function_is_detected() -> None:
    async def afn(x: int) -> int:
        return x

    assert flow(afn).isasync and not flow(my_etl_flow).isasync


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"retries": -1}, ValueError, "retries must be an integer"),
        ({"retries": 1.5}, ValueError, "retries must be an integer"),
        ({"retry_delay_seconds": -2}, ValueError, "retry_delay_seconds"),
        ({"retry_delay_seconds": [1, "x"]}, ValueError, "retry_delay_seconds"),
        ({"timeout_seconds": 0}, ValueError, "timeout_seconds must be a number > 0"),
        ({"name": ""}, ValueError, "non-empty"),
        ({"name": "a/b"}, ValueError, "must not contain /"),
        ({"tags": "abc"}, TypeError, "tags must be a list"),
        ({"flow_run_name": 5}, TypeError, "flow_run_name"),
        ({"on_failure": [1]}, TypeError, "on_failure hooks must be callables"),
        ({"retrys": 1}, TypeError, "unknown option.*retrys"),
    ],
)
def test_bad_options_are_named(options: dict, error: type[Exception], match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=match):
        flow(**options)(my_etl_flow)
