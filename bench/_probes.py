"""Measurements run the same way for every system: import time in fresh interpreters, installed size.

Standard library only: the Prefect adapters import this from the peer virtualenv.
"""

from __future__ import annotations

import json
import subprocess
import tempfile

from bench._proc import ROOT

__all__ = ["IMPORT_PROBE", "import_seconds", "installed_mb"]

IMPORT_PROBE = (
    "import time; t0 = time.perf_counter(); exec({stmt!r}); "
    "import sys; sys.stdout.write(repr(time.perf_counter() - t0))"
)


def import_seconds(python: str, statement: str, count: int) -> list[float]:
    """Seconds ``statement`` takes in each of ``count`` fresh interpreters (timed inside each)."""
    out = []
    for _ in range(count):
        done = subprocess.run(
            [python, "-c", IMPORT_PROBE.format(stmt=statement)],
            capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        out.append(float(done.stdout))
    return out


def installed_mb(python: str, dist: str) -> tuple[float, int]:
    """MB installed for ``dist`` and its requirements in ``python``'s environment, and how many."""
    done = subprocess.run(
        [python, str(ROOT / "bench" / "_size_probe.py"), dist],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(done.stdout)
    return data["bytes"] / 1e6, int(data["packages"])
