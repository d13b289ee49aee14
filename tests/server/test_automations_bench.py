"""Engine-level measurements (SQLite): the hot path event -> downstream run created, and events
evaluated per second with 1,000 automations. Figures are printed (``-s``) and, with
TIDEFLOW_ENGINE_FIGURES=path, written as JSON; assertions are structural, never tight timings."""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path

import pytest
from automation_helpers import T0, event, harness

from tideflow.schemas.automations import parse_automation
from tideflow.server.storage import automations as automation_storage

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _report(name: str, figures: dict[str, float]) -> None:
    print(f"\n{name}: {json.dumps(figures)}")
    out = os.environ.get("TIDEFLOW_ENGINE_FIGURES")
    if out:
        path = Path(out)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = figures
        path.write_text(json.dumps(data, indent=2))


async def test_hot_path_event_to_downstream_run(tmp_path: Path) -> None:
    async with harness(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}") as h:
        dep = await h.deployment()
        await h.create(
            {"name": "chain", "trigger": {"type": "event", "expect": ["tideflow.flow-run.Completed"],
                                          "match_related": {"tideflow.resource.name": "up"}},
             "actions": [{"type": "run-deployment", "deployment_id": str(dep.id)}]}
        )  # fmt: skip
        await h.engine.run_once()
        related = [{"tideflow.resource.id": "tideflow.deployment.u", "tideflow.resource.role": "deployment",
                    "tideflow.resource.name": "up"}]  # fmt: skip
        samples = []
        for i in range(60):
            await h.emit(event("tideflow.flow-run.Completed", f"tideflow.flow-run.{i}",
                               occurred=T0 + dt.timedelta(seconds=i), related=related))  # fmt: skip
            start = time.perf_counter()  # the event is committed and on the broker
            await h.engine.run_once()  # evaluate, store the firing, create the run
            samples.append((time.perf_counter() - start) * 1000)
        assert len(await h.runs(dep.id)) == 60
    samples = sorted(samples[10:])  # warm
    _report("hot_path_event_to_run_created_ms", {
        "median": round(statistics.median(samples), 2),
        "p95": round(samples[int(len(samples) * 0.95) - 1], 2),
        "n": len(samples),
    })  # fmt: skip


async def test_events_evaluated_per_second_with_1000_automations(tmp_path: Path) -> None:
    async with harness(f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}") as h:
        async with h.database.write() as session:
            for i in range(1000):
                await automation_storage.create_automation(session, parse_automation(
                    {"name": f"a{i}", "trigger": {"type": "event", "expect": [f"app.{i % 500}.done"],
                                                  "threshold": 1000, "for_each": ["tideflow.resource.id"]},
                     "actions": [{"type": "do-nothing"}]}
                ))  # fmt: skip
        await h.engine.run_once()
        engine = h.engine
        events = [event(f"app.{i % 500}.done", f"res.{i % 50}", occurred=T0 + dt.timedelta(milliseconds=i))
                  for i in range(5000)]  # fmt: skip
        before = engine.evaluated
        start = time.perf_counter()
        results = engine._evaluate_events(events, T0)  # the pure in-memory step, index included
        pure = time.perf_counter() - start
        assert engine.evaluated - before == 2 * len(events)  # 2 candidates each, never 1,000
        assert results
        await h.emit(*events)
        start = time.perf_counter()
        await engine.run_once()  # the same batch through the broker, with its state stored
        full = time.perf_counter() - start
    _report("events_evaluated_per_second_1000_automations", {
        "pure_evaluation": round(len(events) / pure),
        "with_state_stored": round(len(events) / full),
        "events": len(events),
    })  # fmt: skip
