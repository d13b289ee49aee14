"""The seed example (examples/event_driven_deployments.py) served against a benchmark server.

``served_seed`` starts ``python examples/event_driven_deployments.py`` as a client process of the
server and waits until both of its deployments are READY (a runner is serving them).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._proc import ROOT, http_json, stop_process
from bench._servers import Server, client_environment

__all__ = ["DOWNSTREAM", "SEED_EXAMPLE", "UPSTREAM", "served_script", "served_seed", "wait_ready"]

EXAMPLE = ROOT / "examples" / "event_driven_deployments.py"
# The example is the seed; until it is in the tree, bench's copy of DESIGN.md's seed stands in.
SEED_EXAMPLE = EXAMPLE if EXAMPLE.exists() else ROOT / "bench" / "workloads" / "seed.py"
UPSTREAM = "upstream-flow/upstream_deployment"
DOWNSTREAM = "downstream-flow/downstream_deployment"


def wait_ready(
    api_url: str, names: list[str], proc: subprocess.Popen[bytes], timeout: float = 60.0
) -> None:
    """Wait until every deployment ``flow/name`` exists with status READY."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the serving process exited with code {proc.returncode}")
        try:
            deployment = http_json("GET", f"{api_url}/deployments/name/{pending[0]}")
        except urllib.error.HTTPError:
            deployment = None
        if deployment is not None and deployment.get("status") == "READY":
            pending.pop(0)
            continue
        time.sleep(0.05)
    if pending:
        raise TimeoutError(f"deployments not READY within {timeout:.0f} s: {', '.join(pending)}")


@contextmanager
def served_script(
    server: Server, script: Path, deployments: list[str], **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``script`` (which calls serve()) until the block ends; yields its process once READY."""
    log = (server.home / f"serve-{script.stem}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        env=client_environment(server.home, server.api_url, **env), cwd=str(server.home),
    )  # fmt: skip
    log.close()
    try:
        wait_ready(server.api_url, deployments, proc)
        yield proc
    finally:
        stop_process(proc)


@contextmanager
def served_seed(server: Server, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """The seed example served against ``server``."""
    with served_script(server, SEED_EXAMPLE, [UPSTREAM, DOWNSTREAM], **env) as proc:
        yield proc
