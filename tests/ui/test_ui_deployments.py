"""Deployment list and page in a real browser, over deployments served by a real serve() process:
status, schedules, triggers, pause/resume, and the Run form (typed inputs, 422 errors next to the
field, a run that reaches Completed on its page)."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter


def _deployment_id(client: SyncClient, full_name: str) -> uuid.UUID:
    return client.read_deployment_by_name(full_name).id


def test_deployments_list_shows_status_schedules_and_triggers(
    page: Page, served: Served, snap: Snap
) -> None:
    page.goto("/deployments")
    expect(page).to_have_title("Deployments · tideflow")
    report = page.locator("tr", has=page.get_by_role("link", name="daily", exact=True))
    expect(report).to_contain_text("Ready")
    expect(report).to_contain_text("03:00")
    load = page.locator("tr", has=page.get_by_role("link", name=f"load-{served.suffix}"))
    expect(load).to_contain_text("tideflow.flow-run.Completed")
    expect(load).to_contain_text(f"name = extract-{served.suffix}")
    snap(page, "deployments")
    report.get_by_role("link", name="daily", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("daily")


def test_run_form_shows_api_validation_errors_next_to_fields(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    deployment_id = _deployment_id(client, served.report)
    runs_before = client.count_flow_runs(FlowRunFilter(deployment_id=[deployment_id]))
    page.goto(f"/deployments/{deployment_id}")
    form = page.locator("#run-form")
    # Inputs per type, prefilled with defaults.
    expect(form.get_by_label("rows")).to_have_attribute("type", "number")
    expect(form.get_by_label("source")).to_have_value("s3://bucket/raw")
    expect(form.get_by_label("ratio")).to_have_value("0.5")
    expect(form.get_by_label("dry_run")).not_to_be_checked()
    expect(form.get_by_label("mode")).to_have_value("fast")
    expect(form.get_by_label("columns")).to_have_value("")

    submit = form.get_by_role("button", name="Run deployment")
    submit.click()  # rows is required and empty
    expect(page.locator("#err-rows")).to_have_text("missing required parameter 'rows'")
    expect(form.get_by_label("rows")).to_have_attribute("aria-invalid", "true")

    form.get_by_label("rows").fill("1.5")
    form.get_by_label("columns").fill('{"a": 1}')
    submit.click()
    expect(page.locator("#err-rows")).to_contain_text("expected integer")
    expect(page.locator("#err-columns")).to_contain_text("parameter 'columns'")
    snap(page, "deployment-run-errors")

    form.get_by_label("columns").fill("[not json")
    submit.click()
    expect(page.locator("#err-columns")).to_contain_text("not valid JSON")
    # Nothing was created by the refused submissions.
    assert client.count_flow_runs(FlowRunFilter(deployment_id=[deployment_id])) == runs_before


def test_run_form_starts_a_run_that_completes_on_its_page(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    deployment_id = _deployment_id(client, served.report)
    page.goto(f"/deployments/{deployment_id}")
    form = page.locator("#run-form")
    form.get_by_label("rows").fill("7")
    form.get_by_label("mode").select_option("full")
    form.get_by_label("dry_run").check()
    form.get_by_label("columns").fill('["id", "total"]')
    form.get_by_role("button", name="Run deployment").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    run_id = uuid.UUID(page.url.rsplit("/", 1)[1])
    expect(page.locator("h1 .badge-completed")).to_be_visible(timeout=30_000)
    expect(page.locator("#logs")).to_contain_text(
        "report on 7 rows from s3://bucket/raw in full mode"
    )
    run = client.read_flow_run(run_id)
    assert run.deployment_id == deployment_id
    assert run.parameters == {
        "rows": 7, "source": "s3://bucket/raw", "ratio": 0.5, "dry_run": True, "mode": "full",
        "columns": ["id", "total"],
    }  # fmt: skip
    assert run.created_by is not None
    assert (run.created_by.type, run.created_by.id) == ("ui", "tideflow.ui")
    expect(page.locator(".facts")).to_contain_text("web UI")
    expect(page.locator(".facts")).to_contain_text("daily")
    snap(page, "run-from-deployment")

    # The deployment page lists the run.
    page.goto(f"/deployments/{deployment_id}")
    expect(page.locator(f"#runs-table tr[data-run-id='{run_id}']")).to_be_visible()
    snap(page, "deployment")


def test_pause_and_resume_from_the_deployment_page(
    page: Page, client: SyncClient, served: Served
) -> None:
    deployment_id = _deployment_id(client, served.extract)
    page.goto(f"/deployments/{deployment_id}")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#paused-badge")).to_be_visible()
    assert client.read_deployment(deployment_id).paused is True
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    expect(page.locator("#paused-badge")).to_have_count(0)
    assert client.read_deployment(deployment_id).paused is False


def test_deployment_page_lists_its_trigger_automation(
    page: Page, client: SyncClient, served: Served
) -> None:
    deployment_id = _deployment_id(client, served.load)
    page.goto(f"/deployments/{deployment_id}")
    automations = page.locator("section", has=page.get_by_role("heading", name="Automations"))
    expect(automations.get_by_role("link")).to_have_count(1)
    expect(automations).to_contain_text("tideflow.flow-run.Completed")
    response = page.goto(f"/deployments/{uuid.uuid4()}")
    assert response is not None and response.status == 404
