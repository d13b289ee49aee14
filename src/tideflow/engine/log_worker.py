"""Sending run logs to the API from a background thread, in batches, without ever blocking a flow.

One ``LogWorker`` per API URL and process. ``enqueue`` is O(1) under a lock; the thread sends what is
buffered every ``logs_batch_interval``. While the API is down or slow the buffer keeps at most
``logs_max_buffer`` records, dropping the oldest, and one warning line later says how many were lost.
``flush`` waits (bounded) for one send cycle; it runs when a run ends and at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from typing import Any, Generic, TypeVar

from tideflow.client import SyncClient
from tideflow.exceptions import ServerError, ServerUnreachable
from tideflow.schemas import LogCreate

__all__ = ["LogWorker", "flush_all", "log_worker", "register_flush"]

_BATCH = 1000  # records per request
# ... and about this much per request at most: the server refuses bodies over its request limit
# (TIDEFLOW_SERVER_MAX_REQUEST_BYTES, 16 MiB by default), which would lose the whole batch.
_BATCH_BYTES = 4 * 2**20
_SEND_TIMEOUT = 5.0  # seconds one batch request may take

warn_logger = logging.getLogger("tideflow.logs")
T = TypeVar("T")


class LogWorker(Generic[T]):
    """Buffers run-log records for one API and sends them from a daemon thread.

    Subclasses send other items the same way by overriding ``_send`` and ``noun``.
    """

    noun = "run-log records"
    buffer_name = "log buffer"
    limit_name = "logs_max_buffer"

    def __init__(self, api_url: str, *, interval: float, max_buffer: int) -> None:
        self.api_url = api_url
        self.interval = interval
        self.max_buffer = max_buffer
        self._buffer: deque[T] = deque()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._started = 0  # send cycles begun
        self._completed = 0  # send cycles finished
        self._dropped = 0  # records dropped and not yet reported
        self._client: SyncClient | None = None
        self._thread: threading.Thread | None = None

    # --- producer side (the flow's thread) -------------------------------------------------------
    def enqueue(self, record: T) -> None:
        """Buffer one record; never blocks on the network."""
        with self._cond:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(record)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"tideflow-{type(self).__name__}", daemon=True
                )
                self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` s for one send cycle begun after this call; True when it finished."""
        with self._cond:
            if self._thread is None or (not self._buffer and self._started == self._completed):
                self._report_drops()
                return True
            target = self._started + 1
            self._wake.set()
            done = self._cond.wait_for(lambda: self._completed >= target, timeout)
            self._report_drops()
            return done

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    # --- the thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._cond:
                self._started += 1
            try:
                self._send_all()
            finally:
                with self._cond:
                    self._completed += 1
                    self._cond.notify_all()

    def _send_all(self) -> None:
        while True:
            with self._cond:
                batch: list[T] = []
                size = 0
                while self._buffer and len(batch) < _BATCH and size < _BATCH_BYTES:
                    item = self._buffer.popleft()
                    size += self._size(item)
                    batch.append(item)
            if not batch:
                return
            try:
                self._send(batch)
            except ServerUnreachable:
                self._requeue(batch)  # keep them for the next cycle
                return
            except ServerError as exc:
                if exc.status_code >= 500:
                    self._requeue(batch)
                    return
                warn_logger.warning(
                    "tideflow: the API refused %d %s: %s", len(batch), self.noun, exc.detail
                )
            except Exception as exc:  # never let the worker thread die
                warn_logger.warning(
                    "tideflow: sending %s failed: %s: %s", self.noun, type(exc).__name__, exc
                )
                return

    def _size(self, item: T) -> int:
        """About how many bytes ``item`` adds to a request (a log record: its message and ~200)."""
        return len(getattr(item, "message", "")) + 200

    def _send(self, batch: list[T]) -> None:
        self._http().create_logs(batch)  # type: ignore[arg-type]

    def _requeue(self, batch: list[T]) -> None:
        with self._cond:
            room = self.max_buffer - len(self._buffer)
            keep = batch[-room:] if room > 0 else []
            self._dropped += len(batch) - len(keep)
            self._buffer.extendleft(reversed(keep))

    def prepare(self) -> None:
        """Build the HTTP client now: a process that forks runs calls this so each run inherits it
        (building one costs tens of ms, paid after the run's final state when its logs flush)."""
        self._http()

    def _http(self) -> SyncClient:
        if self._client is None:
            self._client = SyncClient(self.api_url, timeout=_SEND_TIMEOUT)
        return self._client

    def _report_drops(self) -> None:
        # caller holds self._cond
        if self._dropped:
            warn_logger.warning(
                "tideflow: dropped %d %s: the %s (%s=%d) was full "
                "while the API at %s was slow or unreachable",
                self._dropped,
                self.noun,
                self.buffer_name,
                self.limit_name,
                self.max_buffer,
                self.api_url,
            )
            self._dropped = 0


_workers: dict[str, LogWorker[LogCreate]] = {}
_workers_lock = threading.Lock()
_others: list[LogWorker[Any]] = []  # workers of other items (task-run reports), flushed at exit too
_atexit_registered = False


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(flush_all)
        _atexit_registered = True


def register_flush(worker: LogWorker[Any]) -> None:
    """Flush ``worker`` at interpreter exit along with the log workers."""
    with _workers_lock:
        _register_atexit()
        _others.append(worker)


def log_worker(api_url: str, *, interval: float, max_buffer: int) -> LogWorker[LogCreate]:
    """The process's worker for ``api_url`` (created on first use)."""
    worker = _workers.get(api_url)
    if worker is not None:
        return worker
    with _workers_lock:
        worker = _workers.get(api_url)
        if worker is None:
            _register_atexit()
            worker = _workers[api_url] = LogWorker(
                api_url, interval=interval, max_buffer=max_buffer
            )
        return worker


def _forget_after_fork() -> None:
    # A forked flow-run process sends its own logs with fresh workers: the parent's threads do not
    # exist here, their buffered records are the parent's, their pooled connections the parent's
    # sockets (dropped, not closed), and a lock held at fork time would never be released.
    global _workers_lock
    _workers_lock = threading.Lock()
    _workers.clear()
    _others.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def flush_all(timeout: float = 5.0) -> None:
    """Flush every worker (bounded wait each): at interpreter exit."""
    for worker in [*_others, *_workers.values()]:
        worker.flush(timeout)
