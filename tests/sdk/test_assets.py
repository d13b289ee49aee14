"""tideflow.assets against a real server: @materialize is a task (retries, caching, submit), each
final state is a materialization event, the server's catalogue follows them, and lineage is
inferred from the data passed between materializing tasks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tideflow import flow, task
from tideflow.assets import Asset, AssetProperties, add_asset_metadata, materialize
from tideflow.client import SyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.runtime import flow_run
from tideflow.schemas.assets import AssetFilter, AssetRecord
from tideflow.schemas.events import EventFilter


def _key(name: str) -> str:
    return f"s3://test-{uuid.uuid4().hex[:8]}/{name}"


def _wait_asset(client: SyncClient, key: str, count: int = 1) -> AssetRecord:
    deadline = time.monotonic() + 15
    while True:
        try:
            found = client.read_asset(key)
            if found.materializations >= count:
                return found
        except ObjectNotFound:
            pass
        assert time.monotonic() < deadline, f"{key} was not catalogued"
        time.sleep(0.1)


def test_lineage_is_inferred_from_results_passed_between_materializing_tasks(
    client: SyncClient,
) -> None:
    raw, clean, external = _key("raw.csv"), _key("clean.csv"), _key("vendor.csv")
    seen: dict[str, Any] = {}
    clean_asset = Asset(
        key=clean,
        properties=AssetProperties(
            name="Clean rows", description="deduplicated", owners=["data-team"],
            url="https://example.com/clean",
        ),
    )  # fmt: skip

    @materialize(raw)
    def extract() -> list[int]:
        return [1, 2, 2, 3]

    @materialize(clean_asset, asset_deps=[external])
    def transform(rows: list[int]) -> list[int]:
        out = sorted(set(rows))
        add_asset_metadata(clean, {"rows": len(out)})
        clean_asset.add_metadata({"source": "extract"})
        return out

    @flow
    def pipeline() -> list[int]:
        seen["flow_run"] = flow_run.id
        return transform(extract())

    assert pipeline() == [1, 2, 3]
    record = _wait_asset(client, clean)
    assert record.last_status == "succeeded"
    assert record.upstream == sorted([raw, external]) or set(record.upstream) == {raw, external}
    assert record.last_metadata == {"rows": 3, "source": "extract"}
    assert record.last_flow_run_id == seen["flow_run"]
    assert record.properties.name == "Clean rows"
    assert record.properties.owners == ["data-team"]
    assert _wait_asset(client, raw).downstream == [clean]
    assert client.read_asset(external).materializations == 0  # known as an upstream only

    page = client.read_events(EventFilter(resource_ids=[clean]))
    (event,) = page.events
    assert event.event == "tideflow.asset.materialization.succeeded"
    assert event.resource.name == "Clean rows"
    assert event.resource.root["tideflow.asset.description"] == "deduplicated"
    roles = {r.id: r.role for r in event.related}
    assert roles[raw] == "asset" and roles[external] == "asset"
    assert roles[f"tideflow.flow-run.{seen['flow_run']}"] == "flow-run"
    assert "task-run" in roles.values()


def test_futures_carry_lineage_and_a_failed_materialization_is_recorded(
    client: SyncClient,
) -> None:
    first, second, broken = _key("a.parquet"), _key("b.parquet"), _key("c.parquet")
    attempts: list[int] = []

    @materialize(first)
    def make_a() -> dict[str, int]:
        return {"a": 1}

    @materialize(second, retries=2, retry_delay_seconds=0)
    def make_b(a: dict[str, int]) -> dict[str, int]:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("flaky disk")
        return {**a, "b": 2}

    @materialize(broken)
    def make_c(b: dict[str, int]) -> None:
        raise ValueError("bucket gone")

    @flow
    def pipeline() -> None:
        b = make_b.submit(make_a.submit())
        make_c(b.result())

    with pytest.raises(ValueError, match="bucket gone"):
        pipeline()
    assert len(attempts) == 3
    b_record = _wait_asset(client, second)
    assert (b_record.last_status, b_record.materializations, b_record.upstream) == (
        "succeeded", 1, [first],
    )  # fmt: skip
    c_record = _wait_asset(client, broken)
    assert c_record.last_status == "failed"
    assert "bucket gone" in (c_record.last_error or "")
    assert c_record.upstream == [second]
    failed = client.read_assets(AssetFilter(keys=[first, second, broken], status="failed"))
    assert [a.key for a in failed] == [broken]


def test_a_cached_run_materializes_nothing(client: SyncClient) -> None:
    key = _key("cached.csv")

    @materialize(key, cache_key_fn=lambda ctx, params: f"fixed-{key}")
    def build() -> int:
        return 42

    @flow
    def pipeline() -> int:
        return build()

    assert pipeline() == 42 and pipeline() == 42
    time.sleep(0.5)
    assert _wait_asset(client, key).materializations == 1


def test_with_options_keeps_the_assets_and_the_users_hooks() -> None:
    calls: list[str] = []
    key = _key("x.csv")

    @materialize(key, on_completion=[lambda t, r, s: calls.append("done")])
    def build() -> int:
        return 1

    again = build.with_options(retries=3)
    assert [a.key for a in again.assets] == [key]
    assert again.retries == 3
    assert len(again.on_completion_hooks) == len(build.on_completion_hooks) == 2
    assert again() == 1 and calls == ["done"]


def test_bad_keys_and_misuse_fail_clearly() -> None:
    with pytest.raises(ValueError, match="not a URI"):
        materialize("raw.csv")
    with pytest.raises(ValueError, match="at most 512"):
        materialize("s3://" + "x" * 600)
    with pytest.raises(ValueError, match="whitespace"):
        Asset(key="s3://bucket/a b")
    with pytest.raises(TypeError, match="unknown option"):
        materialize("s3://b/k", retires=2)
    with pytest.raises(TypeError, match="needs its assets"):

        @materialize  # type: ignore[arg-type]
        def oops() -> None: ...

    with pytest.raises(RuntimeError, match="inside a @materialize function"):
        add_asset_metadata("s3://b/k", {"a": 1})

    @materialize("s3://b/k")
    def wrong_key() -> None:
        add_asset_metadata("s3://b/other", {"a": 1})

    with pytest.raises(ValueError, match="is not materialized by"):
        wrong_key()

    @task
    def plain() -> None:
        add_asset_metadata("s3://b/k", {"a": 1})

    with pytest.raises(RuntimeError):
        plain()
