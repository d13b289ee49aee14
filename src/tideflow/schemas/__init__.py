"""The wire contract: pydantic models shared by the SDK, the CLI and the server. Imports nothing else of tideflow.

Names load on first access, so importing one schema module (say ``tideflow.schemas.automations``)
does not build every other model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # explicit re-exports, so type checkers see the lazy names
    from tideflow.schemas.actions import FlowCreate as FlowCreate
    from tideflow.schemas.actions import FlowRunCreate as FlowRunCreate
    from tideflow.schemas.actions import FlowRunUpdate as FlowRunUpdate
    from tideflow.schemas.actions import LogCreate as LogCreate
    from tideflow.schemas.actions import StateProposal as StateProposal
    from tideflow.schemas.filters import FlowFilter as FlowFilter
    from tideflow.schemas.filters import FlowRunFilter as FlowRunFilter
    from tideflow.schemas.filters import FlowRunSort as FlowRunSort
    from tideflow.schemas.filters import LogFilter as LogFilter
    from tideflow.schemas.objects import Creator as Creator
    from tideflow.schemas.objects import Flow as Flow
    from tideflow.schemas.objects import FlowRun as FlowRun
    from tideflow.schemas.objects import Log as Log
    from tideflow.schemas.objects import OrchestrationResult as OrchestrationResult
    from tideflow.schemas.objects import SetStateStatus as SetStateStatus
    from tideflow.schemas.states import State as State
    from tideflow.schemas.states import StateDetails as StateDetails
    from tideflow.schemas.states import StateType as StateType

# name -> module that defines it
_LAZY: dict[str, str] = {
    "Creator": "tideflow.schemas.objects",
    "Flow": "tideflow.schemas.objects",
    "FlowCreate": "tideflow.schemas.actions",
    "FlowFilter": "tideflow.schemas.filters",
    "FlowRun": "tideflow.schemas.objects",
    "FlowRunCreate": "tideflow.schemas.actions",
    "FlowRunUpdate": "tideflow.schemas.actions",
    "FlowRunFilter": "tideflow.schemas.filters",
    "FlowRunSort": "tideflow.schemas.filters",
    "Log": "tideflow.schemas.objects",
    "LogCreate": "tideflow.schemas.actions",
    "LogFilter": "tideflow.schemas.filters",
    "OrchestrationResult": "tideflow.schemas.objects",
    "SetStateStatus": "tideflow.schemas.objects",
    "State": "tideflow.schemas.states",
    "StateDetails": "tideflow.schemas.states",
    "StateProposal": "tideflow.schemas.actions",
    "StateType": "tideflow.schemas.states",
}

__all__ = sorted(_LAZY)


# The same mechanism as tideflow._lazy.lazy_exports, written out here because schemas import nothing
# else of tideflow (the wire contract stands alone; tests/test_import_boundaries.py).
def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tideflow.schemas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
