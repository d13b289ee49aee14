"""``python -m bench [NAME ...] [--quick] [--json] [--vs prefect]``: run benchmarks, print figures.

Each figure is printed as min / median / p95 / max and N (``--json``: one JSON object per figure
on stdout) and appended to bench/results.jsonl with the date, the load average and the commit.
``--vs prefect`` runs the Prefect adapters too, alternating benchmark by benchmark, and prints
both systems and the ratio per figure.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._proc import ROOT, load_average
from bench._report import print_comparison, print_figures
from bench._stats import Figure
from bench.peers.prefect import ADAPTERS, MISSING, run_adapter

__all__ = ["BENCHMARKS", "main"]

BENCHMARKS = (
    "footprint", "overhead", "start", "chain", "triggers", "ingest", "query", "fanout", "tasks",
    "chains_load", "workers", "replicas", "memory",
)  # fmt: skip
RESULTS = Path(os.environ.get("BENCH_RESULTS", ROOT / "bench" / "results.jsonl"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small N (the whole suite within about 3 minutes)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per figure on stdout"
    )
    parser.add_argument(
        "--vs", choices=["prefect"], help="also run the peer's adapters, alternating"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    return done.stdout.strip() or "unknown"


def _ours(name: str, quick: bool) -> tuple[list[Figure], str | None]:
    module = importlib.import_module(f"bench.{name}")
    try:
        return module.run(quick), None
    except Exception as exc:  # one benchmark failing must not lose the others' figures
        traceback.print_exc(file=sys.stderr)
        return (
            [],
            f"tideflow {name} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
        )


def _peer(name: str, quick: bool, log_dir: Path) -> tuple[list[Figure], str | None]:
    if name not in ADAPTERS:
        print(f"- prefect {name}: {MISSING.get(name, 'no adapter')}", file=sys.stderr)
        return [], None
    return run_adapter(name, quick, log_dir)


def _save(records: list[dict[str, Any]]) -> None:
    with RESULTS.open("a") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = args.names or list(BENCHMARKS)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    run_meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "quick": args.quick,
    }
    errors: list[str] = []
    all_figures: list[Figure] = []
    out = sys.stderr if args.json else sys.stdout  # tables; --json keeps stdout for JSON
    for name in names:
        systems = [("tideflow", lambda n=name: _ours(n, args.quick))]
        if args.vs == "prefect":
            systems.append(("prefect", lambda n=name: _peer(n, args.quick, log_dir)))
        bench_figures: list[Figure] = []
        for system, job in systems:
            load_before = load_average()
            started = time.monotonic()
            figures, error = job()
            meta = {**run_meta, "load_before": load_before, "load_after": load_average(),
                    "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
            if error:
                errors.append(error)
                print(f"! {error}", file=sys.stderr)
            records = [{**f.record(), **meta} for f in figures]
            _save(records)
            if args.json:
                for record in records:
                    print(json.dumps(record), flush=True)
            for shown in dict.fromkeys(f.system for f in figures) or [system]:
                print_figures(name, shown, [f for f in figures if f.system == shown], meta, out)
            bench_figures.extend(figures)
        all_figures.extend(bench_figures)
    if args.vs:
        print_comparison(all_figures, out)
    if errors:
        print(f"{len(errors)} benchmark run(s) failed; logs in {log_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
