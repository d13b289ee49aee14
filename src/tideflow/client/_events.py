"""The events websockets, client side: the SDK's sending worker and the live stream reader.

``EventWorker`` (one per process, made by ``event_worker()``, its thread started on the first event)
sends buffered events over ``/api/events/in`` in batches, a few batches in flight, and forgets an
event only when the server acknowledged it (after its commit). Events not yet acknowledged when the
connection breaks are sent again after reconnecting; the server drops duplicates by id. The buffer
is bounded (``events_client_buffer``, counting the events in flight). When it is full while the
server is reachable (a burst, or a server that answers later because it is behind), ``enqueue``
waits for room, up to ``events_client_wait`` seconds: backpressure on the emitter, so a burst far
larger than the buffer loses nothing. When the server is unreachable, or the wait ran out (then no
emitter waits again until room frees), the oldest event not yet sent is dropped (the new one when
all held events are with the server), one warning later says how many, and the next send carries
one ``tideflow.events.dropped`` event (resource ``tideflow.process.<hostname>.<pid>``, payload
``{"count", "since"}``) so the loss shows in the feed. ``websockets`` is imported in the thread,
never at ``import tideflow``.

At interpreter exit the worker waits (bounded) for its events to be acknowledged; the ones that
were not are written to the event spool (``client._spool``, bounded by ``events_spool_max_bytes``)
with one line on stderr saying how many and where, and the next process that sends events delivers
the spool in a background thread once it is connected.

``stream_events`` reads ``/api/events/out`` (a filter and a backfill, then live frames).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tideflow.client._auth import auth_headers
from tideflow.client._local import resolve_api_url
from tideflow.client._spool import Spool
from tideflow.exceptions import ServerUnreachable
from tideflow.schemas.events import Event, EventFilter
from tideflow.settings import Settings, get_settings

__all__ = [
    "DROPPED_EVENT",
    "EventWorker",
    "drop_report",
    "event_worker",
    "flush_events",
    "spool_for",
    "spool_unsent_events",
    "stream_events",
    "ws_url",
]

DROPPED_EVENT = "tideflow.events.dropped"

_BATCH = 500  # events per frame
# ... and at most this much JSON per frame (characters ~ bytes), well under the server's request
# limit (TIDEFLOW_SERVER_MAX_REQUEST_BYTES, 16 MiB by default): a larger frame would be refused.
_FRAME_BYTES = 4 * 2**20
# Frames sent before waiting for the oldest one's ack: enough for the server to store the next
# frames in one transaction while it answers the previous ones.
_IN_FLIGHT = 8
# Seconds without an ack before the connection is taken as dead. Long: the server delays acks on
# purpose while its trigger engine catches up (backpressure); a dead peer is found sooner by the
# connection's keepalive pings.
_ACK_TIMEOUT = 300.0
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
_EXIT_FLUSH = 5.0
_SPOOL_ATTEMPTS = 3  # connections a process spends delivering the spool before leaving it
_SPOOL_DIR = "spool"

warn_logger = logging.getLogger("tideflow.events")


def ws_url(api_url: str, path: str) -> str:
    """``http://host/api`` + ``/events/in`` -> ``ws://host/api/events/in``."""
    base = api_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + path


def drop_report(count: int, since: dt.datetime) -> Event:
    """The ``tideflow.events.dropped`` event saying this process dropped ``count`` events since
    ``since``."""
    host, pid = socket.gethostname(), os.getpid()
    return Event.model_validate(
        {
            "event": DROPPED_EVENT,
            "resource": {
                "tideflow.resource.id": f"tideflow.process.{host}.{pid}",
                "tideflow.resource.name": f"{host}:{pid}",
            },
            "payload": {"count": count, "since": since.isoformat()},
        }
    )


