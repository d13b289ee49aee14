"""Prefect footprint (benchmark 3), the same workload as bench/footprint.py: server start → health
on a fresh and an existing database, idle RSS of the server's process tree, serve() idle RSS of the
seed, the seed's imports in fresh interpreters, installed size. Prints JSON figures."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _prefect import running_server, served, start_server

from bench._probes import import_seconds, installed_mb
from bench._proc import emit, tree_rss_mib

HERE = Path(__file__).resolve().parent
IDLE_WAIT_S = 3.0
SEED_IMPORTS = "from prefect import flow, serve; from prefect.events import DeploymentEventTrigger"
SEED_DEPLOYMENTS = ["upstream-flow/upstream_deployment", "downstream-flow/downstream_deployment"]


def figure(name: str, samples: list[float], **extra: object) -> dict[str, object]:
    return {"bench": "footprint", "figure": name, "system": "prefect", "samples": samples, **extra}


def main(quick: bool) -> None:
    idle_s = 1.0 if quick else IDLE_WAIT_S
    starts: dict[str, list[float]] = {
        k: [] for k in ("fresh", "existing", "rss_fresh", "rss_existing")
    }
    for _ in range(1 if quick else 5):
        with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
            for kind in ("fresh", "existing"):
                server = start_server(Path(tmp))
                try:
                    starts[kind].append(server.startup_s * 1000)
                    time.sleep(idle_s)
                    starts[f"rss_{kind}"].append(tree_rss_mib(server.proc.pid))
                finally:
                    server.stop()
    emit(
        [
            figure("start_fresh_ms", starts["fresh"]),
            figure("start_existing_ms", starts["existing"]),
            figure("server_idle_rss_fresh_mib", starts["rss_fresh"]),
            figure("server_idle_rss_existing_mib", starts["rss_existing"]),
        ]
    )
    serve_rss = []
    for _ in range(1 if quick else 3):
        with (
            tempfile.TemporaryDirectory(prefix="bench-prefect-serve-") as tmp,
            running_server(Path(tmp)) as server,
        ):
            with served(server, HERE / "workloads" / "seed.py", SEED_DEPLOYMENTS) as proc:
                time.sleep(idle_s)
                serve_rss.append(tree_rss_mib(proc.pid))
    imports = import_seconds(sys.executable, SEED_IMPORTS, 3 if quick else 10)
    size, packages = installed_mb(sys.executable, "prefect")
    emit(
        [
            figure("serve_idle_rss_mib", serve_rss),
            figure("seed_import_ms", [s * 1000 for s in imports]),
            figure("installed_mb", [size], note=f"{packages} packages"),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
