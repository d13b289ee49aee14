"""A compound trigger: run ``combine`` once BOTH upstream deployments have completed.

    python examples/chain_compound.py
    tideflow deployment run extract-orders/extract_orders       # in another terminal
    tideflow deployment run extract-customers/extract_customers

The compound trigger remembers the first completion (even across a server restart) and fires
when the second one arrives within ``within`` seconds of it.
"""

from tideflow import flow, serve
from tideflow.events import DeploymentCompoundTrigger, EventTrigger

COMPLETED = {"tideflow.flow-run.Completed"}


@flow(log_prints=True)
def extract_orders() -> None:
    print("orders extracted")


@flow(log_prints=True)
def extract_customers() -> None:
    print("customers extracted")


@flow(log_prints=True)
def combine() -> None:
    print("combining orders and customers")


if __name__ == "__main__":
    serve(
        extract_orders.to_deployment(name="extract_orders"),
        extract_customers.to_deployment(name="extract_customers"),
        combine.to_deployment(
            name="when-both-extracted",
            triggers=[
                DeploymentCompoundTrigger(
                    name="both extracts",
                    require="all",
                    within=3600,
                    triggers=[
                        EventTrigger(
                            expect=COMPLETED,
                            match_related={"tideflow.resource.name": "extract_orders"},
                        ),
                        EventTrigger(
                            expect=COMPLETED,
                            match_related={"tideflow.resource.name": "extract_customers"},
                        ),
                    ],
                )
            ],
        ),
    )
