"""The event feed in a real browser: a Completed event arrives live over the websocket and expands
to its labels, related resources and payload; filters; the event page; the run page's events and
chain (triggered by / triggered) for runs chained by a deployment trigger."""

from __future__ import annotations

import re
import uuid
from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap, unique

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.runtime import flow_run
from tideflow.schemas import FlowRunFilter


def test_completed_event_arrives_live_and_expands(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    flow_name = unique("ui-evented")
    ids: list[Any] = []

    @flow(name=flow_name, tags=["nightly"])
    def evented(x: int = 1) -> int:
        ids.append(flow_run.id)
        return x

    page.goto("/events?name=tideflow.flow-run.Completed")
    expect(page).to_have_title("Event feed · tideflow")
    expect(page.locator("#live-status")).to_have_text("Live")
    evented()
    run = client.read_flow_run(ids[0])
    row = page.locator("details.event", has_text=run.name)
    expect(row).to_have_count(1)
    expect(row.locator(".event-name")).to_have_text("tideflow.flow-run.Completed")
    # Only Completed events pass the filter: the run's Pending/Running events are not shown.
    expect(page.locator("details.event", has_text=run.name)).to_have_count(1)

    row.locator("summary").click()
    related = row.locator("table.related")
    expect(related.locator("tr[data-role=flow]")).to_contain_text(flow_name)
    expect(related.locator("tr[data-role=tag]")).to_contain_text("tideflow.tag.nightly")
    expect(row.locator("table.kv").first).to_contain_text("tideflow.state-name")
    expect(row.locator("pre.code")).to_contain_text('"type": "COMPLETED"')
    snap(page, "events")

    row.get_by_role("link", name=f"tideflow.flow-run.{run.id}").click()
    expect(page).to_have_url(re.compile(f"/runs/{run.id}$"))
    # The run page lists the run's events.
    events = page.locator("section", has=page.get_by_role("heading", name="Events"))
    expect(events.get_by_role("link", name="tideflow.flow-run.Completed")).to_be_visible()
    events.get_by_role("link", name="tideflow.flow-run.Completed").click()
    expect(page).to_have_title("tideflow.flow-run.Completed · tideflow")
    expect(page.locator("details.event[open] table.related")).to_contain_text(flow_name)


def test_feed_filters_by_resource_and_related(page: Page, client: SyncClient) -> None:
    flow_name = unique("ui-filtered")
    ids: list[Any] = []

    @flow(name=flow_name)
    def filtered() -> None:
        ids.append(flow_run.id)

    filtered()
    filtered()
    page.goto("/events")
    page.get_by_label("Resource id", exact=True).fill(f"tideflow.flow-run.{ids[0]}")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("details.event")
    expect(rows).to_have_count(3)  # Pending, Running, Completed of the first run
    expect(rows.locator(".event-name")).to_have_text(
        ["tideflow.flow-run.Completed", "tideflow.flow-run.Running", "tideflow.flow-run.Pending"]
    )
    flow_id = client.read_flow_by_name(flow_name).id
    page.goto(f"/events?related=tideflow.flow.{flow_id}&name=tideflow.flow-run.Completed")
    expect(rows).to_have_count(2)
    page.goto(f"/events?related=tideflow.flow.{uuid.uuid4()}")
    expect(page.get_by_text("No events yet")).to_be_visible()
    response = page.goto(f"/events/{uuid.uuid4()}")
    assert response is not None and response.status == 404


def test_run_page_shows_the_chain_both_ways(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    extract = client.read_deployment_by_name(served.extract)
    load = client.read_deployment_by_name(served.load)
    upstream = client.create_flow_run_from_deployment(extract.id)
    page.goto(f"/runs/{upstream.id}")
    triggered = page.locator("#triggered")
    # Other tests' automations may also run on extract's events: follow the load deployment's run.
    load_item = triggered.locator("li", has_text=served.load)
    expect(load_item.locator(".badge-completed")).to_be_visible(timeout=30_000)
    down_name = load_item.get_by_role("link").inner_text()
    down = next(
        r
        for r in client.read_flow_runs(FlowRunFilter(deployment_id=[load.id], limit=100))
        if r.name == down_name
    )
    snap(page, "run-chain-upstream")

    triggered.get_by_role("link", name=down.name).click()
    expect(page).to_have_url(re.compile(f"/runs/{down.id}$"))
    by = page.locator("#triggered-by")
    expect(by.get_by_role("link", name=upstream.name)).to_be_visible()
    expect(by.get_by_role("link", name="tideflow.flow-run.Completed")).to_be_visible()
    expect(by.locator(".chip-role", has_text="automation")).to_be_visible()
    snap(page, "run-chain-downstream")
    by.get_by_role("link", name=upstream.name).click()
    expect(page).to_have_url(re.compile(f"/runs/{upstream.id}$"))
