"""A server started with ``--host NAME`` answers requests whose Host is that name (before, only
TIDEFLOW_SERVER_HOST counted, so ``--host`` with a hostname got 421 for its own address)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tideflow.testing import free_port


def _resolvable_hostname() -> str:
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        pytest.skip(f"this machine's hostname {name!r} does not resolve")
    if name in ("localhost", "") or name == address:
        pytest.skip(f"this machine's hostname {name!r} is not a distinct name")
    return name


def test_the_host_given_with_the_flag_is_an_allowed_host(tmp_path: Path) -> None:
    name = _resolvable_hostname()
    port = free_port()
    env = {**os.environ, "TIDEFLOW_HOME": str(tmp_path)}
    env.pop("TIDEFLOW_SERVER_HOST", None)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tideflow", "server", "start", "--host", name, "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://{name}:{port}/api/health"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.1)
        assert answer.status_code == 200, answer.text
        foreign = httpx.get(url, headers={"Host": f"evil.example:{port}"}, timeout=5)
        assert foreign.status_code == 421
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
