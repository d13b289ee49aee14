"""Dashboard, flow-run list and run page in a real browser, over runs made with the @flow SDK and
the client against a real server."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from ui_helpers import Snap, unique

from tideflow import flow, get_run_logger
from tideflow.client import SyncClient
from tideflow.runtime import flow_run
from tideflow.schemas import FlowRunCreate, FlowRunFilter, LogCreate
from tideflow.schemas.states import Completed, Late, Running, Scheduled, utcnow


def _make_runs(tag: str) -> dict[str, Any]:
    """One completed run with parameters and logs, one failed run; both tagged ``tag``."""
    ids: dict[str, Any] = {}
    flow_name = unique("ui-etl")

    @flow(name=flow_name, log_prints=True, tags=[tag])
    def etl(rows: int, source: str = "s3://bucket/in") -> int:
        ids.setdefault("ok", flow_run.id)
        logger = get_run_logger()
        print(f"loaded {rows} rows from {source}")
        logger.warning("3 rows skipped")
        return rows

    @flow(name=f"{flow_name}-bad", tags=[tag])
    def broken() -> None:
        ids["bad"] = flow_run.id
        raise ValueError("the source file is empty")

    etl(42)
    with pytest.raises(ValueError):
        broken()
    ids["flow"] = flow_name
    return ids


def test_dashboard_shows_counts_chart_failing_and_late_runs(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    runs = _make_runs(unique("dash"))
    late = client.create_flow_run(
        FlowRunCreate(flow_name=unique("ui-nightly"), state=Scheduled(scheduled_time=utcnow()))
    )
    client.set_flow_run_state(late.id, Late())

    response = page.goto("/")
    assert response is not None and response.status == 200
    expect(page).to_have_title("Dashboard · tideflow")
    assert int(page.locator("[data-stat=total]").inner_text()) >= 3
    assert int(page.locator("[data-stat=completed]").inner_text()) >= 1
    assert int(page.locator("[data-stat=failed]").inner_text()) >= 1
    assert int(page.locator("[data-stat=late]").inner_text()) >= 1
    # The current hour's bar has completed and failed segments.
    expect(page.locator("svg rect.bar-completed").first).to_be_visible()
    expect(page.locator("svg rect.bar-failed").first).to_be_visible()

    failing = page.locator("section", has=page.get_by_role("heading", name="Failing runs"))
    bad = client.read_flow_run(runs["bad"])
    expect(failing.get_by_role("link", name=bad.name)).to_be_visible()
    expect(failing).to_contain_text("the source file is empty")
    late_card = page.locator("section", has=page.get_by_role("heading", name="Late runs"))
    expect(late_card.get_by_role("link", name=late.name)).to_be_visible()
    expect(late_card.locator(".badge-late")).to_have_count(1)
    snap(page, "dashboard")
    page.emulate_media(color_scheme="dark")
    snap(page, "dashboard-dark")
    page.emulate_media(color_scheme="light")

    late_card.get_by_role("link", name=late.name).click()
    expect(page).to_have_url(re.compile(f"/runs/{late.id}$"))


def test_run_list_filters_paginates_and_updates_live(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    tag = unique("list")
    runs = _make_runs(tag)
    page.goto(f"/runs?tag={tag}")
    expect(page).to_have_title("Flow runs · tideflow")
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#runs-table .badge-completed")).to_have_count(1)
    expect(page.locator("#runs-table .badge-failed")).to_have_count(1)
    # Times are shown relative in the browser and absolute (with time zone) on hover.
    first_time = rows.first.locator("time")
    expect(first_time).to_have_text(re.compile(r"ago|just now"))
    expect(first_time).to_have_attribute("title", re.compile(r"\d{4}"))
    snap(page, "runs")

    # Filter by state with labelled controls (keyboard-usable form).
    page.get_by_label("State", exact=True).select_option("FAILED")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"state=FAILED"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge-failed")).to_be_visible()

    # Filter by flow and time range; then clear.
    page.goto("/runs")
    page.get_by_label("Flow", exact=True).select_option(runs["flow"])
    page.get_by_label("Time range").select_option("1h")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(runs["flow"])
    page.get_by_role("link", name="Clear").click()
    expect(page).to_have_url(re.compile(r"/runs$"))

    # A filter that matches nothing shows an empty state, not an empty table.
    page.goto(f"/runs?tag={tag}&state=CANCELLED")
    expect(page.get_by_text("No runs match")).to_be_visible()

    # Live: a run created after the page loaded appears without a reload.
    page.goto(f"/runs?tag={tag}")
    expect(rows).to_have_count(2)
    new = client.create_flow_run(FlowRunCreate(flow_name=runs["flow"], tags=[tag]))
    expect(page.locator(f"tr[data-run-id='{new.id}']")).to_be_visible()
    expect(rows).to_have_count(3)


def test_run_list_pages_through_many_runs(page: Page, client: SyncClient) -> None:
    tag = unique("many")
    flow_name = unique("ui-many")
    for _ in range(27):
        client.create_flow_run(FlowRunCreate(flow_name=flow_name, tags=[tag]))
    page.goto(f"/runs?tag={tag}")
    expect(page.locator("#runs-table tbody tr")).to_have_count(25)
    expect(page.locator(".pager")).to_contain_text("27 runs · page 1 of 2")
    page.get_by_role("link", name="Older →").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    expect(page.locator(".pager")).to_contain_text("page 2 of 2")
    # Live refresh keeps the page it is on.
    page.wait_for_timeout(4500)
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)


def test_run_page_shows_timeline_parameters_and_filtered_logs(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    runs = _make_runs(unique("page"))
    run = client.read_flow_run(runs["ok"])
    client.create_logs(
        [LogCreate(flow_run_id=run.id, name="x", level=logging.DEBUG, message="connecting quietly",
                   timestamp=run.start_time)]
    )  # fmt: skip
    page.goto(f"/runs/{run.id}")
    expect(page).to_have_title(f"{run.name} · tideflow")
    expect(page.get_by_role("heading", level=1)).to_contain_text(run.name)
    expect(page.locator("h1 .badge-completed")).to_have_text("Completed")

    timeline = page.locator(".timeline-item")
    states = client.read_flow_run_states(run.id)
    expect(timeline).to_have_count(len(states))
    expect(timeline.locator(".badge")).to_have_text([s.name for s in states])
    expect(timeline.last).to_contain_text("Completed")

    params = page.locator("section", has=page.get_by_role("heading", name="Parameters"))
    expect(params.locator("tr", has_text="rows")).to_contain_text("42")
    expect(params.locator("tr", has_text="source")).to_contain_text('"s3://bucket/in"')

    logs = page.locator("#logs .log:visible")
    expect(logs.filter(has_text="loaded 42 rows from s3://bucket/in")).to_have_count(1)
    expect(logs.filter(has_text="connecting quietly")).to_have_count(0)  # DEBUG hidden by default
    page.get_by_label("Level").select_option("0")
    expect(logs.filter(has_text="connecting quietly")).to_have_count(1)
    page.get_by_label("Level").select_option("30")
    expect(logs).to_have_count(1)
    expect(logs.first).to_contain_text("3 rows skipped")
    snap(page, "run-completed")

    bad = client.read_flow_run(runs["bad"])
    page.goto(f"/runs/{bad.id}")
    expect(page.locator("h1 .badge-failed")).to_be_visible()
    expect(page.locator(".timeline-item").last).to_contain_text("the source file is empty")


def test_run_page_follows_a_live_run(page: Page, client: SyncClient, snap: Snap) -> None:
    run = client.create_flow_run(
        FlowRunCreate(flow_name=unique("ui-live"), parameters={"n": 1}, state=Running())
    )
    page.goto(f"/runs/{run.id}")
    expect(page.locator("h1 .badge-running")).to_be_visible()
    expect(page.get_by_text("No logs yet.")).to_be_visible()
    snap(page, "run-running")

    client.create_logs(
        [LogCreate(flow_run_id=run.id, name="x", level=logging.INFO, message="step 1 of 2 done",
                   timestamp=utcnow())]
    )  # fmt: skip
    expect(page.locator("#logs .log", has_text="step 1 of 2 done")).to_be_visible()
    client.set_flow_run_state(run.id, Completed(message="all good"))
    expect(page.locator("h1 .badge-completed")).to_be_visible()
    expect(page.locator(".timeline-item").last).to_contain_text("all good")


def test_unknown_ids_show_a_404_page(page: Page, base_url: str) -> None:
    missing = uuid.uuid4()
    response = page.goto(f"/runs/{missing}")
    assert response is not None and response.status == 404
    expect(page).to_have_title("Not found · tideflow")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"flow run {missing}")
    response = page.goto("/runs/not-a-run")
    assert response is not None and response.status == 404
    # The API keeps answering JSON.
    assert httpx.get(f"{base_url}/api/flow_runs/{missing}").json()["detail"].startswith("flow run")
    assert httpx.get(f"{base_url}/docs").status_code == 200


def test_keyboard_navigation_reaches_every_nav_link(page: Page, client: SyncClient) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    labels = []
    for _ in range(6):
        page.keyboard.press("Tab")
        labels.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert "Flow runs" in labels
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flow runs").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/runs$"))
    expect(page.get_by_role("link", name="Flow runs")).to_have_attribute("aria-current", "page")
    # Every form control on the page has an accessible label.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(el => !el.labels || el.labels.length === 0).map(el => el.name || el.id)"""
    )
    assert unlabelled == []
    assert client.count_flow_runs(FlowRunFilter()) >= 0


def test_every_page_loads_only_local_assets(page: Page, base_url: str) -> None:
    """No CDN, no external fonts: every request a page makes goes to the server itself."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    for path in (
        "/",
        "/runs",
        "/deployments",
        "/events",
        "/automations",
        "/automations/new",
        "/chains",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert page.title().endswith("· tideflow"), path
        expect(page.locator("nav[aria-label=Main] a[aria-current=page]")).to_have_count(1)
    external = [url for url in requested if not url.startswith((base_url, "ws://127.0.0.1"))]
    assert external == []
    assert any(url.endswith(".css?v=0.1.0") or "/ui/static/app.css" in url for url in requested)
