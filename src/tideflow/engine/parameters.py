"""A flow's parameters: binding a call to its signature, validating and coercing them from the type
hints with pydantic, and turning them into JSON for the server.

``ParameterSchema`` is built once per flow function; validation is per call and pure.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError
from pydantic_core import to_jsonable_python

from tideflow.exceptions import ParameterValidationError

__all__ = ["BoundCall", "ParameterSchema", "jsonable_parameters"]

_ARBITRARY = ConfigDict(arbitrary_types_allowed=True)


@dataclass
class BoundCall:
    """A call bound to the signature: ``arguments`` by name, defaults applied."""

    signature: inspect.Signature
    arguments: dict[str, Any]

    def args_kwargs(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        bound = inspect.BoundArguments(self.signature, self.arguments)
        return bound.args, bound.kwargs


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    """A validator for one annotation; None when pydantic cannot build one (the value passes as is)."""
    try:
        return TypeAdapter(annotation)
    except PydanticSchemaGenerationError:
        pass
    except Exception:
        return None
    try:
        return TypeAdapter(annotation, config=_ARBITRARY)
    except Exception:
        return None


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # some forward reference does not resolve: validate the ones that do
        pass
    out: dict[str, Any] = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        try:
            out[name] = typing.get_type_hints(_Holder(annotation), namespace, include_extras=True)[
                "x"
            ]
        except Exception:
            continue
    return out


class _Holder:
    """An object with one annotation, so ``get_type_hints`` resolves a single forward reference."""

    def __init__(self, annotation: Any) -> None:
        self.__annotations__ = {"x": annotation}


def _one_line(err: dict[str, Any], name: str) -> str:
    loc = ".".join([name, *(str(p) for p in err.get("loc", ()))])
    msg = str(err.get("msg", "invalid value")).split(", unable to parse")[0]
    if err.get("type") == "missing":
        return f"parameter {loc!r}: {msg}"
    return f"parameter {loc!r}: {msg}, got {err.get('input')!r}"


class ParameterSchema:
    """Validators for each parameter of ``fn``, built from its signature and type hints."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.signature = inspect.signature(fn)
        hints = _hints(fn)
        self._adapters: dict[str, TypeAdapter[Any]] = {}
        for name, param in self.signature.parameters.items():
            if name not in hints:
                continue
            annotation = hints[name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                annotation = tuple[annotation, ...]  # type: ignore[valid-type]
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                annotation = dict[str, annotation]  # type: ignore[valid-type]
            adapter = _adapter(annotation)
            if adapter is not None:
                self._adapters[name] = adapter

    def bind(self, flow_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BoundCall:
        """Bind a call; a call that does not fit the signature raises ParameterValidationError."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterValidationError(
                f"flow {flow_name!r} was called with bad arguments: {exc}"
            ) from None
        bound.apply_defaults()
        return BoundCall(self.signature, dict(bound.arguments))

    def bind_partial(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BoundCall:
        """What can be bound of a call that does not fit (to show on its failed run)."""
        try:
            return BoundCall(
                self.signature, dict(self.signature.bind_partial(*args, **kwargs).arguments)
            )
        except TypeError:
            return BoundCall(self.signature, dict(kwargs))

    def validate(self, call: BoundCall) -> BoundCall:
        """Coerced copy of ``call``; a value that does not fit its hint raises ParameterValidationError."""
        out = dict(call.arguments)
        problems: list[str] = []
        for name, value in call.arguments.items():
            adapter = self._adapters.get(name)
            if adapter is None or value is self.signature.parameters[name].default:
                continue
            try:
                out[name] = adapter.validate_python(value)
            except ValidationError as exc:
                problems.extend(_one_line(err, name) for err in exc.errors(include_url=False))  # type: ignore[arg-type]
        if problems:
            raise ParameterValidationError("; ".join(problems))
        return BoundCall(call.signature, out)


def jsonable_parameters(arguments: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON-compatible values; anything JSON cannot hold is sent as its repr."""
    out: dict[str, Any] = {}
    for name, value in arguments.items():
        try:
            out[name] = to_jsonable_python(value, fallback=repr)
        except Exception:
            out[name] = repr(value)
    return out
