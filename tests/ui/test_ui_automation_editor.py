"""The guided automation editor in a real browser: event-name suggestions from stored events, match
and match_related as label rows, threshold/within/posture, an action chosen by kind with the
deployment picked by name and its parameters as typed fields, the YAML view kept in sync both
ways, field-level errors from the server, the edit page preselecting the current values, and an
automation made this way that fires."""

from __future__ import annotations

import re
import time
import uuid

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap, unique, wait_final

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter
from tideflow.schemas.events import Event, Resource


def test_create_with_the_form_edit_it_and_see_it_fire(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    extract = client.read_deployment_by_name(served.extract)
    report = client.read_deployment_by_name(served.report)
    custom = f"acme.{unique('order')}.shipped"
    client.emit_events(
        [Event(event=custom, resource=Resource({"tideflow.resource.id": "acme.o.1"}))]
    )

    page.goto("/automations/new")
    form = page.locator("#guided")
    yaml_view = page.get_by_label("Automation (YAML)")
    # Suggestions: the names the server emits and the names of stored events.
    expect(page.locator("#event-names option[value='tideflow.flow-run.Completed']")).to_have_count(
        1
    )
    expect(page.locator(f"#event-names option[value='{custom}']")).to_have_count(1)
    name = unique("guided")
    form.get_by_label("Name", exact=True).fill(name)
    expect_rows = form.locator("fieldset[data-path='trigger.expect'] input")
    expect(expect_rows.first).to_have_value("tideflow.flow-run.Completed")
    expect(expect_rows.first).to_have_attribute("list", "event-names")
    related = form.locator("fieldset[data-path='trigger.match_related[0]']")
    expect(related.locator("[data-part=key]").nth(0)).to_have_value("tideflow.resource.role")
    related.locator("[data-part=value]").nth(1).fill(extract.name)
    form.get_by_label("Threshold").fill("0")
    form.get_by_label("Posture").select_option("Reactive")
    form.get_by_label("Deployment", exact=True).select_option(str(report.id))
    form.get_by_label("rows (integer)").fill("7")
    form.get_by_label("mode (string)").select_option("full")
    expect(yaml_view).to_have_value(re.compile(f"deployment_id: {report.id}"))
    expect(yaml_view).to_have_value(re.compile(r"parameters:\n\s+rows: 7\n\s+mode: full"))
    expect(yaml_view).to_have_value(re.compile(f"tideflow.resource.name: {extract.name}"))
    expect(yaml_view).to_have_value(re.compile(f"name: {name}"))

    # The server's 422 is shown next to the field it names.
    page.get_by_role("button", name="Create automation").click()
    threshold_error = form.locator("[data-path='trigger.threshold'] .field-error")
    expect(threshold_error).to_contain_text("greater than or equal to 1")
    expect(form.get_by_label("Threshold")).to_have_attribute("aria-invalid", "true")
    snap(page, "automation-editor-guided")
    form.get_by_label("Threshold").fill("1")
    page.get_by_role("button", name="Create automation").click()
    expect(page).to_have_url(re.compile(r"/automations/[0-9a-f-]{36}$"))
    automation_id = uuid.UUID(page.url.rsplit("/", 1)[1])
    stored = client.read_automation(automation_id)
    trigger = stored.trigger.model_dump(mode="json")
    assert trigger["expect"] == ["tideflow.flow-run.Completed"]
    assert trigger["match_related"] == [
        {"tideflow.resource.role": "deployment", "tideflow.resource.name": extract.name}
    ]
    action = stored.actions[0].model_dump(mode="json")
    assert action["deployment_id"] == str(report.id)
    assert action["parameters"] == {"rows": 7, "mode": "full"}

    # It fires: extract completes, report runs with the parameters from the form.
    before = {
        r.id for r in client.read_flow_runs(FlowRunFilter(deployment_id=[report.id], limit=200))
    }
    wait_final(client, client.create_flow_run_from_deployment(extract.id).id)
    deadline = time.monotonic() + 30
    fired = []
    while not fired and time.monotonic() < deadline:
        fired = [
            r
            for r in client.read_flow_runs(FlowRunFilter(deployment_id=[report.id], limit=200))
            if r.id not in before
            and r.created_by is not None
            and r.created_by.id == f"tideflow.automation.{automation_id}"
        ]
        time.sleep(0.1)
    assert fired, "the automation made with the form did not fire"
    assert fired[0].parameters["rows"] == 7 and fired[0].parameters["mode"] == "full"
    assert wait_final(client, fired[0].id).state_name == "Completed"

    # The edit page preselects everything; a change in the form keeps the trigger's id.
    page.goto(f"/automations/{automation_id}/edit")
    form = page.locator("#guided")
    expect(form.get_by_label("Name", exact=True)).to_have_value(name)
    expect(form.get_by_label("Deployment", exact=True)).to_have_value(str(report.id))
    expect(form.get_by_label("rows (integer)")).to_have_value("7")
    expect(form.get_by_label("mode (string)")).to_have_value("full")
    expect(form.get_by_label("Threshold")).to_have_value("1")
    expect(form.get_by_label("Trigger kind")).to_have_value("event")
    related = form.locator("fieldset[data-path='trigger.match_related[0]']")
    expect(related.locator("[data-part=value]").nth(1)).to_have_value(extract.name)
    snap(page, "automation-editor-edit")
    form.get_by_label("Within (seconds)").fill("60")
    form.get_by_label("Name", exact=True).fill(name + " v2")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(f"/automations/{automation_id}$"))
    changed = client.read_automation(automation_id)
    assert changed.name == name + " v2"
    assert changed.trigger.model_dump(mode="json")["within"] == 60
    assert changed.trigger.id == stored.trigger.id


