"""`tideflow secret set|get|ls|delete` as real subprocesses against a real server with auth on: a
``read`` key lists secrets (masked) but cannot read a value; ``runner`` and above can."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tideflow.testing import ServerProcess

ADMIN = "admin-" + uuid.uuid4().hex
VALUE = "s3cr3t-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN}
    with ServerProcess(home=tmp_path_factory.mktemp("secrets"), env=env) as proc:
        yield proc


def cli(
    server: ServerProcess, *args: str, key: str = ADMIN, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TIDEFLOW_API_URL": server.api_url,
           "TIDEFLOW_API_KEY": key}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "tideflow", "secret", *args],
        capture_output=True, text=True, env=env, timeout=60, input=stdin or "",
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def _key(server: ServerProcess, scope: str) -> str:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=30) as http:
        made = http.post("/api-keys/", json={"name": scope, "scopes": [scope]})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def test_cli_secret_lifecycle_and_scopes(server: ServerProcess) -> None:
    made = cli(server, "set", "db-password", VALUE)
    assert made.returncode == 0, made.stderr
    assert "Set secret 'db-password'" in made.stdout and VALUE not in made.stdout
    from_stdin = cli(server, "set", "api-token", stdin="from-stdin-token\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    one_line_error(cli(server, "set", "db-password", "x"), "pass --overwrite to replace it")

    assert cli(server, "get", "db-password").stdout == f"{VALUE}\n"
    assert cli(server, "get", "api-token").stdout == "from-stdin-token\n"
    listed = cli(server, "ls")
    assert "db-password" in listed.stdout and "********" in listed.stdout
    assert VALUE not in listed.stdout
    as_json = json.loads(cli(server, "ls", "--json").stdout)
    assert {s["name"]: s["value"] for s in as_json} == {
        "api-token": "********",
        "db-password": "********",
    }

    # the key file the server made, mode 0600; the database holds no plaintext
    assert stat.S_IMODE((server.home / "secrets.key").stat().st_mode) == 0o600
    for stored in server.home.glob("tideflow.db*"):  # the database and its WAL
        assert VALUE.encode() not in stored.read_bytes()
    assert VALUE not in (server.log_path.read_text())

    read_key, runner_key = _key(server, "read"), _key(server, "runner")
    assert "db-password" in cli(server, "ls", key=read_key).stdout
    refused = cli(server, "get", "db-password", key=read_key)
    one_line_error(refused, "runner")
    assert VALUE not in refused.stderr + refused.stdout
    assert cli(server, "get", "db-password", key=runner_key).stdout == f"{VALUE}\n"
    one_line_error(cli(server, "set", "new-one", "v4lue", key=runner_key), "write")

    assert cli(server, "set", "db-password", "changed", "--overwrite").returncode == 0
    assert cli(server, "get", "db-password").stdout == "changed\n"
    assert cli(server, "delete", "db-password").returncode == 0
    one_line_error(cli(server, "get", "db-password"), "no secret named 'db-password'")
    one_line_error(cli(server, "delete", "db-password"), "no secret named 'db-password'")


def test_cli_refuses_bad_input_in_one_line(server: ServerProcess) -> None:
    one_line_error(cli(server, "set", "Bad Name", "v"), "secret name 'Bad Name'")
    one_line_error(cli(server, "set", "empty", ""), "must not be empty")
    long = cli(server, "set", "long", "z" * 10_001)
    one_line_error(long, "above the limit of 10000 for a secret")
    assert "zzzz" not in long.stderr
