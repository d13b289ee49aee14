"""The pure part of inbound webhooks: signature and token checks (GitHub's header, bare hex,
wrong length), body parsing (JSON, forms, text), the context templates see (no credentials), the
event a rendered template makes, and the per-webhook rate limit and failure budget."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tideflow.schemas.webhooks import Webhook
from tideflow.server.events.webhooks import (
    MAX_FAILURE_EVENTS,
    WebhookLimiter,
    event_from_rendered,
    parse_body,
    template_context,
    verification_problem,
)

NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
SECRET = "s3cret-s3cret-s3cret"


def _hook(verification: str = "none", header: str | None = None) -> Webhook:
    return Webhook(
        id=uuid.uuid4(), name="h", description="", slug="a" * 32, template={},
        verification=verification, signature_header=header, max_body_bytes=100, rate_limit=10,
        enabled=True, has_secret=True, created=NOW, updated=NOW,
    )  # fmt: skip


def _sig(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_github_and_generic_signatures() -> None:
    body = b'{"a": 1}'
    github = _hook("github")
    assert (
        verification_problem(github, SECRET, {"x-hub-signature-256": "sha256=" + _sig(body)}, body)
        is None
    )
    assert (
        verification_problem(github, SECRET, {"x-hub-signature-256": _sig(body).upper()}, body)
        is None
    )
    assert "missing" in str(verification_problem(github, SECRET, {}, body))
    assert "does not match" in str(
        verification_problem(github, SECRET, {"x-hub-signature-256": _sig(body + b" ")}, body)
    )
    custom = _hook("hmac-sha256", header="X-Sig")
    assert verification_problem(custom, SECRET, {"x-sig": _sig(body)}, body) is None
    assert verification_problem(custom, None, {"x-sig": _sig(body)}, body) is not None
    assert verification_problem(_hook(), None, {}, body) is None


@given(st.text(max_size=80))
def test_any_header_value_is_an_answer_never_a_crash(value: str) -> None:
    for kind in ("token", "hmac-sha256", "github"):
        hook = _hook(kind)
        header = str(hook.header).lower()
        problem = verification_problem(hook, SECRET, {header: value}, b"x")
        assert problem is None or isinstance(problem, str)
        if value != SECRET and kind == "token":
            assert problem is not None


def test_token_check_and_hidden_headers() -> None:
    hook = _hook("token")
    headers = {"x-tideflow-webhook-token": SECRET, "authorization": "Bearer k", "cookie": "c=1",
               "x-other": "kept"}  # fmt: skip
    assert verification_problem(hook, SECRET, headers, b"") is None
    seen = template_context(hook, body={}, raw=b"", headers=headers, query={"q": "1"}, now=NOW)
    assert seen["headers"] == {"x-other": "kept"}
    assert seen["query"] == {"q": "1"} and seen["webhook"]["name"] == "h"


def test_parse_body() -> None:
    assert parse_body("application/json", b'{"a": [1]}') == {"a": [1]}
    assert parse_body(None, b"[1, 2]") == [1, 2]
    assert parse_body("application/x-www-form-urlencoded", b"a=1&b=2&b=3&c=") == {
        "a": "1", "b": ["2", "3"], "c": ""}  # fmt: skip
    assert parse_body("text/plain", b"hello") == "hello"
    assert parse_body("text/plain", b"{not json") == "{not json"
    assert parse_body("application/json", b"") == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_body("application/json; charset=utf-8", b"{")
    with pytest.raises(ValueError, match="UTF-8"):
        parse_body("application/json", b"\xff\xfe")


def test_event_from_rendered() -> None:
    hook = _hook()
    made = event_from_rendered(
        {"event": " a.b ", "resource": {"tideflow.resource.id": 7}, "payload": [1], "id": "d-1"},
        hook, NOW,
    )  # fmt: skip
    assert made["event"] == "a.b" and made["resource"] == {"tideflow.resource.id": "7"}
    assert made["payload"] == {"value": [1]} and made["occurred"] == NOW.isoformat()
    assert made["related"][-1]["tideflow.resource.role"] == "webhook"
    again = event_from_rendered({"event": "a.b", "resource": {}, "id": "d-1"}, hook, NOW)
    assert again["id"] == made["id"]  # one delivery id, one event id
    text = '{"event": "x", "resource": {"tideflow.resource.id": "r"}}'
    assert event_from_rendered(text, hook, NOW)["event"] == "x"
    for bad, reason in (("nope", "did not render JSON"), ([1], "must render an object"),
                        ({"event": "", "resource": {}}, "'event'"),
                        ({"event": "x", "resource": "r"}, "resource must render"),
                        ({"event": "x", "resource": {"a": {"b": 1}}}, "must be text"),
                        ({"event": "x", "resource": {}, "related": {}}, "related")):  # fmt: skip
        with pytest.raises(ValueError, match=reason):
            event_from_rendered(bad, hook, NOW)


def test_rate_limit_refills_and_failure_budget() -> None:
    now = [0.0]
    limiter = WebhookLimiter(clock=lambda: now[0])
    hook = uuid.uuid4()
    assert all(limiter.allow(hook, 3) is None for _ in range(3))
    wait = limiter.allow(hook, 3)
    assert wait is not None and 0 < wait <= 20
    now[0] += 20.0  # 3 a minute: one token back every 20 s
    assert limiter.allow(hook, 3) is None
    assert limiter.allow(uuid.uuid4(), 3) is None  # each webhook has its own bucket
    assert sum(limiter.may_record_failure(hook) for _ in range(50)) == MAX_FAILURE_EVENTS
    now[0] += 61.0
    assert limiter.may_record_failure(hook)
