"""Serve an ETL flow as two deployments: `python examples/serve_etl.py`.

`nightly` runs every day at 02:00 (UTC); `on-demand` runs when asked, with `limit` defaulting to 10.
In another terminal:

    tideflow deployment ls
    tideflow deployment run etl/on-demand --param limit=5 --watch
    tideflow deployment run etl/on-demand --params '{"source": "s3://x"}' --start-in 10m
    tideflow deployment pause etl/nightly ; tideflow deployment resume etl/nightly
    tideflow flow-run cancel <id>

Each run executes in its own process, started within milliseconds of being created. Stop serving
with Ctrl-C: running runs get a grace period (TIDEFLOW_RUNNER_CANCEL_GRACE) to finish.
"""

from tideflow import flow, serve


@flow(log_prints=True)
def etl(source: str = "s3://bucket/raw", limit: int = 100):
    print(f"loading {limit} rows from {source}")


if __name__ == "__main__":
    serve(
        etl.to_deployment(name="nightly", cron="0 2 * * *", tags=["etl"]),
        etl.to_deployment(name="on-demand", parameters={"limit": 10}),
    )
