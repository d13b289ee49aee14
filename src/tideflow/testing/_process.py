"""ServerProcess: a real ``tideflow server start`` subprocess, for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from tideflow.exceptions import TideflowError

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """Start ``python -m tideflow server start`` on a free port and wait until it is healthy.

    Use as a context manager; ``stop()`` sends SIGTERM and waits, ``kill()`` sends SIGKILL,
    ``restart()`` stops and starts it again on the same port and database.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        port: int | None = None,
        home: str | Path | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if home is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tideflow-server-")
            home = self._tmp.name
        self.home = Path(home)
        self.port = port or free_port()
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.home / 'tideflow.db'}"
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log_path = self.home / f"server-{self.port}.log"
        # A loaded machine (CI beside other jobs) may need longer than the 30 s default.
        self.startup_timeout = startup_timeout or float(
            os.environ.get("TIDEFLOW_TEST_SERVER_STARTUP_TIMEOUT", "30")
        )
        self._env = env or {}
        self.args = args  # more `server start` options (``--no-services``)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            # __exit__ does not run when __enter__ raises: the temporary home goes now (left
            # behind, its finalizer's ResourceWarning fails a test session run with -W error).
            if self._tmp is not None:
                self._tmp.cleanup()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def output_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def start(self) -> None:
        """Start the process and wait for /api/health; raise with its output when it fails."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TIDEFLOW_HOME": str(self.home), **self._env}
        env.pop("TIDEFLOW_API_URL", None)
        cmd = [
            sys.executable, "-m", "tideflow", "server", "start",
            "--host", "127.0.0.1", "--port", str(self.port), "--database-url", self.database_url,
            *self.args,
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._healthy():
                return
            if self.proc.poll() is not None:
                raise TideflowError(
                    f"the server exited with code {self.proc.returncode} while starting:\n"
                    f"{self.output_tail()}"
                )
            time.sleep(0.05)
        self.kill()
        raise TideflowError(
            f"the server did not become healthy within {self.startup_timeout:.0f} s:\n"
            f"{self.output_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in ``timeout``. The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL (no graceful shutdown) and wait. The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def restart(self) -> None:
        self.stop()
        self.start()
