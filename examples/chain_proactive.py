"""A proactive trigger: raise the alarm when a deployment has NOT completed within 60 seconds.

    python examples/chain_proactive.py

``alarm`` runs when no ``tideflow.flow-run.Completed`` of ``nightly_load`` arrives within the
window (it opens when the trigger starts, and again after each completion). Run the watched
deployment in time (``tideflow deployment run nightly-load/nightly_load``) and the alarm resolves.
``TIDEFLOW_EXAMPLE_WINDOW`` shortens the window (the tests use a few seconds).
"""

import os

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger

WINDOW = float(os.environ.get("TIDEFLOW_EXAMPLE_WINDOW", "60"))


@flow(log_prints=True)
def nightly_load() -> None:
    print("loading")


@flow(log_prints=True)
def alarm(missing: str) -> None:
    print(f"ALARM: {missing} did not complete within {WINDOW:g} s")


if __name__ == "__main__":
    serve(
        nightly_load.to_deployment(name="nightly_load"),
        alarm.to_deployment(
            name="no-completion",
            triggers=[
                DeploymentEventTrigger(
                    name="nightly_load missing",
                    posture="Proactive",
                    expect={"tideflow.flow-run.Completed"},
                    match_related={"tideflow.resource.name": "nightly_load"},
                    within=WINDOW,
                    parameters={"missing": "nightly_load"},
                )
            ],
        ),
    )
