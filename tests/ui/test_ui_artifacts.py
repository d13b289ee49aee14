"""Artifacts in a real browser: the run page's artifacts section (markdown rendered with raw HTML
shown as text, a table, a link, a progress bar), the artifacts page (latest per key) and one
artifact's page with the versions of its key."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect
from ui_helpers import Snap, unique

from tideflow import flow
from tideflow.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from tideflow.client import SyncClient
from tideflow.runtime import flow_run


def test_artifacts_on_the_run_page_and_the_artifacts_pages(
    page: Page, client: SyncClient, snap: Snap
) -> None:
    key = unique("report").lower()
    ids: list[Any] = []

    @flow(name=unique("ui-artifacts"))
    def publish() -> None:
        ids.append(flow_run.id)
        create_markdown_artifact("# Old report", key=key)
        create_markdown_artifact(
            "# Daily report\n\n**12** rows loaded <script>window.hacked = 1</script>\n\n"
            "[docs](https://example.com/docs) [bad](javascript:alert(1))",
            key=key,
            description="the day's numbers",
        )
        create_table_artifact([{"region": "north", "sales": 3}, {"region": "south", "sales": 9}])
        create_link_artifact("https://example.com/dashboard", "the dashboard")
        progress = create_progress_artifact(10)
        update_progress_artifact(progress, 75)

    publish()
    page.goto(f"/runs/{ids[0]}")
    section = page.locator("section[aria-labelledby=artifacts-title]")
    expect(section.locator("article.artifact")).to_have_count(5)  # both versions of the key
    markdown = section.locator(".markdown").first
    expect(markdown.locator("h1")).to_have_text("Daily report")
    expect(markdown.locator("strong")).to_have_text("12")
    expect(markdown).to_contain_text("<script>window.hacked = 1</script>")  # shown, not run
    assert page.evaluate("window.hacked") is None
    expect(markdown.locator("a")).to_have_count(1)  # the javascript: link is not a link
    expect(section.locator("table.table td")).to_contain_text(["north", "3", "south", "9"])
    link = section.get_by_role("link", name="the dashboard")
    expect(link).to_have_attribute("href", "https://example.com/dashboard")
    expect(section.locator("progress")).to_have_attribute("value", "75")
    snap(page, "run-artifacts")

    page.goto("/artifacts")
    row = page.locator("tr", has=page.get_by_role("link", name=key, exact=True))
    expect(row).to_have_count(1)  # the latest version only
    expect(row).to_contain_text("Daily report")
    snap(page, "artifacts")
    row.get_by_role("link", name=key, exact=True).click()
    expect(page.locator("h1").first).to_have_text(key)
    expect(page.locator(".markdown h1")).to_have_text("Daily report")
    versions = page.locator("section[aria-labelledby=versions-title] li")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("latest")
    versions.last.get_by_role("link").click()
    expect(page.locator(".markdown h1")).to_have_text("Old report")
    expect(page.locator(".page-head")).to_contain_text("an older version")
    snap(page, "artifact")

    missing = page.goto("/artifacts/not-an-id")
    assert missing is not None and missing.status == 404
