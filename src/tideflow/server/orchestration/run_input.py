"""Judging a resume's input against the JSON schema its pause stored: pure, no database.

The schema is the one the paused run's input model produced (pydantic's ``model_json_schema``); the
answer lists each problem with where it is (``run_input.field``), so the API can name the field.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_REPORTED_ERRORS", "run_input_errors"]

MAX_REPORTED_ERRORS = 20  # a hostile input can break every rule: report the first ones only


def run_input_errors(schema: dict[str, Any], value: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Where ``value`` breaks ``schema``, as ``(location, message)`` pairs; empty when it fits."""
    # Loaded on the first resume with input (~3 MiB, ~30 ms), not at server start.
    import jsonschema
    from jsonschema.exceptions import SchemaError

    try:
        validator_cls = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )
        validator_cls.check_schema(schema)
    except SchemaError as exc:
        return [(("run_input",), f"the pause stored a schema that is not valid: {exc.message}")]
    validator = validator_cls(schema)
    found: list[tuple[tuple[str | int, ...], str]] = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path))):
        found.append((("run_input", *error.absolute_path), error.message))
        if len(found) >= MAX_REPORTED_ERRORS:
            break
    return found
