"""Run logs: ``get_run_logger()``, the handlers that send records to the API and to the console, and
``log_prints`` capture of ``print()``.

The run logger is the standard ``logging.Logger`` named ``tideflow.flow_runs``. Which run a record
belongs to is read from the run context when it is emitted, so one logger serves every run.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from tideflow._redaction import has_secrets, redact
from tideflow.engine.context import FlowRunContext, current_run, current_task_run
from tideflow.engine.errors import MissingRunContext
from tideflow.engine.log_worker import log_worker
from tideflow.schemas import LogCreate
from tideflow.settings import get_settings

__all__ = [
    "RUN_LOGGER_NAME",
    "configure_run_logging",
    "disable_run_logger",
    "get_run_logger",
    "install_print_capture",
]

RUN_LOGGER_NAME = "tideflow.flow_runs"
_CONSOLE_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s - %(message)s"
_PLAIN = logging.Formatter("%(message)s")

_configured = False
_lock = threading.Lock()
_original_print = builtins.print
_disabled: ContextVar[bool] = ContextVar("tideflow_run_logger_disabled", default=False)
_NULL_LOGGER_NAME = "tideflow.null"


class _RunFilter(logging.Filter):
    """Stamps each record with the run it was emitted in."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = current_run()
        if not hasattr(record, "flow_run_name"):
            record.flow_run_name = ctx.flow_run.name if ctx else None
            record.flow_run_id = ctx.flow_run.id if ctx else None
        if not hasattr(record, "run_label"):
            task = current_task_run()
            record.task_run_id = task.task_run.id if task else None
            record.run_label = (
                f"Task run {task.task_run.name!r}" if task else f"Flow run {record.flow_run_name!r}"
            )
        return True


class _RedactFilter(logging.Filter):
    """Masks secret values this process read (``Secret.get``) in the message and the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not has_secrets():
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(_PLAIN.formatException(record.exc_info))
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (tests and tools replace it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def filter(self, record: logging.LogRecord) -> bool:
        # print() output captured by log_prints was already printed to the terminal by print itself.
        return not getattr(record, "tideflow_print", False) and super().filter(record)


class _APIHandler(logging.Handler):
    """Queues each record of a run for the run's API (sent by the background log worker)."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "tideflow_console_only", False):
            return
        ctx = current_run()
        if ctx is None:
            self._emit_for_task_run(record)
            return
        try:
            log = LogCreate.model_construct(
                flow_run_id=ctx.flow_run.id,
                task_run_id=getattr(record, "task_run_id", None),
                name=record.name,
                level=record.levelno,
                message=_PLAIN.format(record),
                timestamp=dt.datetime.fromtimestamp(record.created, dt.UTC),
            )
            settings = ctx.settings
            worker = log_worker(
                ctx.api_url,
                interval=settings.logs_batch_interval,
                max_buffer=settings.logs_max_buffer,
            )
            worker.enqueue(log)
            ctx.api_logs += 1
        except Exception:
            self.handleError(record)

    def _emit_for_task_run(self, record: logging.LogRecord) -> None:
        # A task run outside any flow run (a task worker's background run) logs to the task run;
        # one whose states are not reported (a plain call outside a flow) keeps its logs local.
        task_ctx = current_task_run()
        reporter = getattr(task_ctx.task_run, "reporter", None) if task_ctx else None
        if task_ctx is None or reporter is None:
            return
        try:
            log = LogCreate.model_construct(
                flow_run_id=None,
                task_run_id=task_ctx.task_run.id,
                name=record.name,
                level=record.levelno,
                message=_PLAIN.format(record),
                timestamp=dt.datetime.fromtimestamp(record.created, dt.UTC),
            )
            settings = get_settings()
            worker = log_worker(
                reporter.api_url,
                interval=settings.logs_batch_interval,
                max_buffer=settings.logs_max_buffer,
            )
            worker.enqueue(log)
        except Exception:
            self.handleError(record)


def configure_run_logging(level: str) -> logging.Logger:
    """Set up the run logger once per process (handlers) and its level (every top-level run)."""
    global _configured
    logger = logging.getLogger(RUN_LOGGER_NAME)
    if not _configured:
        with _lock:
            if not _configured:
                console = _StderrHandler()
                console.setFormatter(logging.Formatter(_CONSOLE_FORMAT, datefmt="%H:%M:%S"))
                logger.addFilter(_RunFilter())
                logger.addFilter(_RedactFilter())
                logger.addHandler(console)
                logger.addHandler(_APIHandler())
                logger.propagate = False
                warn = logging.getLogger("tideflow.logs")
                warn.addHandler(_StderrHandler())
                warn.propagate = False
                _configured = True
    logger.setLevel(level)
    return logger


@contextmanager
def disable_run_logger() -> Iterator[None]:
    """Within the block, ``get_run_logger()`` answers a logger that drops every record, inside a run
    or not: a task's or flow's function can be tested with ``.fn()`` without a run."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


def _null_logger() -> logging.Logger:
    logger = logging.getLogger(_NULL_LOGGER_NAME)
    logger.disabled = True
    logger.propagate = False
    return logger


def get_run_logger() -> logging.Logger:
    """The logger of the current flow run: its records go to the run's logs and to the console."""
    if _disabled.get():
        return _null_logger()
    if current_run() is None and current_task_run() is None:
        raise MissingRunContext(
            "get_run_logger() was called outside a flow run; call it inside a function decorated "
            "with @flow (or @task)"
        )
    return logging.getLogger(RUN_LOGGER_NAME)


def _capturing_print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)
    ctx: FlowRunContext | None = current_run()
    task_ctx = current_task_run()
    if (ctx is None and task_ctx is None) or (file is not None and file is not sys.stdout):
        return
    own = task_ctx.task.log_prints if task_ctx is not None else None
    if not (own if own is not None else (ctx is not None and ctx.log_prints)):
        return
    text = (" " if sep is None else sep).join(str(a) for a in args)
    logging.getLogger(RUN_LOGGER_NAME).info(text, extra={"tideflow_print": True})


def install_print_capture() -> None:
    """Route ``print()`` in runs with ``log_prints`` to the run's logs too (installed once, on first need)."""
    if builtins.print is not _capturing_print:
        builtins.print = _capturing_print
