"""API key storage on SQLite and PostgreSQL: only the argon2 hash is stored, keys list and revoke,
the admin-key check the server's start-up relies on."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tideflow.schemas.api_keys import ApiKeyCreate
from tideflow.server.storage import Database, migrate
from tideflow.server.storage import api_keys as storage
from tideflow.server.storage.tables import api_keys

pytestmark = pytest.mark.anyio


async def test_create_list_revoke(database_url: str) -> None:
    await migrate.upgrade(database_url)
    db = Database(database_url)
    try:
        async with db.write() as session:
            assert not await storage.admin_key_exists(session)
            reader = await storage.create_api_key(session, ApiKeyCreate(name="r", scopes=["read"]))
            admin = await storage.create_api_key(
                session, ApiKeyCreate(name="a", scopes=["admin", "admin"])
            )
        assert admin.scopes == ["admin"]
        key_id, secret = storage.split_key(reader.key) or ("", "")
        assert key_id == reader.key_id
        async with db.read() as session:
            stored = (await session.execute(sa.select(api_keys))).all()
            assert await storage.admin_key_exists(session)
            found = await storage.read_api_key_by_key_id(session, reader.key_id)
        assert all(secret not in str(tuple(row)) for row in stored)
        assert found is not None and storage.hasher.verify(found[1], reader.key)
        async with db.write() as session:
            revoked = await storage.revoke_api_key(session, admin.id)
            again = await storage.revoke_api_key(session, admin.id)
            assert await storage.revoke_api_key(session, uuid.uuid4()) is None
        assert revoked is not None and revoked[0].revoked is not None and revoked[1]
        assert again is not None and again[0].revoked == revoked[0].revoked and not again[1]
        async with db.read() as session:
            assert [k.name for k in await storage.read_api_keys(session)] == ["r"]
            every = await storage.read_api_keys(session, include_revoked=True)
            assert {k.name for k in every} == {"r", "a"}
            assert not await storage.admin_key_exists(session)
    finally:
        await db.dispose()
