"""Secret values this process fetched (``Secret.get``), and their redaction from run logs.

``engine.logging`` passes every run-log record through :func:`redact`: a value read with
``tideflow.secrets.Secret.get`` in this process is replaced by ``********`` in the records sent to
the server and shown on the console (``print`` output captured by ``log_prints`` included). Values
shorter than ``MIN_REDACTED_LENGTH`` are not registered: they would mask ordinary words.
"""

from __future__ import annotations

import re
import threading

__all__ = ["MASK", "MIN_REDACTED_LENGTH", "has_secrets", "redact", "register_secret"]

MASK = "********"
MIN_REDACTED_LENGTH = 4
_MAX_VALUES = 1000  # distinct values remembered (oldest forgotten first): bounds each redaction

_lock = threading.Lock()
_values: dict[str, None] = {}  # insertion-ordered set
_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Redact ``value`` from this process's run logs from now on."""
    global _pattern
    if not isinstance(value, str) or len(value) < MIN_REDACTED_LENGTH or value in _values:
        return
    with _lock:
        _values[value] = None
        while len(_values) > _MAX_VALUES:
            del _values[next(iter(_values))]
        # Longest first, so a value containing another is masked whole.
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def has_secrets() -> bool:
    return _pattern is not None


def redact(text: str) -> str:
    """``text`` with every registered secret value replaced by MASK."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)
