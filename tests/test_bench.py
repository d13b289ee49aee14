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