class EventWorker:
    """Buffers events and sends them from one daemon thread; see the module docstring."""

    def __init__(self, *, max_buffer: int, max_payload_bytes: int = 1_000_000,
                 api_url: str | None = None, settings: Settings | None = None,
                 spool: Spool | None = None, max_wait: float = 0.0) -> None:  # fmt: skip
        self.max_buffer = max_buffer
        self.max_wait = max_wait  # seconds enqueue waits for room while the server is reachable
        self._stalled = False  # a wait for room ran out: drop, do not wait, until room frees
        self.max_payload_bytes = max_payload_bytes  # read once: settings cost ~1 ms to build
        self._api_url = api_url
        self._settings = settings
        self.spool = spool
        self._spool_thread: threading.Thread | None = None
        self._spool_stop = threading.Event()
        self.spool_delivered = 0  # events of earlier processes' spool files acknowledged here
        self._buffer: deque[Event] = deque()  # not sent on the current connection
        self._in_flight: deque[list[Event]] = deque()  # sent, awaiting their ack, oldest first
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._dropped = 0  # dropped and not yet reported
        # Dropped and not yet reported to the server (a report not yet acknowledged is buffered).
        self._unsent_drops = 0
        self._first_drop: dt.datetime | None = None
        self._reports: set[Any] = set()  # ids of buffered drop reports
        self._retry = threading.Event()  # ends a back-off early
        self.connected = False
        self.failures = 0  # consecutive failed connection attempts
        self.delivered = 0
        self.refused = 0

    # --- producer side -------------------------------------------------------------------------
    def enqueue(self, event: Event) -> None:
        """Buffer one event; when the buffer is full and the server reachable, wait for room (at
        most ``max_wait`` s), else drop the oldest unsent event."""
        with self._cond:
            if self._unacked() >= self.max_buffer and self._may_wait():
                room = self._cond.wait_for(
                    lambda: self._unacked() < self.max_buffer or not self._may_wait(),
                    timeout=self.max_wait,
                )
                if not room:
                    self._stalled = True
            if self._unacked() < self.max_buffer:
                self._stalled = False
                self._buffer.append(event)
            elif self._buffer:
                self._buffer.append(event)
                self._drop(self._buffer.popleft())
            else:
                # Everything held is with the server, which acknowledges it or gets it again on
                # the next connection: dropping any of it could count as lost an event it stores.
                self._drop(event)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="tideflow-event-worker", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _may_wait(self) -> bool:
        # Backpressure only towards a server that is there: never during an outage (a flow must
        # not stall on it), never from this worker's own threads, never after a wait ran out.
        offline = self.failures > 0 and not self.connected
        return (
            self.max_wait > 0
            and not self._stalled
            and not offline
            and self._thread is not None
            and self._thread.is_alive()
            and threading.current_thread() not in (self._thread, self._spool_thread)
        )

    def _unacked(self) -> int:
        return len(self._buffer) + sum(len(b) for b in self._in_flight)

    def _drop(self, lost: Event) -> None:
        # Only events never sent on the live connection are dropped, so the count is exact.
        if lost.id in self._reports:
            # A dropped drop report: its count goes into the next report, nothing is lost.
            self._reports.discard(lost.id)
            self._note_drops(int(lost.payload["count"]),
                             dt.datetime.fromisoformat(lost.payload["since"]))  # fmt: skip
            return
        self._dropped += 1
        self._note_drops(1, dt.datetime.now(dt.UTC))

    def _note_drops(self, count: int, since: dt.datetime) -> None:
        self._unsent_drops += count
        if self._first_drop is None or since < self._first_drop:
            self._first_drop = since

    def _queue_drop_report(self) -> None:
        # caller holds self._cond; the report goes first so the next frame carries it
        if not self._unsent_drops or self._first_drop is None:
            return
        report = drop_report(self._unsent_drops, self._first_drop)
        self._reports.add(report.id)
        self._buffer.appendleft(report)
        self._unsent_drops = 0
        self._first_drop = None

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the server."""
        with self._cond:
            return self._unacked()

    def flush(self, timeout: float = 5.0, *, wait_offline: bool = False) -> bool:
        """Wait up to ``timeout`` s until every buffered event was acknowledged; True if so.

        While the server is known to be unreachable it returns at once (a flow never waits on an
        outage; the events stay buffered for the next connection) unless ``wait_offline``, which
        also retries the connection now instead of at the end of the back-off.
        """
        deadline = time.monotonic() + timeout
        if wait_offline:
            self._retry.set()
        with self._cond:
            while self._unacked():
                offline = self.failures and not self.connected
                if self._thread is None or (offline and not wait_offline):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            self._report_drops()
            return not self._unacked()

    # --- the thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        self._start_spool_delivery()
        attempt = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._buffer or self._in_flight))
            try:
                self._session()
                attempt = 0
            except Exception as exc:  # any failure: reconnect later, keep every unacked event
                with self._cond:
                    self.connected = False
                    self.failures += 1
                    # Frames never acknowledged go back in front, in their order.
                    for batch in reversed(self._in_flight):
                        self._buffer.extendleft(reversed(batch))
                    self._in_flight.clear()
                    self._cond.notify_all()
                if attempt == 0:
                    warn_logger.debug("tideflow: event connection failed: %s: %s",
                                      type(exc).__name__, exc)  # fmt: skip
                self._retry.wait(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
                self._retry.clear()
                attempt += 1

    def _resolve(self) -> str:
        if self._api_url is None:
            self._api_url = resolve_api_url(self._settings or get_settings())
        return self._api_url

    def _session(self) -> None:
        from websockets.sync.client import connect  # lazy: keeps ``import tideflow`` light

        # No compression: deflating each frame cost both ends more CPU per event than it saved.
        with connect(ws_url(self._resolve(), "/events/in"), open_timeout=5, close_timeout=1,
                     max_size=None, compression=None,
                     additional_headers=auth_headers(self._settings)) as ws:  # fmt: skip
            with self._cond:
                self.connected = True
                self.failures = 0
                self._cond.notify_all()
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: bool(self._buffer or self._in_flight))
                    self._queue_drop_report()
                    frames = []
                    while self._buffer and len(self._in_flight) < _IN_FLIGHT:
                        batch = [self._buffer.popleft()
                                 for _ in range(min(_BATCH, len(self._buffer)))]  # fmt: skip
                        self._in_flight.append(batch)
                        frames.append(batch)
                for batch in frames:
                    # pydantic's own JSON per event: a fraction of model_dump + json.dumps' cost.
                    encoded = [e.model_dump_json() for e in batch]
                    for frame in self._split_frame(batch, encoded):
                        ws.send(frame)
                answer = json.loads(ws.recv(timeout=_ACK_TIMEOUT))
                self._acked(answer)

    def _split_frame(self, batch: list[Event], encoded: list[str]) -> list[str]:
        """The frame(s) for ``batch``: one, unless its JSON passes _FRAME_BYTES (the server refuses
        large frames); then the in-flight entry is split in place so acks still match in order."""
        frames: list[str] = []
        chunks: list[list[Event]] = []
        size, start = 0, 0
        for i, text in enumerate(encoded):
            if i > start and size + len(text) > _FRAME_BYTES:
                frames.append("[" + ",".join(encoded[start:i]) + "]")
                chunks.append(batch[start:i])
                size, start = 0, i
            size += len(text) + 1
        frames.append("[" + ",".join(encoded[start:]) + "]")
        if len(frames) > 1:
            chunks.append(batch[start:])
            with self._cond:
                position = next(i for i, b in enumerate(self._in_flight) if b is batch)
                self._in_flight.rotate(-position)
                self._in_flight.popleft()
                self._in_flight.extendleft(reversed(chunks))
                self._in_flight.rotate(position)
        return frames

    def _acked(self, answer: dict[str, Any]) -> None:
        refused = answer.get("refused") or []
        with self._cond:
            if self._in_flight:
                self._reports.difference_update(e.id for e in self._in_flight.popleft())
            self.delivered += len(answer.get("ack") or [])
            self.refused += len(refused)
            self._cond.notify_all()
        if refused:
            first = refused[0]
            warn_logger.warning(
                "tideflow: the API refused %d event(s); first: %s (event id %s)",
                len(refused), first.get("reason"), first.get("id"),
            )  # fmt: skip

    # --- the spool: events left by earlier processes, and this one's at exit ---------------------
    def _start_spool_delivery(self) -> None:
        # In the worker's thread, never on enqueue's path: a directory listing only.
        if self.spool is not None and self.spool.pending():
            self._spool_thread = threading.Thread(
                target=self._deliver_spool, name="tideflow-spool-delivery", daemon=True
            )
            self._spool_thread.start()

    def _deliver_spool(self) -> None:
        assert self.spool is not None
        for attempt in range(_SPOOL_ATTEMPTS):
            # Only once this process's own connection works: no second URL resolution or
            # auto-start, and nothing to do while the server is down.
            with self._cond:
                self._cond.wait_for(lambda: self.connected or self._spool_stop.is_set())
                api_url = self._api_url
            if self._spool_stop.is_set() or api_url is None:
                return
            result = self.spool.deliver(
                api_url, ws_url(api_url, "/events/in"), stop=self._spool_stop
            )
            self.spool_delivered += result.events
            if result.refused:
                first = result.refusals[0] if result.refusals else {}
                warn_logger.warning(
                    "tideflow: the API refused %d spooled event(s); first: %s (event id %s)",
                    result.refused, first.get("reason"), first.get("id"),
                )  # fmt: skip
            if result.error is None:
                return
            warn_logger.debug("tideflow: spool delivery stopped: %s", result.error)
            self._spool_stop.wait(_BACKOFF[min(attempt + 2, len(_BACKOFF) - 1)])

    def stop_spool_delivery(self, timeout: float) -> None:
        """Let a running spool delivery go on for up to ``timeout`` s, then stop it (what it did
        not send is spooled again)."""
        thread = self._spool_thread
        if thread is None:
            return
        thread.join(timeout)
        self._spool_stop.set()
        with self._cond:
            self._cond.notify_all()
        thread.join(1.0)

    def spool_unsent(self) -> None:
        """Write the events not acknowledged to the spool and say so on stderr (at exit)."""
        with self._cond:
            self._queue_drop_report()
            events = [e for batch in self._in_flight for e in batch] + list(self._buffer)
            reports = {e.id for e in events if e.id in self._reports}
            offline = not self.connected
            # Handed over: nothing is spooled twice if this runs again (fork + atexit).
            self._in_flight.clear()
            self._buffer.clear()
        if not events:
            return
        url = self._api_url or (self._settings or get_settings()).resolved_api_url
        why = (
            f"the server at {url} was unreachable"
            if offline
            else f"the server at {url} did not acknowledge them within {_EXIT_FLUSH:g} s"
        )
        spool = self.spool
        if spool is None or spool.max_bytes == 0:
            warn_logger.warning("tideflow: %s; %d event(s) were lost (the event spool is off: "
                                "TIDEFLOW_EVENTS_SPOOL_MAX_BYTES=0)", why, len(events))  # fmt: skip
            return
        try:
            path, kept, dropped = _write_spool(spool, events, reports, url)
        except OSError as exc:
            warn_logger.warning("tideflow: %s; %d event(s) were lost: they could not be saved to "
                                "%s: %s", why, len(events), spool.directory, exc)  # fmt: skip
            return
        if dropped:
            warn_logger.warning(
                "tideflow: the event spool %s is limited to %d bytes "
                "(TIDEFLOW_EVENTS_SPOOL_MAX_BYTES): dropped %d event(s), the oldest first; a %s "
                "event reports them", spool.directory, spool.max_bytes, dropped, DROPPED_EVENT,
            )  # fmt: skip
        if kept:
            saved = "1 event was" if kept == 1 else f"{kept} events were"
            warn_logger.warning("tideflow: %s; %s saved to %s and will be sent by the next "
                                "tideflow process", why, saved, path)  # fmt: skip

    def _report_drops(self) -> None:
        # caller holds self._cond
        if self._dropped:
            warn_logger.warning(
                "tideflow: dropped %d event(s): the event buffer (events_client_buffer=%d) was "
                "full while the API was slow or unreachable",
                self._dropped,
                self.max_buffer,
            )
            self._dropped = 0


def spool_for(settings: Settings) -> Spool:
    """The event spool of ``settings.home`` (``$TIDEFLOW_HOME/spool``)."""
    return Spool(settings.home / _SPOOL_DIR, settings.events_spool_max_bytes)


def _weigh(line: str) -> tuple[int, dt.datetime] | None:
    """The (count, since) of a spooled drop report; None for any other event."""
    if DROPPED_EVENT not in line:  # most lines: no JSON parsing
        return None
    try:
        data = json.loads(line)
        if data.get("event") != DROPPED_EVENT:
            return None
        payload = data["payload"]
        return int(payload["count"]), dt.datetime.fromisoformat(payload["since"])
    except (ValueError, KeyError, TypeError):
        return None


def _write_spool(
    spool: Spool, events: list[Event], reports: set[Any], api_url: str
) -> tuple[Path, int, int]:
    """Write ``events`` (oldest first; ``reports`` are the ids of drop reports among them) to the
    spool within its bound; (file, events saved, events dropped now to stay within it).

    The drop report saved with them also counts the losses earlier reports that were dropped had
    counted, so the feed's total stays exact."""
    lines = [e.model_dump_json() for e in events]
    # Room for the drop report this may have to add (its count has at most 19 digits).
    reserve = len(drop_report(10**18, dt.datetime.now(dt.UTC)).model_dump_json().encode()) + 1
    size = spool.size_of(lines, api_url)
    # ``since`` is when the first of the losses happened: now, or earlier for a dropped report's.
    dropped, fresh, since, first = 0, 0, dt.datetime.now(dt.UTC), 0
    while size + reserve > spool.max_bytes and first < len(events):
        # Alone over the limit: this process's oldest events go first.
        lost = events[first]
        if lost.id in reports:
            count, when = (
                int(lost.payload["count"]),
                dt.datetime.fromisoformat(lost.payload["since"]),
            )
        else:
            count, when = 1, since
            fresh += 1
        dropped += count
        since = min(since, when)
        size -= len(lines[first].encode()) + 1
        first += 1
    events, lines = events[first:], lines[first:]
    # Then older spool files, whole, oldest first.
    evicted = spool.make_room(size + reserve, _weigh)
    dropped += evicted.events
    fresh += evicted.plain
    if evicted.since is not None:
        since = min(since, evicted.since)
    if dropped:
        lines.insert(0, drop_report(dropped, since).model_dump_json())
    path = spool.write(lines, api_url)
    return path, sum(1 for e in events if e.id not in reports), fresh


