"""tideflow.variables against a real server: set/get/unset and their async pairs, overwrite rules,
local refusal of bad names and values, and a flow reading a variable."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tideflow import flow
from tideflow.variables import MAX_VARIABLE_VALUE_BYTES, Variable


def _name() -> str:
    return f"v_{uuid.uuid4().hex[:10]}"


def test_set_get_unset_round_trip_json_values() -> None:
    name = _name()
    made = Variable.set(name, {"crew": ["ada", "alan"], "n": 3}, tags=["team"])
    assert (made.name, made.value, made.tags) == (name, {"crew": ["ada", "alan"], "n": 3}, ["team"])
    assert Variable.get(name) == {"crew": ["ada", "alan"], "n": 3}
    with pytest.raises(ValueError, match=f"variable '{name}' exists already; pass overwrite=True"):
        Variable.set(name, 1)
    assert Variable.get(name) == {"crew": ["ada", "alan"], "n": 3}
    changed = Variable.set(name, 43, overwrite=True)
    assert changed.value == 43 and changed.tags == ["team"]  # tags not given are kept
    assert Variable.set(name, "text", overwrite=True, tags=[]).tags == []
    stored = Variable.read(name)
    assert stored is not None and stored.value == "text"
    assert Variable.unset(name) is True
    assert Variable.unset(name) is False
    assert Variable.get(name) is None
    assert Variable.get(name, default=[1, 2]) == [1, 2]
    assert Variable.read(name) is None


def test_async_pairs() -> None:
    name = _name()

    async def main() -> tuple[object, ...]:
        await Variable.aset(name, [1, 2])
        with pytest.raises(ValueError, match="overwrite=True"):
            await Variable.aset(name, 3)
        await Variable.aset(name, 3, overwrite=True)
        got = await Variable.aget(name)
        gone = await Variable.aunset(name)
        return got, gone, await Variable.aget(name, default="d"), await Variable.aunset(name)

    assert asyncio.run(main()) == (3, True, "d", False)


def test_bad_names_and_values_fail_before_sending() -> None:
    with pytest.raises(ValueError, match="lowercase letters, digits"):
        Variable.set("Bad Name", 1)
    with pytest.raises(ValueError, match="lowercase letters, digits"):
        Variable.get("Bad Name")
    with pytest.raises(ValueError, match=f"above the limit of {MAX_VARIABLE_VALUE_BYTES} bytes"):
        Variable.set(_name(), "x" * MAX_VARIABLE_VALUE_BYTES)
    with pytest.raises(ValueError, match="must be JSON data"):
        Variable.set(_name(), {1, 2})


def test_a_flow_reads_a_variable() -> None:
    name = _name()
    Variable.set(name, ["ada", "alan"])

    @flow
    def greet() -> str:
        crew = Variable.get(name, default=[])
        return ", ".join(crew)

    assert greet() == "ada, alan"
    Variable.unset(name)
