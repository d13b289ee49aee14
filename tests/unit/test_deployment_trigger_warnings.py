"""A deployment trigger that names no events warns when the deployment is built: it would match the
events of the runs it starts and feed itself (the server stops such loops; the author learns early)."""

from __future__ import annotations

import warnings

import pytest

from tideflow import flow
from tideflow.events import DeploymentCompoundTrigger, DeploymentEventTrigger


@flow
def target() -> None:
    pass


def test_an_empty_expect_warns_naming_the_trigger() -> None:
    with pytest.warns(UserWarning, match=r"trigger 0 has an empty expect.*feeds itself"):
        target.to_deployment("loop", triggers=[DeploymentEventTrigger(expect=set())])


def test_an_empty_leaf_of_a_compound_trigger_is_named_by_its_path() -> None:
    compound = DeploymentCompoundTrigger(
        require="any",
        triggers=[
            {"type": "event", "expect": ["tideflow.flow-run.Completed"]},
            {"type": "event", "expect": []},
        ],
    )
    with pytest.warns(UserWarning, match=r"trigger 1\.triggers\[1\] has an empty expect"):
        target.to_deployment(
            "compound",
            triggers=[DeploymentEventTrigger(expect={"tideflow.flow-run.Failed"}), compound],
        )


def test_named_events_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        target.to_deployment(
            "named", triggers=[DeploymentEventTrigger(expect={"tideflow.flow-run.Completed"})]
        )


def test_a_prefect_event_name_warns_naming_ours() -> None:
    nested = DeploymentCompoundTrigger(
        require="all", triggers=[{"type": "event", "after": ["prefect.flow-run.Running"],
                                  "expect": ["tideflow.flow-run.Completed"]}],
    )  # fmt: skip
    with pytest.warns(UserWarning) as record:
        target.to_deployment(
            "ported",
            triggers=[DeploymentEventTrigger(expect={"prefect.flow-run.Completed"}), nested],
        )
    assert [str(w.message) for w in record] == [
        "trigger 0.expect names 'prefect.flow-run.Completed', an event tideflow never emits; "
        "did you mean 'tideflow.flow-run.Completed'?",
        "trigger 1.triggers[0].after names 'prefect.flow-run.Running', an event tideflow never "
        "emits; did you mean 'tideflow.flow-run.Running'?",
    ]
