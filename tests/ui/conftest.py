"""UI tests: one real server process for the whole session and one headless Debian chromium (driven
by Playwright's sync API) per test module; each test gets a fresh browser context and points the SDK at the server.

Screenshots of every page at 1280 and 800 px go to a session temp folder (printed at the end)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from ui_helpers import ADMIN, PASSWORD, SERVE_SCRIPT, Secured, Served, Snap, unique

from tideflow.client import SyncClient
from tideflow.testing import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (1280, 800)


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("ui-server")
    # A loaded machine (CI shares its cores) can take well over 30 s to import and migrate.
    with ServerProcess(home=home, startup_timeout=90) as server:
        yield server


@pytest.fixture(scope="session")
def served(ui_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``serve()`` of three deployments (see ui_helpers.SERVE_SCRIPT) as a real subprocess."""
    folder = tmp_path_factory.mktemp("serve")
    suffix = unique("s").removeprefix("s-")
    script = folder / "ui_serve.py"
    script.write_text(SERVE_SCRIPT.format(suffix=suffix))
    out = folder / "serve.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["TIDEFLOW_API_URL"] = ui_server.api_url
    with out.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(script)], stdout=fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=folder,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while out.read_text(errors="replace").count("Serving deployment") < 4:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve() did not start:\n{out.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Served(suffix, proc, out)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module-scoped, not session-scoped: while Playwright's sync API is alive it marks its loop as
    # running in this thread, so any later test calling asyncio.run() in the same process would
    # fail. Stopping it after each UI module keeps the process clean for whatever runs next
    # (tests run in parallel workers with pytest-xdist, in no fixed order across folders).
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the UI tests need Debian's chromium at {CHROMIUM}: install it with "
            "`apt-get install -y chromium` (.ci/run does this); never `playwright install`"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _point_at_server(ui_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_API_URL", ui_server.api_url)


@pytest.fixture
def base_url(ui_server: ServerProcess) -> str:
    return f"http://127.0.0.1:{ui_server.port}"


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def client(ui_server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(ui_server.api_url) as c:
        yield c


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session temp folder, or ``$TIDEFLOW_UI_SCREENSHOTS`` when set (to look at them after)."""
    chosen = os.environ.get("TIDEFLOW_UI_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def snap(shots_dir: Path) -> Snap:
    """Save full-page screenshots of ``page`` at each width; the viewport is restored afterwards."""

    def take(page: Page, name: str) -> list[Path]:
        size = page.viewport_size
        paths = []
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(100)
            path = shots_dir / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        if size:
            page.set_viewport_size(size)
        return paths

    return take


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """A server with auth on (one per module that uses it), with a write key and a write user."""
    env = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN}
    home = tmp_path_factory.mktemp("ui-secured")
    with ServerProcess(home=home, env=env, startup_timeout=90) as server:
        secured = Secured(server, "", unique("erin"))
        with secured.api() as api:
            made = api.post("/api/api-keys/", json={"name": "ui", "scopes": ["write"]})
            assert made.status_code == 201, made.text
            body = {"name": secured.user, "password": PASSWORD, "scopes": ["write"]}
            assert api.post("/api/users/", json=body).status_code == 201
        secured.key = made.json()["key"]
        yield secured
