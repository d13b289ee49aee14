"""``tideflow.testing.utilities.tideflow_test_harness``: a real server in a temporary home for a
block (flows run against it), the environment restored and the server stopped after; and used as a
pytest session fixture in a user's test suite (a pytest subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.runtime import flow_run
from tideflow.testing.utilities import tideflow_test_harness


@flow
def hello() -> object:
    return flow_run.id


def test_the_harness_runs_flows_on_its_own_server_and_restores_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIDEFLOW_API_URL", "http://127.0.0.1:9/api")  # a user's own setting
    monkeypatch.setenv("TIDEFLOW_HOME", "/nonexistent/home")
    with tideflow_test_harness(server_startup_timeout=120) as server:
        home = Path(os.environ["TIDEFLOW_HOME"])
        assert home.is_dir() and home.name.startswith("tideflow-test-harness-")
        assert os.environ["TIDEFLOW_API_URL"] == server.api_url
        run_id = hello()
        with SyncClient(server.api_url) as client:
            assert client.read_flow_run(run_id).state_name == "Completed"
        assert (home / "tideflow.db").exists()
    assert os.environ["TIDEFLOW_API_URL"] == "http://127.0.0.1:9/api"
    assert os.environ["TIDEFLOW_HOME"] == "/nonexistent/home"
    assert not home.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.api_url + "/health", timeout=2)


def test_as_a_pytest_session_fixture(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent("""
        import pytest
        from tideflow.testing.utilities import tideflow_test_harness

        @pytest.fixture(autouse=True, scope="session")
        def tideflow_server():
            with tideflow_test_harness(server_startup_timeout=120):
                yield
    """)
    )
    (tmp_path / "test_user_flows.py").write_text(
        textwrap.dedent("""
        from tideflow import flow, task
        from tideflow.logging import disable_run_logger, get_run_logger

        @task
        def double(x: int) -> int:
            get_run_logger().info("doubling %s", x)
            return 2 * x

        @flow
        def pipeline(x: int) -> int:
            return double(x) + 1

        def test_flow():
            assert pipeline(20) == 41

        def test_task_function_alone():
            with disable_run_logger():
                assert double.fn(4) == 8
    """)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "TIDEFLOW_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "-W", "ignore::ResourceWarning", str(tmp_path)],
        capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
