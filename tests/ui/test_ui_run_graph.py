"""The run page's graph and timeline in a real browser: data, ``wait_for`` and subflow edges;
subflow runs as nodes and timeline rows; the chain (the upstream run that triggered this one, the
runs it triggered) in the same picture; and a run with 10,000 task runs drawn as one node per task
name, quickly."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap, unique, wait_final

from tideflow import flow, task
from tideflow.client import SyncClient
from tideflow.runtime import flow_run
from tideflow.schemas import FlowRunCreate, FlowRunFilter
from tideflow.schemas.states import Completed, Failed, Running
from tideflow.schemas.task_runs import TaskRunFilter, TaskRunReport


def _run_with_subflows() -> tuple[Any, str]:
    ids: list[Any] = []
    child_name = unique("ui-child")

    @flow(name=child_name)
    def child(n: int) -> int:
        return n + 1

    @task
    def prepare() -> int:
        return 1

    @task
    def calls_a_subflow(n: int) -> int:
        return child(n)

    @task
    def cleanup() -> None:
        return None

    @flow(name=unique("ui-graph"))
    def parent() -> int:
        ids.append(flow_run.id)
        first = prepare.submit()
        inner = calls_a_subflow.submit(first)
        done = cleanup.submit(wait_for=[inner])
        done.result()
        return child(inner.result())

    assert parent() == 3
    return ids[0], child_name


def test_graph_draws_data_wait_for_and_subflow_edges(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    run_id, _ = _run_with_subflows()
    tasks = {t.task_name: t for t in client.read_task_runs(TaskRunFilter(flow_run_id=[run_id]))}
    children = client.read_flow_runs(FlowRunFilter(parent_flow_run_id=run_id))
    assert len(children) == 2
    called = next(c for c in children if c.parent_task_run_id is not None)
    assert called.parent_task_run_id == tasks["calls_a_subflow"].id

    page.goto(f"/runs/{run_id}")
    section = page.locator("#run-graph")
    expect(section.locator("#graph-counts")).to_contain_text("3 task runs · 2 subflow runs")
    graph = section.locator("svg.run-graph")
    expect(graph.locator("a.graph-node-link[data-kind=task]")).to_have_count(3)
    expect(graph.locator("a.graph-node-link[data-kind=subflow]")).to_have_count(2)
    prepare_id, inner_id = tasks["prepare"].id, tasks["calls_a_subflow"].id
    expect(graph.locator(f"path.graph-edge-data[data-from='{prepare_id}'][data-to='{inner_id}']")).to_have_count(1)  # fmt: skip
    expect(graph.locator(f"path.graph-edge-wait[data-from='{inner_id}'][data-to='{tasks['cleanup'].id}']")).to_have_count(1)  # fmt: skip
    expect(graph.locator(f"path.graph-edge-subflow[data-from='{inner_id}'][data-to='{called.id}']")).to_have_count(1)  # fmt: skip
    # The timeline: a row per task run and subflow run, in its state's colour, with a duration.
    rows = section.locator("svg.run-timeline g.tl-row")
    expect(rows).to_have_count(5)
    expect(section.locator("svg.run-timeline rect.tl-bar.tl-completed")).to_have_count(5)
    expect(section.locator("svg.run-timeline g.tl-row[data-kind=subflow]")).to_have_count(2)
    expect(section.locator("svg.run-timeline .tl-time").first).to_have_text(
        re.compile(r"\d+(\.\d)? (ms|s)")
    )
    snap(page, "run-graph")
    graph.locator(f"a[data-node='{called.id}']").click()
    expect(page).to_have_url(f"/runs/{called.id}")
    expect(page.locator("h1")).to_contain_text(called.name)


def test_the_chain_is_drawn_around_the_run(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    extract = client.read_deployment_by_name(served.extract)
    load = client.read_deployment_by_name(served.load)
    before = {
        r.id for r in client.read_flow_runs(FlowRunFilter(deployment_id=[load.id], limit=200))
    }
    upstream = wait_final(client, client.create_flow_run_from_deployment(extract.id).id)
    downstream = None
    deadline = time.monotonic() + 30
    while downstream is None and time.monotonic() < deadline:
        fresh = [
            r
            for r in client.read_flow_runs(FlowRunFilter(deployment_id=[load.id], limit=200))
            if r.id not in before
        ]
        downstream = fresh[0] if fresh else None
        time.sleep(0.1)
    assert downstream is not None, "the load deployment was not triggered"
    wait_final(client, downstream.id)

    page.goto(f"/runs/{downstream.id}")
    graph = page.locator("#run-graph svg.run-graph")
    before_node = graph.locator("a[data-chain=upstream]")
    expect(before_node).to_have_attribute("href", f"/runs/{upstream.id}")
    expect(before_node).to_contain_text("triggered by")
    expect(graph.locator("path.graph-chain-edge")).to_have_count(1)
    snap(page, "run-graph-chain")

    before_node.click()
    expect(page).to_have_url(f"/runs/{upstream.id}")
    after = page.locator("#run-graph svg.run-graph a[data-chain=downstream]")
    expect(after.and_(page.locator(f"[href='/runs/{downstream.id}']"))).to_have_count(1)


def test_a_run_with_10000_task_runs_is_grouped_by_task_name(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    run = client.create_flow_run(FlowRunCreate(flow_name=unique("ui-huge"), state=Running()))
    t0 = dt.datetime.now(dt.UTC)
    extract_ids = [uuid.uuid4() for _ in range(5000)]
    reports: list[TaskRunReport] = []
    for i, tid in enumerate(extract_ids):
        start = t0 + dt.timedelta(milliseconds=i)
        reports.append(_report(run.id, tid, f"extract-{i}", "extract", start, {}))
    for i in range(4999):
        start = t0 + dt.timedelta(seconds=5, milliseconds=i)
        reports.append(_report(run.id, uuid.uuid4(), f"transform-{i}", "transform", start,
                               {"row": [extract_ids[i]]}, failed=i % 1000 == 0))  # fmt: skip
    reduce_start = t0 + dt.timedelta(seconds=11)
    reports.append(_report(run.id, uuid.uuid4(), "reduce-0", "reduce", reduce_start,
                           {"wait_for": extract_ids[:3]}))  # fmt: skip
    for i in range(0, len(reports), 1000):  # batches the size the SDK sends
        result = client.report_task_runs(reports[i : i + 1000])
        assert not result.refused
    assert client.count_task_runs(TaskRunFilter(flow_run_id=[run.id])) == 10_000

    page.goto("/runs")  # the UI loads on its first request: not what is measured here
    started = time.monotonic()
    response = page.goto(f"/runs/{run.id}")
    elapsed = time.monotonic() - started
    assert response is not None and response.ok
    assert elapsed < 5, f"the run page of 10,000 task runs took {elapsed:.1f} s"
    section = page.locator("#run-graph")
    expect(section.locator("#graph-grouped")).to_be_visible()
    expect(section.locator("#graph-counts")).to_contain_text("10000 task runs")
    expect(section.locator("#graph-counts")).to_contain_text("5 Failed")
    graph = section.locator("svg.run-graph")
    groups = graph.locator("[data-kind=group]")
    expect(groups).to_have_count(3)
    expect(graph).to_contain_text("extract · 5000 runs")
    expect(graph).to_contain_text("transform · 4999 runs")
    expect(graph.locator("path.graph-edge-data")).to_have_count(1)
    expect(graph.locator("path.graph-edge-wait")).to_have_count(1)
    expect(graph.locator("rect.graph-node.node-failed")).to_have_count(1)  # transform has failures
    expect(section.locator("svg.run-timeline g.tl-row")).to_have_count(3)
    assert page.locator("svg g, svg a").count() < 100
    snap(page, "run-graph-grouped")


def _report(
    run_id: Any, tid: Any, name: str, task_name: str, start: dt.datetime,
    inputs: dict[str, list[Any]], failed: bool = False,
) -> TaskRunReport:  # fmt: skip
    end = start + dt.timedelta(milliseconds=40)
    final = (Failed() if failed else Completed()).model_copy(update={"timestamp": end})
    return TaskRunReport(
        id=tid, flow_run_id=run_id, name=name, task_name=task_name, task_inputs=inputs,
        run_count=1, start_time=start, end_time=end,
        states=[Running().model_copy(update={"timestamp": start}), final],
    )  # fmt: skip
