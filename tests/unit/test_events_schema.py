"""Event model validation, refusal reasons, resource helpers, the feed filter and its cursors."""

from __future__ import annotations

import datetime as dt
import json
from uuid import UUID, uuid4

import pytest
from pydantic import TypeAdapter, ValidationError

from tideflow.schemas.events import (
    AnyEvent,
    Event,
    EventFilter,
    ReceivedEvent,
    decode_cursor,
    encode_cursor,
    event_problem,
)

T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
RUN_ID = "tideflow.flow-run.7b0c7a2e-1c1e-4c8e-9d0a-3f1f7e2b9a10"


def completed(**overrides: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "id": str(uuid4()),
        "occurred": T0.isoformat(),
        "event": "tideflow.flow-run.Completed",
        "resource": {"tideflow.resource.id": RUN_ID, "tideflow.resource.name": "able-otter"},
        "related": [
            {
                "tideflow.resource.id": "tideflow.flow.1",
                "tideflow.resource.role": "flow",
                "tideflow.resource.name": "upstream-flow",
            },
            {
                "tideflow.resource.id": "tideflow.deployment.2",
                "tideflow.resource.role": "deployment",
                "tideflow.resource.name": "upstream_deployment",
            },
            {
                "tideflow.resource.id": "tideflow.user.stoat",
                "tideflow.resource.role": "creator",
                "tideflow.resource.name": "stoat",
            },
            {"tideflow.resource.id": "tideflow.tag.a", "tideflow.resource.role": "tag"},
            {"tideflow.resource.id": "tideflow.tag.b", "tideflow.resource.role": "tag"},
        ],
        "payload": {"rows": 5},
    }
    raw.update(overrides)
    return raw


def test_valid_event_and_helpers() -> None:
    event = Event.model_validate(completed())
    assert event.resource.id == RUN_ID
    assert event.resource.name == "able-otter"
    assert [r.id for r in event.related_by_role("tag")] == ["tideflow.tag.a", "tideflow.tag.b"]
    assert event.resource_in_role["deployment"].name == "upstream_deployment"
    assert event.resource_in_role["tag"].id == "tideflow.tag.b"
    assert len(event.resources_in_role["tag"]) == 2
    assert event.occurred == T0
    assert event_problem(completed(), 1000) is None


def test_defaults_id_and_occurred_are_set() -> None:
    a = Event(event="x.y", resource={"tideflow.resource.id": "r"})
    b = Event(event="x.y", resource={"tideflow.resource.id": "r"})
    assert a.id != b.id
    assert a.occurred.tzinfo is not None


def test_occurred_is_normalised_to_utc_and_must_be_aware() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    event = Event.model_validate(
        completed(occurred=dt.datetime(2025, 5, 1, 14, tzinfo=plus2).isoformat())
    )
    assert event.occurred == T0 and event.occurred.tzinfo == dt.UTC
    assert "timezone" in (event_problem(completed(occurred="2025-05-01T12:00:00"), 1000) or "")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"resource": {"tideflow.resource.name": "x"}},
            "resource: resource has no 'tideflow.resource.id' label",
        ),
        (
            {"related": [{"tideflow.resource.role": "flow"}]},
            "related[0]: resource has no 'tideflow.resource.id' label",
        ),
        (
            {"related": [{"tideflow.resource.id": "a"}]},
            "related[0]: related resource 'a' has no 'tideflow.resource.role' label",
        ),
        ({"event": ""}, "event: event name is empty"),
        (
            {"event": "tideflow.flow run"},
            "event: event name 'tideflow.flow run' contains whitespace",
        ),
        ({"event": "x" * 1025}, "event: event name is 1025 characters, above the limit of 1024"),
        ({"payload": [1, 2]}, "payload must be a JSON object, got list"),
        (
            {"payload": {"x": float("nan")}},
            "payload is not JSON: Out of range float values are not JSON compliant",
        ),
        (
            {"resource": {"tideflow.resource.id": "r", "n": 5}},
            "resource.n: Input should be a valid string",
        ),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_event_problem_names_the_reason(overrides: dict[str, object], reason: str) -> None:
    problem = event_problem(completed(**overrides), 10_000)
    assert problem is not None and problem.startswith(reason), problem
    with pytest.raises(ValidationError):
        Event.model_validate(completed(**overrides))


def test_oversized_payload_is_refused_with_its_size() -> None:
    raw = completed(payload={"blob": "x" * 2000})
    size = len(json.dumps(raw["payload"], separators=(",", ":")))
    assert event_problem(raw, 2000) == f"payload is {size} bytes, above the limit of 2000 bytes"
    assert event_problem(raw, size) is None


