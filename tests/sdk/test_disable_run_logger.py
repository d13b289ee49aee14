"""``tideflow.logging.disable_run_logger``: a task's function calling get_run_logger() runs with
``.fn()`` outside a run; inside a run, records made in the block reach neither the API nor stderr."""

from __future__ import annotations

import pytest
from sdk_helpers import log_messages

from tideflow import flow, task
from tideflow.client import SyncClient
from tideflow.engine.errors import MissingRunContext
from tideflow.logging import disable_run_logger, get_run_logger
from tideflow.runtime import flow_run


@task
def shout(word: str) -> str:
    get_run_logger().info("shouting %s", word)
    return word.upper()


def test_a_task_function_alone() -> None:
    with pytest.raises(MissingRunContext):
        shout.fn("hi")
    with disable_run_logger():
        assert shout.fn("hi") == "HI"
    with pytest.raises(MissingRunContext):  # restored after the block
        get_run_logger()


@flow
def chatty() -> object:
    get_run_logger().info("kept line")
    with disable_run_logger():
        get_run_logger().info("dropped line")
    return flow_run.id


def test_inside_a_run_records_are_dropped(
    client: SyncClient, capfd: pytest.CaptureFixture[str]
) -> None:
    run_id = chatty()
    messages = log_messages(client, run_id)
    assert "kept line" in messages and "dropped line" not in messages
    assert "dropped line" not in capfd.readouterr().err
