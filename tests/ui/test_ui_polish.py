"""Polish in a real browser and over HTTP: the theme toggle (persisted, no inline script), the Run
form's enum select, run name, tags and later start, gzip for pages, JSON and assets (websockets
unaffected: the live feed tests use them), and live pages that make no DOM changes when nothing
changed."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Page, expect
from ui_helpers import Served, unique

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunCreate
from tideflow.schemas.states import Completed, Running

# Mutations other than a <time>'s text (relative times tick) under an element, counted in the page.
WATCH_MUTATIONS = """(selector) => {
  window.__mutations = [];
  new MutationObserver(list => list.forEach(m => {
    const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
    if (el && el.closest("time")) return;
    window.__mutations.push(m.type + " " + (el ? el.tagName : "?"));
  })).observe(document.querySelector(selector),
    {childList: true, subtree: true, attributes: true, characterData: true});
}"""


def test_theme_toggle_switches_and_persists(page: Page) -> None:
    page.emulate_media(color_scheme="light")
    page.goto("/runs")
    html = page.locator("html")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    toggle = page.locator("#theme-toggle")
    expect(toggle).to_have_attribute("aria-label", "Switch to the dark theme")
    toggle.click()
    expect(html).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-label", "Switch to the light theme")
    dark = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert dark != background
    page.goto("/deployments")  # kept across pages and reloads
    expect(html).to_have_attribute("data-theme", "dark")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == dark
    toggle.click()
    expect(html).to_have_attribute("data-theme", "light")
    page.reload()
    expect(html).to_have_attribute("data-theme", "light")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == background


def test_run_form_enum_select_name_tags_and_later_start(
    page: Page, client: SyncClient, served: Served
) -> None:
    deployment = client.read_deployment_by_name(served.report)
    page.goto(f"/deployments/{deployment.id}")
    mode = page.get_by_label("mode")
    assert mode.evaluate("e => e.tagName") == "SELECT"
    expect(mode.locator("option")).to_have_text(["(default)", "fast", "full"])
    page.get_by_label("rows").fill("5")
    mode.select_option("full")
    page.get_by_text("Name, tags, start time").click()
    name = unique("my-run")
    page.get_by_label("Run name").fill(name)
    page.get_by_label("Tags").fill("backfill, ui-form")
    page.get_by_label("Later, at").check()
    page.get_by_role("button", name="Run deployment").click()
    expect(page.locator("#err-run-start-at")).to_have_text("choose a date and time")
    # In the browser's time zone (Europe/Paris in these tests), three hours from now.
    local = dt.datetime.now(ZoneInfo("Europe/Paris")) + dt.timedelta(hours=3)
    page.get_by_label("Start at (your local time)").fill(local.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Run deployment").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    run_id = page.url.rsplit("/", 1)[-1]
    run = client.read_flow_run(run_id)  # type: ignore[arg-type]
    assert run.name == name
    assert {"backfill", "ui-form"} <= set(run.tags)
    assert run.parameters["mode"] == "full" and run.parameters["rows"] == 5
    assert run.state_name == "Scheduled"
    assert run.expected_start_time is not None
    wait = run.expected_start_time - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=2, minutes=58) < wait < dt.timedelta(hours=3, minutes=1), wait
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def test_pages_json_and_assets_are_gzipped(base_url: str, client: SyncClient) -> None:
    for _ in range(30):  # enough runs for a JSON answer worth compressing
        client.create_flow_run(FlowRunCreate(flow_name=unique("ui-gzip")))
    with httpx.Client(base_url=base_url, headers={"Accept-Encoding": "gzip"}) as http:
        for method, path, body in (
            ("GET", "/runs", None),
            ("GET", "/ui/static/app.css", None),
            ("GET", "/ui/static/feed.js", None),
            ("POST", "/api/flow_runs/filter", {"limit": 30}),
        ):
            response = http.request(method, path, json=body)
            assert response.status_code == 200, (path, response.text[:200])
            assert response.headers.get("content-encoding") == "gzip", path
            assert response.content  # httpx decoded it
        # Small answers are sent as they are.
        health = http.get("/api/health")
        assert "content-encoding" not in health.headers


def test_live_pages_change_nothing_when_nothing_changed(page: Page, client: SyncClient) -> None:
    flow_name = unique("ui-still")
    run = client.create_flow_run(FlowRunCreate(flow_name=flow_name, state=Running()))
    client.set_flow_run_state(run.id, Completed())
    page.goto(f"/runs?flow={flow_name}")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    page.wait_for_timeout(5000)  # the first refresh (every 4 s) has replaced the rendered table
    page.evaluate(WATCH_MUTATIONS, "#runs-table")
    page.wait_for_timeout(9000)  # two more refreshes bring the same table
    assert page.evaluate("() => window.__mutations") == []
    # A change does show.
    client.create_flow_run(FlowRunCreate(flow_name=flow_name))
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
