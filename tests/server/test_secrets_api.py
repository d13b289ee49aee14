"""Secrets over the API (SQLite and PostgreSQL): stored encrypted with the server's key (a key file
made with mode 0600, or TIDEFLOW_SECRETS_KEY, rotation included), masked in lists and reads, the
value only at ``/value``; bad input refused without quoting the value."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from tideflow.client import AsyncClient
from tideflow.schemas.secrets import MASK, MAX_SECRET_VALUE_LENGTH, SecretCreate, SecretFilter
from tideflow.server.storage import Database
from tideflow.server.storage.tables import secrets
from tideflow.settings import get_settings
from tideflow.testing import in_process_client

pytestmark = pytest.mark.anyio

VALUE = "hunter2-correct-horse"


async def _tokens(database_url: str) -> list[str]:
    database = Database(database_url)
    try:
        async with database.read() as session:
            return list((await session.execute(sa.select(secrets.c.token))).scalars())
    finally:
        await database.dispose()


async def test_secrets_are_encrypted_masked_and_readable_only_at_value(
    client: AsyncClient, http: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    made = await http.post("/secrets/", json={"name": "db-password", "value": VALUE})
    assert made.status_code == 201, made.text
    assert made.json()["value"] == MASK and VALUE not in made.text
    again = await http.post("/secrets/", json={"name": "db-password", "value": "other"})
    assert again.status_code == 409 and "overwrite" in again.json()["detail"]
    assert VALUE not in again.text

    # at rest: a Fernet token of the server's key file, created 0600 in TIDEFLOW_HOME
    key_file = get_settings().home / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    [token] = await _tokens(database_url)
    assert VALUE not in token
    assert Fernet(key_file.read_bytes().strip()).decrypt(token.encode()).decode() == VALUE

    listed = await http.post("/secrets/filter", json={})
    assert [(s["name"], s["value"]) for s in listed.json()] == [("db-password", MASK)]
    assert VALUE not in listed.text
    read = await http.get("/secrets/name/db-password")
    assert read.json()["value"] == MASK and VALUE not in read.text
    value = await client.read_secret_value("db-password")
    assert value.value == VALUE and VALUE not in repr(value)

    replaced = await client.set_secret(
        SecretCreate(name="db-password", value="new", overwrite=True)
    )
    assert replaced.updated > replaced.created
    assert (await client.read_secret_value("db-password")).value == "new"
    await client.set_secret(SecretCreate(name="api-token", value="t0ken"))
    named = await client.read_secrets(SecretFilter(name_like="TOK"))
    assert [s.name for s in named] == ["api-token"]

    assert (await http.delete("/secrets/name/db-password")).status_code == 204
    for answer in (
        await http.get("/secrets/name/db-password/value"),
        await http.get("/secrets/name/db-password"),
        await http.delete("/secrets/name/db-password"),
    ):
        assert answer.status_code == 404
        assert answer.json()["detail"] == "no secret named 'db-password'"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "s", "value": ""}, "must not be empty"),
        ({"name": "s", "value": "v" * (MAX_SECRET_VALUE_LENGTH + 1)},
         f"above the limit of {MAX_SECRET_VALUE_LENGTH} for a secret"),
        ({"name": "s", "value": "nul\u0000here-secret"}, "NUL characters"),
        ({"name": "Bad Name", "value": "hidden-value"}, "secret name 'Bad Name'"),
        ({"name": "s", "value": "hidden-value", "extra": 1}, "extra"),
    ],
)  # fmt: skip
async def test_bad_secrets_are_refused_without_quoting_the_value(
    http: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    answer = await http.post("/secrets/", json=body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["detail"]
    value = str(body["value"])
    if value and len(value) > 4:
        assert value not in answer.text and "hidden-value" not in answer.text


async def test_environment_key_rotation_and_a_wrong_key(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("TIDEFLOW_SECRETS_KEY", old)
    async with in_process_client(database_url) as client:
        await client.set_secret(SecretCreate(name="token", value=VALUE))
    assert not (get_settings().home / "secrets.key").exists()  # the env key is used, no file
    [token] = await _tokens(database_url)
    assert Fernet(old.encode()).decrypt(token.encode()).decode() == VALUE

    # rotation: the new key first encrypts, the old one still decrypts
    monkeypatch.setenv("TIDEFLOW_SECRETS_KEY", f"{new}, {old}")
    async with in_process_client(database_url) as client:
        assert (await client.read_secret_value("token")).value == VALUE
        await client.set_secret(SecretCreate(name="token", value="rotated", overwrite=True))
    [token] = await _tokens(database_url)
    assert Fernet(new.encode()).decrypt(token.encode()).decode() == "rotated"

    monkeypatch.setenv("TIDEFLOW_SECRETS_KEY", Fernet.generate_key().decode())
    async with in_process_client(database_url) as client:
        wrong = await client._http.get("/secrets/name/token/value")
        assert wrong.status_code == 500
        assert wrong.json()["detail"] == (
            "secret 'token' does not decrypt with TIDEFLOW_SECRETS_KEY: it was stored with "
            "another key (replicas must share TIDEFLOW_SECRETS_KEY)"
        )
    monkeypatch.setenv("TIDEFLOW_SECRETS_KEY", "not-a-key")
    async with in_process_client(database_url) as client:
        bad = await client._http.post("/secrets/", json={"name": "x", "value": VALUE})
        assert bad.status_code == 500
        assert "TIDEFLOW_SECRETS_KEY is not a valid Fernet key" in bad.json()["detail"]
