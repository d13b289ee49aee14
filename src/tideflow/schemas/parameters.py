"""Checking a run's parameters against a flow's stored parameter schema, without the flow function.

Implements the JSON-schema subset that ``tideflow.parameters.parameter_schema`` produces, with strict
JSON types (an integer is an int and never a bool; a number is an int or a float): ``type`` (one or
a list), ``anyOf``/``oneOf`` (one match suffices), ``allOf``, ``enum``, ``const``, ``$ref`` into
``$defs``, strings (``format`` date-time/date/time/uuid, ``pattern``, lengths), numbers (bounds),
arrays (``items``, ``prefixItems``, sizes, ``uniqueItems``) and objects (``properties``,
``required``, ``additionalProperties``). Other keywords are annotations and ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MAX_PROBLEMS", "parameter_names", "validate_parameters"]

MAX_PROBLEMS = 20
"""At most this many problems are listed; the last line then says how many more there were."""


def parameter_names(schema: Mapping[str, Any]) -> list[str]:
    """The parameters a schema declares, in the function's positional order."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    order = {name: i for i, name in enumerate(properties)}

    def position(name: str) -> tuple[int, int]:
        prop = properties[name]
        pos = prop.get("position") if isinstance(prop, Mapping) else None
        return (pos if isinstance(pos, int) else len(order) + order[name], order[name])

    return sorted(properties, key=position)


def validate_parameters(
    schema: Mapping[str, Any], params: Mapping[str, Any], *, partial: bool = False
) -> list[str]:
    """Readable problems with ``params`` under ``schema``, each naming its parameter; [] if valid.

    A schema without ``properties`` (e.g. ``{}``) accepts anything. Parameters the schema does not
    declare are refused unless it allows ``additionalProperties``. ``partial`` skips the check for
    missing required parameters (for defaults that a run completes).
    """
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    checker = _Checker(schema)
    problems: list[str] = []
    names = parameter_names(schema)
    extra = schema.get("additionalProperties", False)
    for name, value in params.items():
        if name in properties:
            problems.extend(checker.check(value, properties[name], name))
        elif extra is False:
            takes = (
                f"the flow takes: {', '.join(names)}" if names else "the flow takes no parameters"
            )
            problems.append(f"unknown parameter {name!r}; {takes}")
        elif isinstance(extra, Mapping):
            problems.extend(checker.check(value, extra, name))
    if not partial:
        for name in schema.get("required", ()):
            if name not in params:
                problems.append(f"missing required parameter {name!r}")
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS + 1
        problems = [*problems[: MAX_PROBLEMS - 1], f"... and {more} more problems"]
    return problems


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is(value: Any, type_name: str) -> bool:
    actual = _json_type(value)
    return actual == type_name or (type_name == "number" and actual == "integer")


def _dump(value: Any, limit: int = 60) -> str:
    """A value as written in a problem: JSON, but strings in single quotes like the parameter names."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    try:
        text = json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """How a value is named in a problem: ``string 'abc'``, ``integer 5``, ``null``…"""
    kind = _json_type(value)
    if kind == "null":
        return "null"
    return f"{kind} {_dump(value)}"


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans never equal numbers; 1 equals 1.0."""
    ta, tb = _json_type(a), _json_type(b)
    if {ta, tb} <= {"integer", "number"}:
        return bool(a == b)
    if ta != tb:
        return False
    if ta == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _is_datetime(text: str) -> bool:
    if re.fullmatch(r"-?\d+(\.\d+)?", text):  # a Unix timestamp, as pydantic accepts
        return True
    if len(text) <= 10:  # a date alone is not a date-time
        return False
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    return len(text) == 10 and _parses(dt.date.fromisoformat, text)


def _is_time(text: str) -> bool:
    return _parses(dt.time.fromisoformat, text)


def _is_uuid(text: str) -> bool:
    return _parses(uuid.UUID, text)


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _is_datetime,
    "date": _is_date,
    "time": _is_time,
    "uuid": _is_uuid,
}
_BOUNDS: tuple[tuple[str, str, Callable[[Any, Any], bool]], ...] = (
    ("minimum", ">=", operator.ge),
    ("exclusiveMinimum", ">", operator.gt),
    ("maximum", "<=", operator.le),
    ("exclusiveMaximum", "<", operator.lt),
)


