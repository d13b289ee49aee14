"""Label and event-name matching, defined once for events, event filters and trigger specifications.

``*`` in a name or value stands for any run of characters, ``!value`` excludes, a list is any-of.
Pure functions, no models: triggers use them without loading the event models.
``tideflow.schemas.events`` re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tideflow.schemas.limits import has_lone_surrogate, surrogate_problem

__all__ = [
    "MAX_EVENT_NAME_LENGTH",
    "LabelSpec",
    "event_name_problem",
    "label_value_matches",
    "labels_match",
    "name_matches",
    "validate_label_spec",
]

MAX_EVENT_NAME_LENGTH = 1024

# A label specification: label -> value or list of values (see ``labels_match``).
LabelSpec = Mapping[str, "str | Sequence[str]"]


def name_matches(pattern: str, value: str) -> bool:
    """True when ``value`` matches ``pattern``, where each ``*`` stands for any run of characters."""
    if "*" not in pattern:
        return pattern == value
    parts = pattern.split("*")
    first, last = parts[0], parts[-1]
    if not value.startswith(first) or len(value) < len(first) + len(last):
        return False
    if not value.endswith(last):
        return False
    pos, end = len(first), len(value) - len(last)
    for middle in parts[1:-1]:
        found = value.find(middle, pos, end)
        if found < 0:
            return False
        pos = found + len(middle)
    return True


def label_value_matches(expected: str | Sequence[str], value: str | None) -> bool:
    """Match one label value (``None`` = label missing) against a value or list of values.

    Positive entries are OR-ed (any of them may match, ``*`` wildcards anywhere); ``!``-prefixed
    entries exclude (the value must match none of them). A missing label never matches a positive
    entry and always passes a negative one. A list holding only negatives passes any other value.
    """
    entries = [expected] if isinstance(expected, str) else list(expected)
    positives = [e for e in entries if not e.startswith("!")]
    negatives = [e[1:] for e in entries if e.startswith("!")]
    if value is None:
        return not positives
    if any(name_matches(n, value) for n in negatives):
        return False
    return not positives or any(name_matches(p, value) for p in positives)


def labels_match(spec: LabelSpec, labels: Mapping[str, str]) -> bool:
    """True when every label of ``spec`` matches ``labels`` (AND across labels)."""
    return all(label_value_matches(expected, labels.get(label)) for label, expected in spec.items())


def validate_label_spec(spec: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Check a label specification's shape; raises ValueError naming the offending label."""
    out: dict[str, str | list[str]] = {}
    for label, expected in spec.items():
        if not isinstance(label, str) or not label:
            raise ValueError("label names must be non-empty strings")
        if isinstance(expected, str):
            out[label] = expected
            continue
        if isinstance(expected, list | tuple | set | frozenset):
            values = sorted(expected) if isinstance(expected, set | frozenset) else list(expected)
            if not values:
                raise ValueError(
                    f"label {label!r}: an empty list matches nothing; give at least one value"
                )
            if not all(isinstance(v, str) for v in values):
                raise ValueError(f"label {label!r}: values must be strings")
            out[label] = values
            continue
        raise ValueError(
            f"label {label!r}: expected a string or a list of strings, got {type(expected).__name__}"
        )
    return out


def event_name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid event name, or None."""
    if not isinstance(name, str):
        return "event name must be a string"
    if not name:
        return "event name is empty"
    if len(name) > MAX_EVENT_NAME_LENGTH:
        return f"event name is {len(name)} characters, above the limit of {MAX_EVENT_NAME_LENGTH}"
    if any(c.isspace() for c in name):
        return f"event name {name!r} contains whitespace"
    if has_lone_surrogate(name):
        return f"event name {surrogate_problem(name)}"
    return None
