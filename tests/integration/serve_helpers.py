"""Helpers for the serve()/runner and `tideflow deployment` tests: a serve() script run as a real
subprocess, the CLI as a subprocess, and waiting on the API (a unique module name, as in tests/sdk)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.schemas import FlowRun, FlowRunFilter, State

T = TypeVar("T")

# Flows every serve script defines. Each writes "<event> <run id> <monotonic time>" lines to $RUN_LOG
# so tests can count executions and overlaps without trusting the runner's own bookkeeping.
FLOWS = """
import os, sys, time
from tideflow import flow, serve
from tideflow.deployments import ConcurrencyLimitConfig
from tideflow.runtime import flow_run

def note(event):
    with open(os.environ["RUN_LOG"], "a") as fh:
        fh.write(f"{event} {flow_run.id} {time.time():.6f}\\n")

@flow(log_prints=True)
def etl(source: str = "s3://bucket/raw", limit: int = 100):
    note("start")
    print(f"loading {limit} rows from {source}")
    return limit

@flow
def sleeper(seconds: float = 30.0):
    note("start")
    time.sleep(seconds)
    note("end")

@flow
def broken(reason: str = "boom"):
    note("start")
    raise RuntimeError(reason)

@flow
def record():
    note("start")
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05) -> T:
    """``predicate()``'s first truthy value; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_final(client: SyncClient, run_id: UUID, timeout: float = 30.0) -> FlowRun:
    def done() -> FlowRun | None:
        run = client.read_flow_run(run_id)
        return run if run.state is not None and run.state.is_final else None

    return wait_for(done, timeout)


def state_of(client: SyncClient, run_id: UUID) -> State:
    state = client.read_flow_run(run_id).state
    assert state is not None
    return state


def runs_of_deployment(client: SyncClient, deployment_id: UUID) -> list[FlowRun]:
    return client.read_flow_runs(FlowRunFilter(deployment_id=[deployment_id], limit=1000))


def cli_env(api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update({"TIDEFLOW_API_URL": api_url, "COLUMNS": "250", **extra})
    return env


def run_cli(api_url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True, text=True, timeout=timeout, env=cli_env(api_url),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


class RunLog:
    """The lines the served flows wrote: who started when."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def entries(self) -> list[tuple[str, str, float]]:
        out = []
        for line in self.path.read_text().splitlines():
            event, run_id, stamp = line.split()
            out.append((event, run_id, float(stamp)))
        return out

    def starts(self) -> list[str]:
        return [run_id for event, run_id, _ in self.entries() if event == "start"]

    def max_overlap(self) -> int:
        """Most runs between their start and end at any one time."""
        events = sorted((t, 1 if e == "start" else -1) for e, _, t in self.entries())
        current = peak = 0
        for _, delta in events:
            current += delta
            peak = max(peak, current)
        return peak


class ServeScript:
    """A user's script calling ``serve(...)``, run with ``python script.py`` against ``api_url``."""

    def __init__(
        self,
        tmp_path: Path,
        api_url: str,
        serve_call: str,
        *,
        env: dict[str, str] | None = None,
        expect: int = 1,
        name: str = "serve_script",
    ) -> None:
        self.dir = tmp_path
        self.script = tmp_path / f"{name}_{uuid.uuid4().hex[:6]}.py"
        body = (
            FLOWS + "\nif __name__ == '__main__':\n" + textwrap.indent(serve_call.strip(), "    ")
        )
        self.script.write_text(body + "\n")
        self.out = self.script.with_suffix(".out")
        self.run_log = RunLog(tmp_path / "runs.log")
        self.env = cli_env(api_url, RUN_LOG=str(self.run_log.path), **(env or {}))
        self.expect = expect
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeScript:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def start(self, timeout: float = 30.0) -> None:
        """Start the script; return once it printed one 'Serving deployment' line per deployment."""
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.script)], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, cwd=self.dir,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.output().count("Serving deployment") < self.expect:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"serve script exited {self.proc.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"serve script did not start:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def children(self) -> list[Any]:
        """psutil processes below the script (its runs' processes)."""
        import psutil

        assert self.proc is not None
        return psutil.Process(self.proc.pid).children(recursive=True)
