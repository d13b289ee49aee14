"""The event spool: events a process could not deliver before it exited, kept on disk for the next.

At exit the event sender writes the events the server never acknowledged to one file,
``$TIDEFLOW_HOME/spool/events-<UTC time>-<pid>-<hex>.jsonl``: a header line naming the API URL they
were meant for, then one event (its JSON) per line. The file is written under a hidden temporary
name and renamed, so nobody ever reads half of one. The directory is bounded (``max_bytes``): to
make room the oldest files are dropped whole, and the caller is told exactly how many events went.

The next process that sends events to the same API URL delivers the files in a background thread.
It claims a file by renaming it (``<name>.claimed-<pid>-<host>``): a rename either succeeds for
exactly one process or fails, so two processes never send the same file. It sends the events over
``/api/events/in`` and deletes the file once every frame is answered. Stopped midway, it saves the
unanswered rest as a new spool file; killed midway, its claim is taken over by a later deliverer
once the claiming process is gone (same host) or after ``STALE_CLAIM`` seconds (another host). The
events keep their ids and the server drops duplicates, so a resend is stored once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tideflow._pidfile import pid_running
from tideflow.client._auth import auth_headers

__all__ = ["Delivered", "Evicted", "Spool"]

FORMAT = 1
STALE_CLAIM = 3600.0  # seconds after which a claim from another host is taken over
_PREFIX = "events-"
_SUFFIX = ".jsonl"
_CLAIMED = ".claimed-"
_BATCH = 500
_ACK_TIMEOUT = 300.0  # as the sender's: the server delays answers on purpose under backpressure

log = logging.getLogger("tideflow.events")

Report = tuple[int, dt.datetime]  # a drop report's count and since


@dataclass(frozen=True)
class Evicted:
    """Older spool files dropped to make room: the events they stood for (a drop report stands for
    those it counts), how many of those were events themselves, and the earliest ``since`` of the
    drop reports among them."""

    events: int = 0
    plain: int = 0
    files: int = 0
    since: dt.datetime | None = None


@dataclass
class Delivered:
    """What one ``Spool.deliver`` call did."""

    files: int = 0  # spool files fully answered and deleted
    events: int = 0  # events the server acknowledged
    refused: int = 0  # events the server (or the local JSON check) refused
    other_servers: int = 0  # files left alone: meant for another API URL
    error: str | None = None  # why delivery stopped early (the rest stays spooled)
    refusals: list[dict[str, Any]] = field(default_factory=list)


def _header(api_url: str) -> str:
    return json.dumps({"tideflow_spool": FORMAT, "api_url": api_url.rstrip("/")})


class Spool:
    """One spool directory, at most ``max_bytes`` of unclaimed files (0 turns spooling off)."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    # --- writing (at exit) -----------------------------------------------------------------------
    @staticmethod
    def size_of(lines: Sequence[str], api_url: str) -> int:
        """Bytes a file holding ``lines`` for ``api_url`` takes."""
        return len(_header(api_url).encode()) + 1 + sum(len(x.encode()) + 1 for x in lines)

    def make_room(
        self, needed: int, weigh: Callable[[str], Report | None] = lambda x: None
    ) -> Evicted:
        """Drop the oldest unclaimed files until ``needed`` more bytes fit within ``max_bytes``;
        ``weigh`` gives the (count, since) of a drop report line (None: the line is one event)."""
        files = [(path, size) for path, size in self._unclaimed()]
        total = sum(size for _, size in files)
        events = plain = dropped = 0
        since: dt.datetime | None = None
        for path, size in files:  # oldest first
            if total + needed <= self.max_bytes:
                break
            claimed = self._claim(path)
            total -= size
            if claimed is None:  # a deliverer took it: on its way out anyway
                continue
            with contextlib.suppress(OSError):
                with claimed.open(encoding="utf-8", errors="replace") as fh:
                    next(fh, None)  # the header
                    for line in filter(str.strip, fh):
                        report = weigh(line)
                        if report is None:
                            events += 1
                            plain += 1
                        else:
                            events += report[0]
                            since = report[1] if since is None else min(since, report[1])
                claimed.unlink()
                dropped += 1
        return Evicted(events=events, plain=plain, files=dropped, since=since)

    def write(self, lines: Sequence[str], api_url: str) -> Path:
        """Save ``lines`` (event JSON, oldest first) as a new spool file; its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{_PREFIX}{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}{_SUFFIX}"
        path = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(_header(api_url) + "\n")
                for line in lines:
                    fh.write(line + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return path

    # --- finding and claiming --------------------------------------------------------------------
    def _unclaimed(self) -> Iterator[tuple[Path, int]]:
        """Spool files nobody claimed, oldest first (the name starts with the UTC time)."""
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(_PREFIX) and entry.name.endswith(_SUFFIX):
                with contextlib.suppress(OSError):
                    yield Path(entry.path), entry.stat().st_size

    def _abandoned(self) -> Iterator[Path]:
        """Claimed files whose claimer is gone: dead on this host, or claimed long ago."""
        host = socket.gethostname()
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.name.startswith(_PREFIX) or _CLAIMED not in entry.name:
                continue
            owner = entry.name.rsplit(_CLAIMED, 1)[1]
            pid_text, _, owner_host = owner.partition("-")
            try:
                pid, age = int(pid_text), time.time() - entry.stat().st_mtime
            except (ValueError, OSError):
                continue
            if age > STALE_CLAIM or (
                owner_host == host and pid != os.getpid() and not pid_running(pid)
            ):
                yield Path(entry.path)

    def pending(self) -> bool:
        """True when some spool file (or abandoned claim) waits for delivery."""
        return (
            next(self._unclaimed(), None) is not None or next(self._abandoned(), None) is not None
        )

    def _claim(self, path: Path) -> Path | None:
        original = path.name.split(_CLAIMED, 1)[0]
        target = path.with_name(f"{original}{_CLAIMED}{os.getpid()}-{socket.gethostname()}")
        try:
            os.rename(path, target)  # atomic: exactly one claimer wins
        except FileNotFoundError:
            return None
        return target

    # --- delivering ------------------------------------------------------------------------------
    def deliver(
        self, api_url: str, in_url: str, *, stop: threading.Event | None = None
    ) -> Delivered:
        """Send every spool file meant for ``api_url`` over the websocket at ``in_url``."""
        result = Delivered()
        target = api_url.rstrip("/")
        ws: Any = None
        try:
            candidates = [p for p, _ in self._unclaimed()] + list(self._abandoned())
            for path in candidates:
                if stop is not None and stop.is_set():
                    break
                claimed = self._claim(path)
                if claimed is None:
                    continue
                with contextlib.suppress(OSError):
                    os.utime(claimed)  # the claim's age, for takeover from another host
                lines = self._read(claimed, target, result)
                if lines is None:
                    continue
                if ws is None:
                    try:
                        ws = self._connect(in_url)
                    except BaseException:
                        self._release(claimed)
                        raise
                self._send(ws, claimed, lines, target, result, stop)
        except Exception as exc:  # unreachable or dropped: the rest stays spooled
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            if ws is not None:
                with contextlib.suppress(Exception):
                    ws.close()
        return result

    @staticmethod
    def _connect(in_url: str) -> Any:
        from websockets.sync.client import connect  # lazy: keeps ``import tideflow`` light

        return connect(
            in_url,
            open_timeout=5,
            close_timeout=1,
            max_size=None,
            compression=None,
            additional_headers=auth_headers(),
        )

    def _read(self, claimed: Path, target: str, result: Delivered) -> list[str] | None:
        """The event lines of a claimed file meant for ``target``; None when it is not (released)."""
        try:
            text = claimed.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("tideflow: cannot read the spooled events in %s: %s", claimed, exc)
            self._set_aside(claimed)
            return None
        head, _, body = text.partition("\n")
        try:
            header = json.loads(head)
            url = str(header["api_url"])
        except (ValueError, KeyError, TypeError):
            log.warning("tideflow: %s is not a tideflow event spool file; set aside", claimed)
            self._set_aside(claimed)
            return None
        if url.rstrip("/") != target:
            result.other_servers += 1
            self._release(claimed)
            return None
        return [line for line in body.split("\n") if line]

    def _set_aside(self, claimed: Path) -> None:
        with contextlib.suppress(OSError):
            os.rename(claimed, claimed.with_name(claimed.name.split(_CLAIMED, 1)[0] + ".bad"))

    def _release(self, claimed: Path) -> None:
        with contextlib.suppress(OSError):
            os.rename(claimed, claimed.with_name(claimed.name.split(_CLAIMED, 1)[0]))

    def _send(
        self,
        ws: Any,
        claimed: Path,
        lines: list[str],
        target: str,
        result: Delivered,
        stop: threading.Event | None,
    ) -> None:
        good: list[str] = []
        for line in lines:
            try:
                json.loads(line)
            except ValueError:  # one bad line must not make the server refuse its whole frame
                result.refused += 1
                result.refusals.append({"id": None, "reason": "spooled line is not JSON"})
                continue
            good.append(line)
        sent = 0
        try:
            while sent < len(good):
                if stop is not None and stop.is_set():
                    break
                batch = good[sent : sent + _BATCH]
                ws.send("[" + ",".join(batch) + "]")
                answer = json.loads(ws.recv(timeout=_ACK_TIMEOUT))
                result.events += len(answer.get("ack") or [])
                refused = answer.get("refused") or []
                result.refused += len(refused)
                result.refusals.extend(refused[:5])
                sent += len(batch)
        finally:
            if sent < len(good):  # stopped or failed: the unanswered rest is spooled again
                with contextlib.suppress(OSError):
                    self.write(good[sent:], target)
                    claimed.unlink()
        if sent == len(good):
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()
            result.files += 1
