"""The documented error answers are the ones sent: each error a route can answer with is in
/api/openapi.json with the one ``Error`` schema ({detail, errors?}), and real answers conform.

Before, 422s were documented as FastAPI's HTTPValidationError (``detail`` a list) while the server
sends ``detail`` as a string plus ``errors``; 404, 409, 403, 413, 421 were not documented at all, nor
the 200 of a create that finds the object already there. Each request here is sent to a real server
and checked by schemathesis (status code, content type and body against the document).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.schemas import BaseSchema

from tideflow.testing import ServerProcess

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CLIENT = {"X-Tideflow-Client": "contract-test"}
MAX_BODY = 2**16  # the smallest body limit the server accepts, so a 413 is cheap to provoke


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(env={"TIDEFLOW_SERVER_MAX_REQUEST_BYTES": str(MAX_BODY)}) as s:
        yield s


@pytest.fixture(scope="module")
def schema(server: ServerProcess) -> BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{server.api_url}/openapi.json")
    loaded.config.update(base_url=server.api_url.removesuffix("/api"))
    return loaded


@pytest.fixture(scope="module")
def document(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.api_url}/openapi.json").json())


def _send(schema: BaseSchema, method: str, path: str, expected: int, **case: Any) -> httpx.Response:
    """Send one request through schemathesis, check it against the document, return the answer."""
    headers = {**CLIENT, **case.pop("headers", {})}
    made = schema[path][method].Case(headers=headers, **case)
    response = made.call()
    assert response.status_code == expected, response.text
    made.validate_response(response, checks=CHECKS)
    return response


def test_no_fastapi_validation_schema_left(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Error"]["required"] == ["detail"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"500", "503"} <= set(operation["responses"]), f"{method} {path}"
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    body = answer["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/Error"}, f"{method} {path}"


def test_422_body_is_documented(schema: BaseSchema) -> None:
    response = _send(schema, "POST", "/api/flow_runs/", 422, body={"flow_name": 5})
    body = response.json()
    assert body["detail"].startswith("body.flow_name: ")
    assert body["errors"][0]["loc"] == ["body", "flow_name"]


def test_404_and_409_are_documented(schema: BaseSchema) -> None:
    missing = str(uuid.uuid4())
    _send(schema, "GET", "/api/flow_runs/{run_id}", 404, path_parameters={"run_id": missing})
    _send(schema, "POST", "/api/flow_runs/", 404, body={"flow_id": missing})

    run = _send(schema, "POST", "/api/flow_runs/", 201, body={"flow_name": "contract"}).json()
    used = run["state"]["id"]
    refused = _send(
        schema,
        "POST",
        "/api/flow_runs/{run_id}/set_state",
        409,
        path_parameters={"run_id": run["id"]},
        body={"state": {"type": "RUNNING", "id": used}},
    )
    assert used in refused.json()["detail"]


def test_second_success_status_is_documented(schema: BaseSchema) -> None:
    _send(schema, "POST", "/api/flows/", 201, body={"name": "twice"})
    _send(schema, "POST", "/api/flows/", 200, body={"name": "twice"})


def test_door_and_size_refusals_are_documented(schema: BaseSchema) -> None:
    _send(
        schema,
        "GET",
        "/api/flows/{flow_id}",
        421,
        path_parameters={"flow_id": str(uuid.uuid4())},
        headers={"Host": "rebound.example"},
    )
    missing = {"deployment_id": str(uuid.uuid4())}
    # A body-less POST with neither JSON nor the client header is refused at the door.
    operation = schema["/api/deployments/{deployment_id}/pause"]["POST"]
    case = operation.Case(path_parameters=missing)
    response = case.call()
    assert response.status_code == 403, response.text
    case.validate_response(response, checks=CHECKS)
    large = [{"name": "x" * MAX_BODY}]
    _send(schema, "POST", "/api/flows/filter", 413, body=large)
