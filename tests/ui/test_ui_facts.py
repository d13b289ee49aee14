"""Facts the pages state, checked in a real browser: the dashboard's failed-or-crashed count links
to a list with both, a future run says when it is scheduled, a run shows the parameters it ran with
(defaults resolved), a failed automation action looks like a failure, no page shows JSON escapes
(``\\u0027``) and no word is broken across lines."""

from __future__ import annotations

import datetime as dt
import re

from page_tour import tour
from playwright.sync_api import Page, expect
from ui_helpers import Served, unique

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunCreate
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.events import Event, Resource
from tideflow.schemas.states import Crashed, Failed, Running, Scheduled, utcnow

# A word broken across two lines: its letters lie on more than one line box.
BROKEN_WORDS = """() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!el || el.closest("pre, code, textarea, script, style, svg, .mono, [hidden], option")) continue;
    const words = /[A-Za-z]{4,}/g;
    let m;
    while ((m = words.exec(node.data))) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0)
        .map(r => Math.round(r.top)));
      if (tops.size > 1) bad.push(m[0] + " in <" + el.tagName.toLowerCase() + " class=" + el.className + ">");
    }
  }
  return bad;
}"""


def test_failed_or_crashed_count_links_to_both(page: Page, client: SyncClient) -> None:
    tag = unique("facts")
    flow_name = unique("ui-facts")
    crashed = client.create_flow_run(
        FlowRunCreate(flow_name=flow_name, tags=[tag], state=Running())
    )
    client.set_flow_run_state(crashed.id, Crashed(message="the process died"))
    failed = client.create_flow_run(FlowRunCreate(flow_name=flow_name, tags=[tag], state=Running()))
    client.set_flow_run_state(failed.id, Failed(message="an error"))

    page.goto("/")
    stat = page.get_by_role("link", name=re.compile("Failed or crashed"))
    count = int(stat.locator("[data-stat=failed]").inner_text())
    stat.click()
    expect(page).to_have_url(re.compile(r"state=FAILED%2CCRASHED"))
    expect(page.get_by_label("State", exact=True)).to_have_value("FAILED,CRASHED")
    expect(page.locator(".pager")).to_contain_text(f"{count} run")
    page.goto(page.url + f"&tag={tag}")
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#runs-table .badge-crashed")).to_have_count(1)
    expect(page.locator("#runs-table .badge-failed")).to_have_count(1)
    # The dashboard's "all" link of the failing card leads to the same list.
    page.goto("/")
    page.get_by_role("link", name="All failed or crashed").click()
    expect(page).to_have_url(re.compile(r"state=FAILED%2CCRASHED"))


def test_a_future_run_says_when_it_is_scheduled(page: Page, client: SyncClient) -> None:
    flow_name = unique("ui-later")
    when = utcnow() + dt.timedelta(minutes=46)
    run = client.create_flow_run(
        FlowRunCreate(flow_name=flow_name, state=Scheduled(scheduled_time=when))
    )
    page.goto(f"/runs?flow={flow_name}")
    cell = page.locator(f"tr[data-run-id='{run.id}'] .when-planned")
    expect(cell).to_have_text(re.compile(r"^Scheduled in 4[56] min$"))
    page.goto(f"/runs/{run.id}")
    expected = page.locator(".facts div", has=page.locator("dt", has_text="Expected start"))
    expect(expected.locator("dd")).to_have_text(re.compile(r"^in 4[56] min$"))
    expect(page.locator("body")).not_to_contain_text("min ago")


def test_a_run_shows_the_parameters_it_ran_with(
    page: Page, client: SyncClient, served: Served
) -> None:
    deployment = client.read_deployment_by_name(served.report)
    run = client.create_flow_run_from_deployment(
        deployment.id, DeploymentFlowRunCreate(parameters={"rows": 7})
    )
    page.goto(f"/runs/{run.id}")
    params = page.locator("section", has=page.get_by_role("heading", name="Parameters"))
    expect(params).not_to_contain_text("takes no parameters")
    expect(params.locator("tr")).to_have_count(6)
    expect(params.locator("tr", has_text="rows")).to_contain_text("7")
    expect(params.locator("tr", has_text="rows")).not_to_contain_text("default")
    source = params.locator("tr", has_text="source")
    expect(source).to_contain_text('"s3://bucket/raw"')
    expect(source).to_contain_text("flow default")
    expect(params.locator("tr", has_text="mode")).to_contain_text('"fast"')
    expect(params.locator("tr", has_text="dry_run")).to_contain_text("false")


def test_a_failed_action_event_looks_like_a_failure(page: Page, client: SyncClient) -> None:
    marker = unique("tone")
    client.emit_events(
        [
            Event(event="tideflow.automation.action.failed",
                  resource=Resource({"tideflow.resource.id": f"ui.{marker}"})),
            Event(event="tideflow.flow-run.Failed",
                  resource=Resource({"tideflow.resource.id": f"ui.{marker}"})),
        ]
    )  # fmt: skip
    page.goto(f"/events?resource=ui.{marker}")
    action = page.locator("details.event[data-event-name='tideflow.automation.action.failed']")
    run = page.locator("details.event[data-event-name='tideflow.flow-run.Failed']")
    expect(action.locator(".event-name")).to_have_class(re.compile(r"\btone-failed\b"))
    expect(run.locator(".event-name")).to_have_class(re.compile(r"\btone-failed\b"))
    colour = action.locator(".event-name").evaluate("e => getComputedStyle(e).color")
    assert colour == run.locator(".event-name").evaluate("e => getComputedStyle(e).color")


def test_no_json_escapes_and_no_broken_words_on_any_page(
    page: Page, client: SyncClient, served: Served
) -> None:
    paths = tour(client, served)
    problems: list[str] = []
    for width in (1280, 800):
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            html = page.content()
            if "\\u0027" in html or "\\u0022" in html:
                problems.append(f"{path}: a JSON escape in the page")
            for word in page.evaluate(BROKEN_WORDS):
                problems.append(f"{path} at {width} px: {word}")
    assert not problems, "\n".join(problems)
