"""Wrappers that change how a task treats one argument.

``unmapped(x)``: ``.map()`` passes ``x`` whole to every run. ``allow_failure(future)``: the run
starts even when that upstream did not complete, and receives its exception as the value.
``quote(x)``: ``x`` is passed as it is, not searched for futures (no dependency is recorded).
``opaque(x)``: a future ``x`` is resolved, but a container is not searched inside.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["BaseAnnotation", "allow_failure", "opaque", "quote", "unmapped"]

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A wrapped argument; ``.value`` (or ``.unwrap()``) is what was wrapped."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        """The wrapped value."""
        return self.value

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BaseAnnotation)
            and type(other) is type(self)
            and (other.value == self.value)
        )

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """Pass ``value`` whole to every run of a ``.map()`` instead of iterating over it."""

    __slots__ = ()


class allow_failure(BaseAnnotation[T]):
    """Run even when this upstream future did not complete; receive its exception as the value."""

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """Pass ``value`` untouched: it is not searched for futures and records no dependency."""

    __slots__ = ()


class opaque(BaseAnnotation[T]):
    """Resolve a future given here, but do not search inside the value for more."""

    __slots__ = ()


def unwrap(value: Any) -> Any:
    """``value`` without its annotation (itself when it has none)."""
    return value.value if isinstance(value, BaseAnnotation) else value
