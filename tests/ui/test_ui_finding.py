"""Finding things in a real browser: the time-range picker and the histogram (server-drawn bars
over the filtered range, a bar narrowing the range) on the event feed and the runs list, the
deployment filter by name, the event page listing what it triggered, and explain suggesting
stored events that match the trigger."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap, unique, wait_final

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunCreate, FlowRunFilter
from tideflow.schemas.events import Event, EventFilter, Resource


def _bar_counts(page: Page) -> list[int]:
    counts = page.locator("#histogram a.hist-link").evaluate_all(
        "links => links.map(a => Number(a.dataset.count))"
    )
    return [int(c) for c in counts]


def test_event_feed_histogram_and_time_range(page: Page, client: SyncClient, snap: Snap) -> None:
    name = f"acme.{unique('tick')}.done"
    now = dt.datetime.now(dt.UTC)
    hours_ago = [0.1, 0.2, 0.3, 2.5, 2.6, 20]
    client.emit_events([
        Event(event=name, occurred=now - dt.timedelta(hours=h),
              resource=Resource({"tideflow.resource.id": f"acme.tick.{i}"}))
        for i, h in enumerate(hours_ago)
    ])  # fmt: skip
    page.goto(f"/events?name={name}&range=24h")
    expect(page.get_by_label("Time range")).to_have_value("24h")
    expect(page.locator("#histogram figcaption")).to_contain_text("6 events")
    counts = _bar_counts(page)
    assert 1 <= len(counts) <= 61 and sum(counts) == 6
    snap(page, "events-histogram")
    # A bar narrows the range to its bucket: the feed then lists that bucket's events only.
    busiest = page.locator("#histogram a.hist-link").filter(has=page.locator("rect.hist-bar")).first
    n = int(busiest.get_attribute("data-count") or 0)
    busiest.click()
    expect(page).to_have_url(re.compile(r"range=custom&since=[^&]+&until="))
    expect(page.get_by_label("Time range")).to_have_value("custom")
    expect(page.get_by_label("From (UTC)")).not_to_have_value("")
    expect(page.locator("details.event")).to_have_count(n)
    # A custom range picked in the form.
    page.goto("/events")
    page.get_by_label("Event name").fill(name)
    page.get_by_label("Time range").select_option("custom")
    since = (now - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    until = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("From (UTC)").fill(since)
    page.get_by_label("Until (UTC)").fill(until)
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("details.event")).to_have_count(2)
    expect(page.locator("#histogram figcaption")).to_contain_text("2 events")


def test_runs_list_histogram_and_deployment_filter_by_name(
    page: Page, client: SyncClient, served: Served
) -> None:
    flow_name = unique("ui-hist")
    for _ in range(3):
        client.create_flow_run(FlowRunCreate(flow_name=flow_name))
    page.goto(f"/runs?flow={flow_name}&range=1h")
    expect(page.locator("#histogram figcaption")).to_contain_text("3 runs created")
    assert sum(_bar_counts(page)) == 3
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.goto(f"/runs?flow={flow_name}&range=custom&since={future}")
    expect(page.locator("#histogram figcaption")).to_contain_text("0 runs created")
    expect(page.locator("#runs-table tr[data-run-id]")).to_have_count(0)

    # The event feed's deployment filter is a list of names, not an id to paste.
    extract = client.read_deployment_by_name(served.extract)
    run = wait_final(client, client.create_flow_run_from_deployment(extract.id).id)
    page.goto("/events")
    page.get_by_label("Deployment").select_option(label=served.extract)
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(f"deployment={extract.id}"))
    expect(page.locator("details.event[data-event-name='tideflow.flow-run.Completed']")
           .first).to_be_visible()  # fmt: skip
    resources = page.locator("details.event").evaluate_all("rows => rows.length")
    assert resources >= 3
    assert run.deployment_id == extract.id


def test_event_page_lists_what_it_triggered(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    extract = client.read_deployment_by_name(served.extract)
    load = client.read_deployment_by_name(served.load)
    upstream = wait_final(client, client.create_flow_run_from_deployment(extract.id).id)
    completed = client.read_events(EventFilter(
        resource_ids=[f"tideflow.flow-run.{upstream.id}"],
        event_names=["tideflow.flow-run.Completed"],
    )).events[0]  # fmt: skip
    deadline = time.monotonic() + 30
    created = []
    while not created and time.monotonic() < deadline:
        created = [
            r
            for r in client.read_flow_runs(FlowRunFilter(deployment_id=[load.id], limit=200))
            if r.created_by is not None and r.created_by.type == "automation"
            and r.created > completed.occurred
        ]  # fmt: skip
        time.sleep(0.1)
    assert created
    page.goto(f"/events/{completed.id}")
    section = page.locator("#event-triggered")
    expect(section.locator("li[data-automation]")).to_have_count(1)
    expect(section.locator("li[data-run]")).to_have_count(1)
    run_link = section.locator("li[data-run] a")
    expect(run_link).to_have_attribute("href", re.compile(r"/runs/[0-9a-f-]{36}"))
    snap(page, "event-triggered")
    run_link.click()
    expect(page.locator("#triggered-by")).to_contain_text(upstream.name)
    # An event that triggered nothing says so.
    running = client.read_events(EventFilter(
        resource_ids=[f"tideflow.flow-run.{upstream.id}"],
        event_names=["tideflow.flow-run.Running"],
    )).events[0]  # fmt: skip
    page.goto(f"/events/{running.id}")
    expect(page.locator("#event-triggered")).to_contain_text("No automation fired")


def test_explain_suggests_stored_events_that_match(page: Page, client: SyncClient) -> None:
    name = f"acme.{unique('order')}.shipped"
    automation = client.create_automation({
        "name": unique("explain me"),
        "trigger": {"type": "event", "expect": [name], "match": {"region": "eu"}},
        "actions": [{"type": "do-nothing"}],
    })  # fmt: skip
    try:
        eu = Event(
            event=name, resource=Resource({"tideflow.resource.id": "acme.o.1", "region": "eu"})
        )
        us = Event(
            event=name, resource=Resource({"tideflow.resource.id": "acme.o.2", "region": "us"})
        )
        other = Event(event="acme.other", resource=Resource({"tideflow.resource.id": "acme.o.3"}))
        client.emit_events([eu, us, other])
        page.goto(f"/automations/{automation.id}")
        suggestions = page.locator("#explain-suggestions a")
        expect(suggestions).to_have_count(2)  # both of its name; the matching one among them
        ids = suggestions.evaluate_all("links => links.map(a => a.dataset.eventId)")
        assert set(ids) == {str(eu.id), str(us.id)}
        # (The automation counted the matching event already; the explanation says so.)
        page.locator(f"#explain-suggestions a[data-event-id='{eu.id}']").click()
        result = page.locator("#explain-result")
        expect(result).to_contain_text(f"Against {name}")
        expect(result.locator(".criterion.ok", has_text="region")).to_have_count(1)
        page.locator(f"#explain-suggestions a[data-event-id='{us.id}']").click()
        expect(result.locator(".explain-verdict")).to_contain_text("Would not fire")
        expect(result.locator(".criterion.no", has_text="region")).to_have_count(1)
        response = page.goto(f"/automations/{automation.id}?explain={uuid.uuid4()}")
        assert response is not None and response.ok
        expect(page.locator("#explain-result")).to_contain_text("not found")
    finally:
        client.delete_automation(automation.id)
