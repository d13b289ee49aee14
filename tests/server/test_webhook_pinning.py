"""Webhook actions connect to the address the SSRF guard checked, never to a second DNS answer.

The engine's resolver is replaced by a scripted one, so a name no real DNS knows (``*.invalid``)
still reaches a local server: proof that the request goes to the checked address (with the
original Host header) rather than being resolved again by the HTTP client."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from automation_helpers import event, harness

from tideflow.server.triggers.egress import Address, literal_address, parse_allow_list

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Hooks:
    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []  # (path, Host header)
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((self.path, self.headers.get("host", "")))
                self.send_response(307 if self.path == "/moved" else 200)
                if self.path == "/moved":
                    self.send_header("location", "/final")  # same host: followed, judged again
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[_Hooks]:
    hooks = _Hooks()
    yield hooks
    hooks.close()


class _ScriptedDNS:
    """Answers each lookup with the next scripted list of addresses, and counts the lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[Address]:
        self.lookups.append(host)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [a for a in map(literal_address, answer) if a is not None]


async def _run_hook(
    database_url: str, url: str, dns: object, allowed: str
) -> tuple[str, str | None]:
    async with harness(database_url) as h:
        h.engine.actions.resolve = dns  # type: ignore[assignment]
        h.engine.actions.allowed_networks = parse_allow_list(allowed)
        auto = await h.create(
            {"name": "hook", "trigger": {"type": "event", "expect": ["x.y"]},
             "actions": [{"type": "call-webhook", "url": url, "timeout": 2}]}
        )  # fmt: skip
        await h.emit(event("x.y"))
        await h.engine.run_once()
        [action] = await h.actions(auto.id)
        return str(action["status"]), action["detail"]


async def test_the_request_goes_to_the_checked_address_with_the_original_host(
    database_url: str, hooks: _Hooks
) -> None:
    dns = _ScriptedDNS(["127.0.0.1"])
    url = f"http://hooks.invalid:{hooks.port}/ok"
    status, detail = await _run_hook(database_url, url, dns, "127.0.0.1/32")
    assert (status, detail) == ("executed", f"POST {url} answered HTTP 200")
    assert dns.lookups == ["hooks.invalid"]  # one lookup; the HTTP client did not resolve again
    assert hooks.received == [("/ok", f"hooks.invalid:{hooks.port}")]


async def test_a_name_rebound_to_a_refused_address_is_caught_on_the_next_request(
    database_url: str, hooks: _Hooks
) -> None:
    dns = _ScriptedDNS(["127.0.0.1"], ["10.0.0.1"])
    url = f"http://rebind.invalid:{hooks.port}/moved"
    status, detail = await _run_hook(database_url, url, dns, "127.0.0.1/32")
    assert status == "failed"
    assert detail == (
        f"webhook URL http://rebind.invalid:{hooks.port}/final resolves to 10.0.0.1, a private "
        "address; allow it with TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS"
    )
    assert hooks.received == [("/moved", f"rebind.invalid:{hooks.port}")]


async def test_of_several_answers_only_a_permitted_one_is_used(
    database_url: str, hooks: _Hooks
) -> None:
    dns = _ScriptedDNS(["169.254.169.254", "127.0.0.1"])
    url = f"http://mixed.invalid:{hooks.port}/ok"
    status, _ = await _run_hook(database_url, url, dns, "127.0.0.1/32")
    assert status == "executed" and hooks.received == [("/ok", f"mixed.invalid:{hooks.port}")]


async def test_every_answer_refused_fails_naming_the_first(
    database_url: str, hooks: _Hooks
) -> None:
    dns = _ScriptedDNS(["169.254.169.254", "127.0.0.1"])
    url = f"http://meta.invalid:{hooks.port}/ok"
    status, detail = await _run_hook(database_url, url, dns, "")
    assert status == "failed" and detail is not None
    assert "resolves to 169.254.169.254, a link-local address (the cloud metadata" in detail
    assert hooks.received == []


async def test_a_failed_lookup_fails_the_action(database_url: str) -> None:
    async def broken(host: str, port: int) -> list[Address]:
        raise OSError("Name or service not known")

    status, detail = await _run_hook(database_url, "http://nx.invalid/h", broken, "")
    assert (status, detail) == (
        "failed",
        "webhook URL http://nx.invalid/h: cannot resolve nx.invalid: Name or service not known",
    )


async def test_a_slow_lookup_fails_the_action_within_its_timeout(database_url: str) -> None:
    async def slow(host: str, port: int) -> list[Address]:
        await asyncio.sleep(30)
        return []

    status, detail = await _run_hook(database_url, "http://slow.invalid/h", slow, "")
    assert (status, detail) == (
        "failed",
        "webhook URL http://slow.invalid/h: resolving slow.invalid took longer than 2 s",
    )


@pytest.fixture
def tls_hooks(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 whose self-signed certificate names only hooks.invalid."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=hooks.invalid", "-addext", "subjectAltName=DNS:hooks.invalid",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(str(name)) and None
    hooks = _Hooks()
    hooks.server.socket = context.wrap_socket(hooks.server.socket, server_side=True)
    yield hooks.port, cert, names
    hooks.close()


async def test_https_keeps_the_host_name_for_sni_and_certificate_checks(
    database_url: str, tls_hooks: tuple[int, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, cert, names = tls_hooks
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate
    dns = _ScriptedDNS(["127.0.0.1"])
    url = f"https://hooks.invalid:{port}/ok"
    status, detail = await _run_hook(database_url, url, dns, "127.0.0.1/32")
    assert (status, detail) == ("executed", f"POST {url} answered HTTP 200")
    assert names == ["hooks.invalid"]  # not the pinned address: the certificate matched the name
