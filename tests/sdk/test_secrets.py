"""tideflow.secrets against a real server: set/get/delete and async pairs, overwrite rules, local
refusal of bad input, and a value read with Secret.get masked in the run's logs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from sdk_helpers import log_messages

from tideflow import flow, get_run_logger
from tideflow.client import SyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.runtime import flow_run
from tideflow.secrets import MASK, Secret


def _name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def test_set_get_delete() -> None:
    name = _name()
    made = Secret.set(name, "p4ssw0rd-value")
    assert made.name == name and made.value == MASK
    assert Secret.get(name) == "p4ssw0rd-value"
    with pytest.raises(ValueError, match=f"secret '{name}' exists already; pass overwrite=True"):
        Secret.set(name, "other")
    Secret.set(name, "replaced", overwrite=True)
    assert Secret.get(name) == "replaced"
    assert Secret.delete(name) is True
    assert Secret.delete(name) is False
    with pytest.raises(ObjectNotFound, match=f"no secret named '{name}'"):
        Secret.get(name)


def test_async_pairs() -> None:
    name = _name()

    async def main() -> tuple[Any, ...]:
        await Secret.aset(name, "async-secret")
        with pytest.raises(ValueError, match="overwrite=True"):
            await Secret.aset(name, "again")
        got = await Secret.aget(name)
        return got, await Secret.adelete(name), await Secret.adelete(name)

    assert asyncio.run(main()) == ("async-secret", True, False)


def test_bad_input_fails_before_sending_without_quoting_the_value() -> None:
    with pytest.raises(ValueError, match="secret name 'Bad'"):
        Secret.set("Bad", "whatever")
    with pytest.raises(ValueError, match="must not be empty"):
        Secret.set(_name(), "")
    with pytest.raises(ValueError, match="above the limit") as caught:
        Secret.set(_name(), "q" * 10_001)
    assert "qqqq" not in str(caught.value)


def test_a_secret_read_in_a_flow_is_masked_in_its_logs(
    client: SyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _name()
    value = f"tok-{uuid.uuid4().hex}"
    Secret.set(name, value)
    ids: list[Any] = []

    @flow(log_prints=True)
    def uses_secret() -> int:
        ids.append(flow_run.id)
        token = Secret.get(name)
        get_run_logger().info("connecting with %s", token)
        print(f"token={token}")
        try:
            raise RuntimeError(f"refused {token}")
        except RuntimeError:
            get_run_logger().exception("login failed")
        return len(token)

    assert uses_secret() == len(value)
    messages = log_messages(client, ids[0], level_ge=logging.INFO)
    assert f"connecting with {MASK}" in messages
    assert f"token={MASK}" in messages
    assert not any(value in m for m in messages), messages
    assert any("login failed" in m and f"RuntimeError: refused {MASK}" in m for m in messages)
    err = capsys.readouterr().err
    assert f"connecting with {MASK}" in err and value not in err
    Secret.delete(name)