class _Checker:
    """Checks values against sub-schemas of one root schema (which holds the ``$defs``)."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            return {}
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return {}
            node = node[part]
        return node if isinstance(node, Mapping) else {}

    def expect(self, schema: Any, depth: int = 0) -> str:
        """What a schema wants, in words: ``integer``, ``integer or null``, ``one of 'a', 'b'``…"""
        if not isinstance(schema, Mapping) or depth > 10:
            return "anything"
        if "$ref" in schema:
            target = self.resolve(schema["$ref"])
            title = target.get("title")
            if title and target.get("type") == "object":
                return f"{title} (object)"
            return self.expect(target, depth + 1)
        if "const" in schema:
            return _dump(schema["const"])
        if "enum" in schema:
            return "one of " + ", ".join(_dump(v) for v in schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                words = dict.fromkeys(self.expect(s, depth + 1) for s in schema[key])
                return " or ".join(words)
        if schema.get("allOf"):
            return self.expect(schema["allOf"][0], depth + 1)
        types = schema.get("type")
        if types is None:
            return "anything"
        names = [types] if isinstance(types, str) else list(types)
        if "format" in schema and names == ["string"]:
            return f"{schema['format']} string"
        return " or ".join(names)

    def type_fits(self, value: Any, schema: Any, depth: int = 0) -> bool:
        """Whether the value's JSON type is one the schema could take (its branch to report)."""
        if not isinstance(schema, Mapping) or depth > 10:
            return True
        if "$ref" in schema:
            return self.type_fits(value, self.resolve(schema["$ref"]), depth + 1)
        types = schema.get("type")
        if types is None:
            return True
        return any(_is(value, t) for t in ([types] if isinstance(types, str) else types))

    def check(self, value: Any, schema: Any, path: str, depth: int = 0) -> list[str]:
        if schema is True or schema is None:
            return []
        if schema is False:
            return [f"parameter {path!r}: no value is allowed here, got {_show(value)}"]
        if not isinstance(schema, Mapping):
            return []
        if depth > 100:
            return [f"parameter {path!r}: schema nests too deeply to check"]
        if "$ref" in schema:
            problems = self.check(value, self.resolve(schema["$ref"]), path, depth + 1)
            if problems:
                return problems
        for key in ("anyOf", "oneOf"):
            if key in schema:
                problems = self._any_of(value, schema[key], path, depth)
                if problems:
                    return problems
        for sub in schema.get("allOf", ()):
            problems = self.check(value, sub, path, depth + 1)
            if problems:
                return problems
        if "const" in schema and not _equal(value, schema["const"]):
            return [f"parameter {path!r}: expected {_dump(schema['const'])}, got {_show(value)}"]
        if "enum" in schema and not any(_equal(value, v) for v in schema["enum"]):
            return [f"parameter {path!r}: expected {self.expect(schema)}, got {_show(value)}"]
        types = schema.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            if not any(_is(value, t) for t in names):
                return [f"parameter {path!r}: expected {self.expect(schema)}, got {_show(value)}"]
        kind = _json_type(value)
        if kind == "string":
            return self._string(value, schema, path)
        if kind in ("integer", "number"):
            return self._number(value, schema, path)
        if kind == "array":
            return self._array(value, schema, path, depth)
        if kind == "object":
            return self._object(value, schema, path, depth)
        return []

    def _any_of(self, value: Any, options: list[Any], path: str, depth: int) -> list[str]:
        results = [self.check(value, sub, path, depth + 1) for sub in options]
        if any(not problems for problems in results):
            return []
        fitting = [r for sub, r in zip(options, results, strict=True) if self.type_fits(value, sub)]
        if len(fitting) == 1:
            return fitting[0]
        words = " or ".join(dict.fromkeys(self.expect(sub) for sub in options))
        return [f"parameter {path!r}: expected {words}, got {_show(value)}"]

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> list[str]:
        fmt = schema.get("format")
        test = _FORMATS.get(fmt) if isinstance(fmt, str) else None
        if test is not None and not test(value):
            return [f"parameter {path!r}: expected {fmt} string, got {_show(value)}"]
        if "minLength" in schema and len(value) < schema["minLength"]:
            return [f"parameter {path!r}: expected at least {schema['minLength']} characters"]
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return [f"parameter {path!r}: expected at most {schema['maxLength']} characters"]
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                matches = re.search(pattern, value) is not None
            except re.error:  # a pattern Python cannot read is not ours to enforce
                matches = True
            if not matches:
                return [
                    f"parameter {path!r}: expected a string matching {pattern!r}, "
                    f"got {_show(value)}"
                ]
        return []

    def _number(self, value: float, schema: Mapping[str, Any], path: str) -> list[str]:
        for key, sign, ok in _BOUNDS:
            bound = schema.get(key)
            if (
                isinstance(bound, int | float)
                and not isinstance(bound, bool)
                and not ok(value, bound)
            ):
                return [f"parameter {path!r}: expected a number {sign} {bound}, got {_show(value)}"]
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step and (value / step) % 1:
            return [f"parameter {path!r}: expected a multiple of {step}, got {_show(value)}"]
        return []

    def _array(self, value: Any, schema: Mapping[str, Any], path: str, depth: int) -> list[str]:
        items = list(value)
        if "minItems" in schema and len(items) < schema["minItems"]:
            return [
                f"parameter {path!r}: expected at least {schema['minItems']} items, got {len(items)}"
            ]
        if "maxItems" in schema and len(items) > schema["maxItems"]:
            return [
                f"parameter {path!r}: expected at most {schema['maxItems']} items, got {len(items)}"
            ]
        problems: list[str] = []
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(items):
            sub = prefix[i] if i < len(prefix) else schema.get("items", True)
            problems.extend(self.check(item, sub, f"{path}[{i}]", depth + 1))
        if not problems and schema.get("uniqueItems"):
            for i, item in enumerate(items):
                if any(_equal(item, other) for other in items[:i]):
                    return [f"parameter {path!r}: expected unique items, {_show(item)} repeats"]
        return problems

    def _object(
        self, value: Mapping[str, Any], schema: Mapping[str, Any], path: str, depth: int
    ) -> list[str]:
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        problems: list[str] = []
        for key, item in value.items():
            where = f"{path}.{key}"
            if key in properties:
                problems.extend(self.check(item, properties[key], where, depth + 1))
            elif extra is False:
                problems.append(f"parameter {path!r}: unknown field {key!r}")
            else:
                problems.extend(self.check(item, extra, where, depth + 1))
        for key in schema.get("required", ()):
            if key not in value:
                problems.append(f"parameter {path!r}: missing required field {key!r}")
        return problems
