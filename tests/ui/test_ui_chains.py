"""The chains page in a real browser: the served extract -> load deployment trigger is an edge with
its firing count and lag, linking the upstream and downstream deployments and their runs."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap, wait_final

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter


def test_chain_view_links_upstream_and_downstream(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    extract = client.read_deployment_by_name(served.extract)
    load = client.read_deployment_by_name(served.load)
    before = client.count_flow_runs(FlowRunFilter(deployment_id=[load.id]))
    upstream = wait_final(client, client.create_flow_run_from_deployment(extract.id).id)
    deadline_runs: list[Any] = []
    for _ in range(300):
        deadline_runs = client.read_flow_runs(FlowRunFilter(deployment_id=[load.id], limit=200))
        if len(deadline_runs) > before:
            break
        page.wait_for_timeout(100)
    downstream = wait_final(client, deadline_runs[0].id)

    page.goto("/chains")
    expect(page).to_have_title("Chains · tideflow")
    edge = page.locator(
        f"#chain-edges tr[data-upstream='{extract.id}'][data-downstream='{load.id}']"
    )
    expect(edge).to_have_count(1)
    assert int(edge.locator("[data-stat=fired]").inner_text()) >= 1
    expect(edge.locator("[data-stat=lag]")).to_have_text(re.compile(r"\d+(\.\d)? (ms|s)"))
    expect(edge.locator("time")).to_have_text(re.compile(r"ago|just now"))
    graph = page.locator("svg.chain-graph")
    expect(graph.locator(f"a[href='/deployments/{extract.id}']")).to_have_count(1)
    expect(graph.locator(f"a[href='/deployments/{load.id}']")).to_have_count(1)
    snap(page, "chains")

    edge.get_by_role("link", name=load.name, exact=True).click()
    expect(page).to_have_url(re.compile(f"/deployments/{load.id}$"))
    expect(page.locator(f"#runs-table tr[data-run-id='{downstream.id}']")).to_be_visible()
    page.locator(f"#runs-table tr[data-run-id='{downstream.id}'] a").first.click()
    expect(page.locator("#triggered-by").get_by_role("link", name=upstream.name)).to_be_visible()
