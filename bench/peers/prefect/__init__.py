"""The Prefect 3.9.1 peer: ``setup.py`` builds its virtualenv, ``adapt_<bench>.py`` scripts run there.

``run_adapter`` is the harness side: it runs one adapter with the peer's python and parses the
JSON figures it prints. Nothing here imports Prefect; the adapters never import tideflow.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench._stats import Figure
from bench.peers.prefect.setup import ensure_venv

__all__ = ["ADAPTERS", "MISSING", "run_adapter"]

HERE = Path(__file__).resolve().parent
ADAPTERS = (
    "chain", "start", "footprint", "overhead", "triggers", "ingest", "query", "fanout", "tasks",
    "workers",
)  # fmt: skip
# Benchmarks with no Prefect adapter yet, and why: `--vs prefect` prints the reason instead of
# silently showing our figures alone.
MISSING = {
    "chains_load": "no Prefect adapter yet (issue 20): adapt_chain.py measures one chain at a time",
    "memory": "no Prefect adapter yet (issue 20): the same burst through Prefect's emit_event, "
    "whose buffer drops most of a 100,000-event burst (see the ingest figures)",
    "replicas": "no Prefect adapter yet (issue 14): it would need Prefect server replicas on "
    "PostgreSQL with its Redis messaging, not set up by the peer's venv",
}


def run_adapter(name: str, quick: bool, log_dir: Path) -> tuple[list[Figure], str | None]:
    """Figures of benchmark ``name`` measured on Prefect, and an error line if the adapter failed.

    The adapter's stderr goes to ``log_dir/prefect-NAME.log``.
    """
    python = ensure_venv()
    args = [str(python), str(HERE / f"adapt_{name}.py")] + (["--quick"] if quick else [])
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"prefect-{name}.log").open("w") as log:
        done = subprocess.run(args, stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(HERE))
    figures = [
        Figure.from_record(json.loads(line))
        for line in done.stdout.splitlines()
        if line.startswith("{")
    ]
    if done.returncode != 0:
        return figures, (
            f"the Prefect {name} adapter exited with code {done.returncode} "
            f"(see {log_dir / f'prefect-{name}.log'})"
        )
    return figures, None
