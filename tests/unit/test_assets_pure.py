"""The pure parts of assets: key validation, and what the catalogue reads from a materialization
event whatever a client put in it (never an exception: the catalogue runs in the ingest path)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tideflow.events import AssetTrigger
from tideflow.schemas.assets import AssetProperties, asset_key_problem, check_asset_key
from tideflow.schemas.events import Event
from tideflow.server.events.asset_events import materialization_facts


@pytest.mark.parametrize(
    "key",
    ["s3://bucket/raw.csv", "postgres://db/schema/table", "file:///tmp/x", "gs://b/a*"],
)
def test_uri_keys_are_accepted(key: str) -> None:
    assert asset_key_problem(key) is None and check_asset_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("raw.csv", "not a URI"),
        ("s3://", "names nothing"),
        ("://x", "not a URI"),
        ("s3://a b", "whitespace"),
        ("s3://a\x00", "control"),
        ("s3://" + "x" * 600, "at most 512"),
        (42, "string URI"),
    ],
)
def test_bad_keys_say_why(key: Any, reason: str) -> None:
    problem = asset_key_problem(key)
    assert problem is not None and reason in problem
    with pytest.raises(ValueError, match=reason):
        check_asset_key(key)


def test_properties_refuse_script_urls() -> None:
    with pytest.raises(ValueError, match="http, https or mailto"):
        AssetProperties(url="javascript:alert(1)")


def _event(**fields: Any) -> Event:
    base: dict[str, Any] = {
        "event": "tideflow.asset.materialization.succeeded",
        "resource": {"tideflow.resource.id": "s3://b/k"},
    }
    return Event.model_validate({**base, **fields})


def test_facts_read_upstreams_runs_and_payload() -> None:
    run, task_run = uuid.uuid4(), uuid.uuid4()
    facts = materialization_facts(
        _event(
            related=[
                {"tideflow.resource.id": "s3://b/up", "tideflow.resource.role": "asset"},
                {"tideflow.resource.id": "s3://b/k", "tideflow.resource.role": "asset"},  # itself
                {"tideflow.resource.id": "not-a-key", "tideflow.resource.role": "asset"},
                {"tideflow.resource.id": f"tideflow.flow-run.{run}", "tideflow.resource.role": "flow-run"},
                {"tideflow.resource.id": f"tideflow.task-run.{task_run}", "tideflow.resource.role": "task-run"},
            ],
            payload={"metadata": {"rows": 1}, "properties": {"name": "K", "url": "ftp://x"}},
        )
    )  # fmt: skip
    assert facts is not None
    assert facts.upstream == ["s3://b/up"]
    assert (facts.flow_run_id, facts.task_run_id) == (run, task_run)
    assert facts.metadata == {"rows": 1}
    assert facts.properties is None  # an unsafe url: the properties are ignored, not an error


def test_other_events_and_keys_are_not_catalogued() -> None:
    assert materialization_facts(_event(event="tideflow.asset.referenced")) is None
    assert materialization_facts(_event(resource={"tideflow.resource.id": "plain"})) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    payload=st.dictionaries(st.sampled_from(["properties", "metadata", "error", "x"]), json_values)
)
def test_facts_never_raise_on_any_payload(payload: dict[str, Any]) -> None:
    facts = materialization_facts(_event(payload=payload))
    assert facts is not None and isinstance(facts.metadata, dict)


def test_asset_trigger_is_a_compound_over_the_materializations() -> None:
    trigger = AssetTrigger(assets=["s3://b/raw.csv", "s3://b/prices.csv", "s3://b/raw.csv"])
    dumped = trigger.model_dump(mode="json")
    assert "assets" not in dumped and dumped["type"] == "compound" and dumped["require"] == "all"
    assert [c["match"]["tideflow.resource.id"] for c in dumped["triggers"]] == [
        "s3://b/raw.csv", "s3://b/prices.csv",
    ]  # fmt: skip
    assert all(
        c["expect"] == ["tideflow.asset.materialization.succeeded"] for c in dumped["triggers"]
    )
    with pytest.raises(ValueError, match="not a URI"):
        AssetTrigger(assets=["raw.csv"])
    with pytest.raises(ValueError):
        AssetTrigger(assets=[])
