"""The local server's pid file (``$TIDEFLOW_HOME/server.pid``, JSON): written and removed by the
server itself, read by ``tideflow server status|stop`` and the SDK's auto-start.

Kept apart from the HTTP client so that ``tideflow server start`` does not load httpx for it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tideflow.settings import Settings

__all__ = [
    "PID_FILE",
    "LocalServer",
    "local_api_url",
    "pid_file_path",
    "pid_running",
    "process_alive",
    "read_pid_file",
    "remove_pid_file",
    "write_pid_file",
]

PID_FILE = "server.pid"


@dataclass(frozen=True)
class LocalServer:
    """What the pid file says about a server started from this ``TIDEFLOW_HOME``."""

    pid: int
    api_url: str
    database: str
    started: str


def local_api_url(settings: Settings) -> str:
    """The local server's API URL (``http://{server_host}:{server_port}/api``)."""
    return settings.local_api_url


def pid_file_path(settings: Settings) -> Path:
    return settings.home / PID_FILE


def write_pid_file(settings: Settings, *, api_url: str, database: str) -> LocalServer:
    """Record this process as the local server (atomically; ``database`` must already be masked)."""
    info = LocalServer(
        pid=os.getpid(),
        api_url=api_url,
        database=database,
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    path = pid_file_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{PID_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(info)) + "\n")
    tmp.replace(path)
    return info


def read_pid_file(settings: Settings) -> LocalServer | None:
    """The pid file's contents, or None when it is missing or unreadable (a torn or foreign file)."""
    try:
        data = json.loads(pid_file_path(settings).read_text())
        return LocalServer(
            pid=int(data["pid"]),
            api_url=str(data["api_url"]),
            database=str(data.get("database", "")),
            started=str(data.get("started", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_pid_file(settings: Settings, *, only_pid: int | None = None) -> bool:
    """Delete the pid file (when ``only_pid`` is given, only if it still names that pid)."""
    path = pid_file_path(settings)
    if only_pid is not None:
        info = read_pid_file(settings)
        if info is None or info.pid != only_pid:
            return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def pid_running(pid: int) -> bool:
    """True while ``pid`` exists and is not an exited, unreaped child (without procfs, or when its
    stat cannot be read, signal 0 is all there is to go on)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name; Z is an exited, unreaped child.
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def process_alive(pid: int) -> bool:
    """True when ``pid`` is a running tideflow process (zombies and recycled pids do not count)."""
    if not pid_running(pid):
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():  # no procfs (macOS): signal 0 is all we can check
        return True
    try:
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    # A pid reused by some other program must never be signalled as if it were our server.
    return b"tideflow" in cmdline
