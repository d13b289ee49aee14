"""Prefect workers (the workers benchmark): a run of a deployment in a ``process`` work pool, created
with ``POST /deployments/{id}/create_flow_run``, to Pending and Running, taken by ``prefect worker
start`` at its default settings (it polls the server every ``PREFECT_WORKER_QUERY_SECONDS``, 10 s,
and starts a fresh interpreter per run); beside it ``serve()`` of the same flow. One run at a time,
interleaved; the latencies are the server's own timestamps. Prints JSON figures."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _prefect import PrefectServer, environment, prefect_api, prefect_bin, running_server, served

from bench._driver import push_latency, wait_for
from bench._proc import emit, stop_process

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
SERVED = "single-flow/single"
POOL = "bench-process"
POOLED = "single-flow/pooled"

# Run in the peer venv against the server: the flow from the workloads folder (no copy, no image),
# deployed to the process pool.
_DEPLOY = textwrap.dedent(
    """
    from prefect import flow
    flow.from_source(source={source!r}, entrypoint="single.py:single_flow").deploy(
        name="pooled", work_pool_name={pool!r}, build=False, push=False
    )
    """
)


def _run(server: PrefectServer, *args: str) -> None:
    done = subprocess.run(
        args, capture_output=True, text=True, env=environment(server.home, server.api_url),
        cwd=str(server.home), timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {(done.stdout + done.stderr)[-600:]}")


@contextmanager
def _worker(server: PrefectServer) -> Iterator[subprocess.Popen[bytes]]:
    log_path = server.home / "worker.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [prefect_bin(), "worker", "start", "--pool", POOL, "--type", "process"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env=environment(server.home, server.api_url), cwd=str(server.home),
        )  # fmt: skip
    try:
        wait_for(
            "the Prefect worker",
            lambda: (
                "started" in log_path.read_text(errors="replace").lower() or proc.poll() is not None
            ),
        )
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited: {log_path.read_text()[-400:]}")
        time.sleep(3.0)  # a steady state, as the tideflow side waits for its spare
        yield proc
    finally:
        stop_process(proc, timeout=30)


def main(quick: bool) -> None:
    count = 3 if quick else 20
    # Prefect's process worker starts a fresh interpreter per run: the row beside our --cold one.
    rows = ("serve", "worker_cold")
    samples: dict[str, dict[str, list[float]]] = {r: {"pending": [], "running": []} for r in rows}
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-workers-") as tmp,
        running_server(Path(tmp)) as server,
        ExitStack() as stack,
    ):
        _run(server, prefect_bin(), "work-pool", "create", POOL, "--type", "process")
        _run(server, sys.executable, "-c", _DEPLOY.format(source=str(WORKLOADS), pool=POOL))
        stack.enter_context(served(server, WORKLOADS / "single.py", [SERVED]))
        stack.enter_context(_worker(server))
        api = prefect_api(server)
        ids = {"serve": api.deployment_id(SERVED), "worker_cold": api.deployment_id(POOLED)}
        for _ in range(count):
            for row in rows:
                pending, running = push_latency(server.api_url, api, ids[row])
                samples[row]["pending"].append(pending)
                samples[row]["running"].append(running)
    emit(
        {"bench": "workers", "figure": f"{row}_created_to_{kind}_ms", "system": "prefect",
         "samples": samples[row][kind]}
        for row in rows
        for kind in ("pending", "running")
    )  # fmt: skip


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
