"""A flow run's task runs in a real browser: the run page's timeline (an SVG bar per task run,
coloured by state) and dependency graph (edges from futures passed as arguments), and the
task-run page with its upstream task runs, state history and logs."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Snap, unique

from tideflow import flow, get_run_logger, task
from tideflow.client import SyncClient
from tideflow.runtime import flow_run
from tideflow.schemas.task_runs import TaskRunFilter


def _run_with_tasks() -> Any:
    ids: list[Any] = []

    @task
    def extract(i: int) -> int:
        time.sleep(0.02 * i)
        return i

    @task
    def transform(x: int) -> int:
        get_run_logger().info("transforming %d", x)
        if x == 2:
            raise ValueError("bad row 2")
        return x * 10

    @task
    def load(values: list[int]) -> int:
        return len(values)

    @flow(name=unique("ui-tasks"))
    def pipeline() -> int:
        ids.append(flow_run.id)
        transformed = transform.map(extract.map(range(4)))
        good = [f for f in transformed if f.result(raise_on_failure=False) is not None]
        good = [f for f in good if f.state.name == "Completed"]
        return load.submit(good).result()

    assert pipeline() == 3
    return ids[0]


def test_the_run_page_draws_task_runs_and_the_task_run_page(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    run_id = _run_with_tasks()
    stored = client.read_task_runs(TaskRunFilter(flow_run_id=[run_id]))
    assert len(stored) == 9
    page.goto(f"/runs/{run_id}")
    section = page.locator("#run-graph")
    expect(section.locator("g.tl-row")).to_have_count(9)
    expect(section).to_contain_text("9 task runs")
    expect(section).to_contain_text("1 Failed")
    expect(section.locator("rect.tl-bar.tl-failed")).to_have_count(1)
    # 4 extract -> transform edges, 3 transform -> load edges
    expect(section.locator("path.graph-edge-data")).to_have_count(7)
    expect(section.locator("rect.graph-node.node-failed")).to_have_count(1)
    snap(page, "run-task-runs")

    by_name = {r.name: r for r in stored}
    section.locator(f'a[data-node="{by_name["transform-1"].id}"]').click()
    expect(page).to_have_url(f"/task-runs/{by_name['transform-1'].id}")
    expect(page.locator("h1")).to_contain_text("transform-1")
    expect(page.locator("#upstream")).to_contain_text("extract-1")
    expect(page.locator("#task-logs")).to_contain_text("transforming 1")
    snap(page, "task-run")
    page.locator("#upstream a").first.click()
    expect(page.locator("h1")).to_contain_text("extract-1")


def test_an_unknown_task_run_is_the_ui_404(page: Page) -> None:
    response = page.goto("/task-runs/6f1c0c7e-0000-4000-8000-000000000000")
    assert response is not None and response.status == 404
    expect(page.locator("body")).to_contain_text("task run 6f1c0c7e-0000-4000-8000-000000000000")
