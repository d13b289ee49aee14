"""Guards around the SQLite database file, so no write is acknowledged that will not be kept.

Three faults, three guards:

- a home that cannot hold the database (read-only, not a directory) is refused at start with one
  line naming the path (``check_sqlite_start``), before anything is served;
- a database that existed and is now missing is never silently recreated empty: at first start a
  marker file is written next to the database (``write_marker``); a later start that finds the
  marker (or SQLite's ``-wal``/``-shm`` files) but no database refuses unless told to create one;
- a database file deleted or replaced under a running server: SQLite keeps writing into the open,
  deleted inode, so commits "succeed" and are lost. ``FileWatch`` compares the path's device and
  inode with those seen at start, before and after each write transaction (one ``stat``, a few
  microseconds against a commit's hundreds), and from the first mismatch on every request fails
  with ``DatabaseUnavailable`` (HTTP 503) and one ERROR log line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

from tideflow.exceptions import TideflowError

__all__ = [
    "DatabaseUnavailable",
    "FileWatch",
    "check_sqlite_start",
    "check_writable_dir",
    "marker_path",
    "write_marker",
]

logger = logging.getLogger("tideflow.server")

_SIDE_FILES = ("-wal", "-shm")


class DatabaseUnavailable(TideflowError):
    """The database file under the running server is gone: nothing more can be stored (HTTP 503)."""


def marker_path(database: Path) -> Path:
    """The marker recording that a tideflow database was created at ``database``.

    Hidden and not matching ``tideflow.db*``, so deleting the database by a glob leaves it behind as
    the evidence a later start needs.
    """
    return database.with_name(f".{database.name}.created")


def write_marker(database: Path) -> None:
    """Record (atomically) that a tideflow database lives at ``database``."""
    marker = marker_path(database)
    text = json.dumps(
        {
            "database": str(database),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "note": "written by tideflow: a start that finds this file but no database refuses "
            "to create an empty one (tideflow server start --create-database overrides)",
        }
    )
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(marker)


def check_writable_dir(directory: Path, what: str) -> None:
    """Create ``directory`` if needed and prove a file can be created in it; else one-line error.

    Trying is the only honest test: ``os.access`` says yes to root on a read-only mount.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TideflowError(f"cannot create {what} {directory}: {exc.strerror or exc}") from None
    probe = directory / f".tideflow-write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # a leftover probe of a killed process with our pid: creating files worked then
    except OSError as exc:
        raise TideflowError(f"{what} {directory} is not writable: {exc.strerror or exc}") from None
    os.close(fd)
    probe.unlink(missing_ok=True)


def _evidence(database: Path) -> Path | None:
    """A file showing a database existed at ``database`` (the marker, or SQLite's side files)."""
    for candidate in (marker_path(database), *(Path(f"{database}{s}") for s in _SIDE_FILES)):
        if candidate.exists():
            return candidate
    return None


def check_sqlite_start(database: Path, *, create_database: bool = False) -> str | None:
    """Refuse, with one line, a start that cannot keep data at ``database``.

    Returns None when an empty database may be created there (a fresh home, or ``create_database``),
    else the refusal to raise if the file turns out to hold no tideflow tables (an empty file left
    where the real one was deleted).
    """
    check_writable_dir(database.parent, "the database directory")
    exists = database.exists()
    if exists:
        try:
            os.close(os.open(database, os.O_RDWR))
        except OSError as exc:
            raise TideflowError(
                f"the database file {database} is not writable: {exc.strerror or exc}"
            ) from None
    evidence = _evidence(database)
    if evidence is None:
        return None
    empty = not exists or database.stat().st_size == 0
    if create_database:
        if empty:
            _set_aside_side_files(database)
        return None
    refusal = (
        f"the SQLite database {database} is {'missing' if not exists else 'empty'}, but "
        f"{evidence} shows a tideflow database was there (deleted or moved?); restore it, or run "
        "`tideflow server start --create-database` to begin with an empty one"
    )
    if empty:
        raise TideflowError(refusal)
    return refusal


def _set_aside_side_files(database: Path) -> None:
    # A stale -wal of the lost database would be replayed into the new one: keep it, out of the way.
    for suffix in _SIDE_FILES:
        side = Path(f"{database}{suffix}")
        if side.exists():
            side.replace(side.with_name(f"{side.name}.orphaned"))


class FileWatch:
    """Notices when the database file the server opened is no longer the one at its path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)
        self.problem: str | None = None

    def check(self) -> None:
        """Raise DatabaseUnavailable when the file was deleted or replaced (now or before)."""
        if self.problem is None:
            self._look()
        if self.problem is not None:
            raise DatabaseUnavailable(self.problem)

    def _look(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            what = "deleted"
        except OSError as exc:
            what = f"made unreachable ({exc.strerror or exc})"
        else:
            if (st.st_dev, st.st_ino) == self._identity:
                return
            what = "replaced by another file"
        # Sticky: writes since went to the old inode; only a restart on a restored file is safe.
        self.problem = (
            f"the database file {self.path} was {what} while the server was running; the server "
            "stopped accepting writes: restore the file and restart the server"
        )
        logger.error("%s (every write now answers 503)", self.problem)