def test_the_yaml_view_refills_the_form_and_compound_triggers(page: Page) -> None:
    page.goto("/automations/new")
    form = page.locator("#guided")
    yaml_view = page.get_by_label("Automation (YAML)")
    yaml_view.fill(
        "name: two things\n"
        "trigger:\n"
        "  type: compound\n"
        "  require: any\n"
        "  within: 30\n"
        "  triggers:\n"
        "  - type: event\n"
        "    expect: [acme.a]\n"
        "  - type: event\n"
        "    expect: [acme.b]\n"
        "    posture: Proactive\n"
        "    within: 10\n"
        "actions:\n"
        "- type: call-webhook\n"
        "  url: https://example.invalid/hook\n"
    )
    expect(form.get_by_label("Trigger kind")).to_have_value("compound")
    expect(form.get_by_label("Require")).to_have_value("any")
    inner = form.locator("#trigger-children > fieldset")
    expect(inner).to_have_count(2)
    expect(inner.nth(1).get_by_label("Posture")).to_have_value("Proactive")
    expect(form.get_by_label("URL")).to_have_value("https://example.invalid/hook")
    expect(form.get_by_label("Name", exact=True)).to_have_value("two things")
    # Back to the YAML from the form: the action kind offers the eleven kinds the server runs.
    kinds = form.get_by_label("Action", exact=True).locator("option")
    expect(kinds).to_have_count(11)
    form.get_by_label("Action", exact=True).select_option("do-nothing")
    expect(yaml_view).to_have_value(re.compile(r"- type: do-nothing"))
    expect(yaml_view).to_have_value(re.compile(r"require: any"))
    # A trigger the form cannot show is left to the YAML view.
    yaml_view.fill(
        "name: nested\ntrigger:\n  type: sequence\n  triggers:\n  - type: compound\n"
        "    triggers: [{type: event, expect: [a]}]\nactions: []\n"
    )
    expect(page.locator("#guided-off")).to_be_visible()
    # The YAML route answers the form's documents only.
    response = page.request.post("/automations/yaml/dump", data="[1, 2]",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status == 422 and "JSON object" in response.json()["detail"]
    response = page.request.post("/automations/yaml/dump", data="x" * 300_000)
    assert response.status == 413
