"""``from tideflow_dask.task_runners import DaskTaskRunner`` (see ``tideflow_dask``)."""

from tideflow.task_runners.dask import DaskTaskRunner

__all__ = ["DaskTaskRunner"]
