"""What a user sees running scripts in a fresh interpreter: errors, console output, import cost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sdk_helpers import REPO, run_script

from tideflow.testing import free_port

UNREACHABLE = """
from tideflow import flow

@flow
def my_flow():
    return 1

my_flow()
"""


def test_unreachable_server_fails_fast_with_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    proc = run_script(UNREACHABLE, {"TIDEFLOW_API_URL": url}, timeout=30)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"tideflow.exceptions.ServerUnreachable: cannot reach the tideflow API at {url}"
    )
    assert "During handling of the above exception" not in proc.stderr
    assert "The above exception was the direct cause" not in proc.stderr
    assert (
        "httpx" not in proc.stderr
        and "httpcore" not in proc.stderr
        and "ConnectError" not in proc.stderr
    )
    assert proc.stderr.count("Traceback") == 1


CONSOLE = """
from tideflow import flow, get_run_logger

@flow(name="console-demo", log_prints=True, flow_run_name="demo-{n}")
def demo(n: int):
    get_run_logger().info("working on %s", n)
    print("plain print", n)
    return n * 2

print("result", demo("21"))
"""


def test_console_shows_run_logs_with_the_run_name(sdk_server: Any) -> None:
    proc = run_script(CONSOLE, {"TIDEFLOW_API_URL": sdk_server.api_url})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["plain print 21", "result 42"]
    err = proc.stderr
    assert (
        "| INFO    | Flow run 'demo-21' - Beginning flow run 'demo-21' for flow 'console-demo'"
        in err
    )
    assert "| INFO    | Flow run 'demo-21' - working on 21" in err
    assert "| INFO    | Flow run 'demo-21' - Finished in state Completed()" in err


def test_import_is_light_and_never_loads_the_server_stack() -> None:
    code = (
        "import sys, tideflow\nfrom tideflow import flow, get_run_logger\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'starlette') if m in sys.modules]\n"
        "print(heavy)"
    )
    proc = run_script(code, {})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_hello_flow_example_runs_against_the_auto_started_local_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "TIDEFLOW_"))}
    env.update(
        TIDEFLOW_HOME=str(home), TIDEFLOW_SERVER_PORT=str(port), TIDEFLOW_SERVER_AUTOSTART="true"
    )
    try:
        proc = subprocess.run(
            [sys.executable, str(REPO / "examples" / "hello_flow.py")],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "Hello, tideflow!" in proc.stdout
        assert "hello-flow finished: greeted tideflow" in proc.stdout
        assert "Finished in state Completed" in proc.stderr
    finally:
        subprocess.run(
            [sys.executable, "-m", "tideflow", "server", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
        )
