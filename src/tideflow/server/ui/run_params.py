"""The parameters a flow run ran with, as the run page shows them: the stored values (what was
passed, merged over the deployment's defaults) completed with the defaults of the flow's parameter
schema, each marked with where it came from. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tideflow.schemas.parameters import parameter_names

__all__ = ["ShownParameter", "resolved_parameters"]


@dataclass(frozen=True)
class ShownParameter:
    """One parameter of a run: its value and whether it came from a default."""

    name: str
    value: Any
    source: str  # "given" | "deployment default" | "flow default"


def resolved_parameters(
    stored: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    deployment_defaults: Mapping[str, Any] | None = None,
) -> list[ShownParameter]:
    """``stored`` in the schema's parameter order, plus each parameter the run did not store but
    whose schema declares a default (the value the flow function used); names the schema does not
    know follow in stored order."""
    schema = schema or {}
    defaults = deployment_defaults or {}
    properties = schema.get("properties")
    props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    out: list[ShownParameter] = []
    for name in parameter_names(schema):
        prop = props.get(name)
        if name in stored:
            given = name not in defaults or defaults[name] != stored[name]
            out.append(
                ShownParameter(name, stored[name], "given" if given else "deployment default")
            )
        elif isinstance(prop, Mapping) and "default" in prop:
            out.append(ShownParameter(name, prop["default"], "flow default"))
    known = {p.name for p in out}
    out.extend(ShownParameter(name, value, "given") for name, value in stored.items()
               if name not in known)  # fmt: skip
    return out
