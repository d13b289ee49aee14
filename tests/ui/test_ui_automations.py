"""Automations in a real browser: create one from an event in the feed and see it fire (history
with outcome and the run it started), explain it against events, toggle it, edit it, and the
editor's validation errors."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from playwright.sync_api import Locator, Page, expect
from ui_helpers import Served, Snap, wait_final

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter


def eventually_after_reload(
    page: Page, locator: Callable[[], Locator], timeout: float = 30
) -> None:
    """Reload ``page`` until ``locator()`` is visible (for pages that are not live)."""
    deadline = time.monotonic() + timeout
    while True:
        if locator().count() > 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not visible after {timeout} s of reloads: {locator()} on {page.url}:\n"
                + page.content()[-1500:]
            )
        page.wait_for_timeout(500)
        page.reload()


def _create_from_event(
    page: Page, client: SyncClient, served: Served
) -> tuple[uuid.UUID, uuid.UUID]:
    """Run the extract deployment, then build an automation from its Completed event that runs
    the notify deployment; the new automation's id and the upstream run's id."""
    extract = client.read_deployment_by_name(served.extract)
    notify = client.read_deployment_by_name(served.notify)
    upstream = wait_final(client, client.create_flow_run_from_deployment(extract.id).id)
    page.goto(f"/events?resource=tideflow.flow-run.{upstream.id}&name=tideflow.flow-run.Completed")
    row = page.locator("details.event")
    expect(row).to_have_count(1)
    row.locator("summary").click()
    expect(row.locator("table.related tr[data-role=deployment]")).to_contain_text(extract.name)
    row.get_by_role("link", name="Automation from this event").click()
    expect(page).to_have_title("New automation · tideflow")
    editor = page.get_by_label("Automation (YAML)")
    expect(editor).to_have_value(re.compile(r"expect:\n\s*- tideflow\.flow-run\.Completed"))
    expect(editor).to_have_value(re.compile(r"tideflow\.resource\.role: deployment"))
    expect(editor).to_have_value(re.compile(f"tideflow\\.resource\\.name: {extract.name}"))
    page.get_by_label("Deployment", exact=True).select_option(str(notify.id))
    expect(editor).to_have_value(re.compile(f"deployment_id: {notify.id}"))
    page.get_by_role("button", name="Create automation").click()
    expect(page).to_have_url(re.compile(r"/automations/[0-9a-f-]{36}$"))
    return uuid.UUID(page.url.rsplit("/", 1)[1]), upstream.id


def test_automation_from_an_event_fires_and_explains(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    automation_id, first_upstream = _create_from_event(page, client, served)
    expect(page.locator("#enabled-badge")).to_have_text("Enabled")
    expect(page.get_by_text("Never fired")).to_be_visible()
    expect(page.locator("#automation-yaml")).to_contain_text("type: run-deployment")

    extract = client.read_deployment_by_name(served.extract)
    notify = client.read_deployment_by_name(served.notify)
    upstream = client.create_flow_run_from_deployment(extract.id)
    wait_final(client, upstream.id)
    eventually_after_reload(page, lambda: page.locator("#firings .badge", has_text="Executed"))
    firing = page.locator("#firings tbody tr").first
    expect(firing).to_contain_text("run deployment")
    firing.get_by_role("link", name="run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    notify_run = client.read_flow_run(uuid.UUID(page.url.rsplit("/", 1)[1]))
    assert notify_run.deployment_id == notify.id
    expect(page.locator("#triggered-by")).to_contain_text(upstream.name)
    expect(page.locator("h1 .badge-completed")).to_be_visible(timeout=30_000)

    # The dashboard lists it among the automations that fired recently.
    page.goto("/")
    fired = page.locator(
        "section", has=page.get_by_role("heading", name="Automations fired recently")
    )
    expect(fired.locator(f"a[href='/automations/{automation_id}']")).to_be_visible()

    # Explain: the upstream run's Completed event matches every criterion; its Running event not.
    page.goto(f"/automations/{automation_id}")
    page.goto(f"/events?resource=tideflow.flow-run.{upstream.id}")
    completed_id = page.locator(
        "details.event[data-event-name='tideflow.flow-run.Completed']"
    ).get_attribute("data-event-id")
    running_id = page.locator(
        "details.event[data-event-name='tideflow.flow-run.Running']"
    ).get_attribute("data-event-id")
    page.goto(f"/automations/{automation_id}")
    page.get_by_label("Event id").fill(str(completed_id))
    page.get_by_role("button", name="Explain").click()
    result = page.locator("#explain-result")
    ok_names = result.locator(".criterion.ok .criterion-name")
    expect(ok_names.filter(has_text=re.compile(r"^expect$"))).to_have_count(1)
    expect(ok_names.filter(has_text="match_related[0] tideflow.resource.name")).to_have_count(1)
    # It was counted already (it fired), which the explanation says rather than hides.
    expect(result.locator(".criterion.no")).to_contain_text("already counted")
    expect(result).to_contain_text("This event fired firing")
    snap(page, "automation")
    page.get_by_label("Event id").fill(str(running_id))
    page.get_by_role("button", name="Explain").click()
    expect(result.locator(".explain-verdict")).to_contain_text("Would not fire")
    expect(result.locator(".criterion.no").first).to_contain_text("tideflow.flow-run.Running")
    page.get_by_label("Event id").fill("not-an-id")
    page.get_by_role("button", name="Explain").click()
    expect(result).to_contain_text("is not an event id")
    assert first_upstream != upstream.id


def test_toggle_and_edit_an_automation(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    automation_id, _ = _create_from_event(page, client, served)
    page.goto("/automations")
    expect(page).to_have_title("Automations · tideflow")
    row = page.locator(f"tr[data-automation-id='{automation_id}']")
    switch = row.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    snap(page, "automations")
    switch.click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    assert _enabled(page, automation_id) is False
    row.get_by_role("switch").focus()
    page.keyboard.press("Enter")
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "true")
    assert _enabled(page, automation_id) is True

    page.goto(f"/automations/{automation_id}/edit")
    editor = page.get_by_label("Automation (YAML)")
    text = editor.input_value()
    editor.fill(re.sub(r"^name: .*$", "name: renamed by the editor", text, count=1, flags=re.M))
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(f"/automations/{automation_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("renamed by the editor")
    assert client.count_flow_runs(FlowRunFilter()) > 0


def _enabled(page: Page, automation_id: uuid.UUID) -> bool:
    response = page.request.get(f"/api/automations/{automation_id}")
    return bool(response.json()["enabled"])


def test_editor_shows_validation_errors_inline(page: Page, snap: Snap) -> None:
    page.goto("/automations/new")
    editor = page.get_by_label("Automation (YAML)")
    text = editor.input_value()
    editor.fill(text.replace("threshold: 1", "threshold: 0"))
    page.get_by_role("button", name="Create automation").click()
    error = page.locator("#automation-error")
    expect(error).to_contain_text("threshold")
    expect(editor).to_have_attribute("aria-invalid", "true")
    snap(page, "automation-editor-error")
    editor.fill("name: [unclosed")
    page.get_by_role("button", name="Create automation").click()
    expect(error).to_contain_text("not valid YAML at line")
    editor.fill("- just a list")
    page.get_by_role("button", name="Create automation").click()
    expect(error).to_contain_text("must be a mapping")
    response = page.goto(f"/automations/{uuid.uuid4()}")
    assert response is not None and response.status == 404
