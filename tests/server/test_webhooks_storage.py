"""Webhook storage over the API on SQLite and PostgreSQL: unique names and slugs (409), the secret
stored only encrypted and never answered after creation, update/rotate/delete, and the ingest path
answering from what is stored (a rotated slug is gone at once)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from tideflow.server.storage import Database
from tideflow.server.storage.tables import webhooks

pytestmark = pytest.mark.anyio

TEMPLATE = {"event": "t.{{ body.k }}", "resource": {"tideflow.resource.id": "t"}}


async def _tokens(database_url: str) -> list[str | None]:
    database = Database(database_url)
    try:
        async with database.read() as session:
            return list((await session.execute(sa.select(webhooks.c.secret_token))).scalars())
    finally:
        await database.dispose()


async def test_webhook_rows_on_each_backend(http: httpx.AsyncClient, database_url: str) -> None:
    made = await http.post("/webhooks/", json={"name": "a", "template": TEMPLATE,
                                               "verification": "token", "slug": "fixed-slug-1"})  # fmt: skip
    assert made.status_code == 201, made.text
    hook = made.json()
    secret = hook["secret"]
    assert secret and hook["slug"] == "fixed-slug-1" and hook["has_secret"]
    [token] = await _tokens(database_url)
    assert token and secret not in token
    dup_name = await http.post("/webhooks/", json={"name": "a"})
    assert dup_name.status_code == 409 and "named 'a'" in dup_name.json()["detail"]
    dup_slug = await http.post("/webhooks/", json={"name": "b", "slug": "fixed-slug-1"})
    assert dup_slug.status_code == 409 and "slug" in dup_slug.json()["detail"]

    read = await http.get(f"/webhooks/{hook['id']}")
    assert read.status_code == 200 and secret not in read.text and "secret_token" not in read.text
    listed = await http.post("/webhooks/filter", json={"name_like": "A"})
    assert [h["name"] for h in listed.json()] == ["a"]

    ok = await http.post("/hooks/fixed-slug-1", json={"k": "v"},
                         headers={"X-Tideflow-Webhook-Token": secret})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["event"] == "t.v"

    changed = await http.patch(f"/webhooks/{hook['id']}", json={"enabled": False, "rate_limit": 7})
    assert changed.json()["enabled"] is False and changed.json()["rate_limit"] == 7
    assert changed.json()["secret"] is None  # the secret is kept, not shown again
    assert (await http.post("/hooks/fixed-slug-1", json={})).status_code == 404
    await http.patch(f"/webhooks/{hook['id']}", json={"enabled": True})

    rotated = (await http.post(f"/webhooks/{hook['id']}/rotate", json={"secret": True})).json()
    assert rotated["slug"] != "fixed-slug-1" and rotated["secret"] not in (None, secret)
    assert (await http.post("/hooks/fixed-slug-1", json={})).status_code == 404
    new = await http.post(f"/hooks/{rotated['slug']}", json={"k": "w"},
                          headers={"X-Tideflow-Webhook-Token": rotated["secret"]})  # fmt: skip
    assert new.status_code == 200, new.text
    old_secret = await http.post(f"/hooks/{rotated['slug']}", json={"k": "w"},
                                 headers={"X-Tideflow-Webhook-Token": secret})  # fmt: skip
    assert old_secret.status_code == 401

    assert (await http.delete(f"/webhooks/{hook['id']}")).status_code == 204
    assert (await http.delete(f"/webhooks/{hook['id']}")).status_code == 404
    assert await _tokens(database_url) == []
