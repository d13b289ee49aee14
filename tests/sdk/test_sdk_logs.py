"""Run logs: get_run_logger and log_prints reach the server's logs; sending never blocks a flow."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import time
import uuid
from typing import Any

import pytest
from sdk_helpers import log_messages, state_names

from tideflow import flow, get_run_logger
from tideflow.client import SyncClient
from tideflow.engine.log_worker import LogWorker
from tideflow.engine.logging import configure_run_logging
from tideflow.exceptions import ServerUnreachable, TideflowError
from tideflow.runtime import flow_run
from tideflow.schemas import LogCreate, LogFilter
from tideflow.testing import ServerProcess, free_port


def test_run_logger_records_reach_the_server_and_the_console(
    client: SyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ids: list[Any] = []

    @flow(flow_run_name="logger-run")
    def logs_things(n: int) -> None:
        ids.append(flow_run.id)
        logger = get_run_logger()
        assert isinstance(logger, logging.Logger) and logger.name == "tideflow.flow_runs"
        logger.info("processing %d items", n)
        logger.warning("almost out of space")

    logs_things(3)
    logs = client.read_logs(LogFilter(flow_run_id=[ids[0]]))
    assert [(log.level, log.message) for log in logs] == [
        (logging.INFO, "processing 3 items"),
        (logging.WARNING, "almost out of space"),
    ]
    assert all(log.name == "tideflow.flow_runs" for log in logs)
    err = capsys.readouterr().err
    assert "| INFO    | Flow run 'logger-run' - processing 3 items" in err
    assert "| WARNING | Flow run 'logger-run' - almost out of space" in err


def test_get_run_logger_outside_a_run_is_a_clear_error() -> None:
    with pytest.raises(TideflowError, match=r"get_run_logger\(\) was called outside a flow run"):
        get_run_logger()


def test_log_prints_captures_print_in_the_flow_and_its_subflows(
    client: SyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ids: dict[str, Any] = {}

    @flow
    def printing_child() -> None:
        ids["child"] = flow_run.id
        print("from the child", 1)

    @flow(log_prints=True)
    def printing_parent() -> None:
        ids["parent"] = flow_run.id
        print("hello", "world", sep="-")
        print("to stderr, not captured", file=sys.stderr)
        printing_child()

    printing_parent()
    assert log_messages(client, ids["parent"]) == ["hello-world"]
    assert client.read_logs(LogFilter(flow_run_id=[ids["parent"]]))[0].level == logging.INFO
    assert log_messages(client, ids["child"]) == ["from the child 1"]
    out = capsys.readouterr()
    assert (
        "hello-world\n" in out.out and "from the child 1\n" in out.out
    )  # still printed to the terminal
    assert "hello-world" not in out.err  # not repeated as a console log line


def test_print_is_not_captured_without_log_prints(
    client: SyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    ids: list[Any] = []

    @flow
    def plain_print() -> None:
        ids.append(flow_run.id)
        print("just printing")

    @flow(log_prints=False)
    def parent_off() -> None:
        plain_print()

    @flow(log_prints=True)
    def explicit_off_child_parent() -> None:
        plain_print.with_options(log_prints=False)()

    parent_off()
    explicit_off_child_parent()
    assert log_messages(client, ids[0]) == [] and log_messages(client, ids[1]) == []
    assert capsys.readouterr().out.count("just printing") == 2


def test_failure_traceback_goes_to_the_logs_at_error(client: SyncClient) -> None:
    ids: list[Any] = []

    @flow
    def broken() -> None:
        ids.append(flow_run.id)
        {}["key"]

    with pytest.raises(KeyError):
        broken()
    (message,) = log_messages(client, ids[0], level_ge=logging.ERROR)
    assert message.startswith(
        "Encountered exception during execution:\nTraceback (most recent call last):"
    )
    assert 'in broken\n    {}["key"]' in message and message.rstrip().endswith("KeyError: 'key'")
    assert "tideflow/engine" not in message  # the engine's frames are trimmed


def test_logging_level_setting_filters_records(
    client: SyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEFLOW_LOGGING_LEVEL", "WARNING")
    ids: list[Any] = []

    @flow
    def quiet() -> None:
        ids.append(flow_run.id)
        get_run_logger().info("not shown")
        get_run_logger().error("shown")

    try:
        quiet()
    finally:
        configure_run_logging("INFO")
    assert log_messages(client, ids[0]) == ["shown"]


def test_async_flow_logs(client: SyncClient) -> None:
    ids: list[Any] = []

    @flow(log_prints=True)
    async def alogs() -> None:
        ids.append(flow_run.id)
        get_run_logger().info("async log")
        print("async print")

    asyncio.run(alogs())
    assert log_messages(client, ids[0]) == ["async log", "async print"]


def _record(i: int) -> LogCreate:
    return LogCreate(
        flow_run_id=uuid.uuid4(),
        name="t",
        level=20,
        message=f"m{i}",
        timestamp=dt.datetime.now(dt.UTC),
    )


def test_log_buffer_never_blocks_and_drops_oldest_when_the_api_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_run_logging("INFO")  # installs the warning line's console handler
    dead = f"http://127.0.0.1:{free_port()}/api"
    worker = LogWorker(dead, interval=0.05, max_buffer=50)
    started = time.monotonic()
    for i in range(5000):
        worker.enqueue(_record(i))
    assert time.monotonic() - started < 2  # enqueueing never waits on the network
    time.sleep(0.2)  # a few send cycles fail against the dead port
    assert worker.pending == 50
    started = time.monotonic()
    assert worker.flush(timeout=3) is True  # one cycle tried and gave up: the flush is bounded
    assert time.monotonic() - started < 3
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "dropped" in line]
    assert len(warnings) == 1, err
    assert (
        f"dropped 4950 run-log records: the log buffer (logs_max_buffer=50) was full while the API at {dead}"
        in warnings[0]
    )
    assert worker.pending == 50  # still kept for when the API comes back


def test_server_down_mid_run_buffers_logs_and_delivers_them_after_restart(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ServerProcess(home=tmp_path / "server") as server:
        monkeypatch.setenv("TIDEFLOW_API_URL", server.api_url)
        timings: dict[str, float] = {}
        ids: list[Any] = []

        @flow
        def survives_outage() -> str:
            ids.append(flow_run.id)
            logger = get_run_logger()
            logger.info("before outage")
            server.stop()
            started = time.monotonic()
            for i in range(200):
                logger.info("during outage %d", i)
            timings["logging"] = time.monotonic() - started
            time.sleep(0.3)  # the log worker tries (and fails) to send meanwhile
            server.start()
            return "done"

        assert survives_outage() == "done"
        assert timings["logging"] < 1.0
        with SyncClient(server.api_url) as c:
            messages = log_messages(c, ids[0])
            assert messages[0] == "before outage"
            assert messages[1:] == [f"during outage {i}" for i in range(200)]
            assert state_names(c, ids[0]) == ["Pending", "Running", "Completed"]


def test_server_gone_at_the_end_of_a_run_fails_fast_with_server_unreachable(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ServerProcess(home=tmp_path / "server") as server:
        monkeypatch.setenv("TIDEFLOW_API_URL", server.api_url)
        # The final state report waits this long for a server that might be restarting
        # (tests/sdk/test_state_report_across_restart.py); then the run fails as before.
        monkeypatch.setenv("TIDEFLOW_CLIENT_STATE_REPORT_PATIENCE", "3")

        @flow
        def loses_server() -> None:
            get_run_logger().info("a record that cannot be delivered")
            server.stop()

        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match=server.api_url):
            loses_server()
        assert time.monotonic() - started < 20  # server stop (SIGTERM) + 3 s patience + log flush
