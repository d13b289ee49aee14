"""Assets in a real browser: the assets page's lineage graph (upstream left of downstream, status
of each node, a link per asset), one asset's page (properties, metadata, lineage around it, its
history) and the flow-run page's list of what the run materialized."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Snap, unique

from tideflow import flow
from tideflow.assets import Asset, AssetProperties, add_asset_metadata, materialize
from tideflow.client import SyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.runtime import flow_run


def _catalogued(client: SyncClient, key: str) -> None:
    deadline = time.monotonic() + 60  # the run reports from another process; a loaded CI is slow
    while True:
        try:
            if client.read_asset(key).materializations:
                return
        except ObjectNotFound:
            pass
        assert time.monotonic() < deadline, key
        time.sleep(0.1)


def test_lineage_graph_asset_page_and_run_page(page: Page, client: SyncClient, snap: Snap) -> None:
    bucket = unique("lake").lower()
    raw = f"s3://{bucket}/raw.csv"
    prices = f"s3://{bucket}/prices.csv"
    report = Asset(
        key=f"s3://{bucket}/report.parquet",
        properties=AssetProperties(
            name="Sales report", description="daily sales by region <b>bold?</b>",
            owners=["finance"], url="https://example.com/report",
        ),
    )  # fmt: skip
    ids: list[Any] = []

    @materialize(raw)
    def load_raw() -> list[int]:
        return [1, 2, 3]

    @materialize(prices)
    def load_prices() -> dict[str, float]:
        return {"a": 1.0}

    @materialize(report)
    def build(rows: list[int], price: dict[str, float]) -> float:
        add_asset_metadata(report, {"total": 6.0})
        return sum(rows) * price["a"]

    @materialize(f"s3://{bucket}/broken.csv")
    def broken(total: float) -> None:
        raise RuntimeError("quota exceeded")

    @flow(name=unique("ui-assets"))
    def pipeline() -> None:
        ids.append(flow_run.id)
        total = build(load_raw(), load_prices())
        broken.submit(total).wait()

    pipeline()
    _catalogued(client, f"s3://{bucket}/broken.csv")

    violations: list[str] = []  # the pages run under the CSP: no inline code, nothing refused
    page.on(
        "console", lambda msg: violations.append(msg.text) if "Refused to" in msg.text else None
    )
    page.on("pageerror", lambda exc: violations.append(str(exc)))
    page.goto("/assets")
    graph = page.locator("svg.asset-graph")
    expect(graph).to_be_visible()
    nodes = {k: graph.locator(f'a.asset-node[data-asset-key="{k}"]')
             for k in (raw, prices, report.key, f"s3://{bucket}/broken.csv")}  # fmt: skip
    for node in nodes.values():
        expect(node).to_have_count(1)
    expect(nodes[report.key]).to_contain_text("Sales report")
    expect(nodes[report.key]).to_have_attribute("data-status", "succeeded")
    expect(nodes[f"s3://{bucket}/broken.csv"]).to_have_attribute("data-status", "failed")
    for up in (raw, prices):
        edge = graph.locator(f'path[data-upstream="{up}"][data-downstream="{report.key}"]')
        expect(edge).to_have_count(1)
    # Upstream on the left of downstream.
    x_raw = nodes[raw].locator("rect").get_attribute("x")
    x_report = nodes[report.key].locator("rect").get_attribute("x")
    assert x_raw is not None and x_report is not None and float(x_raw) < float(x_report)
    expect(page.locator(f'#assets tr[data-asset-key="{raw}"]')).to_contain_text("Succeeded")
    snap(page, "assets")

    nodes[report.key].click()
    expect(page.locator("h1").first).to_have_text("Sales report")
    expect(page.locator(".page-head")).to_contain_text(report.key)
    expect(page.locator(".facts")).to_contain_text("daily sales by region <b>bold?</b>")  # text
    expect(page.get_by_role("link", name="https://example.com/report")).to_be_visible()
    expect(page.locator("#asset-metadata")).to_contain_text('"total": 6.0')
    expect(page.locator("#asset-upstream a")).to_have_count(2)
    expect(page.locator("#asset-downstream")).to_contain_text("broken.csv")
    expect(page.locator("svg.asset-graph .asset-focus")).to_have_count(1)
    expect(page.locator("#asset-materializations tbody tr")).to_have_count(1)
    snap(page, "asset")

    page.goto(f"/runs/{ids[0]}")
    listed = page.locator("#run-materializations li")
    expect(listed).to_have_count(4)
    expect(
        page.locator(f'#run-materializations li[data-asset-key="s3://{bucket}/broken.csv"]')
    ).to_contain_text("Failed")
    listed.filter(has_text="raw.csv").get_by_role("link").click()
    expect(page.locator(".page-head")).to_contain_text(raw)

    assert not violations, violations
    missing = page.goto("/assets/asset?key=s3://nowhere/none")
    assert missing is not None and missing.status == 404
    bad = page.goto("/assets/asset?key=not-a-uri")
    assert bad is not None and bad.status == 404
