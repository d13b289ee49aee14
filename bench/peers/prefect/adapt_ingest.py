"""Prefect ingest (benchmark 5): N events sent with ``emit_event`` from one process
(workloads/ingest_emitter.py) into a Prefect server; events/s until all N are stored and counted
by its events API. On SQLite (Prefect's default) and on PostgreSQL (a throwaway database on
127.0.0.1:5432, as ours; skipped with the reason when unreachable). Prints JSON figures.

Prefect defaults apply: the event persister writes every 20 events or every 5 s, so the last
partial batch waits up to 5 s; the note gives the time at which 99% were stored as well.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _prefect import PrefectServer, environment, running_server

from bench._postgres import postgres_database
from bench._proc import emit

HERE = Path(__file__).resolve().parent


def _emit(server: PrefectServer, events: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(HERE / "workloads" / "ingest_emitter.py"), str(events)],
        capture_output=True, text=True, cwd=str(server.home), timeout=900,
        env=environment(server.home, server.api_url),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the Prefect emitter failed: {done.stderr.strip()[-600:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _measure(system: str, events: int, **env: str) -> dict[str, Any]:
    with ExitStack() as stack:
        home = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"bench-prefect-ingest-{system}-")
            )
        )
        server = stack.enter_context(running_server(home, **env))
        result = _emit(server, events)
    note = (
        f"{events:,} events stored in {result['stored_s']:.1f} s (99% in "
        f"{result['stored_99_s']:.1f} s); emit_event calls took {result['emit_s']:.1f} s"
    )
    return {
        "bench": "ingest",
        "figure": f"{system}_events_per_s",
        "system": "prefect",
        "higher_is_better": True,
        "samples": [result["events_per_s"]],
        "note": note,
    }


def main(quick: bool) -> None:
    events = 10_000 if quick else 100_000
    emit([_measure("sqlite", events)])
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_database("bench_prefect_ingest"))
        except OSError as exc:
            emit([{"bench": "ingest", "figure": "postgres_events_per_s", "system": "prefect",
                   "unsupported": f"skipped: {exc}"}])  # fmt: skip
            return
        emit([_measure("postgres", events, PREFECT_API_DATABASE_CONNECTION_URL=url)])


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
