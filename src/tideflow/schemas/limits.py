"""Input limits of the wire contract: field lengths, JSON nesting, and text that is not Unicode.

Pure functions shared by the schemas (so the SDK refuses locally what the server would refuse) and
by the server's request checks. Two kinds of text cannot be stored and then read back, so they are
refused at the door rather than found later by every reader:

- a *lone surrogate* (U+D800..U+DFFF not part of a pair, e.g. ``"\\udc80"`` in JSON): Python's
  ``json`` accepts it, but it cannot be encoded as UTF-8, so the database or the next JSON answer
  that carries it fails;
- JSON nested so deep that parsing or encoding it recurses past the interpreter's limit.

Depth counts containers: ``{}`` and ``{"a": 1}`` are 1 level, ``{"a": [1]}`` is 2.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_LABEL_NAME_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "MAX_OFFSET",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "escape_lone_surrogates",
    "has_lone_surrogate",
    "json_text_depth",
    "lone_surrogate_path",
    "replace_lone_surrogates",
    "surrogate_problem",
]

MAX_NESTING = 64
"""Deepest nesting of an event payload (levels of objects and arrays)."""
MAX_NAME_LENGTH = 200
"""Flow, deployment, run and creator names."""
MAX_ID_LENGTH = 1024
"""Client-chosen identifiers: a creator's resource id, a resource's ``tideflow.resource.id``."""
MAX_LABEL_NAME_LENGTH = 256
MAX_LABEL_VALUE_LENGTH = MAX_ID_LENGTH
MAX_TAG_LENGTH = 200
MAX_TAGS = 100
"""Tags on one flow, run or deployment."""
MAX_DESCRIPTION_LENGTH = 100_000
"""Descriptions (a deployment's defaults to its flow's docstring)."""
MAX_EVENT_BYTES = 1_500_000
"""Largest event as compact JSON (payload, resource, related and the rest): 1.5 MB."""
MAX_OFFSET = 1_000_000_000
"""Largest ``offset`` of a list filter: databases store 64-bit integers; past this a page is empty anyway."""

# In a Python str every code point in this range is lone: JSON's valid pairs decode to one
# astral code point.
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a code point that UTF-8 cannot encode."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _walk(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    # Iterative: a value nested past the recursion limit must not crash the search for problems.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                yield where
        elif isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                if isinstance(key, str) and has_lone_surrogate(key):
                    yield (*where, key)
                stack.append((sub, (*where, key)))
        elif isinstance(item, list | tuple):
            stack.extend((sub, (*where, i)) for i, sub in reversed(list(enumerate(item))))


def lone_surrogate_path(
    value: Any, loc: tuple[str | int, ...] = ()
) -> tuple[str | int, ...] | None:
    """Where the first string (or object key) holding a lone surrogate is, or None."""
    return next(_walk(value, loc), None)


def surrogate_problem(text: str) -> str:
    """The message for text holding a lone surrogate, naming the first one."""
    match = _SURROGATE.search(text)
    code = f"\\u{ord(match.group()):04x}" if match else "a surrogate"
    return (
        f"contains a lone surrogate ({code}), which is not valid Unicode text; "
        "send text as UTF-8 (a surrogate pair is fine)"
    )


def escape_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its JSON escape (``\\udc80``): safe to encode."""
    if not has_lone_surrogate(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings and keys replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if has_lone_surrogate(value) else value
    if isinstance(value, dict):
        return {replace_lone_surrogates(k): replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [replace_lone_surrogates(v) for v in value]
    return value


_KEEP = b'"[]{}'
_DROP = bytes(b for b in range(256) if b not in _KEEP)
# Opening brackets become +1 and closing ones -1 (as signed bytes) for a running sum.
_STEPS = bytes.maketrans(b"[]{}", bytes([1, 255, 1, 255]))


def json_text_depth(text: bytes | str, limit: int | None = None) -> int:
    """Nesting depth of JSON ``text`` (objects and arrays), without parsing it.

    Never recursive, and linear in the text with C-speed steps (no Python loop per character).
    With ``limit``: a text holding at most ``limit`` brackets in all answers that count (an upper
    bound, so small documents cost two counts), and ``limit + 1`` is returned as soon as the text
    is known to be deeper. On invalid JSON the answer is a count of its brackets, not an error.
    """
    if limit is not None:
        if isinstance(text, str):
            upper = text.count("[") + text.count("{")
        else:
            upper = text.count(b"[") + text.count(b"{")
        if upper <= limit:
            return upper
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    # Strip the strings: drop escaped backslashes, then escaped quotes, so that every quote left
    # delimits a string; keep only quotes and brackets; drop what lies between quote pairs.
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _DROP)
    brackets = b"".join(kept.split(b'"')[::2])
    if limit is not None and b"[" * (limit + 1) in brackets.replace(b"{", b"["):
        return limit + 1  # a run of openers: the usual shape of a too-deep document, found fast
    steps = brackets.translate(_STEPS)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0)
