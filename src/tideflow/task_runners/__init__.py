"""Task runners: where a flow's submitted task runs execute. ``ThreadPoolTaskRunner`` (the default)
runs them in threads of the flow's process, ``ProcessPoolTaskRunner`` in worker processes, and
``tideflow.task_runners.dask.DaskTaskRunner`` (extra ``tideflow[dask]``) on a Dask cluster.

A flow takes one as ``@flow(task_runner=...)``; each call of the flow gets a fresh copy
(``duplicate()``), started on the first ``.submit()``/``.map()`` and shut down — after every task
run it started has finished — before the flow run reaches its final state.
"""

from tideflow.task_runners._base import TaskRunner, ThreadPoolTaskRunner
from tideflow.task_runners._processes import ProcessPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
