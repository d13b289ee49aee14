"""Helpers for the worker tests: flows that record where and how they ran, and `tideflow worker
start` as a subprocess (a unique module name, as serve_helpers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

from serve_helpers import cli_env, wait_for

__all__ = ["FAST", "FLOWS", "Worker", "run_lines"]

FLOWS = """
import os, time
from tideflow import flow
from tideflow.runtime import flow_run

def note(event, **extra):
    line = " ".join([event, str(flow_run.id), f"{time.time():.6f}", str(os.getpid()),
                     *(f"{k}={v}" for k, v in extra.items())])
    with open(os.environ["RUN_LOG"], "a") as fh:
        fh.write(line + "\\n")

@flow
def record():
    note("start", mode=os.environ.get("MODE", "-"), extra=os.environ.get("EXTRA", "-"),
         cwd=os.getcwd(), worker=os.environ.get("WORKER_TAG", "-"))

@flow
def sleeper(seconds: float = 30.0):
    note("start")
    time.sleep(seconds)
    note("end")

@flow
def dies():
    note("start")
    os._exit(3)
"""

# Short liveness bounds so a killed worker's runs are found in seconds.
FAST = {
    "TIDEFLOW_RUNNER_HEARTBEAT_INTERVAL": "0.5",
    "TIDEFLOW_RUNNER_DISCONNECT_GRACE": "2",
    "TIDEFLOW_RUNNER_CANCEL_GRACE": "2",
}


class Worker:
    """``tideflow worker start`` as a subprocess; its output in a file."""

    def __init__(self, api_url: str, pool: str, run_log: Path, *args: str, **env: str) -> None:
        self.out = run_log.with_name(f"worker-{uuid.uuid4().hex[:6]}.out")
        environment = cli_env(api_url, RUN_LOG=str(run_log), **FAST, **env)
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tideflow", "worker", "start", "--pool", pool, *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
            )  # fmt: skip
        wait_for(lambda: "started for work pool" in self.output() or self.proc.poll() is not None)
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_lines(run_log: Path, event: str = "start") -> list[list[str]]:
    if not run_log.exists():
        return []
    return [line.split() for line in run_log.read_text().splitlines() if line.startswith(event)]
