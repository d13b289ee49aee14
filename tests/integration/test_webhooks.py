"""Inbound webhooks against a real server process with auth on: ``POST /api/hooks/{slug}`` takes
JSON and form bodies without an API key, verifies GitHub/generic HMAC signatures and tokens, turns
the request into an event with the webhook's template (which an automation then fires on), and
refuses everything else readably: unknown or disabled slugs alike 404, bad signatures 401, large
bodies 413, floods 429, template errors 400 naming the problem and recorded for the owner to see
(`tideflow webhook inspect`, the UI page). Managing webhooks needs the write scope, reads included;
the CLI creates, lists, updates, toggles, rotates and deletes them."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_helpers import cli_env, wait_for

from tideflow.testing import ServerProcess

ADMIN = "admin-" + uuid.uuid4().hex

GITHUB_TEMPLATE = {
    "event": "github.{{ headers['x-github-event'] }}",
    "resource": {
        "tideflow.resource.id": "github.repo.{{ body.repository.full_name }}",
        "tideflow.resource.name": "{{ body.repository.name }}",
    },
    "payload": {"ref": "{{ body.ref }}", "commits": "{{ body.commits | length }}"},
    "id": "{{ headers['x-github-delivery'] }}",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDEFLOW_SERVER_AUTH": "on", "TIDEFLOW_SERVER_ADMIN_KEY": ADMIN}
    with ServerProcess(
        home=tmp_path_factory.mktemp("webhooks"), env=env, startup_timeout=90
    ) as proc:
        yield proc


def _http(server: ServerProcess, key: str | None = ADMIN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.api_url, headers=headers, timeout=30)


def _cli(server: ServerProcess, *args: str, key: str = ADMIN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args], capture_output=True, text=True, timeout=60,
        env=cli_env(server.api_url, TIDEFLOW_API_KEY=key), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _create(server: ServerProcess, **body: Any) -> dict[str, Any]:
    with _http(server) as http:
        r = http.post("/webhooks/", json=body)
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def _events(server: ServerProcess, **flt: Any) -> list[dict[str, Any]]:
    with _http(server) as http:
        r = http.post("/events/filter", json=flt)
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_signed_json_becomes_an_event_that_fires_an_automation(
    server: ServerProcess,
) -> None:
    made = _cli(
        server, "webhook", "create", "github-push", "--verify", "github",
        "--template", json.dumps(GITHUB_TEMPLATE), "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    assert hook["verification"] == "github" and hook["secret"] and len(hook["slug"]) >= 32
    assert hook["url"] == f"{server.api_url}/hooks/{hook['slug']}"
    with _http(server) as http:
        automation = http.post("/automations/", json={
            "name": "on-push",
            "trigger": {"type": "event", "expect": ["github.push"], "posture": "Reactive",
                        "threshold": 1, "within": 0},
            "actions": [{"type": "do-nothing"}],
        })  # fmt: skip
    assert automation.status_code == 201, automation.text

    body = json.dumps({
        "ref": "refs/heads/main", "commits": [{"id": "a"}, {"id": "b"}],
        "repository": {"full_name": "octo/tide", "name": "tide"},
    }).encode()  # fmt: skip
    delivery = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": _sign(hook["secret"], body),
    }
    with httpx.Client(timeout=30) as anonymous:  # no API key: the slug and signature let it in
        r = anonymous.post(hook["url"], content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"event_id": delivery, "event": "github.push"}
        # GitHub retrying the same delivery stores nothing new.
        assert anonymous.post(hook["url"], content=body, headers=headers).status_code == 200
    [event] = _events(server, event_names=["github.push"])
    assert event["id"] == delivery
    assert event["resource"] == {
        "tideflow.resource.id": "github.repo.octo/tide",
        "tideflow.resource.name": "tide",
    }
    assert event["payload"] == {"ref": "refs/heads/main", "commits": 2}
    assert {
        "tideflow.resource.id": f"tideflow.webhook.{hook['id']}",
        "tideflow.resource.name": "github-push",
        "tideflow.resource.role": "webhook",
    } in event["related"]
    automation_id = automation.json()["id"]
    triggered = wait_for(
        lambda: _events(
            server, event_names=["tideflow.automation.triggered"],
            resource_ids=[f"tideflow.automation.{automation_id}"],
        ),
        timeout=20,
    )  # fmt: skip
    assert len(triggered) == 1


def test_form_body_with_a_token_and_a_string_template(server: ServerProcess) -> None:
    template = (
        '{"event": "form.{{ body.action }}", '
        '"resource": {"tideflow.resource.id": "shop.order.{{ body.order }}"}, '
        '"payload": {"items": {{ body.item | tojson }}, "source": "{{ query.source }}"}}'
    )
    hook = _create(server, name="shop", verification="token", template=template)
    url = f"{server.api_url}/hooks/{hook['slug']}?source=till"
    form = "action=paid&order=42&item=apple&item=pear"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Tideflow-Webhook-Token": hook["secret"],
    }
    with httpx.Client(timeout=30) as anonymous:
        r = anonymous.post(url, content=form, headers=headers)
        assert r.status_code == 200, r.text
        wrong = anonymous.post(url, content=form, headers={**headers,
                               "X-Tideflow-Webhook-Token": hook["secret"][:-1] + "x"})  # fmt: skip
        assert wrong.status_code == 401
        assert "does not match" in wrong.json()["detail"]
        missing = anonymous.post(
            url, content=form, headers={"Content-Type": headers["Content-Type"]}
        )
        assert missing.status_code == 401
        assert "X-Tideflow-Webhook-Token header is missing" in missing.json()["detail"]
    [event] = _events(server, event_names=["form.paid"])
    assert event["resource"]["tideflow.resource.id"] == "shop.order.42"
    assert event["payload"] == {"items": ["apple", "pear"], "source": "till"}


def test_refusals_are_readable_and_recorded(server: ServerProcess) -> None:
    hook = _create(
        server, name="strict", verification="hmac-sha256", max_body_bytes=200, rate_limit=5,
        template={"event": "strict.{{ body.kind }}",
                  "resource": {"tideflow.resource.id": "strict.{{ body.missing }}"}},
    )  # fmt: skip
    url = f"{server.api_url}/hooks/{hook['slug']}"
    secret = hook["secret"]

    def post(body: bytes, **extra: str) -> httpx.Response:
        headers = {"Content-Type": "application/json",
                   "X-Tideflow-Signature-256": _sign(secret, body), **extra}  # fmt: skip
        with httpx.Client(timeout=30) as anonymous:
            return anonymous.post(url, content=body, headers=headers)

    # The template reads a field the body lacks: 400 naming it.
    r = post(b'{"kind": "x"}')
    assert r.status_code == 400
    assert "template" in r.json()["detail"] and "missing" in r.json()["detail"]
    # Not JSON though it says so: 400 naming that.
    r = post(b'{"kind": ')
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    # Above the webhook's body limit: 413 before anything is checked.
    r = post(b'{"kind": "' + b"x" * 300 + b'"}')
    assert r.status_code == 413 and "200 bytes" in r.json()["detail"]
    # A bare hex signature is accepted as well as sha256=...; a wrong one is 401.
    r = post(b'{"kind": "y"}', **{"X-Tideflow-Signature-256": "0" * 64})
    assert r.status_code == 401
    bare = _sign(secret, b'{"kind": "y"}').removeprefix("sha256=")
    r = post(b'{"kind": "y"}', **{"X-Tideflow-Signature-256": bare})
    assert r.status_code == 400  # past the signature, stopped by the template
    # 5 requests a minute: the 6th within the minute is refused with Retry-After.
    r = post(b'{"kind": "z"}')
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1

    # The owner sees why (inspect lists the recorded refusals, newest first).
    shown = _cli(server, "webhook", "inspect", "strict")
    assert shown.returncode == 0, shown.stderr
    failures = json.loads(shown.stdout)["recent_failures"]
    assert [f["status"] for f in failures] == [429, 400, 401, 413, 400, 400]
    assert "missing" in failures[-1]["reason"]
    assert "secret" not in shown.stdout.replace('"has_secret"', "")

    # Unknown and disabled slugs answer the same 404; other methods and paths need a key.
    with httpx.Client(timeout=30) as anonymous:
        unknown = anonymous.post(f"{server.api_url}/hooks/{'x' * 32}", json={})
        assert unknown.status_code == 404
        assert anonymous.post(f"{server.api_url}/hooks/bad!", json={}).status_code == 404
        toggled = _cli(server, "webhook", "toggle", "strict")
        assert toggled.returncode == 0 and "disabled" in toggled.stdout
        disabled = anonymous.post(url, json={})
        assert (disabled.status_code, disabled.json()) == (404, unknown.json())
        assert anonymous.get(url).status_code == 401
        assert anonymous.post(url + "/x", json={}).status_code == 401
        assert anonymous.post(f"{server.api_url}/webhooks/filter", json={}).status_code == 401


def test_save_time_template_check_and_scopes(server: ServerProcess) -> None:
    with _http(server) as http:
        bad = http.post("/webhooks/", json={
            "name": "typo", "template": {"event": "{{ boddy.x }}",
                                          "resource": {"tideflow.resource.id": "r"}},
        })  # fmt: skip
        assert bad.status_code == 422
        assert "unknown variable 'boddy'" in bad.json()["detail"]
        missing = http.post("/webhooks/", json={"name": "nores", "template": {"event": "x"}})
        assert missing.status_code == 422 and "'resource'" in missing.json()["detail"]
        reader = http.post("/api-keys/", json={"name": "reader", "scopes": ["read"]}).json()["key"]
        writer = http.post("/api-keys/", json={"name": "writer", "scopes": ["write"]}).json()["key"]
    with _http(server, reader) as http:
        refused = http.post("/webhooks/filter", json={})
        assert refused.status_code == 403 and "scope 'write'" in refused.json()["detail"]
    with _http(server, writer) as http:
        assert http.post("/webhooks/filter", json={}).status_code == 200


def test_cli_lifecycle_rotate_and_delete(server: ServerProcess) -> None:
    made = _cli(server, "webhook", "create", "ci", "--description", "from CI", "--json")
    assert made.returncode == 0, made.stderr
    hook = json.loads(made.stdout)
    assert hook["secret"] is None and hook["verification"] == "none"
    old_url = hook["url"]
    with httpx.Client(timeout=30) as anonymous:
        r = anonymous.post(old_url, json={"anything": [1, 2]})
        assert r.status_code == 200 and r.json()["event"] == "webhook.received"
    [event] = _events(server, event_names=["webhook.received"])
    assert event["payload"] == {"body": {"anything": [1, 2]}}
    assert event["resource"]["tideflow.resource.id"] == "webhook.ci"

    listed = _cli(server, "webhook", "ls")
    assert listed.returncode == 0 and "ci" in listed.stdout and hook["slug"] in listed.stdout
    updated = _cli(server, "webhook", "update", "ci", "--verify", "token", "--json")
    assert updated.returncode == 0, updated.stderr
    secret = json.loads(updated.stdout)["secret"]
    assert secret  # switching to a verification that needs a secret makes one, shown once
    rotated = _cli(server, "webhook", "rotate", "ci", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["url"] != old_url and new["secret"] is None
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.post(old_url, json={}).status_code == 404
        ok = anonymous.post(new["url"], json={}, headers={"X-Tideflow-Webhook-Token": secret})
        assert ok.status_code == 200, ok.text
    bad = _cli(server, "webhook", "create", "Bad Name")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "name" in bad.stderr
    deleted = _cli(server, "webhook", "delete", "ci")
    assert deleted.returncode == 0, deleted.stderr
    gone = _cli(server, "webhook", "inspect", "ci")
    assert gone.returncode == 1 and "no webhook named 'ci'" in gone.stderr
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.post(new["url"], json={}).status_code == 404


def test_ui_page_lists_webhooks_and_refusals(server: ServerProcess) -> None:
    _create(server, name="ui-hook", template={
        "event": "ui.{{ body.k }}", "resource": {"tideflow.resource.id": "ui"}})  # fmt: skip
    with _http(server) as http:
        hook = [h for h in http.post("/webhooks/filter", json={}).json() if h["name"] == "ui-hook"]
    url = f"{server.api_url}/hooks/{hook[0]['slug']}"
    with httpx.Client(timeout=30) as anonymous:
        assert anonymous.post(url, json={"no_k": 1}).status_code == 400
    started = time.monotonic()
    with httpx.Client(base_url=server.api_url.removesuffix("/api"), timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as http:  # fmt: skip
        page = http.get("/webhooks", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert "ui-hook" in page.text and f"/api/hooks/{hook[0]['slug']}" in page.text
    assert "no attribute" in page.text and "&#39;k&#39;" in page.text  # the reason, escaped
    assert time.monotonic() - started < 10
