"""Prefect start (benchmark 2): ``prefect deployment run`` → Running for a served deployment, run
after run, and the CLI command's wall time. Prints JSON figures."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _prefect import prefect_api, running_server, served

from bench._driver import start_once
from bench._proc import emit

HERE = Path(__file__).resolve().parent
DEPLOYMENT = "single-flow/single"


def main(quick: bool) -> None:
    count = 3 if quick else 20
    samples: dict[str, list[float]] = {"cli_to_running_ms": [], "cli_wall_ms": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-start-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        with served(server, HERE / "workloads" / "single.py", [DEPLOYMENT]):
            api = prefect_api(server)
            for _ in range(count):
                for key, value in start_once(api, DEPLOYMENT).items():
                    samples[key].append(value)
    emit(
        {"bench": "start", "figure": k, "system": "prefect", "samples": v}
        for k, v in samples.items()
    )


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
