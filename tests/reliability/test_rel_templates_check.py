"""Saving an automation whose action template the check could not handle was a 500:
``{{ 'x'|center(9) }}`` (TemplateAssertionError while compiling) and 3,000 nested parentheses
(RecursionError while parsing). Now every such template is a 422 whose detail names the action
field and the problem, nothing is stored, and the server answers at once afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    """One real server for the module (each case checks its own automation count)."""
    # The webhook URLs below are on loopback, refused at save time unless allowed.
    env = {"TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8"}
    with (
        ServerProcess(env=env) as server,
        httpx.Client(base_url=server.api_url, timeout=30) as client,
    ):
        yield client


def _automation(body: object) -> dict[str, object]:
    return {
        "name": "hostile",
        "trigger": {"type": "event", "expect": ["demo.happened"]},
        "actions": [
            {"type": "do-nothing"},
            {"type": "call-webhook", "url": "http://127.0.0.1:9/hook", "body": body},
        ],
    }


def _count(api: httpx.Client) -> int:
    response = api.post("/automations/filter", json={})
    assert response.status_code == 200
    return len(response.json())


REFUSED = [
    ("{{ 'x'|center(9) }}", "unknown filter 'center' (not available in action templates)"),
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "brackets nest more than 30 deep"),
    ("{{ " + "[" * 200 + "]" * 200 + " }}", "brackets nest more than 30 deep"),
    ("{{ " + "not " * 1500 + "1 }}", "nests too deeply"),
    ("{{ " + "- " * 1500 + "1 }}", "nests too deeply"),
    ("{% if 1 %}" * 400 + "x" + "{% endif %}" * 400, "nests too deeply"),
    ("{{ " + "+".join(["1"] * 120) + " }}", "nest more than 64 deep"),
    ("{{ event.payload.n }}" * 2000, "more than 5000 tokens, the limit for a template"),
    ("{{ x is nosuchtest }}", "unknown test 'nosuchtest'"),
]


@pytest.mark.parametrize(("template", "problem"), REFUSED)
def test_a_template_the_check_cannot_accept_is_a_422_naming_it(
    api: httpx.Client, template: str, problem: str
) -> None:
    before = _count(api)
    response = api.post("/automations/", json=_automation({"text": template}))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("actions[1].body.text: "), detail
    assert problem in detail
    assert "Traceback" not in detail and "\n" not in detail
    assert _count(api) == before  # nothing stored
    started = time.monotonic()
    assert api.get("/health").status_code == 200
    assert time.monotonic() - started < 5


def test_the_same_template_via_update_is_refused_and_the_stored_one_kept(
    api: httpx.Client,
) -> None:
    created = api.post("/automations/", json=_automation({"text": "{{ event.payload.n }}"}))
    assert created.status_code == 201, created.text
    automation = created.json()
    changed = _automation({"text": "{{ 'x'|center(9) }}"})
    response = api.patch(f"/automations/{automation['id']}", json={"actions": changed["actions"]})
    assert response.status_code == 422, response.text
    assert "unknown filter 'center'" in response.json()["detail"]
    stored = api.get(f"/automations/{automation['id']}").json()
    assert stored["actions"][1]["body"] == {"text": "{{ event.payload.n }}"}


def test_the_templates_of_one_automation_are_bounded_together(api: httpx.Client) -> None:
    # Each template alone is fine; together they would hold the event loop while being parsed.
    body = {f"k{i}": "{{ event.payload.n }} " * 400 for i in range(12)}
    response = api.post("/automations/", json=_automation(body))
    assert response.status_code == 422, response.text
    assert "more than 10000 tokens in all" in response.json()["detail"]
    small = {f"k{i}": "{{ event.payload.n }} " * 400 for i in range(2)}
    assert api.post("/automations/", json=_automation(small)).status_code == 201
