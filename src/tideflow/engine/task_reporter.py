"""Reporting task runs to the API in batches from a background thread (docs/adr/0002).

A task run's engine enqueues each state it enters (O(1), no I/O); every ``logs_batch_interval`` the
thread groups what is queued by task run and sends one report per run with its new states. Flow runs
flush it when they end, and the process at exit. While the API is down the queue keeps at most
``logs_max_buffer`` state changes (oldest dropped, counted in one warning line), as run logs do.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from typing import Any

from tideflow.engine.log_worker import LogWorker, register_flush
from tideflow.engine.parameters import jsonable_parameters
from tideflow.schemas import State
from tideflow.schemas.states import state_json

__all__ = ["TaskRunReporter", "task_run_reporter"]

_MAX_PARAMETER_CHARS = 2000  # a parameter's JSON beyond this is reported as a short summary


def _summary(parameters: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in jsonable_parameters(parameters).items():
        text = json.dumps(value, default=repr)
        if len(text) > _MAX_PARAMETER_CHARS:
            value = (
                f"<{type(parameters[name]).__name__}: {len(text):,} characters of JSON, not sent>"
            )
        out[name] = value
    return out


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class TaskRunReporter(LogWorker[tuple[Any, State]]):
    """Queues ``(task run, state)`` pairs for one API and reports them in batches."""

    noun = "task-run state reports"
    buffer_name = "task-run report buffer"

    def _size(self, item: tuple[Any, State]) -> int:
        run, state = item
        # A report carries each parameter as at most ~_MAX_PARAMETER_CHARS of JSON.
        return 500 + len(state.message or "") + (_MAX_PARAMETER_CHARS + 100) * len(run.parameters)

    def _send(self, batch: list[tuple[Any, State]]) -> None:
        by_run: dict[Any, tuple[Any, list[State]]] = {}
        for run, state in batch:
            by_run.setdefault(run.id, (run, []))[1].append(state)
        # Plain JSON-ready dicts (the wire form of TaskRunReport): building and validating models
        # here would cost this thread, and so the flow's threads through the GIL, ~3x more.
        reports = [
            {
                "id": str(run.id),
                "flow_run_id": str(run.flow_run_id) if run.flow_run_id else None,
                "name": run.name,
                "task_name": run.task_name,
                "tags": run.tags,
                "parameters": _summary(run.parameters),
                "task_inputs": {k: [str(u) for u in v] for k, v in run.task_inputs.items()},
                "run_count": run.run_count,
                "start_time": _iso(run.start_time),
                "end_time": _iso(run.end_time),
                "result_location": run.result_location,
                "states": [state_json(state) for state in states],
            }
            for run, states in by_run.values()
        ]
        self._http().report_task_runs(reports)


_reporters: dict[str, TaskRunReporter] = {}
_lock = threading.Lock()


def task_run_reporter(api_url: str, *, interval: float, max_buffer: int) -> TaskRunReporter:
    """The process's reporter for ``api_url`` (created on first use)."""
    reporter = _reporters.get(api_url)
    if reporter is not None:
        return reporter
    with _lock:
        reporter = _reporters.get(api_url)
        if reporter is None:
            reporter = _reporters[api_url] = TaskRunReporter(
                api_url, interval=interval, max_buffer=max_buffer
            )
            register_flush(reporter)
        return reporter


def _forget_after_fork() -> None:
    # As the log workers: a forked process reports its own task runs with a fresh reporter.
    global _lock
    _lock = threading.Lock()
    _reporters.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
