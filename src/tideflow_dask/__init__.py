"""``from tideflow_dask import DaskTaskRunner``: the Dask task runner under the name Prefect users
know from ``prefect_dask`` (it lives in ``tideflow.task_runners.dask``; extra ``tideflow[dask]``)."""

from tideflow.task_runners.dask import DaskTaskRunner

__all__ = ["DaskTaskRunner"]
