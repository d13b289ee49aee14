"""Acting from the UI in a real browser, each action through the API with the page's session:
cancel a running run, retry a failed deployment run (same parameters, run again by serve()), force a
state with a reason, delete a run, a deployment and an automation after confirming in a dialog,
pause and resume a schedule, an automation and a work queue; each shows in the run's state history
or as an event. A read-only user sees no action and is refused (403) when posting anyway."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from ui_helpers import PASSWORD, Secured, Served, unique, wait_final

from tideflow.client import SyncClient
from tideflow.client import _work_pools as pool_calls
from tideflow.schemas import FlowRunCreate, LogFilter, StateType
from tideflow.schemas.deployments import DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.events import EventFilter
from tideflow.schemas.schedules import CronSchedule, DeploymentScheduleCreate
from tideflow.schemas.states import Failed, Running, utcnow
from tideflow.schemas.work_pools import WorkPoolCreate, WorkQueueCreate


def _confirm(page: Page, button: str) -> None:
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button, exact=True).click()
    expect(dialog).to_be_hidden()


def _events(client: SyncClient, name: str, resource_id: str) -> list[object]:
    flt = EventFilter(event_names=[name], resource_ids=[resource_id], limit=10)
    return list(client.read_events(flt).events)


def test_cancel_a_running_run_after_confirming(page: Page, client: SyncClient) -> None:
    run = client.create_flow_run(FlowRunCreate(flow_name=unique("ui-act"), state=Running()))
    page.goto(f"/runs/{run.id}")
    expect(page.locator("h1 .badge-running")).to_be_visible()
    # Keeping it changes nothing.
    page.get_by_role("button", name="Cancel run").click()
    _confirm(page, "Keep it")
    assert client.read_flow_run(run.id).state_type is StateType.RUNNING
    page.get_by_role("button", name="Cancel run").click()
    _confirm(page, "Cancel run")
    expect(page.locator("h1 .badge-cancelled")).to_have_text("Cancelled")
    expect(page.locator(".timeline-item").last).to_contain_text("cancelled from the web UI")
    assert client.read_flow_run(run.id).state_type is StateType.CANCELLED
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)


def test_retry_a_failed_deployment_run_with_the_same_parameters(
    page: Page, client: SyncClient, served: Served
) -> None:
    deployment = client.read_deployment_by_name(served.report)
    later = utcnow() + dt.timedelta(hours=2)
    run = client.create_flow_run_from_deployment(
        deployment.id, DeploymentFlowRunCreate(parameters={"rows": 11}, scheduled_time=later)
    )
    client.set_flow_run_state(run.id, Failed(message="the disk was full"), force=True)
    page.goto(f"/runs/{run.id}")
    expect(page.locator("h1 .badge-failed")).to_be_visible()
    page.get_by_role("button", name="Retry").click()
    _confirm(page, "Retry")
    expect(page.locator("h1 .badge-failed")).to_have_count(0)  # rescheduled, no longer Failed
    # serve() takes it again and runs it with the stored parameters.
    done = wait_final(client, run.id, timeout=60)
    assert done.state_type is StateType.COMPLETED, done.state
    assert done.parameters["rows"] == 11
    messages = [s.message or "" for s in client.read_flow_run_states(run.id)]
    assert any("retried from the web UI" in m for m in messages), messages
    logs = client.read_logs(LogFilter(flow_run_id=[run.id]))
    assert any("report on 11 rows" in log.message for log in logs)
    page.reload()
    expect(page.locator(".timeline-item", has_text="retried from the web UI")).to_have_count(1)


def test_force_a_state_with_a_reason(page: Page, client: SyncClient) -> None:
    run = client.create_flow_run(FlowRunCreate(flow_name=unique("ui-force"), state=Running()))
    page.goto(f"/runs/{run.id}")
    page.get_by_text("Change state").click()
    page.get_by_label("New state").select_option("COMPLETED")
    page.get_by_role("button", name="Set state").click()
    expect(page.locator("#state-error")).to_contain_text("Give a reason")
    expect(page.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Reason").fill("checked by hand: the output is there")
    page.get_by_role("button", name="Set state").click()
    expect(page.locator("h1 .badge-completed")).to_be_visible()
    last = page.locator(".timeline-item").last
    expect(last).to_contain_text("checked by hand: the output is there (forced from the web UI)")
    assert client.read_flow_run(run.id).state_type is StateType.COMPLETED


def test_delete_a_run_a_deployment_and_an_automation(
    page: Page, client: SyncClient, base_url: str
) -> None:
    run = client.create_flow_run(FlowRunCreate(flow_name=unique("ui-del")))
    page.goto(f"/runs/{run.id}")
    page.get_by_role("button", name="Delete").click()
    _confirm(page, "Delete run")
    expect(page).to_have_url(re.compile(r"/runs$"))
    assert httpx.get(f"{base_url}/api/flow_runs/{run.id}").status_code == 404

    deployment = client.create_deployment(
        DeploymentCreate(flow_name=unique("ui-del-flow"), name=unique("gone"))
    )
    page.goto(f"/deployments/{deployment.id}")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("dialog")).to_contain_text(deployment.name)
    _confirm(page, "Delete deployment")
    expect(page).to_have_url(re.compile(r"/deployments$"))
    assert httpx.get(f"{base_url}/api/deployments/{deployment.id}").status_code == 404
    assert _events(client, "tideflow.deployment.deleted", f"tideflow.deployment.{deployment.id}")

    automation = client.create_automation(
        {"name": unique("ui-del-auto"), "trigger": {"type": "event", "expect": ["ui.del"]},
         "actions": [{"type": "do-nothing"}]}
    )  # fmt: skip
    page.goto(f"/automations/{automation.id}")
    page.get_by_role("button", name="Delete").click()
    _confirm(page, "Delete automation")
    expect(page).to_have_url(re.compile(r"/automations$"))
    assert httpx.get(f"{base_url}/api/automations/{automation.id}").status_code == 404
    assert _events(client, "tideflow.automation.deleted", f"tideflow.automation.{automation.id}")


def test_pause_and_resume_a_schedule_an_automation_and_a_queue(
    page: Page, client: SyncClient
) -> None:
    deployment = client.create_deployment(
        DeploymentCreate(
            flow_name=unique("ui-sched"), name=unique("nightly"),
            schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron="0 3 * * *"))],
        )
    )  # fmt: skip
    page.goto(f"/deployments/{deployment.id}")
    line = page.locator(".schedule-line")
    line.get_by_role("button", name=re.compile("^Pause schedule")).click()
    expect(line.locator(".badge-paused")).to_be_visible()
    assert client.read_deployment_schedules(deployment.id)[0].active is False
    line.get_by_role("button", name=re.compile("^Resume schedule")).click()
    expect(line.locator(".badge-paused")).to_have_count(0)
    assert client.read_deployment_schedules(deployment.id)[0].active is True

    automation = client.create_automation(
        {"name": unique("ui-toggle"), "trigger": {"type": "event", "expect": ["ui.toggle"]},
         "actions": [{"type": "do-nothing"}]}
    )  # fmt: skip
    page.goto(f"/automations/{automation.id}")
    page.get_by_role("switch").click()
    expect(page.locator("#enabled-badge")).to_have_text("Disabled")
    resource = f"tideflow.automation.{automation.id}"
    assert _events(client, "tideflow.automation.disabled", resource)
    page.get_by_role("switch").click()
    expect(page.locator("#enabled-badge")).to_have_text("Enabled")
    assert _events(client, "tideflow.automation.enabled", resource)

    pool = unique("ui-act-pool")
    client.send(pool_calls.create_work_pool(WorkPoolCreate(name=pool)))
    queue = client.send(pool_calls.create_work_queue(pool, WorkQueueCreate(name="urgent")))
    page.goto(f"/work-pools/{pool}")
    row = page.locator("tr[data-queue=urgent]")
    row.get_by_role("button", name="Pause").click()
    expect(page.locator("tr[data-queue=urgent] [data-col=status]")).to_have_text("Paused")
    assert _events(client, "tideflow.work-queue.paused", f"tideflow.work-queue.{queue.id}")
    page.get_by_role("button", name="Pause").first.click()  # the pool itself
    expect(page.locator("#pool-paused-badge")).to_be_visible()
    page.goto("/events?name=tideflow.work-pool.paused")
    expect(page.locator("details.event", has_text=pool)).to_have_count(1)


@pytest.fixture
def reader(browser: Browser, secured: Secured) -> Iterator[Page]:
    """A logged-in browser page of a user who may only read."""
    name = unique("rita")
    with secured.api() as api:
        body = {"name": name, "password": PASSWORD, "scopes": ["read"]}
        assert api.post("/api/users/", json=body).status_code == 201
    context = browser.new_context(base_url=secured.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.locator(".logout-who")).to_have_text(name)
    yield page
    context.close()


def test_a_reader_sees_no_actions_and_cannot_post(reader: Page, secured: Secured) -> None:
    with secured.api() as api:
        flow_name = unique("ui-ro")
        run = api.post("/api/flow_runs/", json={"flow_name": flow_name,
                       "state": {"type": "RUNNING"}}).json()  # fmt: skip
        deployment = api.post("/api/deployments/", json={"flow_name": flow_name, "name": "ro",
                              "schedules": [{"schedule": {"cron": "0 3 * * *"}}]}).json()  # fmt: skip
        automation = api.post("/api/automations/", json={
            "name": unique("ro"), "trigger": {"type": "event", "expect": ["ui.ro"]},
            "actions": [{"type": "do-nothing"}]}).json()  # fmt: skip
        pool = unique("ro-pool")
        assert api.post("/api/work_pools/", json={"name": pool}).status_code == 201
    for path in (f"/runs/{run['id']}", f"/deployments/{deployment['id']}",
                 f"/automations/{automation['id']}", "/automations", f"/work-pools/{pool}"):  # fmt: skip
        reader.goto(path)
        expect(reader.locator("main")).to_be_visible()
        expect(
            reader.locator("button[data-action], button[data-post], [role=switch]")
        ).to_have_count(0)
        expect(reader.locator("#state-form, #run-form")).to_have_count(0)
    # Posting anyway, with the session's CSRF token: refused for the scope.
    status, detail = reader.evaluate(
        """(url) => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json',
             'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},
             body: JSON.stringify({state: {type: 'CANCELLED'}})})
             .then(async r => [r.status, (await r.json()).detail])""",
        f"/api/flow_runs/{run['id']}/set_state",
    )
    assert status == 403, detail
    status = reader.evaluate(
        "(url) => fetch(url, {method: 'DELETE', headers: {'X-CSRF-Token': "
        "document.querySelector('meta[name=csrf-token]').content}}).then(r => r.status)",
        f"/api/automations/{automation['id']}",
    )
    assert status == 403
