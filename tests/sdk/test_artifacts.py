"""tideflow.artifacts against a real server: each kind, attached to the flow run (and task run) it
was created in, keyed versions, progress updates, async pairs, and local refusal of bad data."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tideflow import flow, task
from tideflow.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    aupdate_progress_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from tideflow.client import SyncClient
from tideflow.runtime import flow_run, task_run
from tideflow.schemas.artifacts import ArtifactFilter


def test_artifacts_created_in_a_flow_and_its_task_are_attached_to_them(
    client: SyncClient,
) -> None:
    key = f"report-{uuid.uuid4().hex[:8]}"
    seen: dict[str, Any] = {}

    @task
    def summarise(rows: list[dict[str, int]]) -> None:
        seen["task_run"] = task_run.id
        create_table_artifact(rows, key=key, description="rows")

    @flow
    def pipeline() -> None:
        seen["flow_run"] = flow_run.id
        progress = create_progress_artifact(0)
        create_markdown_artifact("# Report\n\n*all good*", key=key)
        summarise([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
        create_link_artifact("https://example.com/data", "the data")
        update_progress_artifact(progress, 100)

    pipeline()
    found = client.read_artifacts(ArtifactFilter(flow_run_id=[seen["flow_run"]]))
    by_type = {a.type.value: a for a in found}
    assert set(by_type) == {"progress", "markdown", "table", "link"}
    assert by_type["progress"].data == 100
    assert by_type["table"].task_run_id == seen["task_run"]
    assert by_type["markdown"].task_run_id is None
    assert by_type["link"].data == {"link": "https://example.com/data", "link_text": "the data"}
    assert client.read_latest_artifact(key).id == by_type["table"].id  # the newer version of key
    assert not by_type["markdown"].is_latest


def test_async_pairs_and_artifacts_outside_a_run(client: SyncClient) -> None:
    async def main() -> Any:
        made = await acreate_progress_artifact(5)
        await aupdate_progress_artifact(made, 55, description="half")
        note = await acreate_markdown_artifact("outside any run")
        return made, note

    made, note = asyncio.run(main())
    progress = client.read_artifact(made)
    assert (progress.data, progress.description, progress.flow_run_id) == (55, "half", None)
    assert client.read_artifact(note).flow_run_id is None


def test_bad_data_fails_before_sending() -> None:
    with pytest.raises(ValueError, match="from 0 to 100"):
        create_progress_artifact(150)
    with pytest.raises(ValueError, match="got 'javascript' scheme"):
        create_link_artifact("javascript:alert(1)")
    with pytest.raises(ValueError, match="lowercase letters, digits and '-'"):
        create_markdown_artifact("x", key="Bad_Key")
    with pytest.raises(ValueError, match="from 0 to 100"):
        update_progress_artifact(uuid.uuid4(), -5)
