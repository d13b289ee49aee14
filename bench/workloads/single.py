"""One served deployment of a trivial flow, for the start benchmark."""

from tideflow import flow


@flow
def single_flow() -> int:
    return 1


if __name__ == "__main__":
    single_flow.serve(name="single")
