"""Authentication for real: a server process with TIDEFLOW_SERVER_AUTH=on. Every route and
websocket of the app refuses a request without a key (health and version excepted, on their exact
paths), scopes give 403 naming the missing one, keys are created, listed and revoked with the CLI,
revocation bites within a second or two, audit events are stored, the SDK (a flow call, serve())
works with TIDEFLOW_API_KEY, and a server asked to bind 0.0.0.0 without auth refuses to start."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import ServeScript, cli_env, wait_final, wait_for
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tideflow.client import SyncClient
from tideflow.client._events import ws_url
from tideflow.schemas import StateType
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.server.app import create_app
from tideflow.server.ui import load_ui
from tideflow.settings import Settings
from tideflow.testing import ServerProcess, free_port

ADMIN = "admin-" + uuid.uuid4().hex  # TIDEFLOW_SERVER_ADMIN_KEY of the server under test
PUBLIC = {
    ("GET", "/api/health"),
    ("GET", "/api/version"),
    ("GET", "/login"),  # the UI's login page and form: they check the key themselves
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/ui/static/login.css"),  # the login page's own assets, on exact paths
    ("GET", "/ui/static/favicon.svg"),
    ("GET", "/ui/static/theme.js"),
}
# The one public route with a parameter: an inbound webhook (api.hooks). Without a slug that names
# an enabled webhook it answers 404, never runs anything; its own verification does the rest.
WEBHOOK_INGEST = re.compile(r"^/api/hooks/[^/]+$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN}
    with ServerProcess(home=tmp_path_factory.mktemp("auth"), env=env) as proc:
        yield proc


def _http(server: ServerProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.api_url.removesuffix("/api"), headers=headers, timeout=30)


def _create_key(server: ServerProcess, name: str, *scopes: str) -> dict[str, Any]:
    with _http(server, ADMIN) as http:
        r = http.post("/api/api-keys/", json={"name": name, "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _ws_status(server: ServerProcess, path: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        url = ws_url(server.api_url.removesuffix("/api"), path)
        with connect(url, additional_headers=headers, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path).replace(":path}", "}")


def _expand(prefix: str, routes: list[Any]) -> list[tuple[str, Any]]:
    """Routes with their full paths; FastAPI's included routers (set up on their first request,
    ``include_context``) are opened, so no router's routes escape the enumeration."""
    out: list[tuple[str, Any]] = []
    for route in routes:
        included = getattr(route, "include_context", None)
        if included is not None:
            out += _expand(prefix + included.prefix, included.included_router.routes)
        else:
            out.append((prefix + getattr(route, "path", ""), route))
    return out


def _app_routes() -> list[tuple[str, str, bool]]:
    """(method, path, websocket) for every route of the app, from ``app.routes``."""
    app = create_app(Settings(server_auth="on", server_admin_key=ADMIN))
    load_ui(app)  # the pages are otherwise added on the first request
    out: list[tuple[str, str, bool]] = []
    for path, route in _expand("", app.routes):
        if isinstance(route, WebSocketRoute):
            out.append(("GET", _concrete(path), True))
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                out.append((method, _concrete(path), False))
        elif isinstance(route, Mount):
            out.append(("GET", path + "/app.js", False))
            if path == "/ui/static":
                out += [(("GET", path + f"/{name}", False))
                        for name in ("login.css", "favicon.svg", "theme.js")]  # fmt: skip
    paths = {path for _, path, _ in out}
    assert {"/api/events/in", "/api/runners/ws", "/api/flows/filter", "/runs", "/login"} <= paths
    assert "/ui/static/app.js" in paths
    hooks = [(m, p) for m, p, _ in out if p.startswith("/api/hooks")]
    assert [m for m, _ in hooks] == ["POST"], hooks  # the ingest route takes POST only
    return out


