"""Notifications end to end, against local receivers only: a real server process, a threaded HTTP
receiver (Slack, Teams, generic webhook) and an aiosmtpd SMTP server with AUTH. Destinations are
made with the real CLI; the ``send-notification`` action fires from an emitted event; a flow's
``notify_on_failure`` hook runs in a real flow process. Credentials never show in any answer, any CLI
output or the server log."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tideflow.testing import ServerProcess, free_port

T = TypeVar("T")
TOKEN = "tok-" + uuid.uuid4().hex  # a credential in the Slack URL and a webhook header
PASSWORD = "pw-" + uuid.uuid4().hex


class Receiver:
    """An HTTP server recording (path, headers, JSON body); ``/fail`` answers 500."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((self.path, dict(self.headers), json.loads(raw or b"null")))
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_PUT = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, prefix: str) -> list[tuple[str, dict[str, str], Any]]:
        return [r for r in self.received if r[0].startswith(prefix)]


class Mailbox:
    """An aiosmtpd SMTP server (AUTH without TLS, for the test) keeping each message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, str]] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.messages.append(envelope)
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                          data: Any) -> AuthResult:  # fmt: skip
            login = (data.login.decode(), data.password.decode())
            mailbox.logins.append(login)
            return AuthResult(success=login == ("robot", PASSWORD))

        self.port = free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port,
            authenticator=authenticator, auth_require_tls=False,
        )  # fmt: skip
        self.controller.start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    found = Mailbox()
    yield found
    found.controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Loopback is refused by the SSRF policy unless the operator allows it, as here.
    env = {"TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.1/32"}
    with ServerProcess(
        home=tmp_path_factory.mktemp("notify"), env=env, startup_timeout=120
    ) as proc:
        yield proc


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TIDEFLOW_API_URL": server.api_url}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def no_credentials(server: ServerProcess, *texts: str) -> None:
    for text in (*texts, server.log_path.read_text()):
        assert TOKEN not in text and PASSWORD not in text


@pytest.fixture(scope="module")
def destinations(server: ServerProcess, receiver: Receiver, mailbox: Mailbox) -> None:
    ok(cli(server, "secret", "set", "slack-url", f"{receiver.url}/slack/{TOKEN}"))
    ok(cli(server, "secret", "set", "teams-url", f"{receiver.url}/teams"))
    ok(cli(server, "secret", "set", "smtp-password", PASSWORD))
    ok(cli(server, "secret", "set", "hook-token", TOKEN))
    ok(cli(server, "notification", "create", "ops-slack", "--type", "slack",
           "--webhook-url-secret", "slack-url"))  # fmt: skip
    ok(cli(server, "notification", "create", "ops-teams", "--type", "teams",
           "--webhook-url-secret", "teams-url"))  # fmt: skip
    ok(cli(server, "notification", "create", "ops-mail", "--type", "email", "--host", "127.0.0.1",
           "--port", str(mailbox.port), "--security", "none", "--username", "robot",
           "--password-secret", "smtp-password", "--from", "tideflow@example.org",
           "--to", "oncall@example.org", "--to", "lead@example.org"))  # fmt: skip
    ok(cli(server, "notification", "create", "ops-hook", "--type", "webhook",
           "--url", f"{receiver.url}/hook", "--method", "PUT", "--header", "X-Team=data",
           "--header-secret", "Authorization=hook-token",
           "--body", '{"title": "{{ subject }}", "text": "{{ body }}", "n": 1}'))  # fmt: skip


def test_each_destination_type_delivers_a_test_message(
    server: ServerProcess, receiver: Receiver, mailbox: Mailbox, destinations: None
) -> None:
    out = ok(cli(server, "notification", "test", "ops-slack"))
    assert "sent to notification destination 'ops-slack'" in out and "HTTP 200" in out
    [(path, _, body)] = receiver.at("/slack/")
    assert path == f"/slack/{TOKEN}"
    assert body["text"].startswith("*tideflow test notification*\nThis is a test message")

    ok(cli(server, "notification", "test", "ops-teams"))
    [(_, _, card)] = receiver.at("/teams")
    content = card["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard"
    assert content["body"][0]["text"] == "tideflow test notification"

    out = ok(cli(server, "notification", "test", "ops-mail"))
    assert "email to 2 recipients" in out
    [message] = mailbox.messages
    assert mailbox.logins == [("robot", PASSWORD)]
    assert message.rcpt_tos == ["oncall@example.org", "lead@example.org"]
    text = message.content.decode()
    assert "Subject: tideflow test notification" in text and "From: tideflow@example.org" in text

    ok(cli(server, "notification", "test", "ops-hook"))
    [(_, headers, body)] = receiver.at("/hook")
    assert headers["Authorization"] == TOKEN and headers["X-Team"] == "data"
    assert body == {"title": "tideflow test notification", "n": 1,
                    "text": "This is a test message from tideflow to the notification destination "
                            "'ops-hook'."}  # fmt: skip

    listed = ok(cli(server, "notification", "ls"))
    assert "ops-slack" in listed and "URL in secret 'slack-url'" in listed
    inspected = ok(cli(server, "notification", "inspect", "ops-hook"))
    assert "hook-token" in inspected
    as_json = json.loads(ok(cli(server, "notification", "inspect", "ops-slack", "--json")))
    assert as_json["config"] == {
        "type": "slack",
        "webhook_url_secret": "slack-url",
        "timeout": 10.0,
    }
    no_credentials(server, listed, inspected, json.dumps(as_json))


def test_failures_say_why_without_the_credentials(
    server: ServerProcess, receiver: Receiver, destinations: None
) -> None:
    ok(cli(server, "secret", "set", "bad-url", f"{receiver.url}/fail/{TOKEN}"))
    ok(cli(server, "notification", "create", "broken", "--type", "slack",
           "--webhook-url-secret", "bad-url"))  # fmt: skip
    failed = cli(server, "notification", "test", "broken")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert (
        "notification destination 'broken': POST the Slack webhook URL (secret 'bad-url') "
        "answered HTTP 500"
    ) in failed.stderr
    # The SSRF guard: the cloud metadata address is refused, the reason names no secret URL.
    ok(cli(server, "secret", "set", "meta-url", f"http://169.254.169.254/{TOKEN}"))
    ok(cli(server, "notification", "create", "meta", "--type", "teams",
           "--webhook-url-secret", "meta-url"))  # fmt: skip
    refused = cli(server, "notification", "test", "meta")
    assert refused.returncode == 1
    assert "the Teams webhook URL (secret 'meta-url')" in refused.stderr
    assert "link-local address (the cloud metadata service)" in refused.stderr
    ok(cli(server, "notification", "create", "no-secret", "--type", "slack",
           "--webhook-url-secret", "never-set"))  # fmt: skip
    missing = cli(server, "notification", "test", "no-secret")
    assert "needs the secret 'never-set', which does not exist" in missing.stderr
    bad = cli(server, "notification", "create", "x", "--type", "email", "--host", "h")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "from_address" in bad.stderr
    wrong = cli(server, "notification", "create", "y", "--type", "slack", "--url", "http://a")
    assert "a slack destination takes no --url" in wrong.stderr
    no_credentials(server, failed.stderr, refused.stderr, missing.stderr)
    assert cli(server, "notification", "delete", "broken").returncode == 0
    assert "no notification destination named 'broken'" in cli(
        server, "notification", "delete", "broken").stderr  # fmt: skip


def test_send_notification_action_renders_templates_and_records_failures(
    server: ServerProcess, receiver: Receiver, destinations: None
) -> None:
    marker = uuid.uuid4().hex[:8]
    automation = {
        "name": f"notify-{marker}",
        "trigger": {"type": "event", "expect": [f"shop.order.{marker}"]},
        "actions": [
            {"type": "send-notification", "destination": "ops-slack",
             "subject": "Order {{ event.payload.order }} on {{ event.resource['tideflow.resource.id'] }}",
             "body": "{{ event.payload.total * 2 }} EUR"},
            {"type": "send-notification", "destination": "gone"},
        ],
    }  # fmt: skip
    with httpx.Client(base_url=server.api_url, timeout=30) as api:
        made = api.post("/automations/", json=automation)
        assert made.status_code == 201, made.text
        auto_id = made.json()["id"]
        event_id = str(uuid.uuid4())
        sent = api.post("/events", json=[{
            "id": event_id, "event": f"shop.order.{marker}",
            "resource": {"tideflow.resource.id": "shop.7"}, "payload": {"order": 42, "total": 5},
        }])  # fmt: skip
        assert sent.status_code == 200, sent.text

        def delivered() -> Any:
            return [r for r in receiver.at("/slack/") if "Order 42" in r[2]["text"]]

        [(_, _, body)] = wait_for("the notification", delivered)
        assert body["text"] == "*Order 42 on shop.7*\n10 EUR"

        def failed_event() -> Any:
            found = api.post("/events/filter", json={
                "event_names": ["tideflow.automation.action.failed"],
                "resource_ids": [f"tideflow.automation.{auto_id}"]})  # fmt: skip
            return found.json()["events"] if found.status_code == 200 else None

        [failure] = wait_for("the action failed event", failed_event)
        assert failure["payload"]["reason"] == "no notification destination named 'gone'"
        assert failure["payload"]["action_type"] == "send-notification"
    explained = ok(cli(server, "automation", "explain", f"notify-{marker}", "--event", event_id))
    assert "send-notification executed" in explained
    assert "send-notification failed (no notification destination named 'gone')" in explained


FLOW = """
from tideflow import flow
from tideflow.notifications import notify_on_failure

@flow(on_failure=[notify_on_failure("ops-hook", subject="{{ flow.name }} {{ flow_run.state_name }}",
                                    body="{{ flow_run.state.message }}")])
def nightly_load():
    raise ValueError("the warehouse is closed")

@flow(on_failure=[notify_on_failure("missing-destination")])
def other_load():
    raise ValueError("boom")

if __name__ == "__main__":
    for fn in (nightly_load, other_load):
        try:
            fn()
        except ValueError:
            pass
"""


def test_notify_on_failure_hook_in_a_real_flow_process(
    server: ServerProcess, receiver: Receiver, destinations: None, tmp_path: Path
) -> None:
    script = tmp_path / "flows.py"
    script.write_text(textwrap.dedent(FLOW))
    env = {**os.environ, "TIDEFLOW_API_URL": server.api_url}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    hooks = [r for r in receiver.at("/hook") if r[2]["title"] == "nightly-load Failed"]
    assert len(hooks) == 1
    assert "the warehouse is closed" in hooks[0][2]["text"]
    # A failed send is visible in the flow's output (and its run logs), with the reason.
    assert "no notification destination named 'missing-destination'" in done.stderr
