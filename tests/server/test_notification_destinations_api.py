"""Notification destinations over the API (SQLite and PostgreSQL): create, 409 without overwrite,
replace with it, list with filters, read, delete; bad configurations are 422s naming the field; a
send to a missing destination or with a bad template says why; a secret-held URL refused by the
SSRF policy (loopback, not allowed here) is never quoted."""

from __future__ import annotations

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas.notifications import NotificationDestinationFilter

pytestmark = pytest.mark.anyio

SLACK = {"type": "slack", "webhook_url_secret": "slack-url"}
EMAIL = {
    "type": "email", "host": "smtp.example.org", "port": 465, "security": "ssl",
    "username": "robot", "password_secret": "smtp-pw", "from_address": "a@example.org",
    "to": ["b@example.org"],
}  # fmt: skip


async def test_destination_lifecycle(client: AsyncClient, http: httpx.AsyncClient) -> None:
    made = await http.post("/notification_destinations/", json={"name": "ops", "config": SLACK})
    assert made.status_code == 201, made.text
    assert (
        made.json()["type"] == "slack"
        and made.json()["config"]["webhook_url_secret"] == "slack-url"
    )
    again = await http.post("/notification_destinations/", json={"name": "ops", "config": EMAIL})
    assert again.status_code == 409 and "overwrite" in again.json()["detail"]
    replaced = await http.post(
        "/notification_destinations/", json={"name": "ops", "config": EMAIL, "overwrite": True}
    )
    assert replaced.status_code == 201 and replaced.json()["type"] == "email"
    await http.post("/notification_destinations/", json={"name": "chat", "config": SLACK})

    names = [d.name for d in await client.read_notification_destinations()]
    assert names == ["chat", "ops"]
    only_email = await client.read_notification_destinations(
        NotificationDestinationFilter(type="email")
    )
    assert [d.name for d in only_email] == ["ops"]
    read = await client.read_notification_destination("ops")
    assert read.config.type == "email" and read.config.security == "ssl"  # type: ignore[union-attr]

    assert (await http.delete("/notification_destinations/name/chat")).status_code == 204
    gone = await http.delete("/notification_destinations/name/chat")
    assert gone.status_code == 404 and "no notification destination named 'chat'" in gone.text


async def test_bad_configurations_are_422s_naming_the_field(http: httpx.AsyncClient) -> None:
    cases = [
        ({"type": "slack"}, "webhook_url_secret"),
        ({"type": "webhook", "url": "ftp://x"}, "url must be an http"),
        ({**EMAIL, "to": []}, "to"),
        ({**EMAIL, "security": "tls13"}, "security"),
        ({"type": "pager"}, "type"),
        ({**SLACK, "webhook_url_secret": "Not A Name"}, "webhook_url_secret"),
    ]
    for config, fragment in cases:
        answer = await http.post(
            "/notification_destinations/", json={"name": "x", "config": config}
        )
        assert answer.status_code == 422, (config, answer.text)
        assert fragment in answer.text


async def test_sends_that_cannot_happen_say_why(http: httpx.AsyncClient) -> None:
    missing = await http.post("/notification_destinations/name/nope/test")
    assert missing.status_code == 404
    await http.post("/secrets/", json={"name": "slack-url", "value": "http://127.0.0.1:9/T0K3N"})
    await http.post("/notification_destinations/", json={"name": "ops", "config": SLACK})
    refused = await http.post("/notification_destinations/name/ops/test")
    assert refused.status_code == 200 and refused.json()["sent"] is False
    detail = refused.json()["detail"]
    assert "the Slack webhook URL (secret 'slack-url') is a loopback address" in detail
    assert "T0K3N" not in refused.text and "127.0.0.1" not in detail
    bad = await http.post(
        "/notification_destinations/name/ops/send", json={"subject": "{{ flow_run.name "}
    )
    assert bad.json()["sent"] is False and "template subject" in bad.json()["detail"]
