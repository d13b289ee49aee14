"""The UI's security in a real browser: logging in with an API key and with a user name and
password, submitting a form (its CSRF token sent by the page's script), a same-origin request
without the token and a forged cross-site form refused, logging out back to /login; and the
Content-Security-Policy holding on every page (no violation reported in the console)."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from page_tour import run_with_tasks, tour
from playwright.sync_api import Browser, BrowserContext, Page, expect
from ui_helpers import ADMIN, PASSWORD, Secured, Served, unique

from tideflow.client import SyncClient
from tideflow.testing import free_port

AUTOMATION_YAML = """name: {name}
trigger:
  type: event
  expect: ["ui.security.{name}"]
  posture: Reactive
  threshold: 1
actions:
  - type: do-nothing
"""


def _watch(page: Page) -> list[str]:
    """Collects the CSP violations (and script errors) the page reports."""
    found: list[str] = []
    page.on(
        "console",
        lambda msg: (
            found.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text
            else None
        ),
    )
    page.on("pageerror", lambda exc: found.append(f"page error: {exc}"))
    return found


def _context(browser: Browser, base_url: str) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def attacker() -> Iterator[tuple[str, dict[str, str]]]:
    """Another site (http://localhost:<port>, not 127.0.0.1) whose pages are set per test."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "not found").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}", pages
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_key_login_form_csrf_forgery_and_logout(
    browser: Browser, secured: Secured, attacker: tuple[str, dict[str, str]]
) -> None:
    context = _context(browser, secured.base_url)
    page = context.new_page()
    violations = _watch(page)
    page.goto("/automations/new")
    expect(page).to_have_url(re.compile(r"/login\?next=/automations/new$"))
    page.get_by_label("API key").fill("tf_wrong_key")
    page.get_by_role("button", name="Log in with the key").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid or revoked")
    page.get_by_label("API key").fill(secured.key)
    page.get_by_role("button", name="Log in with the key").click()
    expect(page).to_have_url(re.compile(r"/automations/new$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    # A form: the editor posts with the page's CSRF token and lands on the new automation.
    name = unique("csrf-ok")
    page.get_by_label("Automation (YAML)").fill(AUTOMATION_YAML.format(name=name))
    page.get_by_role("button", name="Create automation").click()
    expect(page).to_have_url(re.compile(r"/automations/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)

    # The same origin without the token (what an injected script would send): refused.
    status, detail = page.evaluate(
        """() => fetch('/api/flows/', {method: 'POST', headers: {'Content-Type':
             'application/json'}, body: JSON.stringify({name: 'no-token'})})
             .then(async r => [r.status, (await r.json()).detail])"""
    )
    assert status == 403 and "CSRF" in detail

    # Another site's form posting to the server: refused, nothing made, still logged in.
    site, pages = attacker
    forged = unique("forged")
    pages["/evil.html"] = (
        f'<form id="f" method="post" action="{secured.base_url}/api/flows/" enctype="text/plain">'
        f'<input name=\'{{"name": "{forged}", "x": "\' value=\'"}}\'></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    with page.expect_navigation(url=re.compile(r"/api/flows/$")) as navigation:
        page.goto(f"{site}/evil.html")
    response = navigation.value
    assert response is not None and response.status == 403
    assert "refused" in page.content()
    with secured.api() as api:
        flows = api.post("/api/flows/filter", json={}).json()
    assert forged not in str(flows)
    page.goto("/runs")
    expect(page).to_have_url(re.compile(r"/runs$"))

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/runs")
    expect(page).to_have_url(re.compile(r"/login\?next=/runs$"))
    context.close()
    assert not violations, violations


def test_password_login_and_logout(browser: Browser, secured: Secured) -> None:
    context = _context(browser, secured.base_url)
    page = context.new_page()
    violations = _watch(page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("User name").fill(secured.user)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    expect(page.get_by_label("User name")).to_have_value(secured.user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".logout-who")).to_have_text(secured.user)
    page.goto("/deployments")
    expect(page).to_have_title(re.compile("Deployments"))
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    context.close()
    assert not violations, violations


def test_the_login_page_follows_and_switches_the_theme(browser: Browser, secured: Secured) -> None:
    # The login page takes the theme chosen on the app's pages (stored per browser), and its own
    # button switches it; the theme script is one of the login page's public assets (CSP holds).
    context = _context(browser, secured.base_url)
    page = context.new_page()
    violations = _watch(page)
    page.goto("/login")
    page.evaluate("() => localStorage.setItem('tideflow-theme', 'dark')")
    page.reload()
    background = "() => getComputedStyle(document.body).backgroundColor"
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert page.evaluate(background) == "rgb(15, 18, 23)"
    toggle = page.locator("#theme-toggle")
    expect(toggle).to_have_attribute("aria-label", "Switch to the light theme")
    toggle.click()
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    assert page.evaluate(background) == "rgb(246, 247, 249)"
    page.reload()
    assert page.evaluate("() => localStorage.getItem('tideflow-theme')") == "light"
    expect(toggle).to_have_attribute("aria-label", "Switch to the dark theme")
    context.close()
    assert not violations, violations


def test_csp_holds_on_every_page(
    browser: Browser, base_url: str, client: SyncClient, served: Served, secured: Secured
) -> None:
    pages = [*tour(client, served), "/docs"]  # every page kind (the 404 page among them)
    run_id = run_with_tasks()
    context = _context(browser, base_url)
    page = context.new_page()
    violations = _watch(page)
    for path in pages:
        response = page.goto(path)
        assert response is not None and response.status in (200, 404), path
        assert "script-src 'self'" in (response.header_value("content-security-policy") or "")
        page.wait_for_load_state("networkidle")
        assert not violations, (path, violations)
    # The timeline's bars are SVG drawn by the server (geometry attributes, no inline style).
    page.goto(f"/runs/{run_id}")
    bar = page.locator("svg.run-timeline rect.tl-bar").first
    expect(bar).to_have_attribute("width", re.compile(r"^[0-9.]+$"))
    assert bar.get_attribute("style") is None
    # Swagger UI really ran under its policy: the operations are listed.
    page.goto("/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    # ReDoc runs too; the one thing refused is its "powered by" logo from a CDN (the server
    # serves its docs offline and the policy keeps it so).
    page.goto("/redoc")
    # ReDoc lays out every operation before the heading shows: seconds on a busy 2-core machine.
    heading = page.get_by_role("heading", name=re.compile("tideflow")).first
    expect(heading).to_be_visible(timeout=30_000)
    assert all("https://cdn.redoc.ly/" in v and "img-src" in v for v in violations), violations
    context.close()
    # Logged in on a server with auth on: the login page, and pages with the logout form.
    context = _context(browser, secured.base_url)
    page = context.new_page()
    violations = _watch(page)
    page.goto("/login")
    page.get_by_label("API key").fill(secured.key)
    page.get_by_role("button", name="Log in with the key").click()
    expect(page).to_have_url(re.compile(r"/$"))
    for path in ("/", "/runs", "/events", "/automations/new"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
    context.close()
    assert not violations, violations


def test_templates_and_scripts_carry_no_inline_code() -> None:
    ui = Path(__file__).parents[2] / "src" / "tideflow" / "server" / "ui"
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    style_attr = re.compile(r"\sstyle\s*=", re.I)
    offenders = []
    for path in sorted((ui / "templates").glob("*.html")):
        text = path.read_text()
        for pattern in (inline_script, handler, style_attr, re.compile(r"javascript:", re.I)):
            if pattern.search(text):
                offenders.append(f"{path.name}: {pattern.pattern}")
    script = (ui / "static" / "app.js").read_text()
    if re.search(r"\beval\(|new Function\(|setAttribute\(\s*['\"]style", script):
        offenders.append("app.js: eval, new Function or a style attribute")
    assert not offenders, offenders


def test_access_page_creates_and_revokes_keys_and_users_for_admins_only(
    browser: Browser, secured: Secured
) -> None:
    context = _context(browser, secured.base_url)
    page = context.new_page()
    violations = _watch(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/login?next=/access")
    page.get_by_label("API key").fill(ADMIN)
    page.get_by_role("button", name="Log in with the key").click()
    expect(page).to_have_url(re.compile(r"/access$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Access")
    expect(page.locator("#users")).to_contain_text(secured.user)

    # A key: its secret is shown once, in the page, and works against the API.
    name = unique("ui-key")
    form = page.locator("#new-key")
    form.get_by_label("Name").fill(name)
    form.get_by_label("write", exact=True).check()
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-result .key-secret")
    expect(secret).to_have_text(re.compile(r"^tf_"))
    key = secret.inner_text()
    headers = {"Authorization": f"Bearer {key}"}
    made = httpx.post(f"{secured.base_url}/api/flows/filter", json={}, headers=headers)
    assert made.status_code == 200
    page.reload()
    row = page.locator("#api-keys tr", has_text=name)
    expect(row).to_contain_text("write, read")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#api-keys tr", has_text=name)).to_have_count(0)
    refused = httpx.post(f"{secured.base_url}/api/flows/filter", json={}, headers=headers)
    assert refused.status_code == 401

    # A bad user is refused with the API's reason; a good one is listed, then deleted.
    users = page.locator("#new-user")
    users.get_by_label("User name").fill("has space")
    users.get_by_label("Password").fill(PASSWORD)
    users.get_by_role("button", name="Create user").click()
    expect(users.get_by_role("alert")).to_contain_text("name")
    person = unique("frank")
    users.get_by_label("User name").fill(person)
    users.get_by_role("button", name="Create user").click()
    expect(page.locator("#users tr", has_text=person)).to_have_count(1)
    page.locator("#users tr", has_text=person).get_by_role("button", name="Delete").click()
    expect(page.locator("#users tr", has_text=person)).to_have_count(0)
    page.get_by_role("button", name="Log out").click()

    # A write-scoped user sees no Access link and is refused the page.
    page.goto("/login")
    page.get_by_label("User name").fill(secured.user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.locator(".logout-who")).to_have_text(secured.user)
    expect(page.get_by_role("link", name="Access")).to_have_count(0)
    assert page.goto("/access").status == 403  # type: ignore[union-attr]
    context.close()
    assert not violations, violations