_worker: EventWorker | None = None
_worker_key: str | None = None  # the TIDEFLOW_API_URL the worker was made under
_retired: list[EventWorker] = []  # earlier workers still delivering to their own server
_worker_lock = threading.Lock()


def event_worker() -> EventWorker:
    """The process's event worker (created on first use; flushed at interpreter exit).

    A process that points ``TIDEFLOW_API_URL`` somewhere else gets a new worker for the new server
    (an environment lookup per event, no settings build); the old one finishes delivering to its
    own server."""
    global _worker, _worker_key
    key = os.environ.get("TIDEFLOW_API_URL")
    worker = _worker
    if worker is not None and key == _worker_key:
        return worker
    with _worker_lock:
        if _worker is None or key != _worker_key:
            settings = get_settings()
            if _worker is None:
                atexit.register(_at_exit)
            else:
                _retired.append(_worker)
            _worker = EventWorker(
                max_buffer=settings.events_client_buffer,
                max_payload_bytes=settings.events_max_payload_bytes,
                settings=settings,
                spool=spool_for(settings),
                max_wait=settings.events_client_wait,
            )
            _worker_key = key
        return _worker


def _forget_after_fork() -> None:
    # A forked process starts with no worker: the parent's thread does not exist here, its buffer
    # and in-flight frames are the parent's to deliver, and its connection is the parent's socket.
    global _worker, _worker_lock, _retired
    _worker, _worker_lock, _retired = None, threading.Lock(), []


