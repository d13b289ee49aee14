"""Secret values never stored in run parameters or logs, end to end: a real server process and a
flow run in a real subprocess that gets a stored secret's value as a parameter (not via
``Secret.get``, so the SDK cannot know it) and prints and logs it; the stored run parameters and log
lines show the mask. A value set after the server started is masked too (the mask is rebuilt when a
secret changes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tideflow.testing import ServerProcess

VALUE = "sk-live-" + uuid.uuid4().hex

FLOW = """
import os, sys
from tideflow import flow, get_run_logger
from tideflow.runtime import flow_run

@flow(log_prints=True)
def call_api(token: str, options: dict) -> None:
    print(f"calling with token {token}")
    get_run_logger().warning("retrying with %s", options["auth"][0])
    print(f"RUN-ID {flow_run.id}", file=sys.stderr)

call_api(os.environ["THE_TOKEN"], {"auth": [os.environ["THE_TOKEN"] + "-suffix"], "n": 1})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("redact"), startup_timeout=120) as proc:
        yield proc


def test_a_stored_secret_passed_as_a_parameter_is_masked_in_parameters_and_logs(
    server: ServerProcess, tmp_path: Path
) -> None:
    with httpx.Client(
        base_url=server.api_url, timeout=30, headers={"X-Tideflow-Client": "test"}
    ) as api:
        # A flow run first, so the mask is built (empty) before the secret exists: setting the
        # secret must rebuild it.
        script = tmp_path / "flow.py"
        script.write_text(textwrap.dedent(FLOW))
        env = {**os.environ, "TIDEFLOW_API_URL": server.api_url, "THE_TOKEN": "not-a-secret"}
        subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120,
                       capture_output=True)  # fmt: skip
        assert api.post("/secrets/", json={"name": "api-token", "value": VALUE}).status_code == 201

        env["THE_TOKEN"] = VALUE
        done = subprocess.run([sys.executable, str(script)], env=env, timeout=120,
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
        run_id = next(
            line.split()[1] for line in done.stderr.splitlines() if line.startswith("RUN-ID ")
        )
        run = api.get(f"/flow_runs/{run_id}").json()
        assert run["parameters"] == {"token": "********", "options": {"auth": ["********-suffix"],
                                                                      "n": 1}}  # fmt: skip
        logs = api.post("/logs/filter", json={"flow_run_id": [run_id]}).json()
        messages = [log["message"] for log in logs]
        assert "calling with token ********" in messages
        assert "retrying with ********-suffix" in messages
        assert VALUE not in str(run) and VALUE not in str(logs)

        # Deleted: no longer masked.
        assert api.delete("/secrets/name/api-token").status_code == 204
        done = subprocess.run([sys.executable, str(script)], env=env, timeout=120,
                              capture_output=True, text=True)  # fmt: skip
        run_id = next(
            line.split()[1] for line in done.stderr.splitlines() if line.startswith("RUN-ID ")
        )
        assert api.get(f"/flow_runs/{run_id}").json()["parameters"]["token"] == VALUE