def test_every_route_and_websocket_needs_a_key(server: ServerProcess) -> None:
    routes = _app_routes()
    websockets = [path for _, path, ws in routes if ws]
    assert {"/api/events/in", "/api/events/out", "/api/runners/ws"} <= set(websockets)
    # Look-alikes of the public paths (Prefect's bypass matched any path ending in "health").
    lookalikes = ["/api/flows/health", "/api/xhealth", "/api/health/", "/api/version/x", "/health",
                  "/ui/static/login.css/../app.js", "/ui/static/app.css", "/ui/static/xlogin.css",
                  "/api/hooks/x/y", "/api/hooks/", "/api/webhooks/filter", "/webhooks"]  # fmt: skip
    open_doors = []
    with _http(server) as anonymous, _http(server, "tf_0000_bad") as forged:
        for method, path, ws in routes:
            if ws:
                for key in (None, "tf_0000_bad", "not-a-key"):
                    if _ws_status(server, path, key) != 401:
                        open_doors.append(f"websocket {path} key={key}")
                continue
            for http in (anonymous, forged):
                r = http.request(method, path, json={} if method != "GET" else None)
                if method == "POST" and WEBHOOK_INGEST.match(path):
                    if r.status_code != 404 or r.json() != {"detail": "no webhook at this address"}:
                        open_doors.append(f"{method} {path} -> {r.status_code}")
                elif (method, path) in PUBLIC or (method == "HEAD" and ("GET", path) in PUBLIC):
                    assert r.status_code in (200, 303, 401, 403), (method, path, r.text)
                    # No session without credentials (logout only clears the cookie).
                    cookies = r.headers.get_list("set-cookie")
                    assert not [c for c in cookies if c.startswith("tideflow_session=")
                                and "Max-Age=0" not in c], (method, path)  # fmt: skip
                elif r.status_code != 401 or "WWW-Authenticate" not in r.headers:
                    open_doors.append(f"{method} {path} -> {r.status_code}")
        for path in lookalikes:
            if anonymous.get(path).status_code != 401:
                open_doors.append(f"GET {path}")
    assert not open_doors, open_doors
    with _http(server) as anonymous:
        r = anonymous.post("/api/flows/filter", json={})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "TIDEFLOW_API_KEY" in r.json()["detail"]


def test_scopes_and_403_details(server: ServerProcess) -> None:
    reader = _create_key(server, "reader", "read")["key"]
    ingest = _create_key(server, "ingest", "events:write")["key"]
    writer = _create_key(server, "writer", "write")["key"]
    event = {"event": "auth.test", "resource": {"tideflow.resource.id": "auth.r"}}
    with _http(server, reader) as http:
        assert http.post("/api/flows/filter", json={}).status_code == 200
        assert http.get(f"/api/flow_runs/{uuid.uuid4()}").status_code == 404
        refused = http.post("/api/flows/", json={"name": "nope"})
        assert refused.status_code == 403
        assert "scope 'runner'" in refused.json()["detail"] and "reader" in refused.json()["detail"]
        assert http.post("/api/events", json=[event]).status_code == 403
        assert http.get("/api/api-keys/").status_code == 403
    with _http(server, ingest) as http:
        assert http.post("/api/events", json=[event]).status_code == 200
        assert http.post("/api/events/filter", json={}).status_code == 403
        assert http.post("/api/flows/", json={"name": "nope"}).status_code == 403
    with _http(server, writer) as http:
        assert http.post("/api/flows/", json={"name": "auth-flow"}).status_code == 201
        assert http.post("/api/events", json=[event]).status_code == 200
        denied = http.post("/api/api-keys/", json={"name": "x", "scopes": ["read"]})
        assert denied.status_code == 403 and "scope 'admin'" in denied.json()["detail"]
    assert _ws_status(server, "/api/events/in", ingest) == 101
    assert _ws_status(server, "/api/events/out", reader) == 101
    assert _ws_status(server, "/api/events/in", reader) == 403
    assert _ws_status(server, "/api/runners/ws", reader) == 403
    assert _ws_status(server, "/api/runners/ws", writer) == 101


def test_events_websockets_carry_events_with_keys(server: ServerProcess) -> None:
    writer = _create_key(server, "ws-writer", "events:write")["key"]
    reader = _create_key(server, "ws-reader", "read")["key"]
    event_id = str(uuid.uuid4())
    frame = {"id": event_id, "event": "auth.ws", "resource": {"tideflow.resource.id": "auth.ws"}}
    headers = {"Authorization": f"Bearer {writer}"}
    with connect(ws_url(server.api_url, "/events/in"), additional_headers=headers) as ws:
        ws.send(json.dumps(frame))
        assert event_id in ws.recv(timeout=10)
    headers = {"Authorization": f"Bearer {reader}"}
    with connect(ws_url(server.api_url, "/events/out"), additional_headers=headers) as ws:
        ws.send(json.dumps({"filter": {"event_names": ["auth.ws"]}, "backfill_minutes": 5}))
        assert event_id in ws.recv(timeout=10)


