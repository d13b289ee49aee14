"""Asset-aware chaining end to end: a real server, examples/assets_chain.py served by serve(), the
CLI. The report deployment runs exactly once when both its upstream assets were materialized since
its last run, never on one alone, and ``explain`` says which asset it still waits for."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from chain_helpers import env_for, ready, runs_of, serving, wait_for

from tideflow.client import SyncClient
from tideflow.schemas.events import EventFilter
from tideflow.testing import ServerProcess

RAW, PRICES = "s3://warehouse/raw.csv", "s3://warehouse/prices.csv"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def tideflow(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "tideflow", *args], capture_output=True,
                            text=True, env=env_for(api_url), timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def _materialized(c: SyncClient, key: str, count: int) -> list[object]:
    flt = EventFilter(resource_ids=[key], event_prefixes=["tideflow.asset.materialization."])
    events = c.read_events(flt).events
    return events if len(events) >= count else []


def test_report_runs_once_when_both_assets_are_fresh(server: ServerProcess) -> None:
    api = server.api_url
    with serving("assets_chain.py", api), SyncClient(api) as c:
        ready(c, "load-raw/raw")
        ready(c, "load-prices/prices")
        report = ready(c, "report/when-inputs-fresh")
        [auto] = [a for a in c.read_automations()
                  if a.owner_resource == f"tideflow.deployment.{report.id}"]  # fmt: skip

        # Only raw.csv: nothing runs, and explain says it waits for prices.csv.
        tideflow(api, "deployment", "run", "load-raw/raw")
        [raw_event] = wait_for("raw.csv", lambda: _materialized(c, RAW, 1))
        time.sleep(1.0)
        assert runs_of(c, report.id) == [] and c.automation_history(auto.id) == []
        why = "\n".join(c.explain_automation(auto.id, raw_event.id)["lines"])  # type: ignore[attr-defined]
        assert "would not fire (1 of 2 children)" in why
        assert PRICES in why  # the child still waiting names the asset

        # Then prices.csv: exactly one report run.
        tideflow(api, "deployment", "run", "load-prices/prices")
        wait_for("the report run", lambda: runs_of(c, report.id, "COMPLETED"))
        # raw.csv again: only one of the two is fresh since that run, so nothing more.
        tideflow(api, "deployment", "run", "load-raw/raw")
        wait_for("raw.csv again", lambda: _materialized(c, RAW, 2))
        time.sleep(1.5)
        assert len(runs_of(c, report.id)) == 1
        [firing] = c.automation_history(auto.id)
        assert len(firing.event_ids) == 2

        # The report materialized its asset with both upstreams; the CLI shows the lineage.
        record = wait_for(
            "the report asset", lambda: _materialized(c, "s3://warehouse/report.parquet", 1)
        )
        assert record
        assert sorted(c.read_asset("s3://warehouse/report.parquet").upstream) == [PRICES, RAW]
