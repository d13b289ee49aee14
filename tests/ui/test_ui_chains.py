"""The chains page in a real browser: the served extract -> load deployment trigger is an edge with
its firing count and lag, linking the upstream and downstream deployments and their runs; links
through custom events and compound triggers, and proactive triggers drawn as alarms."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Served, Snap, unique, wait_final

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter
from tideflow.schemas.events import Event, RelatedResource, Resource


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


def test_chains_through_custom_events_compounds_and_alarms(
    page: Page, client: SyncClient, served: Served, snap: Snap
) -> None:
    extract = client.read_deployment_by_name(served.extract)
    load = client.read_deployment_by_name(served.load)
    notify = client.read_deployment_by_name(served.notify)
    report = client.read_deployment_by_name(served.report)
    exported = f"acme.{unique('table')}.exported"
    # A run of extract emitted the custom event (emit_event relates the run's deployment).
    client.emit_events([Event(
        event=exported,
        resource=Resource({"tideflow.resource.id": "acme.table.orders"}),
        related=[RelatedResource({"tideflow.resource.id": f"tideflow.deployment.{extract.id}",
                                  "tideflow.resource.role": "deployment"})],
    )])  # fmt: skip
    on_notify = {"type": "event", "expect": ["tideflow.flow-run.Completed"],
                 "match_related": {"tideflow.resource.name": notify.name}}  # fmt: skip
    via_event = client.create_automation({
        "name": unique("on exported"), "trigger": {"type": "event", "expect": [exported]},
        "actions": [{"type": "run-deployment", "deployment_id": str(notify.id)}],
    })  # fmt: skip
    compound = client.create_automation({
        "name": unique("both"),
        "trigger": {"type": "compound", "require": "all", "within": 600,
                    "triggers": [on_notify, {"type": "event", "expect": [exported]}]},
        "actions": [{"type": "run-deployment", "deployment_id": str(report.id)}],
    })  # fmt: skip
    long_name = "load did not complete within the hour " + "and this name goes on " * 5
    alarm = client.create_automation({
        "name": unique(long_name.strip()),
        "trigger": {"type": "event", "posture": "Proactive", "within": 3600,
                    "expect": ["tideflow.flow-run.Completed"],
                    "after": ["tideflow.flow-run.Running"],
                    "match_related": {"tideflow.resource.name": load.name}},
        "actions": [{"type": "do-nothing"}],
    })  # fmt: skip
    try:
        page.goto("/chains")
        graph = page.locator("svg.chain-graph")

        # Other tests' automations may link the same deployments: pick this test's by name.
        def edge(kind: str, up: Any, down: Any, name: str) -> Any:
            return graph.locator(
                f"path[data-kind={kind}][data-from='{up}'][data-to='{down}']",
                has=page.locator("title", has_text=name),
            )

        custom_edge = edge("trigger", extract.id, notify.id, via_event.name)
        expect(custom_edge).to_have_count(1)
        expect(custom_edge.locator("title")).to_contain_text(f"via {exported}")
        expect(edge("trigger", notify.id, report.id, compound.name)).to_have_count(1)
        expect(edge("trigger", extract.id, report.id, compound.name)).to_have_count(1)
        alarm_edge = graph.locator(
            f"path.chain-edge-alarm[data-from='{load.id}'][data-to='{alarm.id}']"
        )
        expect(alarm_edge).to_have_count(1)
        expect(alarm_edge).to_have_attribute("marker-end", "url(#alarm-arrow)")
        node = graph.locator(f"a[data-alarm='{alarm.id}']")
        expect(node.locator("title")).to_have_text(f"Alarm: {alarm.name}")
        shown = node.locator("text.chain-node-name").text_content() or ""
        assert shown.endswith("…") and len(shown) <= 22
        row = page.locator(f"#chain-edges tr[data-kind=alarm][data-upstream='{load.id}']").filter(
            has=page.locator(f"a[href='/automations/{alarm.id}']")
        )
        expect(row.locator(".badge")).to_have_text("Alarm")
        expect(row.locator(f"a[href='/automations/{alarm.id}']")).to_have_attribute(
            "title", alarm.name
        )
        via_row = page.locator(
            f"#chain-edges tr[data-upstream='{extract.id}'][data-downstream='{notify.id}']",
            has=page.locator(f"a[href='/automations/{via_event.id}']"),
        )
        expect(via_row).to_contain_text(f"via {exported}")
        snap(page, "chains-custom-alarms")
    finally:
        for a in (via_event, compound, alarm):
            client.delete_automation(a.id)
