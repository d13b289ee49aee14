"""axe-core (the copy the ``axe-playwright-python`` package ships, injected from disk: nothing is
fetched at run time) on one page of each kind, in the light and the dark theme: no serious or
critical accessibility violation, colour contrast (WCAG AA, 4.5:1) included."""

from __future__ import annotations

import re
from pathlib import Path

import axe_playwright_python
from page_tour import tour
from playwright.sync_api import Page
from ui_helpers import Served

from tideflow.client import SyncClient

AXE_JS = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + " (" + v.impact + "): " + v.help + " at " +
      v.nodes.slice(0, 3).map(n => n.target.join(" ") + " " + (n.failureSummary || "").split("\\n").slice(1, 2).join("")).join(" | "));
}"""


def _shot_name(index: int, path: str) -> str:
    """``07-automations-id-edit`` for ``/automations/<uuid>/edit``: ordered, stable across runs."""
    words = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|[a-z]+-[a-z0-9]+-[0-9a-f]{6}", "id", path)
    return f"{index:02d}-{re.sub(r'[^a-z0-9]+', '-', words).strip('-') or 'dashboard'}"


def test_no_serious_accessibility_violations_in_either_theme(
    page: Page, client: SyncClient, served: Served, shots_dir: Path
) -> None:
    # Every page is also photographed in both themes (viewport, 1280 px): the session's screenshot
    # folder, or $TIDEFLOW_UI_SCREENSHOTS (docs/screenshots holds the set the UI guide shows).
    paths = tour(client, served)
    found: list[str] = []
    for theme in ("light", "dark"):
        page.goto("/")
        page.evaluate("(t) => localStorage.setItem('tideflow-theme', t)", theme)
        for index, path in enumerate(paths):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("() => document.documentElement.dataset.theme") == theme
            shot = shots_dir / f"{theme}-{_shot_name(index, path)}.jpg"
            page.screenshot(path=str(shot), type="jpeg", quality=70)
            page.evaluate(AXE_JS)  # evaluated by the test driver, not a page script (CSP holds)
            found.extend(f"{theme} {path}: {v}" for v in page.evaluate(RUN_AXE))
    assert not found, "\n".join(found)
