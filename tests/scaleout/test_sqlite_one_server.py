"""SQLite has one server per database file (ADR 0014): a second `tideflow server start` on the
same file, from another home and port, is refused in one line; the lock dies with a SIGKILLed
server, so the next start works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tideflow.testing import ServerProcess, free_port


def _start(db: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDEFLOW_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", "server", "start", "--port", str(free_port()),
         "--database-url", f"sqlite+aiosqlite:///{db}"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_a_second_server_on_the_same_sqlite_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "tideflow.db"
    first = ServerProcess(f"sqlite+aiosqlite:///{db}", home=tmp_path / "one")
    first.start()
    try:
        second = _start(db, tmp_path / "two")
        assert second.returncode != 0
        lines = [line for line in second.stderr.strip().splitlines() if line.strip()]
        assert len(lines) == 1, second.stderr
        assert "another tideflow server" in lines[0] and f"pid {first.proc.pid}" in lines[0]
        assert "Traceback" not in second.stderr + second.stdout
    finally:
        first.kill()
    again = ServerProcess(f"sqlite+aiosqlite:///{db}", home=tmp_path / "three")
    again.start()  # the killed server's lock went with it
    again.stop()
