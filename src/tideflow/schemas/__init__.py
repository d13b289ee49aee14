"""The wire contract: pydantic models shared by the SDK, the CLI and the server. Imports nothing else of tideflow."""

from tideflow.schemas.actions import FlowCreate, FlowRunCreate, LogCreate, StateProposal
from tideflow.schemas.filters import FlowFilter, FlowRunFilter, FlowRunSort, LogFilter
from tideflow.schemas.objects import (
    Creator,
    Flow,
    FlowRun,
    Log,
    OrchestrationResult,
    SetStateStatus,
)
from tideflow.schemas.states import State, StateDetails, StateType

__all__ = [
    "Creator",
    "Flow",
    "FlowCreate",
    "FlowFilter",
    "FlowRun",
    "FlowRunCreate",
    "FlowRunFilter",
    "FlowRunSort",
    "Log",
    "LogCreate",
    "LogFilter",
    "OrchestrationResult",
    "SetStateStatus",
    "State",
    "StateDetails",
    "StateProposal",
    "StateType",
]