os.register_at_fork(after_in_child=_forget_after_fork)


def _workers() -> list[EventWorker]:
    return [*_retired, *([_worker] if _worker is not None else [])]


def _at_exit() -> None:
    # Bounded: the process's own events get up to _EXIT_FLUSH s, a spool delivery under way the
    # rest of it; what is still unacknowledged then goes to the spool.
    workers = _workers()
    if not workers:
        return
    deadline = time.monotonic() + _EXIT_FLUSH
    for worker in workers:
        worker.flush(max(deadline - time.monotonic(), 0.0), wait_offline=True)
    for worker in workers:
        worker.stop_spool_delivery(max(deadline - time.monotonic(), 0.0))
        worker.spool_unsent()


def spool_unsent_events() -> None:
    """Spool what is still unacknowledged now (a process about to leave through ``os._exit``,
    which skips atexit: a run forked by ``serve()``, after its flow run flushed its events)."""
    for worker in _workers():
        worker.spool_unsent()


def flush_events(timeout: float = 5.0, *, wait_offline: bool = False) -> bool:
    """Wait (bounded) until this process's emitted events were acknowledged; True when none wait.
    Called at the end of every flow run and at interpreter exit (see ``EventWorker.flush``)."""
    worker = _worker  # a retired worker's events are for its own server: flushed at exit
    return worker.flush(timeout, wait_offline=wait_offline) if worker is not None else True


def stream_events(
    api_url: str, flt: EventFilter | None = None, *, backfill_minutes: float = 0
) -> Iterator[dict[str, Any]]:
    """Frames from ``/api/events/out``: ``{"type": "event", "event"}`` or ``{"type": "dropped",
    "count"}``; raises ServerUnreachable when it cannot connect, ValueError on a refused request."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
    from websockets.sync.client import connect

    request = {"filter": (flt or EventFilter()).model_dump(mode="json", exclude_none=True),
               "backfill_minutes": backfill_minutes}  # fmt: skip
    try:
        ws = connect(
            ws_url(api_url, "/events/out"),
            open_timeout=10,
            max_size=None,
            additional_headers=auth_headers(),
        )
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise ServerUnreachable(api_url, type(exc).__name__) from None
    with ws:
        ws.send(json.dumps(request))
        while True:
            try:
                frame = json.loads(ws.recv())
            except ConnectionClosed:
                return
            if frame.get("type") == "error":
                raise ValueError(str(frame.get("detail")))
            yield frame
