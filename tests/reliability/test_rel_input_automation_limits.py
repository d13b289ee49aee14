"""Per-field limits on automations and their triggers, against a real server: a megabyte
description, a huge webhook URL, a thousand expected event names or labels are 422s naming the
field (before: stored), and a normal automation still saves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess


def _automation(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "limits",
        "trigger": {"type": "event", "expect": ["a.b"]},
        "actions": [{"type": "do-nothing"}],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"description": "x" * 200_000}, "description"),
        ({"owner_key": "k" * 1000}, "owner_key"),
        ({"actions": [{"type": "call-webhook", "url": "https://a.example/" + "p" * 5000}]}, "url"),
        ({"actions": [{"type": "do-nothing"}] * 51}, "actions"),
        ({"trigger": {"type": "event", "expect": [f"e.n{i}" for i in range(101)]}}, "expect"),
        ({"trigger": {"type": "event", "match": {f"l{i}": "v" for i in range(101)}}}, "match"),
        ({"trigger": {"type": "event", "match": {"l": "v" * 2000}}}, "match"),
        (
            {"trigger": {"type": "compound", "require": "any",
                         "triggers": [{"type": "event", "expect": ["a.b"]}] * 51}},
            "triggers",
        ),
    ],
)  # fmt: skip
def test_oversized_automation_fields_are_422_naming_them(
    server: ServerProcess, changes: dict[str, Any], field: str
) -> None:
    answer = httpx.post(f"{server.api_url}/automations/", json=_automation(**changes), timeout=30)
    assert answer.status_code == 422, answer.text[:300]
    assert field in answer.json()["detail"]
    assert httpx.post(f"{server.api_url}/automations/filter", json={}).json() == []
    ok = httpx.post(f"{server.api_url}/automations/", json=_automation(), timeout=30)
    assert ok.status_code == 201
