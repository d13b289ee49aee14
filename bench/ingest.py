"""Benchmark 5, ingest: N events emitted with ``emit_event`` from one process (bench._ingest_emitter)
against a running server; events/s until all N are stored and counted by the API. On SQLite and on
PostgreSQL (a throwaway database; skipped with a note when PostgreSQL is unreachable)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench._postgres import postgres_database
from bench._proc import ROOT
from bench._servers import Server, client_environment, running_server
from bench._stats import Figure

__all__ = ["run"]

NAME = "ingest"


def _emit(server: Server, events: int) -> dict[str, float]:
    # Default settings (a 10,000-event SDK buffer): emit_event's backpressure keeps a larger burst
    # whole, and the emitter fails if any event is missing.
    env = client_environment(server.home, server.api_url)
    done = subprocess.run(
        [sys.executable, "-m", "bench._ingest_emitter", str(events)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the emitter failed: {done.stderr.strip()[-600:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _measure(system: str, events: int, database: str | None) -> Figure:
    figure = Figure(NAME, f"{system}_events_per_s", "tideflow", higher_is_better=True)
    with ExitStack() as stack:
        home = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-ingest-{system}-"))
        )
        server = stack.enter_context(running_server(home, database))
        result = _emit(server, events)
    figure.samples = [result["events_per_s"]]
    figure.note = (
        f"{events:,} events stored in {result['stored_s']:.1f} s; emit_event calls took "
        f"{result['emit_s']:.1f} s; refused {result['refused']}"
    )
    return figure


def run(quick: bool) -> list[Figure]:
    events = 10_000 if quick else 100_000
    figures = [_measure("sqlite", events, None)]
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_database("bench_ingest"))
        except OSError as exc:  # only creating the database: a failed run must not read as a skip
            print(f"ingest: {exc}; the PostgreSQL figure is skipped", file=sys.stderr)
            skipped = f"skipped: {exc}"
            return [
                *figures,
                Figure(NAME, "postgres_events_per_s", "tideflow", unsupported=skipped),
            ]
        figures.append(_measure("postgres", events, url))
    return figures
