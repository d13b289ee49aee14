"""The UI's logins for real (a server process with TIDEFLOW_SERVER_AUTH=on): users managed with the
CLI log in with a password; sessions live in the database (a restart keeps them, only a hash of the
token is stored, revoking the key or deleting the user ends them); cookie-authenticated
state-changing requests need the session's CSRF token; failed logins are throttled and audited;
every answer carries the security headers."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_helpers import cli_env

from tideflow.server.api.headers import PAGE_POLICY
from tideflow.server.api.sessions import LOGIN_FAILURES
from tideflow.testing import ServerProcess

ADMIN = "admin-" + uuid.uuid4().hex
AUTH_ENV = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN}
PAGE = {"Accept": "text/html"}
STARTUP = 90.0  # seconds: the machine running the suite may be busy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(
        home=tmp_path_factory.mktemp("sessions"), env=AUTH_ENV, startup_timeout=STARTUP
    ) as proc:
        yield proc


def _http(server: ServerProcess, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    base = server.api_url.removesuffix("/api")
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def _cli(
    server: ServerProcess, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args], capture_output=True, text=True, timeout=60,
        env=cli_env(server.api_url, TIDEFLOW_API_KEY=ADMIN), input=stdin or "",
    )  # fmt: skip


def _login(browser: httpx.Client, **fields: str) -> httpx.Response:
    """Post the login form as a browser does: open the page (CSRF cookie), send its token back."""
    page = browser.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return browser.post("/login", data={**fields, "csrf_token": found.group(1)})


def _page_token(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def _create_key(server: ServerProcess, *scopes: str) -> dict[str, Any]:
    with _http(server, ADMIN) as http:
        r = http.post("/api/api-keys/", json={"name": "ui", "scopes": list(scopes)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_users_from_the_cli_log_in_with_a_password(server: ServerProcess) -> None:
    name = "alice-" + uuid.uuid4().hex[:6]
    made = _cli(server, "user", "create", name, "--scope", "write", "--password-stdin",
                stdin="correct horse battery\n")  # fmt: skip
    assert made.returncode == 0 and name in made.stdout, made.stderr
    again = _cli(server, "user", "create", name, "--scope", "read", "--password-stdin",
                 stdin="another long one\n")  # fmt: skip
    assert again.returncode == 1 and "exists already" in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    short = _cli(server, "user", "create", "bob", "--scope", "read", "--password-stdin",
                 stdin="short\n")  # fmt: skip
    assert short.returncode == 1 and "too short" in short.stderr
    bad_scope = _cli(server, "user", "create", "bob", "--scope", "root", "--password-stdin")
    assert bad_scope.returncode == 1 and "unknown scope 'root'" in bad_scope.stderr
    bad_name = _cli(server, "user", "create", "a b", "--scope", "read", "--password-stdin",
                    stdin="long enough password\n")  # fmt: skip
    assert bad_name.returncode == 1 and "invalid user name" in bad_name.stderr
    no_tty = _cli(server, "user", "create", "carol", "--scope", "read")
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr
    listed = json.loads(_cli(server, "user", "ls", "--json").stdout)
    alice = next(u for u in listed if u["name"] == name)
    assert alice["scopes"] == ["write"] and set(alice) == {
        "id",
        "name",
        "scopes",
        "created",
        "password_changed",
    }
    assert name in _cli(server, "user", "ls").stdout

    with _http(server) as browser:
        wrong = _login(browser, username=name, password="not the password")
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        unknown = _login(browser, username="nobody-" + name, password="whatever it is")
        assert unknown.status_code == 401 and "Wrong user name or password" in unknown.text
        ok = _login(browser, username=name, password="correct horse battery", next="/runs")
        assert ok.status_code == 303 and ok.headers["location"] == "/runs"
        runs = browser.get("/runs", headers=PAGE)
        assert runs.status_code == 200 and name in runs.text  # the header names who is in
        token = _page_token(runs.text)
        made_flow = browser.post("/api/flows/", json={"name": "by-" + name},
                                 headers={"X-CSRF-Token": token})  # fmt: skip
        assert made_flow.status_code in (200, 201), made_flow.text
        # A new password ends the sessions of the old one.
        changed = _cli(server, "user", "set-password", name, "--password-stdin",
                       stdin="a brand new password\n")  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        assert browser.get("/runs", headers=PAGE).status_code == 303
        assert _login(browser, username=name, password="correct horse battery").status_code == 401
        assert _login(browser, username=name, password="a brand new password").status_code == 303
        assert browser.get("/runs", headers=PAGE).status_code == 200
        deleted = _cli(server, "user", "delete", name)
        assert deleted.returncode == 0, deleted.stderr
        assert browser.get("/runs", headers=PAGE).status_code == 303  # its session ended
    missing = _cli(server, "user", "delete", name)
    assert missing.returncode == 1 and f"no user '{name}'" in missing.stderr
    with _http(server, ADMIN) as http:
        events = http.post("/api/events/filter", json={"limit": 200}).json()["events"]
    verbs = {e["event"] for e in events if e["resource"].get("tideflow.resource.name") == name}
    assert {"tideflow.user.created", "tideflow.user.password-changed",
            "tideflow.user.deleted"} <= verbs  # fmt: skip
    assert "correct horse" not in json.dumps(events) and "brand new" not in json.dumps(events)


def test_csrf_token_needed_with_the_cookie_not_with_a_key(server: ServerProcess) -> None:
    writer = _create_key(server, "write")["key"]
    with _http(server) as browser:
        assert _login(browser, key=writer).status_code == 303
        token = _page_token(browser.get("/", headers=PAGE).text)
        body = {"name": "csrf-" + uuid.uuid4().hex[:6]}
        missing = browser.post("/api/flows/", json=body)
        assert missing.status_code == 403
        assert "no CSRF token" in missing.json()["detail"]
        assert "X-CSRF-Token" in missing.json()["detail"]
        wrong = browser.post("/api/flows/", json=body, headers={"X-CSRF-Token": "x" * 64})
        assert wrong.status_code == 403 and "does not match" in wrong.json()["detail"]
        # Read-only requests need none; a form carries it in a field.
        assert browser.get(f"/api/flows/{uuid.uuid4()}").status_code == 404  # got past auth
        form = browser.post("/automations/yaml", data={"csrf_token": "nope"})
        assert form.status_code == 403 and "does not match" in form.json()["detail"]
        form = browser.post("/automations/yaml", data={"csrf_token": token})
        assert form.status_code == 422 and "mapping" in form.text  # got in, body intact
        ok = browser.post("/api/flows/", json=body, headers={"X-CSRF-Token": token})
        assert ok.status_code in (200, 201), ok.text
        # The logout form needs the token too; a forged one leaves the session alone.
        assert browser.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        assert browser.get("/", headers=PAGE).status_code == 200
        # The login form without its double-submit cookie (posted from elsewhere) is refused.
        browser.cookies.delete("tideflow_login_csrf")
        forged_login = browser.post("/login", data={"key": writer, "csrf_token": "made-up"})
        assert forged_login.status_code == 403 and "CSRF" in forged_login.text
        assert browser.post("/logout", data={"csrf_token": token}).status_code == 303
    with _http(server, writer) as api:  # a key in a header: no cookie, no CSRF token needed
        assert api.post("/api/flows/", json={"name": "by-key"}).status_code in (200, 201)


def test_sessions_are_stored_hashed_survive_a_restart_and_end_with_their_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = tmp_path_factory.mktemp("restart")
    with ServerProcess(home=home, env=AUTH_ENV, startup_timeout=STARTUP) as server:
        reader = _create_key(server, "read")
        with _http(server) as browser:
            assert _login(browser, key=reader["key"]).status_code == 303
            token = browser.cookies["tideflow_session"]
            with _http(server) as admin_browser:
                assert _login(admin_browser, key=ADMIN).status_code == 303
                admin_token = admin_browser.cookies["tideflow_session"]
            stored = (
                sqlite3.connect(home / "tideflow.db")
                .execute("select id, principal_kind, principal_id from browser_sessions")
                .fetchall()
            )
            assert len(stored) == 2
            dump = json.dumps(stored)
            assert token not in dump and admin_token not in dump and ADMIN not in dump
            assert reader["key"] not in dump
            assert {kind for _, kind, _ in stored} == {"api_key", "admin_key"}
            server.restart()
            assert browser.get("/runs", headers=PAGE).status_code == 200  # still logged in
            with _http(server, ADMIN) as admin:
                r = admin.post(f"/api/api-keys/{reader['id']}/revoke", json={})
                assert r.status_code == 200
            assert browser.get("/runs", headers=PAGE).status_code == 303
            browser.cookies.clear()
            browser.cookies.set("tideflow_session", admin_token)
            assert browser.get("/runs", headers=PAGE).status_code == 200
        left = sqlite3.connect(home / "tideflow.db").execute(
            "select principal_kind from browser_sessions"
        )
        assert [kind for (kind,) in left] == ["admin_key"]  # revoking deleted the key's rows
    # Another admin key: the sessions of the old one end.
    env = {**AUTH_ENV, "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN + "-rotated"}
    with (
        ServerProcess(home=home, env=env, startup_timeout=STARTUP) as server,
        _http(server) as browser,
    ):
        browser.cookies.set("tideflow_session", admin_token)
        assert browser.get("/runs", headers=PAGE).status_code == 303


def test_failed_logins_are_throttled_and_audited(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Its own server: the throttle counts per address, and every test comes from 127.0.0.1.
    with ServerProcess(
        home=tmp_path_factory.mktemp("throttle"), env=AUTH_ENV, startup_timeout=STARTUP
    ) as server:
        with _http(server, ADMIN) as admin:
            body = {"name": "dave", "password": "the right password", "scopes": ["read"]}
            assert admin.post("/api/users/", json=body).status_code == 201
        with _http(server) as browser:
            for _ in range(LOGIN_FAILURES):
                r = _login(browser, username="dave", password="a wrong password")
                assert r.status_code == 401
            blocked = _login(browser, username="dave", password="the right password")
            assert blocked.status_code == 429 and "Too many failed logins" in blocked.text
            assert 0 < int(blocked.headers["Retry-After"]) <= 60
            assert _login(browser, key=ADMIN).status_code == 429  # the address is held too
        with _http(server, ADMIN) as admin:
            events = admin.post(
                "/api/events/filter", json={"event_names": ["tideflow.auth.failed"]}
            ).json()["events"]
        logins = [e for e in events if e["payload"].get("path") == "/login"]
        assert logins and logins[0]["payload"]["user"] == "dave"
        assert "wrong password" not in json.dumps(events)


def test_security_headers_on_every_answer(server: ServerProcess) -> None:
    with _http(server) as http:
        for r in (
            http.get("/api/health"),
            http.get("/login"),
            http.get("/runs"),  # a refusal
            http.get("/api/health", headers={"Host": "evil.example"}),  # refused at the door
        ):
            assert r.headers["content-security-policy"] == PAGE_POLICY, r.url
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
            assert "strict-transport-security" not in r.headers
        assert "script-src 'self';" in PAGE_POLICY and "frame-ancestors 'none'" in PAGE_POLICY
        assert "unsafe-inline" not in PAGE_POLICY.split("style-src")[0]
        tls = http.get("/api/health", headers={"X-Forwarded-Proto": "https"})
        assert tls.headers["strict-transport-security"].startswith("max-age=")
    with _http(server, ADMIN) as http:
        docs = http.get("/docs")
        assert docs.status_code == 200
        policy = docs.headers["content-security-policy"]
        scripts = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
        assert scripts
        for script in scripts:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