def _cli(server: ServerProcess, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    extra = {"TIDEFLOW_API_KEY": key} if key else {}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args], capture_output=True, text=True, timeout=60,
        env=cli_env(server.api_url, **extra), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_cli_create_list_revoke_and_revocation_bites(server: ServerProcess) -> None:
    made = _cli(server, ADMIN, "api-key", "create", "ci-bot", "--scope", "read")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("tf_")
    assert _cli(server, key, "flow", "ls").returncode == 0
    listed = _cli(server, ADMIN, "api-key", "ls", "--json")
    ci = next(k for k in json.loads(listed.stdout) if k["name"] == "ci-bot")
    assert key not in listed.stdout and ci["scopes"] == ["read"]
    no_admin = _cli(server, key, "api-key", "ls")
    assert no_admin.returncode == 1 and "scope 'admin'" in no_admin.stderr
    no_key = _cli(server, None, "flow", "ls")
    assert no_key.returncode == 1 and "TIDEFLOW_API_KEY" in no_key.stderr
    with _http(server, key) as http:
        assert http.post("/api/flows/filter", json={}).status_code == 200  # cached now
        revoked = _cli(server, ADMIN, "api-key", "revoke", ci["key_id"])
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        wait_for(lambda: http.post("/api/flows/filter", json={}).status_code == 401, timeout=2)
        assert time.monotonic() - started < 2
    # The audit trail: created, revoked, and the refusals.
    with _http(server, ADMIN) as http:
        events = http.post("/api/events/filter", json={"limit": 200}).json()["events"]
    names = {e["event"] for e in events}
    assert {"tideflow.api-key.created", "tideflow.api-key.revoked"} <= names
    assert "tideflow.auth.failed" in names
    assert not any(key in json.dumps(e) for e in events)


FLOW_SCRIPT = """
from tideflow import flow

@flow
def authed(x: int) -> int:
    return x * 2

print("result", authed(21))
"""


