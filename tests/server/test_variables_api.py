"""Variables over the API (SQLite and PostgreSQL): create, 409 on a taken name, read, filter, change,
delete; names and sizes refused with the rule named; ``{{ variables.x }}`` in action templates."""

from __future__ import annotations

import httpx
import pytest
from automation_helpers import event, harness

from tideflow.client import AsyncClient
from tideflow.schemas.variables import (
    MAX_VARIABLE_VALUE_BYTES,
    VariableCreate,
    VariableFilter,
    VariableUpdate,
)
from tideflow.server.storage import variables as storage
from tideflow.server.triggers.template_variables import (
    MAX_TEMPLATE_VARIABLES,
    referenced_variables,
)

pytestmark = pytest.mark.anyio


async def test_variables_are_created_read_listed_changed_and_deleted(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    made = await http.post("/variables/", json={"name": "crew", "value": ["ada", "alan"],
                                                "tags": ["team", "team", "ops"]})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["value"] == ["ada", "alan"] and made.json()["tags"] == ["team", "ops"]
    again = await http.post("/variables/", json={"name": "crew", "value": 1})
    assert again.status_code == 409 and again.json()["detail"] == (
        "a variable named 'crew' exists already"
    )
    await client.create_variable(VariableCreate(name="answer", value=42, tags=["ops"]))
    await client.create_variable(VariableCreate(name="nothing", value=None))
    assert (await client.read_variable_by_name("nothing")).value is None
    assert [v.name for v in await client.read_variables()] == ["answer", "crew", "nothing"]
    ops = await client.read_variables(VariableFilter(tags_all=["ops"]))
    assert [v.name for v in ops] == ["answer", "crew"]
    assert [v.name for v in await client.read_variables(VariableFilter(name_like="SW"))] == [
        "answer"
    ]
    page = await client.read_variables(VariableFilter(limit=1, offset=1))
    assert [v.name for v in page] == ["crew"]

    changed = await client.update_variable("answer", VariableUpdate(value={"n": 43}))
    assert changed.value == {"n": 43} and changed.tags == ["ops"]  # tags left out are kept
    assert changed.updated > changed.created
    retagged = await client.update_variable("answer", VariableUpdate(tags=[]))
    assert retagged.value == {"n": 43} and retagged.tags == []

    assert (await http.delete("/variables/name/answer")).status_code == 204
    missing = await http.get("/variables/name/answer")
    assert missing.status_code == 404 and missing.json()["detail"] == "no variable named 'answer'"
    assert (await http.delete("/variables/name/answer")).status_code == 404
    gone = await http.patch("/variables/name/answer", json={"value": 1})
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "Has Caps", "value": 1}, "lowercase letters, digits, '_' and '-'"),
        ({"name": "", "value": 1}, "must not be empty"),
        ({"name": "x" * 256, "value": 1}, "name"),
        ({"name": "big", "value": "x" * MAX_VARIABLE_VALUE_BYTES},
         f"above the limit of {MAX_VARIABLE_VALUE_BYTES} bytes for a variable"),
        ({"name": "ok", "value": 1, "extra": 2}, "extra"),
        ({"name": "ok", "value": 1, "tags": ["x" * 201]}, "tags"),
    ],
)  # fmt: skip
async def test_bad_variables_are_refused_naming_the_problem(
    http: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    answer = await http.post("/variables/", json=body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["detail"]


async def test_the_largest_value_is_accepted_and_a_bad_path_name_is_422(
    http: httpx.AsyncClient,
) -> None:
    value = "x" * (MAX_VARIABLE_VALUE_BYTES - 2)  # its JSON adds two quotes
    assert (
        await http.post("/variables/", json={"name": "edge", "value": value})
    ).status_code == 201
    too_big = await http.patch("/variables/name/edge", json={"value": value + "y"})
    assert too_big.status_code == 422 and "above the limit" in too_big.json()["detail"]
    bad = await http.get("/variables/name/NOT%20OK")
    assert bad.status_code == 422 and "name" in bad.json()["detail"]


def test_referenced_variables_are_found_and_bounded() -> None:
    found = referenced_variables(
        {"a": "{{ variables.table }}", "b": ["{{ variables['my-var'] ~ variables[\"q\"] }}"],
         "c": "variables.not_in_a_template", "d": 3}
    )  # fmt: skip
    assert found == {"table", "my-var", "q"}
    many = " ".join(f"{{{{ variables.v{i} }}}}" for i in range(MAX_TEMPLATE_VARIABLES + 50))
    assert len(referenced_variables(many)) == MAX_TEMPLATE_VARIABLES


async def test_action_templates_read_variables(database_url: str) -> None:
    async with harness(database_url) as h:
        async with h.database.write() as session:
            await storage.create_variable(session, VariableCreate(name="table", value="sales"))
            await storage.create_variable(session, VariableCreate(name="my-limits", value=[1, 2]))
        dep = await h.deployment()
        auto = await h.create(
            {"name": "chain", "trigger": {"type": "event", "expect": ["go"]},
             "actions": [{"type": "run-deployment", "deployment_id": str(dep.id),
                          "parameters": {"table": "{{ variables.table }}",
                                         "limits": "{{ variables['my-limits'] }}",
                                         "text": "t={{ variables.table | upper }}"}}]}
        )  # fmt: skip
        await h.emit(event("go"))
        await h.engine.run_once()
        [run] = await h.runs(dep.id)
        assert run["parameters"] == {"table": "sales", "limits": [1, 2], "text": "t=SALES"}
        [action] = await h.actions(auto.id)
        assert action["status"] == "executed"


async def test_a_missing_variable_fails_the_action_naming_it(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        auto = await h.create(
            {"name": "chain", "trigger": {"type": "event", "expect": ["go"]},
             "actions": [{"type": "run-deployment", "deployment_id": str(dep.id),
                          "parameters": {"table": "{{ variables.absent }}"}}]}
        )  # fmt: skip
        await h.emit(event("go"))
        await h.engine.run_once()
        assert await h.runs(dep.id) == []
        [action] = await h.actions(auto.id)
        assert action["status"] == "failed" and "absent" in action["detail"]
