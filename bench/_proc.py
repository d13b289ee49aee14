"""Process plumbing shared by our benchmarks and the Prefect adapters: ports, health waits, RSS.

Imports nothing of tideflow (the Prefect adapters import it from the peer virtualenv), only the
standard library and psutil, which both virtualenvs have.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

__all__ = [
    "ROOT",
    "emit",
    "free_port",
    "http_json",
    "http_status",
    "load_average",
    "stop_process",
    "tree_rss_mib",
    "wait_http_200",
]

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return None


def http_json(method: str, url: str, body: Any = None, timeout: float = 30.0) -> Any:
    """One JSON request over loopback; raises on a non-2xx answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def wait_http_200(
    url: str,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 120.0,
    every: float = 0.01,
) -> float:
    """Poll ``url`` until it answers 200; the monotonic time it did. Raises if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(url, timeout=0.5) == 200:
            return time.monotonic()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before {url} answered")
        time.sleep(every)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / (1024 * 1024)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process (and, after ``timeout``, SIGKILL its whole tree); wait for it."""
    if proc.poll() is not None:
        return
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def load_average() -> list[float]:
    """The 1/5/15-minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def emit(records: Iterable[dict[str, Any]]) -> None:
    """Print adapter figures as JSON lines on stdout (the harness reads them)."""
    for record in records:
        sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
