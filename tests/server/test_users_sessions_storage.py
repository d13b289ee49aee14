"""UI users and browser sessions in storage, on SQLite and PostgreSQL: unique names, only hashes
stored, sessions found by their token until they expire, ended with their principal; and the
pure parts around them (the login throttle, the CSRF token's derivation)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from tideflow.server.api.sessions import LoginThrottle
from tideflow.server.storage import Conflict, Database, migrate
from tideflow.server.storage import sessions as stored
from tideflow.server.storage import users as storage
from tideflow.server.storage.api_keys import hasher
from tideflow.server.storage.tables import browser_sessions, users


@pytest.mark.anyio
async def test_users_and_their_sessions(database_url: str) -> None:
    await migrate.upgrade(database_url)
    db = Database(database_url)
    try:
        async with db.write() as session:
            alice = await storage.create_user(
                session, name="alice", password_hash=hasher.hash("pw-alice-1"), scopes=["read"] * 2
            )
            bob = await storage.create_user(
                session, name="bob", password_hash=hasher.hash("pw-bob-1"), scopes=["write"]
            )
        assert alice.scopes == ["read"]
        with pytest.raises(Conflict, match="exists already"):
            async with db.write() as session:
                await storage.create_user(session, name="alice", password_hash="x", scopes=["read"])
        hour = dt.timedelta(hours=1)
        async with db.write() as session:
            a1 = await stored.open_session(session, principal_kind=stored.USER,
                                           principal_id=str(alice.id), ttl=hour)  # fmt: skip
            a2 = await stored.open_session(session, principal_kind=stored.USER,
                                           principal_id=str(alice.id), ttl=hour)  # fmt: skip
            b1 = await stored.open_session(session, principal_kind=stored.USER,
                                           principal_id=str(bob.id), ttl=hour)  # fmt: skip
            gone = await stored.open_session(session, principal_kind=stored.API_KEY,
                                             principal_id="abc", ttl=-hour)  # fmt: skip
        async with db.read() as session:
            rows = (await session.execute(sa.select(browser_sessions))).all()
            hashes = (await session.execute(sa.select(users.c.password_hash))).scalars().all()
            found = await stored.read_session(session, a1)
            assert await stored.read_session(session, gone) is None  # expired
            assert await stored.read_session(session, "not-a-token") is None
            assert await stored.read_session(session, "x" * 10_000) is None
            by_name = await storage.read_user_by_name(session, "alice")
            assert [u.name for u in await storage.read_users(session)] == ["alice", "bob"]
        assert not any(t in str(rows) for t in (a1, a2, b1, gone))
        assert all(h.startswith("$argon2id$") for h in hashes) and "pw-alice-1" not in str(hashes)
        assert found is not None and found.principal_id == str(alice.id)
        assert by_name is not None and hasher.verify(by_name[1], "pw-alice-1")
        assert stored.csrf_token(a1) != stored.csrf_token(a2) != stored.session_id(a1)
        async with db.write() as session:
            assert await stored.delete_expired_sessions(session) == 1
            changed = await storage.set_password_hash(session, alice.id, hasher.hash("new-pw-2"))
            assert changed is not None and changed.password_changed >= alice.password_changed
            assert await storage.set_password_hash(session, uuid.uuid4(), "x") is None
        async with db.read() as session:
            assert await stored.read_session(session, a1) is None  # a new password ends them
            assert await stored.read_session(session, a2) is None
            assert await stored.read_session(session, b1) is not None
        async with db.write() as session:
            assert await storage.delete_user(session, bob.id) == bob
            assert await storage.delete_user(session, bob.id) is None
            assert await stored.delete_session(session, b1) is False  # went with its user
        async with db.read() as session:
            assert (await session.execute(sa.select(sa.func.count()).select_from(
                browser_sessions))).scalar() == 0  # fmt: skip
    finally:
        await db.dispose()


def test_login_throttle_counts_per_address_and_name_and_forgets() -> None:
    now = [0.0]
    throttle = LoginThrottle(failures=3, window=60, clock=lambda: now[0])
    who = ["address:1.2.3.4", "user:alice"]
    for _ in range(3):
        assert throttle.retry_after(who) == 0
        throttle.failed(who)
    now[0] = 10.0
    assert throttle.retry_after(who) == 50.0
    assert throttle.retry_after(["address:5.6.7.8", "user:alice"]) == 50.0  # the name is held
    assert throttle.retry_after(["address:5.6.7.8", "user:bob"]) == 0
    throttle.succeeded(["user:alice"])
    assert throttle.retry_after(["address:5.6.7.8", "user:alice"]) == 0
    assert throttle.retry_after(["address:1.2.3.4"]) == 50.0
    now[0] = 60.0
    assert throttle.retry_after(who) == 0  # the window passed
    throttle.failed(who)
    assert throttle.retry_after(who) == 0  # a fresh window, one failure