def test_sdk_flow_call_and_serve_with_a_key(server: ServerProcess, tmp_path: Path) -> None:
    key = _create_key(server, "sdk", "write")["key"]
    script = tmp_path / "authed_flow.py"
    script.write_text(FLOW_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env=cli_env(server.api_url, TIDEFLOW_API_KEY=key), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "result 42" in run.stdout
    refused = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env=cli_env(server.api_url), cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode != 0 and "needs an API key" in refused.stderr

    with SyncClient(server.api_url, settings=Settings(api_key=key)) as client:
        call = "serve(etl.to_deployment(name='authed'))"
        with ServeScript(tmp_path, server.api_url, call, env={"TIDEFLOW_API_KEY": key}):
            deployment = client.read_deployment_by_name("etl/authed")
            flow_run = client.create_flow_run_from_deployment(
                deployment.id, DeploymentFlowRunCreate(parameters={"limit": 3})
            )
            final = wait_final(client, flow_run.id)
    assert final.state is not None and final.state.type is StateType.COMPLETED


def test_refuses_to_serve_on_all_interfaces_without_auth(tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:1/api", TIDEFLOW_HOME=str(tmp_path))
    for name in ("TIDEFLOW_SERVER_ADMIN_KEY", "TIDEFLOW_SERVER_AUTH"):
        env.pop(name, None)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "start", "--host", "0.0.0.0",
         "--port", str(free_port())],
        capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--insecure-no-auth" in lines[0], result.stderr
    assert "tideflow server bootstrap" in lines[0]
    assert time.monotonic() - started < 15
    assert not (tmp_path / "tideflow.db").exists()  # nothing created, nothing bound

    boot = subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "bootstrap"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert boot.returncode == 0, boot.stderr
    assert boot.stdout.strip().startswith("tf_")
    again = subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "bootstrap"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert again.returncode == 1 and "admin API key already" in again.stderr


TASK_SCRIPT = """
import sys
from tideflow import task

@task
def double(x: int) -> int:
    return 2 * x

if __name__ == "__main__":
    print("result", double.delay(21).result(timeout=60))
"""


def test_task_worker_and_delay_with_keys(server: ServerProcess, tmp_path: Path) -> None:
    runner = _create_key(server, "task-worker", "runner")["key"]
    writer = _create_key(server, "delayer", "write")["key"]
    script = tmp_path / "auth_tasks.py"
    script.write_text(TASK_SCRIPT)
    results = {"TIDEFLOW_RESULTS_STORAGE": str(tmp_path / "results")}
    with open(tmp_path / "worker.out", "w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tideflow", "task", "serve", f"{script}:double"],
            env=cli_env(server.api_url, TIDEFLOW_API_KEY=runner, **results),
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    try:
        run = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=90,
            env=cli_env(server.api_url, TIDEFLOW_API_KEY=writer, **results), cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr + (tmp_path / "worker.out").read_text()
        assert "result 42" in run.stdout
    finally:
        worker.kill()
        worker.wait(10)


def _login_token(browser: httpx.Client, next_path: str = "/") -> str:
    """Open the login page (which sets the login form's CSRF cookie) and return its form token."""
    page = browser.get(f"/login?next={next_path}")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and found, page.text
    return found.group(1)


def _page_token(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_ui_login_session_cookie_and_logout(server: ServerProcess) -> None:
    reader = _create_key(server, "browser", "read")["key"]
    ingest = _create_key(server, "no-read", "events:write")["key"]
    page = {"Accept": "text/html"}
    with _http(server) as browser:
        first = browser.get("/runs", headers=page)
        assert first.status_code == 303 and first.headers["location"] == "/login?next=/runs"
        assert 'name="key"' in browser.get("/login?next=/runs").text
        token = _login_token(browser)
        bad = browser.post(
            "/login", data={"key": "tf_nope_nope", "next": "/runs", "csrf_token": token}
        )
        assert bad.status_code == 401 and "invalid" in bad.text
        token = _login_token(browser)
        form = {"key": ingest, "csrf_token": token}
        assert browser.post("/login", data=form).status_code == 403
        token = _login_token(browser)
        form = {"key": reader, "next": "//evil.example/x", "csrf_token": token}
        escape = browser.post("/login", data=form)
        assert escape.status_code == 303 and escape.headers["location"] == "/"
        token = _login_token(browser)
        behind_tls = browser.post(
            "/login",
            data={"key": reader, "csrf_token": token},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert "secure" in behind_tls.headers["set-cookie"].lower()
        browser.cookies.clear()
        token = _login_token(browser)
        ok = browser.post("/login", data={"key": reader, "next": "/runs", "csrf_token": token})
        assert ok.status_code == 303 and ok.headers["location"] == "/runs"
        cookie = next(
            c for c in ok.headers.get_list("set-cookie") if c.startswith("tideflow_session=")
        )
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower() and reader not in cookie
        sid = ok.cookies["tideflow_session"]
        runs = browser.get("/runs", headers=page)
        assert runs.status_code == 200
        csrf = _page_token(runs.text)
        assert 'action="/logout"' in runs.text
        assert (
            browser.post("/api/flows/filter", json={}, headers={"X-CSRF-Token": csrf}).status_code
            == 200
        )
        assert (
            browser.post(
                "/api/flows/", json={"name": "x"}, headers={"X-CSRF-Token": csrf}
            ).status_code
            == 403
        )
        url = ws_url(server.api_url, "/events/out")
        with connect(url, additional_headers={"Cookie": f"tideflow_session={sid}"}):
            pass
        assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
        browser.cookies.set("tideflow_session", sid)
        assert browser.get("/runs", headers=page).status_code == 303  # the session is gone


def test_config_view_never_prints_keys(tmp_path: Path) -> None:
    secret = "tf_abc_" + uuid.uuid4().hex
    env = cli_env("http://127.0.0.1:1/api", TIDEFLOW_HOME=str(tmp_path), TIDEFLOW_API_KEY=secret)
    env["TIDEFLOW_SERVER_ADMIN_KEY"] = "admin-" + uuid.uuid4().hex
    for args in (["config", "view"], ["config", "view", "--json"]):
        shown = subprocess.run(
            [sys.executable, "-m", "tideflow", *args], capture_output=True, text=True,
            timeout=60, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "TIDEFLOW_API_KEY" in shown.stdout and "(set)" in shown.stdout
        assert secret not in shown.stdout and env["TIDEFLOW_SERVER_ADMIN_KEY"] not in shown.stdout
