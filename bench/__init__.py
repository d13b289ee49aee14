"""tideflow's benchmark suite: ``python -m bench [NAME ...] [--quick] [--json] [--vs prefect]``.

Each benchmark module starts its own servers on free loopback ports with a temporary
TIDEFLOW_HOME, measures, cleans up and returns figures (see ``bench._stats.Figure``). The Prefect
peer lives in ``bench/peers/prefect/`` and runs in its own virtualenv as subprocesses.
"""

__all__: list[str] = []
