"""The deployment Run form, derived from a parameter schema: one field per parameter with the input
kind that fits its JSON type, its default and whether it is required. Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tideflow.schemas.parameters import parameter_names

__all__ = ["ParamField", "parameter_fields"]

_SIMPLE = {"integer", "number", "string", "boolean"}


@dataclass(frozen=True)
class ParamField:
    """One input of the Run form; ``kind`` is integer, number, string, boolean, enum or json."""

    name: str
    kind: str
    required: bool
    value: str  # the prefilled text ("" for none); JSON text for kind "json"
    checked: bool = False
    nullable: bool = False
    options: list[str] = field(default_factory=list)
    description: str = ""
    type_label: str = ""


def _non_null(schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], bool]:
    """The schema without a ``null`` alternative, and whether null was allowed."""
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            rest = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            if len(rest) == 1 and len(rest) < len(options):
                return {**schema, **rest[0], key: None}, True
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest_types = [t for t in kind if t != "null"]
        if len(rest_types) == 1:
            return {**schema, "type": rest_types[0]}, True
    return schema, False


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field(
    name: str, prop: Mapping[str, Any], required: bool, defaults: Mapping[str, Any]
) -> ParamField:
    schema, nullable = _non_null(prop)
    has_default = name in defaults or "default" in prop
    default = defaults[name] if name in defaults else prop.get("default")
    description = str(prop.get("description") or "")
    enum = schema.get("enum")
    kind = schema.get("type")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return ParamField(name, "enum", required, _text(default) if has_default else "",
                          nullable=nullable, options=list(enum), description=description,
                          type_label="one of " + ", ".join(enum))  # fmt: skip
    if kind in _SIMPLE and not (kind != "string" and isinstance(default, str)):
        if kind == "boolean":
            return ParamField(name, "boolean", required, "", checked=default is True,
                              nullable=nullable, description=description, type_label="boolean")  # fmt: skip
        label = str(schema.get("format") or kind)
        return ParamField(name, str(kind), required, _text(default) if has_default else "",
                          nullable=nullable, description=description, type_label=label)  # fmt: skip
    label = str(kind) if isinstance(kind, str) else "JSON"
    value = json.dumps(default, indent=2) if has_default and default is not None else ""
    return ParamField(name, "json", required, value, nullable=nullable,
                      description=description, type_label=f"{label} (JSON)")  # fmt: skip


def parameter_fields(schema: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[ParamField]:
    """The Run form's fields for a deployment's ``parameter_openapi_schema`` and default parameters,
    in the flow's parameter order; a default given by the deployment wins over the schema's."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = set(schema.get("required") or [])
    return [
        _field(name, properties[name] if isinstance(properties[name], Mapping) else {},
               name in required and name not in defaults, defaults)
        for name in parameter_names(schema)
    ]  # fmt: skip
