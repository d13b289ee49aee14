"""Variables, secrets and notification destinations in a real browser, logged in on a server with
auth on (so every change carries the page's CSRF token): create, edit and delete a variable; set,
replace and delete a secret whose value never reaches a page; list destinations and send a test to
a local receiver; no Content-Security-Policy violation; a request without the token refused."""

from __future__ import annotations

import http.server
import json
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from ui_helpers import Snap, unique

from tideflow.testing import ServerProcess

ADMIN = "admin-" + uuid.uuid4().hex
SECRET_VALUE = "hunter2-" + uuid.uuid4().hex


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[Any] = []
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN,
           "TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.1/32"}  # fmt: skip
    with ServerProcess(home=tmp_path_factory.mktemp("ui-config"), env=env,
                       startup_timeout=90) as server:  # fmt: skip
        yield server


def _api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, headers={"Authorization": f"Bearer {ADMIN}"},
                        timeout=30)  # fmt: skip


@pytest.fixture
def logged_in(browser: Browser, secured: ServerProcess) -> Iterator[tuple[Page, list[str]]]:
    context: BrowserContext = browser.new_context(
        base_url=f"http://127.0.0.1:{secured.port}", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)  # fmt: skip
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/login")
    page.get_by_label("API key").fill(ADMIN)
    page.get_by_role("button", name="Log in with the key").click()
    expect(page).to_have_url(re.compile(r"/$"))
    yield page, problems
    context.close()


def test_variables_page(logged_in: tuple[Page, list[str]], secured: ServerProcess,
                        snap: Snap) -> None:  # fmt: skip
    page, problems = logged_in
    name = unique("batch").replace("-", "_")
    page.goto("/variables")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Value (JSON)").first.fill('{"size": 100}')
    page.get_by_label("Tags (comma-separated)").fill("etl, nightly")
    page.get_by_role("button", name="Create variable").click()
    row = page.locator(f"tr[data-variable='{name}']")
    expect(row).to_contain_text('{"size": 100}')
    expect(row).to_contain_text("nightly")
    with _api(secured) as api:
        assert api.get(f"/variables/name/{name}").json()["value"] == {"size": 100}

    # A value that is not JSON is refused in the page, before any request.
    page.get_by_label("Name").fill(name + "x")
    page.get_by_label("Value (JSON)").first.fill("{nope")
    page.get_by_role("button", name="Create variable").click()
    expect(page.locator(".config-form .form-error")).to_contain_text("value is not JSON")
    # The API's reason is shown for a name taken.
    page.get_by_label("Value (JSON)").first.fill("1")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create variable").click()
    expect(page.locator(".config-form .form-error")).to_contain_text("exists")

    row.get_by_text("Edit").click()
    row.get_by_label("Value (JSON)").fill('{"size": 250}')
    row.get_by_role("button", name="Save").click()
    expect(page.locator(f"tr[data-variable='{name}']")).to_contain_text('{"size": 250}')
    snap(page, "variables")
    page.locator(f"tr[data-variable='{name}']").get_by_role("button", name="Delete").click()
    expect(page.locator(f"tr[data-variable='{name}']")).to_have_count(0)
    with _api(secured) as api:
        assert api.get(f"/variables/name/{name}").status_code == 404
    assert not problems, problems


def test_secrets_page_never_shows_a_value(
    logged_in: tuple[Page, list[str]], secured: ServerProcess, snap: Snap
) -> None:
    page, problems = logged_in
    name = unique("db-password")
    page.goto("/secrets")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Value", exact=True).fill(SECRET_VALUE)
    page.get_by_role("button", name="Save secret").click()
    row = page.locator(f"tr[data-secret='{name}']")
    expect(row).to_contain_text("********")
    assert SECRET_VALUE not in page.content()
    # Replacing needs the box ticked; without it the API's 409 reason is shown.
    page.get_by_label("Name").fill(name)
    page.get_by_label("Value", exact=True).fill("second-" + SECRET_VALUE)
    page.get_by_role("button", name="Save secret").click()
    expect(page.locator(".config-form .form-error")).to_contain_text("overwrite")
    page.get_by_label("Replace the value if it exists").check()
    page.get_by_role("button", name="Save secret").click()
    expect(page.locator(".config-form .form-error")).to_be_hidden()
    with _api(secured) as api:
        value = api.get(f"/secrets/name/{name}/value").json()["value"]
    assert value == "second-" + SECRET_VALUE
    page.goto("/secrets")
    assert SECRET_VALUE not in page.content()
    snap(page, "secrets")
    # Same origin but without the CSRF token: refused.
    status = page.evaluate(
        "name => fetch('/api/secrets/name/' + name, {method: 'DELETE'}).then(r => r.status)", name
    )
    assert status == 403
    page.locator(f"tr[data-secret='{name}']").get_by_role("button", name="Delete").click()
    expect(page.locator(f"tr[data-secret='{name}']")).to_have_count(0)
    assert not problems, problems


def test_notifications_page_lists_and_tests_destinations(
    logged_in: tuple[Page, list[str]], secured: ServerProcess, receiver: Receiver, snap: Snap
) -> None:
    page, problems = logged_in
    name = unique("ops")
    with _api(secured) as api:
        made = api.post("/notification_destinations/", json={
            "name": name, "description": "the on-call channel",
            "config": {"type": "webhook", "url": receiver.url},
        })  # fmt: skip
        assert made.status_code == 201, made.text
    page.goto("/notifications")
    row = page.locator(f"tr[data-destination='{name}']")
    expect(row).to_contain_text("webhook")
    expect(row).to_contain_text(f"POST {receiver.url}")
    row.get_by_role("button", name="Send a test").click()
    expect(row.locator("output")).to_contain_text("Sent: sent to notification destination")
    assert receiver.bodies[-1]["subject"] == "tideflow test notification"
    snap(page, "notifications")
    row.get_by_role("button", name="Delete").click()
    expect(page.locator(f"tr[data-destination='{name}']")).to_have_count(0)
    assert not problems, problems
