"""document_errors: the rules that give each operation its documented error answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tideflow.server.api import openapi
from tideflow.server.api.openapi import ROUTE_ANSWERS, document_errors
from tideflow.server.app import create_app


def _doc(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.1.0", "paths": paths, "components": {"schemas": {}}}


def _ok(schema: str = "Thing") -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": "ok", "content": {"application/json": {"schema": ref}}}


def test_statuses_follow_method_parameters_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "ROUTE_ANSWERS", {})
    path_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    doc = _doc(
        {
            "/api/health": {"get": {"responses": {"200": _ok()}}},
            "/api/things/{id}": {
                "get": {"parameters": path_param, "responses": {"200": _ok()}},
                "patch": {"parameters": path_param, "requestBody": {}, "responses": {"200": _ok()}},
            },
        }
    )
    out = document_errors(doc)
    codes = {
        (m, p): sorted(int(c) for c in op["responses"])
        for p, ops in out["paths"].items()
        for m, op in ops.items()
    }
    assert codes[("get", "/api/health")] == [200, 400, 421, 500, 503]
    assert codes[("get", "/api/things/{id}")] == [200, 400, 404, 421, 422, 500, 503]
    assert codes[("patch", "/api/things/{id}")] == [
        200, 400, 403, 404, 413, 421, 422, 500, 503, 507,
    ]  # fmt: skip
    assert "Error" in out["components"]["schemas"] and "Error" not in doc["components"]["schemas"]


def test_route_answers_add_statuses_and_second_successes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        openapi, "ROUTE_ANSWERS", {("POST", "/api/things/"): {200: "exists", 409: "clash"}}
    )
    doc = _doc({"/api/things/": {"post": {"requestBody": {}, "responses": {"201": _ok("T")}}}})
    responses = document_errors(doc)["paths"]["/api/things/"]["post"]["responses"]
    assert responses["200"] == {**_ok("T"), "description": "exists"}
    assert responses["409"]["description"] == "clash"
    assert responses["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_declared_error_statuses_get_the_error_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "ROUTE_ANSWERS", {})
    fastapi_422 = {
        "description": "Validation Error",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    }
    declared = {"description": "busy", "content": {"application/json": {"schema": {}}}}
    doc = _doc(
        {
            "/api/x": {
                "post": {
                    "requestBody": {},
                    "responses": {"200": _ok(), "422": fastapi_422, "423": declared},
                }
            }
        }
    )
    doc["components"]["schemas"]["HTTPValidationError"] = {"type": "object"}
    out = document_errors(doc)
    responses = out["paths"]["/api/x"]["post"]["responses"]
    assert responses["423"] == {
        "description": "busy",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "HTTPValidationError" not in out["components"]["schemas"]


def test_durations_are_documented_as_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openapi, "ROUTE_ANSWERS", {})
    doc = _doc({})
    doc["components"]["schemas"]["S"] = {
        "properties": {"every": {"type": "string", "format": "duration", "title": "Every"}}
    }
    every = document_errors(doc)["components"]["schemas"]["S"]["properties"]["every"]
    assert every["title"] == "Every" and "format" not in every
    pattern = every["anyOf"][1]["pattern"]
    for sent in ("P1Y35DT5S", "-P1D", "PT0.5S", "PT0S"):  # what pydantic writes
        assert re.fullmatch(pattern, sent)


def test_the_api_keeps_no_stale_route_answer(tmp_path: Path) -> None:
    # The app's own document (built without starting it): every entry names a real operation, so
    # a renamed route cannot leave its statuses behind unnoticed.
    assert ROUTE_ANSWERS
    doc = create_app(database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}").openapi()
    for method, path in ROUTE_ANSWERS:
        assert method.lower() in doc["paths"].get(path, {}), f"stale ROUTE_ANSWERS: {method} {path}"
