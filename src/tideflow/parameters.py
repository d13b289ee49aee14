"""A flow's parameter schema: the JSON schema of its signature, built with pydantic from type hints.

Deployments store it (``parameter_openapi_schema``) so the server can check every run request with
``tideflow.schemas.parameters.validate_parameters`` without the function. Parameters are keyed by
name as the engine binds them: ``*args`` is one array parameter and ``**kwargs`` one object
parameter, under their own names.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, create_model
from pydantic.errors import PydanticSchemaGenerationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["docstring_descriptions", "parameter_schema"]

_ARBITRARY = ConfigDict(arbitrary_types_allowed=True)


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, quiet: a type or default JSON cannot describe becomes 'anything'."""

    def handle_invalid_for_json_schema(
        self, schema: core_schema.CoreSchema, error_info: str
    ) -> JsonSchemaValue:
        return {}

    def emit_warning(self, kind: Any, detail: str) -> None:
        # unserialisable defaults are left out of the schema; that is expected, not a problem
        del kind, detail

    def callable_schema(self, schema: core_schema.CallableSchema) -> JsonSchemaValue:
        return {}


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable forward reference: resolve the others one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = eval(annotation, namespace)  # what get_type_hints does, per name
        except Exception:
            continue
    return hints


def _usable(annotation: Any) -> Any:
    """``annotation`` if pydantic can build a validator for it, else Any (accept anything)."""
    try:
        TypeAdapter(annotation)
        return annotation
    except PydanticSchemaGenerationError:
        pass
    except Exception:
        return Any
    try:
        TypeAdapter(annotation, config=_ARBITRARY)
        return annotation
    except Exception:
        return Any


_GOOGLE_HEADER = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):$")
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_ITEM = re.compile(r"^:param\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_rule(lines: list[str], i: int) -> bool:
    return i < len(lines) and len(lines[i].strip()) > 2 and set(lines[i].strip()) == {"-"}


def _google(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    starts = [i for i, line in enumerate(lines) if _GOOGLE_HEADER.match(line.strip())]
    for start in starts:
        base, item_indent, current = _indent(lines[start]), None, None
        for line in lines[start + 1 :]:
            if not line.strip():
                continue
            if _indent(line) <= base:
                break
            item_indent = _indent(line) if item_indent is None else item_indent
            match = _GOOGLE_ITEM.match(line.strip())
            if _indent(line) == item_indent and match:
                current = match.group(1)
                found[current] = match.group(2).strip()
            elif current is not None:
                found[current] = f"{found[current]} {line.strip()}".strip()
    return found


def _numpy(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start, line in enumerate(lines):
        if line.strip() != "Parameters" or not _is_rule(lines, start + 1):
            continue
        base, current = _indent(line), None
        for i in range(start + 2, len(lines)):
            text = lines[i].strip()
            if not text:
                continue
            if _indent(lines[i]) <= base:
                match = _NUMPY_ITEM.match(text)
                if _is_rule(lines, i + 1) or match is None:
                    break
                current = match.group(1)
                found[current] = ""
            elif current is not None:
                found[current] = f"{found[current]} {text}".strip()
    return found


def _sphinx(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    current = None
    for line in lines:
        text = line.strip()
        match = _SPHINX_ITEM.match(text)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif not text or text.startswith(":"):
            current = None
        elif current is not None:
            found[current] = f"{found[current]} {text}"
    return found


def docstring_descriptions(fn: Callable[..., Any]) -> dict[str, str]:
    """Parameter descriptions from a Google, Sphinx (``:param x:``) or NumPy style docstring."""
    lines = (inspect.getdoc(fn) or "").splitlines()
    found = {**_sphinx(lines), **_numpy(lines), **_google(lines)}
    return {name: text for name, text in found.items() if text}


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of ``fn``'s parameters.

    An object schema with one property per parameter (``title``, ``position`` in the signature,
    ``default`` when JSON can hold it, ``description`` from the docstring), ``required`` for those
    without a default and ``$defs`` for models and enums. Unhinted parameters accept anything.
    """
    signature = inspect.signature(fn)
    hints = _hints(fn)
    descriptions = docstring_descriptions(fn)
    fields: dict[str, Any] = {}
    names: list[str] = []
    for i, (name, param) in enumerate(signature.parameters.items()):
        annotation = _usable(hints.get(name, Any))
        default: Any = ... if param.default is inspect.Parameter.empty else param.default
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            annotation, default = list[annotation], []  # type: ignore[valid-type]
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            annotation, default = dict[str, annotation], {}  # type: ignore[valid-type]
        description = descriptions.get(name)
        if description is None:  # an explicit None would hide a description from Annotated
            info = Field(default, alias=name)
        else:
            info = Field(default, alias=name, description=description)
        fields[f"p{i}"] = (annotation, info)
        names.append(name)
    model = create_model("Parameters", __config__=_ARBITRARY, **fields)
    schema = model.model_json_schema(by_alias=True, schema_generator=_Generator)
    properties: dict[str, Any] = schema.setdefault("properties", {})
    for position, name in enumerate(names):
        prop = properties.setdefault(name, {})
        prop["title"] = name
        prop["position"] = position
    schema["properties"] = {name: properties[name] for name in names}
    schema["required"] = [name for name in names if name in schema.get("required", [])]
    schema["title"] = "Parameters"
    schema["type"] = "object"
    return schema
