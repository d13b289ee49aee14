"""The documented error contract: every error response an API route can send, in the OpenAPI document.

Every error answer is ``{"detail": "<readable text>"}``, 422s add ``errors`` (one item per problem), see
``api.errors``. FastAPI documents only its own 422 body (``HTTPValidationError``, which we never send)
and nothing else; :func:`document_errors` rewrites the generated document instead, so that each
operation lists the statuses it can answer with, all with the one ``Error`` schema:

- every operation: 400/421 (the doors: two Host headers, a Host that is not this server), 500, 503;
- an operation with parameters or a body: 422; with a body: 413 (the body size limit);
- a state-changing method: 403 (the doors: a foreign Origin, or no JSON and no client header) and 507
  (the database is out of space);
- an operation with a path parameter: 404;
- what the route declares itself (``responses=`` on its decorator: the FastAPI way, preferred for new
  routes), and what :data:`ROUTE_ANSWERS` names for routes that do not (a 404 for an id in the body,
  the 409s, a second success status such as 200 for "exists already"). A test checks that every
  entry names an operation the API has.

It also documents durations as they are sent (see ``_DURATION``).

The rules read the generated operation (method, parameters, body), not the handlers: a new route gets
its answers documented without a line here unless it answers a status the rules cannot see. The
schemathesis contract test (``tests/reliability/test_rel_contract_schemathesis.py``) catches those.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

__all__ = ["ERROR_SCHEMA", "ROUTE_ANSWERS", "document_errors", "install_openapi"]

_REF = "#/components/schemas/"

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "Every error answer: what was wrong, readable; 422s also list each problem.",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "What was wrong, naming the field or limit."},
        "errors": {
            "type": "array",
            "description": "On 422: one item per problem.",
            "items": {"$ref": _REF + "ErrorItem"},
        },
    },
}

_ERROR_ITEM: dict[str, Any] = {
    "title": "ErrorItem",
    "description": "One problem of a 422: where (``loc``), what (``msg``) and its kind (``type``).",
    "type": "object",
    "required": ["type", "loc", "msg"],
    "properties": {
        "type": {"type": "string"},
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "input": {},
        "ctx": {"type": "object"},
    },
}

_GENERIC: dict[int, str] = {
    400: "Malformed request (e.g. more than one Host header).",
    403: (
        "Refused at the door: a browser request from a foreign Origin, or a state-changing request "
        "with neither a JSON body nor the X-Tideflow-Client header."
    ),
    404: "The object named in the path does not exist.",
    413: "The request body is larger than the server's limit (named in the detail).",
    421: "The Host header does not name this server (a guard against DNS rebinding).",
    422: "Invalid input: the detail names each field and problem; ``errors`` lists them.",
    500: "Unexpected server error: the detail names the error type and one line of its message.",
    503: (
        "The server cannot store data now: its database file was deleted or replaced, the "
        "database is out of resources, or it undid the change for a concurrent one (deadlock; "
        "Retry-After says when to send it again)."
    ),
    507: "The database is out of space: nothing of the request was stored.",
}

# What the rules cannot see: (method, path) -> {status: when}. Paths as in the document. A success
# status here is a second success answer with the same body as the route's declared one.
ROUTE_ANSWERS: dict[tuple[str, str], dict[int, str]] = {
    ("POST", "/api/flows/"): {200: "A flow of that name exists: it is returned unchanged."},
    ("POST", "/api/flow_runs/"): {
        200: "The flow's ``idempotency_key`` already names a run: it is returned unchanged.",
        404: "``flow_id`` names no flow.",
        409: "The initial state was refused, or its id is already used by another state.",
    },
    ("POST", "/api/flow_runs/{run_id}/set_state"): {
        409: "The proposed state was refused (the detail says why), or its id is already used.",
    },
    ("POST", "/api/deployments/"): {
        200: "A deployment of this flow and name exists: it is updated (its id kept).",
    },
    ("POST", "/api/deployments/{deployment_id}/create_flow_run"): {
        200: "The ``idempotency_key`` already names a run of this deployment: it is returned.",
        409: "The idempotency key already names a run of another deployment of this flow.",
    },
    ("GET", "/api/automations/name/{name}"): {
        409: "Several automations have this name: ask by id.",
    },
    ("POST", "/api/concurrency_limits/"): {
        200: "The tag has a limit already: it is changed to this one.",
    },
}

# pydantic writes a timedelta as an ISO 8601 duration counting 365-day years ("P1Y35DT5S") and reads
# numbers (seconds) too; JSON Schema's "duration" format means RFC 3339's grammar, which refuses a
# year followed by days. The document says what is sent and accepted instead.
_DURATION: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "description": "Seconds."},
        {
            "type": "string",
            "description": "An ISO 8601 duration as pydantic writes it (a year is 365 days).",
            "pattern": r"^-?P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$",
        },
    ]
}

_WRITES = frozenset({"post", "put", "patch", "delete"})
_METHODS = _WRITES | {"get", "head", "options"}


def _answers(method: str, operation: Mapping[str, Any]) -> dict[int, str]:
    params = operation.get("parameters", [])
    codes = [400, 421, 500, 503]
    if params or "requestBody" in operation:
        codes.append(422)
    if "requestBody" in operation:
        codes.append(413)
    if method in _WRITES:
        codes += [403, 507]
    if any(p.get("in") == "path" for p in params):
        codes.append(404)
    return {code: _GENERIC[code] for code in codes}


def _response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}},
    }


def document_errors(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` (FastAPI's) with every operation's error answers and the ``Error``
    schema; FastAPI's ``HTTPValidationError`` is gone. An error status a route declares itself
    (``responses={409: {"description": ...}}`` on its decorator) keeps its description and gets the
    ``Error`` body too."""
    out = copy.deepcopy(dict(document))
    paths: dict[str, Any] = out.get("paths", {})
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            declared = {
                int(code): str(answer.get("description") or "")
                for code, answer in responses.items()
                if code.isdigit() and int(code) >= 400 and code != "422"  # FastAPI's own 422
            }
            answers = {
                **_answers(method, operation),
                **declared,
                **ROUTE_ANSWERS.get((method.upper(), path), {}),
            }
            success = min((c for c in responses if c.startswith("2")), default=None)
            for code in sorted(answers):
                if code >= 400:
                    responses[str(code)] = _response(answers[code])
                elif success is not None:
                    responses[str(code)] = {**responses[success], "description": answers[code]}
            operation["responses"] = dict(sorted(responses.items()))
    schemas: dict[str, Any] = out.setdefault("components", {}).setdefault("schemas", {})
    _document_durations(schemas)
    schemas["Error"] = ERROR_SCHEMA
    schemas["ErrorItem"] = _ERROR_ITEM
    for unused in ("HTTPValidationError", "ValidationError"):  # the second is the first's item
        if unused in schemas and f'"{_REF}{unused}"' not in json.dumps(out):
            del schemas[unused]
    return out


def _document_durations(node: Any) -> None:
    """Replace every ``{"type": "string", "format": "duration"}`` under ``node`` by _DURATION."""
    items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in items:
        if isinstance(child, dict) and child.get("format") == "duration":
            child.pop("format")
            child.pop("type", None)
            child.update(copy.deepcopy(_DURATION))
        else:
            _document_durations(child)


def install_openapi(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with :func:`document_errors` applied (built once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # FastAPI caches its document in openapi_schema too: ours replaces it.
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
