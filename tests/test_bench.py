"""Smoke test of the benchmark suite: ``python -m bench footprint --quick --json`` prints one
well-formed JSON object per figure and appends the same figures to the results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATS = ("min", "median", "p95", "max")
if str(ROOT) not in sys.path:  # bench/ is a top-level package of the repository, not installed
    sys.path.insert(0, str(ROOT))


def test_footprint_quick_json(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEFLOW_")}
    env["BENCH_RESULTS"] = str(results)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "footprint", "--quick", "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    figures = {r["figure"]: r for r in records}
    assert {"start_fresh_ms", "server_idle_rss_fresh_mib", "seed_import_ms", "installed_mb"} <= set(
        figures
    )
    for record in records:
        assert record["bench"] == "footprint" and record["system"] == "tideflow"
        assert record["n"] >= 1, record
        values = [record[k] for k in STATS]
        assert all(isinstance(v, int | float) for v in values)
        assert values == sorted(values), record  # min <= median <= p95 <= max
    assert 0 < figures["start_fresh_ms"]["median"] < 60_000
    assert 10 < figures["server_idle_rss_fresh_mib"]["median"] < 4096
    saved = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["figure"], r["median"]) for r in saved] == [
        (r["figure"], r["median"]) for r in records
    ]
    assert all(len(r["load_before"]) == 3 for r in saved)


def test_every_benchmark_has_a_prefect_adapter() -> None:
    from bench.__main__ import BENCHMARKS
    from bench.peers.prefect import ADAPTERS, HERE, MISSING

    # A benchmark without an adapter must say why (printed by --vs prefect), not be silently alone.
    assert set(ADAPTERS) | set(MISSING) == set(BENCHMARKS) and not set(ADAPTERS) & set(MISSING)
    assert all(reason.strip() for reason in MISSING.values())
    assert all((HERE / f"adapt_{name}.py").is_file() for name in ADAPTERS)


def test_comparison_rows_ratios_and_reasons() -> None:
    from bench._report import comparison_rows
    from bench._stats import Figure

    figures = [
        Figure("ingest", "sqlite_events_per_s", "tideflow", [5000.0], higher_is_better=True),
        Figure("ingest", "postgres_events_per_s", "tideflow", [4000.0], higher_is_better=True),
        Figure("ingest", "sqlite_events_per_s", "prefect", [500.0], higher_is_better=True),
        Figure("ingest", "postgres_events_per_s", "prefect", unsupported="skipped: unreachable"),
        Figure("fanout", "completed_to_all_running_ms", "tideflow", [800.0, 900.0, 1000.0]),
        Figure("fanout", "completed_to_each_running_ms", "tideflow", [700.0]),
        Figure("fanout", "completed_to_all_running_ms", "prefect", [18_000.0]),
        Figure("fanout", "completed_to_all_running_ms", "prefect-poll1s", [4_500.0]),
        Figure("query", "by_resource_id_ms", "tideflow", [4.0]),
    ]
    rows = comparison_rows(figures)
    assert rows == [
        ("ingest.sqlite_events_per_s", "5,000", "prefect", "500", "10x"),
        ("ingest.postgres_events_per_s", "4,000", "prefect", "cannot: skipped: unreachable", ""),
        ("fanout.completed_to_all_running_ms", "900", "prefect", "18,000", "20x"),
        ("fanout.completed_to_all_running_ms", "900", "prefect-poll1s", "4,500", "5x"),
        ("fanout.completed_to_each_running_ms", "700", "prefect", "not measured", ""),
        ("fanout.completed_to_each_running_ms", "700", "prefect-poll1s", "not measured", ""),
        ("query.by_resource_id_ms", "4", "prefect", "not measured", ""),
    ]