def test_one_bad_event_in_a_batch_does_not_spoil_the_others() -> None:
    batch = [completed(), completed(event="bad name"), completed()]
    verdicts = [event_problem(raw, 10_000) for raw in batch]
    assert verdicts[0] is None and verdicts[2] is None and "whitespace" in (verdicts[1] or "")


def test_any_event_keeps_received_through_json() -> None:
    adapter: TypeAdapter[Event] = TypeAdapter(AnyEvent)
    received = ReceivedEvent.model_validate({**completed(), "received": T0.isoformat()})
    plain = Event.model_validate(completed())
    again = adapter.validate_json(adapter.dump_json(received))
    assert isinstance(again, ReceivedEvent) and again.received == T0
    assert type(adapter.validate_json(adapter.dump_json(plain))) is Event


# --- EventFilter -----------------------------------------------------------------------------


def test_filter_names_group_is_any_of() -> None:
    event = Event.model_validate(completed())
    assert EventFilter(event_names=["nope"], event_prefixes=["tideflow.flow-run."]).includes(event)
    assert EventFilter(event_patterns=["tideflow.*.Completed"]).includes(event)
    assert not EventFilter(event_names=["nope"], event_patterns=["*.Failed"]).includes(event)
    assert not EventFilter(exclude_event_prefixes=["tideflow.flow-run."]).includes(event)
    assert EventFilter().includes(event)


def test_filter_time_bounds_are_inclusive() -> None:
    event = Event.model_validate(completed())
    assert EventFilter(occurred_after=T0, occurred_before=T0).includes(event)
    assert not EventFilter(occurred_after=T0 + dt.timedelta(microseconds=1)).includes(event)
    assert not EventFilter(occurred_before=T0 - dt.timedelta(microseconds=1)).includes(event)


def test_filter_resource_and_related() -> None:
    event = Event.model_validate(completed())
    assert EventFilter(resource_ids=[RUN_ID]).includes(event)
    assert EventFilter(resource_id_prefixes=["tideflow.flow-run."]).includes(event)
    assert not EventFilter(resource_ids=["other"]).includes(event)
    assert EventFilter(resource_labels={"tideflow.resource.name": "able-*"}).includes(event)
    assert not EventFilter(resource_labels={"tideflow.resource.name": "!able-otter"}).includes(
        event
    )
    # related criteria must hold on one single related resource
    assert EventFilter(
        related_roles=["deployment"],
        related_labels={"tideflow.resource.name": "upstream_deployment"},
    ).includes(event)
    assert not EventFilter(
        related_roles=["flow"], related_labels={"tideflow.resource.name": "upstream_deployment"}
    ).includes(event)
    assert EventFilter(related_ids=["tideflow.tag.b"], related_roles=["tag"]).includes(event)
    assert EventFilter(any_resource_ids=["tideflow.deployment.2"]).includes(event)
    assert EventFilter(any_resource_ids=[RUN_ID]).includes(event)
    assert not EventFilter(any_resource_ids=["tideflow.deployment.3"]).includes(event)
    assert EventFilter(ids=[event.id]).includes(event) and not EventFilter(ids=[uuid4()]).includes(
        event
    )


def test_filter_rejects_unknown_fields_and_bad_specs() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        EventFilter.model_validate({"names": ["x"]})
    with pytest.raises(ValidationError, match="empty list"):
        EventFilter(resource_labels={"a": []})
    with pytest.raises(ValidationError, match="invalid cursor"):
        EventFilter(cursor="!!!")


def test_cursor_round_trip_and_order() -> None:
    ident = UUID(int=5)
    cursor = encode_cursor(T0, ident)
    assert decode_cursor(cursor) == (T0, ident)
    newest = EventFilter(cursor=cursor)
    oldest = EventFilter(cursor=cursor, order="oldest")
    older = Event(
        event="a", occurred=T0 - dt.timedelta(seconds=1), resource={"tideflow.resource.id": "r"}
    )
    same_time_lower_id = Event(
        id=UUID(int=4), event="a", occurred=T0, resource={"tideflow.resource.id": "r"}
    )
    itself = Event(id=ident, event="a", occurred=T0, resource={"tideflow.resource.id": "r"})
    assert newest.after_cursor(older) and newest.after_cursor(same_time_lower_id)
    assert not newest.after_cursor(itself) and not oldest.after_cursor(itself)
    assert not oldest.after_cursor(older)
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor("bm90IGEgY3Vyc29y")
