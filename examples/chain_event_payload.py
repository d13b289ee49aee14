"""Pass an event's payload into the triggered run's parameters.

    python examples/chain_event_payload.py
    tideflow event emit shop.orders.arrived --resource-id shop.orders \\
        --payload '{"table": "orders", "rows": 42}'           # in another terminal

The trigger's ``parameters`` are templates over the event: a value that is one ``{{ expression }}``
keeps its JSON type, so ``rows`` arrives as the integer 42.
"""

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger


@flow(log_prints=True)
def load_table(table: str, rows: int) -> int:
    print(f"loading {rows} rows into {table} ({type(rows).__name__})")
    return rows


if __name__ == "__main__":
    serve(
        load_table.to_deployment(
            name="on-arrival",
            triggers=[
                DeploymentEventTrigger(
                    expect={"shop.orders.arrived"},
                    parameters={
                        "table": "{{ event.payload.table }}",
                        "rows": "{{ event.payload.rows }}",
                    },
                )
            ],
        )
    )
