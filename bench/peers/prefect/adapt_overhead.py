"""Prefect overhead (benchmark 4): a trivial @flow called repeatedly in one process against a
running Prefect server; per call after the first. Prints JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _prefect import environment, running_server

from bench._proc import emit

HERE = Path(__file__).resolve().parent


def main(quick: bool) -> None:
    # Prefect's call takes about a second, so the quick run keeps N small.
    count = 10 if quick else 200
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-overhead-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        done = subprocess.run(
            [sys.executable, str(HERE / "workloads" / "trivial_flow.py"), str(count + 1)],
            capture_output=True, text=True, check=True, cwd=tmp,
            env=environment(Path(tmp), server.api_url),
        )  # fmt: skip
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    emit(
        [
            {
                "bench": "overhead",
                "figure": "flow_call_ms",
                "system": "prefect",
                "samples": [s * 1000 for s in seconds[1:]],
            }
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
