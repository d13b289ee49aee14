"""Checks on request bodies beyond their schemas: what every database backend can store.

PostgreSQL refuses NUL characters in text and JSON, and non-finite numbers are not JSON; rather
than a database error, such input is a 422 naming the field, on every backend alike. Length limits
mirror the columns for fields whose schema does not bound them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from tideflow.schemas import (
    FlowCreate,
    FlowRunCreate,
    FlowRunUpdate,
    LogCreate,
    State,
    StateProposal,
)

__all__ = [
    "MAX_RUN_NAME",
    "MAX_STATE_NAME",
    "InvalidInput",
    "check_flow_create",
    "check_flow_run_create",
    "check_flow_run_update",
    "check_state_proposal",
    "check_storable",
    "scrub_logs",
]

MAX_RUN_NAME = 200
MAX_STATE_NAME = 100


class InvalidInput(Exception):
    """A body the database could not store; ``errors`` are ``(loc, message)`` pairs (HTTP 422)."""

    def __init__(self, errors: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in errors))


def _unstorable(
    value: Any, loc: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        if "\x00" in value:
            yield loc, "NUL characters (\\u0000) are not allowed"
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, f"{value} is not a valid JSON number"
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                yield (*loc, key), "NUL characters (\\u0000) are not allowed in keys"
            yield from _unstorable(item, (*loc, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _unstorable(item, (*loc, i))


def _state_errors(
    state: State, loc: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    errors = list(
        _unstorable(state.model_dump(mode="python", exclude={"id", "type", "timestamp"}), loc)
    )
    if len(state.name) > MAX_STATE_NAME:
        errors.append(((*loc, "name"), f"String should have at most {MAX_STATE_NAME} characters"))
    return errors


def check_flow_create(body: FlowCreate) -> None:
    errors = list(_unstorable(body.model_dump(mode="python", include={"name", "tags"}), ("body",)))
    if errors:
        raise InvalidInput(errors)


def check_flow_run_create(body: FlowRunCreate) -> None:
    """Raise InvalidInput when the run could not be stored as given."""
    fields = body.model_dump(
        mode="python",
        include={"flow_name", "name", "parameters", "tags", "idempotency_key", "created_by"},
    )
    errors = list(_unstorable(fields, ("body",)))
    if body.name is not None and len(body.name) > MAX_RUN_NAME:
        errors.append((("body", "name"), f"String should have at most {MAX_RUN_NAME} characters"))
    if body.state is not None:
        errors += _state_errors(body.state, ("body", "state"))
    if errors:
        raise InvalidInput(errors)


def check_flow_run_update(body: FlowRunUpdate) -> None:
    """Raise InvalidInput when the new name could not be stored."""
    errors = list(_unstorable(body.name, ("body", "name")))
    if errors:
        raise InvalidInput(errors)


def check_storable(value: Any, loc: tuple[str | int, ...]) -> None:
    """Raise InvalidInput when ``value`` (any JSON) holds what the database cannot store."""
    errors = list(_unstorable(value, loc))
    if errors:
        raise InvalidInput(errors)


def check_state_proposal(body: StateProposal) -> None:
    errors = _state_errors(body.state, ("body", "state"))
    if errors:
        raise InvalidInput(errors)


def scrub_logs(records: list[LogCreate]) -> list[LogCreate]:
    """Log text is kept, not refused: NUL characters become U+FFFD (one bad byte must not lose a batch)."""
    out = []
    for record in records:
        if "\x00" in record.message or "\x00" in record.name:
            record = record.model_copy(
                update={"message": record.message.replace("\x00", "\ufffd"),
                        "name": record.name.replace("\x00", "\ufffd")}
            )  # fmt: skip
        out.append(record)
    return out
