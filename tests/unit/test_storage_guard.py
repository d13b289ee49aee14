"""storage.guard on plain files: the watch notices a deleted or replaced database file (and stays
tripped), a start refuses a missing or empty database where the marker says one existed, and a
fresh directory needs nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tideflow.exceptions import TideflowError
from tideflow.server.storage.guard import (
    DatabaseUnavailable,
    FileWatch,
    check_sqlite_start,
    marker_path,
    write_marker,
)


def test_watch_passes_while_the_file_is_the_one_opened(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    db.write_bytes(b"x")
    watch = FileWatch(db)
    db.write_bytes(b"changed in place")  # same inode: still ours
    watch.check()
    assert watch.problem is None


def test_watch_trips_on_deletion_and_stays_tripped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "t.db"
    db.write_bytes(b"x")
    watch = FileWatch(db)
    db.unlink()
    with caplog.at_level(logging.ERROR, "tideflow.server"), pytest.raises(DatabaseUnavailable) as e:
        watch.check()
    assert str(db) in str(e.value) and "was deleted" in str(e.value)
    assert "stopped accepting writes" in str(e.value)
    db.write_bytes(b"a new file at the same path")
    with pytest.raises(DatabaseUnavailable):
        watch.check()  # sticky: writes since went to the old file
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_watch_trips_on_replacement(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    db.write_bytes(b"x")
    watch = FileWatch(db)
    other = tmp_path / "restored.db"
    other.write_bytes(b"y")
    other.replace(db)
    with pytest.raises(DatabaseUnavailable, match="replaced by another file"):
        watch.check()


def test_fresh_directory_may_create(tmp_path: Path) -> None:
    assert check_sqlite_start(tmp_path / "new" / "t.db") is None
    assert (tmp_path / "new").is_dir()


def test_missing_database_with_marker_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    write_marker(db)
    with pytest.raises(TideflowError, match="is missing") as e:
        check_sqlite_start(db)
    assert str(marker_path(db)) in str(e.value) and "--create-database" in str(e.value)
    db.touch()
    with pytest.raises(TideflowError, match="is empty"):
        check_sqlite_start(db)


def test_leftover_wal_counts_as_evidence(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    Path(f"{db}-wal").write_bytes(b"frames")
    with pytest.raises(TideflowError, match=r"t\.db-wal"):
        check_sqlite_start(db)


def test_create_database_sets_a_stale_wal_aside(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    write_marker(db)
    Path(f"{db}-wal").write_bytes(b"frames of the lost database")
    assert check_sqlite_start(db, create_database=True) is None
    assert not Path(f"{db}-wal").exists()
    assert Path(f"{db}-wal.orphaned").read_bytes() == b"frames of the lost database"


def test_existing_database_with_marker_returns_the_refusal_for_an_empty_schema(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    db.write_bytes(b"SQLite format 3\x00")
    write_marker(db)
    refusal = check_sqlite_start(db)
    assert refusal is not None and str(db) in refusal
