"""Put an ETL flow in a work pool: `python examples/deploy_etl.py` (after `tideflow work-pool create
local --type process`).

The deployment's code is this folder (a git URL or `GitRepository(url, branch=, commit=)` works the
same way): a worker pulls it before each run, and runs it with the pool's job variables merged with
the deployment's and the run's. Start a worker (on any machine that reaches the API and sees this
folder) and run it:

    tideflow worker start --pool local --limit 4
    tideflow deployment run etl/nightly --job-variable env='{"MODE": "full"}' --watch
"""

import os
from pathlib import Path

from tideflow import flow
from tideflow.runtime import flow_run


@flow(log_prints=True)
def etl(limit: int = 100) -> int:
    print(f"run {flow_run.name}: loading {limit} rows in {os.environ.get('MODE', '?')} mode")
    return limit


if __name__ == "__main__":
    flow.from_source(Path(__file__).parent, entrypoint="deploy_etl.py:etl").deploy(
        name="nightly",
        work_pool_name="local",
        cron="0 2 * * *",
        parameters={"limit": 10},
        job_variables={"env": {"MODE": "incremental"}},
    )
