"""A deployment's concurrency collision strategy: ``concurrency_limit`` as an int or a
ConcurrencyLimitConfig (API, SDK, tideflow.yaml schemas), and what ``decide`` does with a claim that
finds no slot (ENQUEUE: AwaitingConcurrencySlot; CANCEL_NEW: Cancelled with the reason)."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from tideflow.deployments import ConcurrencyLimitConfig
from tideflow.schemas import states as st
from tideflow.schemas.actions import StateProposal
from tideflow.schemas.deployments import DeploymentCreate, DeploymentUpdate
from tideflow.schemas.objects import SetStateStatus
from tideflow.schemas.project import ProjectDeployment
from tideflow.schemas.states import StateType
from tideflow.server.orchestration import RunFacts, decide

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_an_int_or_a_config_sets_the_limit_and_the_strategy() -> None:
    plain = DeploymentCreate(flow_name="f", name="d", concurrency_limit=2)
    assert (plain.concurrency_limit, plain.concurrency_options) == (2, None)
    made = DeploymentCreate(
        flow_name="f", name="d",
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy="CANCEL_NEW"),  # type: ignore[arg-type]
    )  # fmt: skip
    assert made.concurrency_limit == 1
    assert made.concurrency_options is not None
    assert made.concurrency_options.collision_strategy == "CANCEL_NEW"
    wire = DeploymentCreate.model_validate(
        {"flow_name": "f", "name": "d",
         "concurrency_limit": {"limit": 3, "collision_strategy": "cancel_new"}}
    )  # fmt: skip
    assert wire.concurrency_limit == 3 and wire.model_dump()["concurrency_options"] == {
        "collision_strategy": "CANCEL_NEW"
    }
    update = DeploymentUpdate.model_validate(
        {"concurrency_limit": {"limit": 4, "collision_strategy": "ENQUEUE"}}
    )
    assert update.model_dump(exclude_unset=True) == {
        "concurrency_limit": 4, "concurrency_options": {"collision_strategy": "ENQUEUE"},
    }  # fmt: skip
    with pytest.raises(ValidationError, match="collision_strategy"):
        ConcurrencyLimitConfig(limit=1, collision_strategy="CANCEL_RUNNING")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="limit"):
        DeploymentCreate.model_validate(
            {"flow_name": "f", "name": "d", "concurrency_limit": {"limit": 0}}
        )


def test_tideflow_yaml_takes_either_form() -> None:
    base = {"name": "d", "entrypoint": "f.py:f", "work_pool": {"name": "p"}}
    as_int = ProjectDeployment.model_validate({**base, "concurrency_limit": 2})
    assert as_int.concurrency_limit == 2
    as_map = ProjectDeployment.model_validate(
        {**base, "concurrency_limit": {"limit": 1, "collision_strategy": "CANCEL_NEW"}}
    )
    assert as_map.concurrency_limit == ConcurrencyLimitConfig(
        limit=1, collision_strategy="CANCEL_NEW"
    )
    with pytest.raises(ValidationError, match="at least 1"):
        ProjectDeployment.model_validate({**base, "concurrency_limit": 0})


@pytest.mark.parametrize("strategy", ["ENQUEUE", "CANCEL_NEW"])
def test_a_claim_without_a_slot(strategy: str) -> None:
    facts = RunFacts(
        state=st.Scheduled(scheduled_time=NOW), slot_available=False, collision_strategy=strategy
    )
    decision = decide(facts, StateProposal(state=st.Pending()), NOW)
    assert decision.status is SetStateStatus.WAIT and decision.store
    if strategy == "ENQUEUE":
        assert decision.state.name == "AwaitingConcurrencySlot"
        assert decision.state.type is StateType.SCHEDULED
    else:
        assert decision.state.type is StateType.CANCELLED
        assert "collision strategy is CANCEL_NEW" in (decision.state.message or "")
    free = RunFacts(state=st.Scheduled(scheduled_time=NOW), collision_strategy=strategy)
    assert decide(free, StateProposal(state=st.Pending()), NOW).status is SetStateStatus.ACCEPT
