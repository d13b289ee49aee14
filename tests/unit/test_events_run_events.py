"""The flow-run state event: name, resource labels, related resources, payload, id and follows."""

from __future__ import annotations

import datetime as dt
import uuid

from tideflow.schemas import Creator, FlowRun
from tideflow.schemas.events import MAX_RELATED
from tideflow.schemas.states import Completed, Pending, Running, State, StateType
from tideflow.server.events.run_events import flow_run_state_event, state_event_id

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _run(**kw: object) -> FlowRun:
    base: dict[str, object] = {
        "id": uuid.uuid4(), "name": "brave-otter", "flow_id": uuid.uuid4(), "flow_name": "etl",
        "tags": ["nightly", "team a"], "run_count": 1, "created": T0, "updated": T0,
    }  # fmt: skip
    base.update(kw)
    return FlowRun.model_validate(base)


def test_completed_event_of_a_deployment_run_created_by_a_user() -> None:
    dep = uuid.uuid4()
    run = _run(
        deployment_id=dep, created_by=Creator(type="user", id="tideflow.user.alice", name="alice")
    )
    running, done = Running(), Completed(message="ok")
    event = flow_run_state_event(run, done, running, flow_name="etl", deployment_name="nightly-etl")
    assert event.event == "tideflow.flow-run.Completed"
    assert event.id == state_event_id(run.id, done.id)
    assert event.id == uuid.uuid5(uuid.NAMESPACE_URL, f"tideflow.flow-run.{run.id}.state.{done.id}")
    assert event.follows == state_event_id(run.id, running.id)
    assert event.occurred == done.timestamp
    assert event.resource.root == {
        "tideflow.resource.id": f"tideflow.flow-run.{run.id}",
        "tideflow.resource.name": "brave-otter",
        "tideflow.state-name": "Completed",
        "tideflow.state-type": "COMPLETED",
        "tideflow.run-count": "1",
    }
    assert [r.root for r in event.related] == [
        {"tideflow.resource.id": f"tideflow.flow.{run.flow_id}", "tideflow.resource.role": "flow",
         "tideflow.resource.name": "etl"},
        {"tideflow.resource.id": f"tideflow.deployment.{dep}", "tideflow.resource.role": "deployment",
         "tideflow.resource.name": "nightly-etl"},
        {"tideflow.resource.id": "tideflow.tag.nightly", "tideflow.resource.role": "tag",
         "tideflow.resource.name": "nightly"},
        {"tideflow.resource.id": "tideflow.tag.team a", "tideflow.resource.role": "tag",
         "tideflow.resource.name": "team a"},
        {"tideflow.resource.id": "tideflow.user.alice", "tideflow.resource.role": "creator",
         "tideflow.resource.name": "alice"},
    ]  # fmt: skip
    assert event.payload == {
        "previous": {"type": "RUNNING", "name": "Running", "message": None,
                     "timestamp": running.timestamp.isoformat()},
        "state": {"type": "COMPLETED", "name": "Completed", "message": "ok",
                  "timestamp": done.timestamp.isoformat()},
    }  # fmt: skip


def test_first_state_has_no_previous_and_no_follows() -> None:
    run = _run(tags=[])
    pending = Pending()
    event = flow_run_state_event(run, pending, None, flow_name="etl")
    assert event.event == "tideflow.flow-run.Pending"
    assert event.follows is None and event.payload["previous"] is None
    assert [r.role for r in event.related] == ["flow"]


def test_triggered_run_relates_the_automation_and_the_event() -> None:
    auto = uuid.uuid4()
    trig = uuid.uuid4()
    run = _run(
        tags=[],
        created_by=Creator(type="automation", id=f"tideflow.automation.{auto}", name="chain"),
    )
    event = flow_run_state_event(
        run, Running(), Pending(), flow_name="etl", triggering_event_id=trig
    )
    roles = {r.role: r.root for r in event.related}
    assert roles["creator"]["tideflow.resource.id"] == f"tideflow.automation.{auto}"
    assert roles["triggering-event"] == {
        "tideflow.resource.id": f"tideflow.event.{trig}",
        "tideflow.resource.role": "triggering-event",
    }


def test_state_names_with_spaces_and_many_tags_still_make_a_valid_event() -> None:
    run = _run(tags=[f"t{i}" for i in range(150)])
    state = State(type=StateType.FAILED, name="Very  Bad\tluck")
    event = flow_run_state_event(run, state, None, flow_name="etl")
    assert event.event == "tideflow.flow-run.Very-Bad-luck"
    assert event.resource["tideflow.state-name"] == "Very  Bad\tluck"
    assert len(event.related) <= MAX_RELATED


def test_named_variants_keep_their_name() -> None:
    run = _run()
    late = State(type=StateType.SCHEDULED, name="Late")
    assert flow_run_state_event(run, late, None, flow_name="etl").event == "tideflow.flow-run.Late"
