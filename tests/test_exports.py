"""The public surface, pinned: every public module's ``__all__`` is exactly this list, and every name exists.

A change of the public surface must edit the lists below (and say so in CHANGELOG.md).
"""

from __future__ import annotations

import importlib

import pytest

import tideflow
from tideflow import client, futures, schemas, tasks

PUBLIC: dict[str, list[str]] = {
    "tideflow": [
        "Flow",
        "State",
        "StateType",
        "Task",
        "__version__",
        "allow_failure",
        "flow",
        "get_async_client",
        "get_client",
        "get_run_logger",
        "pause_flow_run",
        "resume_flow_run",
        "serve",
        "suspend_flow_run",
        "task",
        "unmapped",
    ],
    "tideflow.tasks": ["Task", "exponential_backoff", "serve", "task", "task_input_hash"],
    "tideflow.utilities": [],
    "tideflow.utilities.annotations": [
        "BaseAnnotation",
        "allow_failure",
        "opaque",
        "quote",
        "unmapped",
    ],
    "tideflow.states": [
        "AwaitingConcurrencySlot",
        "AwaitingRetry",
        "Cancelled",
        "Cancelling",
        "Completed",
        "Crashed",
        "Failed",
        "FailedRun",
        "Late",
        "Paused",
        "Pending",
        "Retrying",
        "Running",
        "Scheduled",
        "State",
        "StateType",
        "Suspended",
        "TimedOut",
        "UnfinishedRun",
    ],
    "tideflow.background": ["BackgroundTaskFuture", "delay"],
    "tideflow.notifications": [
        "DEFAULT_BODY",
        "DEFAULT_SUBJECT",
        "NotificationFailed",
        "asend_notification",
        "notify",
        "notify_on_failure",
        "send_notification",
    ],
    "tideflow.task_worker": ["TaskWorker", "load_task", "serve"],
    "tideflow.futures": [
        "DoneAndNotDoneFutures",
        "FutureList",
        "TaskFuture",
        "as_completed",
        "unmapped",
        "wait",
    ],
    "tideflow.task_runners": ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"],
    "tideflow.task_runners.dask": ["DaskTaskRunner"],
    "tideflow.runtime": ["deployment", "flow_run", "task_run"],
    "tideflow.logging": ["disable_run_logger", "get_run_logger"],
    "tideflow.testing.utilities": ["tideflow_test_harness"],
    "tideflow.flow_runs": [
        "apause_flow_run",
        "aresume_flow_run",
        "asuspend_flow_run",
        "pause_flow_run",
        "resume_flow_run",
        "suspend_flow_run",
    ],
    "tideflow.input": [
        "AutomaticRunInput",
        "GetInputHandler",
        "RunInput",
        "RunInputMetadata",
        "asend_input",
        "receive_input",
        "run_input_subclass_from_type",
        "send_input",
    ],
    "tideflow.variables": ["MAX_VARIABLE_VALUE_BYTES", "Variable"],
    "tideflow.secrets": ["MASK", "MAX_SECRET_VALUE_LENGTH", "Secret", "SecretMetadata"],
    "tideflow.concurrency": [
        "ConcurrencySlotTimeout",
        "aconcurrency",
        "arate_limit",
        "concurrency",
        "rate_limit",
    ],
    "tideflow.assets": [
        "Asset",
        "AssetProperties",
        "MaterializingTask",
        "add_asset_metadata",
        "materialize",
    ],
    "tideflow.artifacts": [
        "acreate_link_artifact",
        "acreate_markdown_artifact",
        "acreate_progress_artifact",
        "acreate_table_artifact",
        "aupdate_progress_artifact",
        "create_link_artifact",
        "create_markdown_artifact",
        "create_progress_artifact",
        "create_table_artifact",
        "update_progress_artifact",
    ],
    "tideflow.cache_policies": [
        "DEFAULT",
        "FLOW_PARAMETERS",
        "INPUTS",
        "NO_CACHE",
        "RUN_ID",
        "TASK_SOURCE",
        "CacheKeyError",
        "CacheKeyFn",
        "CachePolicy",
        "CompoundCachePolicy",
        "ConfiguredCachePolicy",
        "FlowParameters",
        "Inputs",
        "KeyContext",
        "NoCache",
        "RunId",
        "TaskSource",
        "hash_objects",
    ],
    "tideflow.results": ["SERIALIZERS", "ResultRecord", "ResultSerializationError", "ResultStore"],
    "tideflow.schemas": [
        "Creator",
        "Flow",
        "FlowCreate",
        "FlowFilter",
        "FlowRun",
        "FlowRunCreate",
        "FlowRunFilter",
        "FlowRunSort",
        "FlowRunUpdate",
        "Log",
        "LogCreate",
        "LogFilter",
        "OrchestrationResult",
        "SetStateStatus",
        "State",
        "StateDetails",
        "StateProposal",
        "StateType",
    ],
    "tideflow.client": [
        "AsyncClient",
        "SyncClient",
        "get_async_client",
        "get_client",
        "resolve_api_url",
        "server_is_healthy",
    ],
    "tideflow.exceptions": [
        "FlowRunFailed",
        "ObjectNotFound",
        "ParameterValidationError",
        "ServerError",
        "ServerUnreachable",
        "TaskRunFailed",
        "TideflowError",
        "TransitionRefused",
    ],
    "tideflow.events": [
        "AssetTrigger",
        "CompoundTrigger",
        "DeploymentCompoundTrigger",
        "DeploymentEventTrigger",
        "DeploymentSequenceTrigger",
        "DeploymentTrigger",
        "Event",
        "EventTrigger",
        "MetricTrigger",
        "MetricTriggerQuery",
        "ReceivedEvent",
        "RelatedResource",
        "Resource",
        "ResourceSpecification",
        "SequenceTrigger",
        "emit_event",
    ],
    "tideflow.settings": [
        "DEFAULT_API_URL",
        "DEFAULT_PROFILE",
        "PROJECT_FILE",
        "Settings",
        "active_profile",
        "get_settings",
        "home_dir",
        "profile_names",
        "profile_path",
        "project_path",
        "read_profile",
        "read_project",
        "set_active_profile",
        "setting_sources",
        "write_profile",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = sorted(module.__all__)
    pinned = sorted(PUBLIC[module_name])
    added = sorted(set(exported) - set(pinned))
    removed = sorted(set(pinned) - set(exported))
    assert not added and not removed, (
        f"{module_name}.__all__ changed: added {added}, removed {removed}; edit tests/test_exports.py"
    )
    assert len(exported) == len(set(exported)), f"{module_name}.__all__ lists a name twice"


@pytest.mark.parametrize(
    ("module_name", "name"), [(m, n) for m, names in PUBLIC.items() for n in names]
)
def test_every_exported_name_exists(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    assert getattr(module, name) is not None


def test_top_level_names_are_the_defining_objects() -> None:
    assert tideflow.State is schemas.State
    assert tideflow.StateType is schemas.StateType
    assert tideflow.get_client is client.get_client
    assert tideflow.get_async_client is client.get_async_client
    assert tideflow.task is tasks.task and tideflow.Task is tasks.Task
    assert tideflow.unmapped is futures.unmapped


def test_unknown_top_level_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_thing'"):
        tideflow.not_a_thing  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    assert sorted(dir(tideflow)) == sorted(PUBLIC["tideflow"])
