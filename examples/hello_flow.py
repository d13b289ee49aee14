"""A first flow: run `python examples/hello_flow.py`.

With no TIDEFLOW_API_URL set, tideflow starts a local server in the background (SQLite in
~/.tideflow) and the run, its states and its logs are recorded there: see them with
`tideflow flow-run ls` or in the UI at http://127.0.0.1:4200.
"""

from tideflow import flow, get_run_logger


@flow(log_prints=True)
def hello_flow(name: str = "world") -> str:
    """Greet someone; the print and the log line both land in the run's logs."""
    logger = get_run_logger()
    logger.info("Preparing a greeting for %s", name)
    print(f"Hello, {name}!")
    return f"greeted {name}"


if __name__ == "__main__":
    result = hello_flow("tideflow")
    print(f"hello-flow finished: {result}")
