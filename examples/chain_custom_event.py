"""A custom event emitted inside a flow triggers another deployment.

    python examples/chain_custom_event.py
    tideflow deployment run build-report/nightly                # in another terminal

``build_report`` emits ``acme.report.ready`` about the report it built; ``publish_report`` runs when
that event arrives, with the report's name taken from the event's resource.
"""

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger, emit_event


@flow(log_prints=True)
def build_report(name: str = "sales") -> str:
    print(f"building report {name}")
    emit_event(
        "acme.report.ready",
        resource={"tideflow.resource.id": f"acme.report.{name}", "tideflow.resource.name": name},
        payload={"pages": 12},
    )
    return name


@flow(log_prints=True)
def publish_report(name: str, pages: int) -> None:
    print(f"publishing report {name} ({pages} pages)")


if __name__ == "__main__":
    serve(
        build_report.to_deployment(name="nightly"),
        publish_report.to_deployment(
            name="on-report-ready",
            triggers=[
                DeploymentEventTrigger(
                    expect={"acme.report.ready"},
                    match={"tideflow.resource.id": "acme.report.*"},
                    parameters={
                        "name": "{{ event.resource['tideflow.resource.name'] }}",
                        "pages": "{{ event.payload.pages }}",
                    },
                )
            ],
        ),
    )
