"""One server per SQLite database file: an exclusive ``flock`` on ``<db>.server.lock``.

Taken before the schema upgrade and held for the server's life; the kernel releases it when the
process ends, even by SIGKILL, so a crashed server never blocks the next start (ADR 0014).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tideflow.exceptions import TideflowError

try:
    import fcntl
except ImportError:  # Windows: no flock; the check is skipped there
    fcntl = None  # type: ignore[assignment]

__all__ = ["SqliteServerLock", "lock_path"]


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".server.lock")


class SqliteServerLock:
    """``acquire()`` or a TideflowError naming the server that holds the file; ``release()``."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = lock_path(database)
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None or self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise TideflowError(
                f"another tideflow server{who} already serves {self.database}: a SQLite database "
                "has one server; stop that one, or use PostgreSQL to run several replicas"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Not unlinked: a server starting right now may hold an fd on this very inode.
            with contextlib.suppress(OSError):
                os.close(fd)
